#!/bin/busybox sh
# /init of the VM guest (tests/vm/run.sh copies it into the initramfs).
# Each scenario prints `VMTEST <name> OK|FAIL`; a failing one also prints
# what ember said. `vmtest.only=a,b` on the kernel command line (run.sh's
# VMTEST_ONLY) runs only the scenarios named. qemu's exit status carries
# the verdict (isa-debug-exit).
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
kv=$(uname -r)
while read -r m; do insmod "/lib/modules/$kv/$m" 2>/dev/null; done < /load-order
echo "VMINFO kernel $kv modules: $(ls /sys/kernel/btf | tr '\n' ' ')"
echo "VMINFO guest uptime $(cut -d' ' -f1 /proc/uptime)s at init"
only=$(sed -n 's/.*vmtest\.only=\([^ ]*\).*/\1/p' /proc/cmdline)
rc=0

# wanted NAME: whether this run includes scenario NAME.
wanted() {
  [ -z "$only" ] && return 0
  case ",$only," in *",$1,"*) return 0 ;; esac
  return 1
}

# result NAME OK?: prints the verdict; on failure, what the last ember
# run said.
result() {
  echo "VMINFO guest uptime $(cut -d' ' -f1 /proc/uptime)s after $1"
  if [ "$2" = 0 ]; then
    echo "VMTEST $1 OK"
  else
    echo "VMTEST $1 FAIL"
    rc=1
    for f in /tmp/run.out /tmp/run.err; do [ -f $f ] && head -40 $f; done
  fi
}

# check NAME WANT ARGS...: `ember ARGS` succeeds and prints WANT.
check() {
  name=$1; want=$2; shift 2
  wanted "$name" || return 0
  if out=$(/bin/ember "$@" 2>&1) && echo "$out" | grep -q "$want"; then
    echo "VMTEST $name OK"
  else
    echo "VMTEST $name FAIL"; echo "$out" | head -40; rc=1
  fi
}

# start N ARGS...: `ember run ARGS --json` in the background (output in
# /tmp/run.out, /tmp/run.err), back once it has attached N programs.
start() {
  n=$1; shift
  : > /tmp/run.out
  : > /tmp/run.err
  /bin/ember run "$@" --json > /tmp/run.out 2> /tmp/run.err &
  pid=$!
  i=0
  while [ "$(grep -c '^attached' /tmp/run.err)" -lt "$n" ]; do
    kill -0 $pid 2>/dev/null || { wait $pid; return 1; }
    i=$((i + 1))
    [ $i -gt 600 ] && { kill -TERM $pid; wait $pid; return 1; }
    usleep 50000
  done
}

# stop: SIGTERM to the run; its exit status. It prints the --dump maps
# once more as it ends.
stop() {
  kill -TERM $pid
  wait $pid
}

# val MAP KEY: the value at KEY in MAP's last dump (empty if none).
val() {
  grep "\"dump\":\"$1\"" /tmp/run.out | tail -n 1 |
    sed -n "s/.*\"key\":$2,\"value\":\([0-9-]*\).*/\1/p"
}

# pos V...: every V is an integer > 0.
pos() {
  for v in "$@"; do [ "${v:-0}" -gt 0 ] 2>/dev/null || return 1; done
}

# Triggers: opens (openat) and an execve.
opens() { for _ in 1 2 3; do cat /etc/os-release > /dev/null; done; }

# --- Loads (no attach) -------------------------------------------------
# Typed ksym (CONFIG_KALLSYMS_ALL): a per-CPU variable from vmlinux BTF.
check typed_ksym "prog typed type raw_tracepoint" load -v /fix/ksyms.bpf-el.o
# kfuncs in a module: found in nf_conntrack's BTF, passed through fd_array.
check module_kfunc "resolved in module 'nf_conntrack'" load -v /fix/module_kfunc.bpf-el.o
check module_kfunc_loaded "prog ct_lookup type sched_cls" load /fix/module_kfunc.bpf-el.o
# A module function as fentry target: attach_btf_obj_fd = the module's BTF.
check module_attach "prog on_get_id type tracing" load /fix/module_fentry.bpf-el.o
# freplace (no lockdown here): the target loaded and pinned, then an
# extension loaded against its global function ember_verdict.
check freplace_target "prog ember_target type xdp" load --no-autoload ember_replacement \
  --pin /sys/fs/bpf/freplace /fix/freplace.bpf-el.o
check freplace "prog ember_replacement type ext" load --no-autoload ember_target \
  --target ember_replacement=/sys/fs/bpf/freplace/ember_target /fix/freplace.bpf-el.o

# --- Scenarios: each program must fire -----------------------------------
# fentry + fexit on do_sys_openat2 (vmlinux), fentry on nf_conntrack's
# ct_cpu_seq_show (read /proc/net/stat/nf_conntrack) and nf_ct_get_id (a
# ctnetlink dump of an entry vm_conntrack creates).
if wanted fentry; then
  ok=1
  if start 4 /fix/fentry.bpf-el.o --dump counts; then
    opens
    cat /proc/net/stat/nf_conntrack > /dev/null
    /bin/vm_conntrack
    stop && ok=0
    e=$(val counts 0) x=$(val counts 1) fd=$(val counts 2) m=$(val counts 3) id=$(val counts 4)
    echo "VMINFO fentry openat entries=$e exits=$x exits_with_fd=$fd" \
      "ct_cpu_seq_show=$m nf_ct_get_id=$id"
    pos "$e" "$x" "$fd" "$m" "$id" || ok=1
  fi
  result fentry $ok
fi

# LSM: lsm/file_open counts opens.
if wanted lsm; then
  ok=1
  if start 1 /fix/lsm.bpf-el.o --dump counts; then
    opens
    stop && ok=0
    n=$(val counts 0)
    echo "VMINFO lsm file_open=$n"
    pos "$n" || ok=1
  fi
  result lsm $ok
fi

# Typed ksyms read in a tracepoint program: bpf_prog_active (1 inside it),
# runqueues (cpu = this CPU, nr_running >= 1), and nf_dup_netdev's per-CPU
# nf_dup_skb_recursion (0 outside a dup).
if wanted ksym-typed; then
  ok=1
  if start 1 /fix/ksym_typed.bpf-el.o --dump counts; then
    opens
    stop && ok=0
    n=$(val counts 0) bad=$(val counts 6)
    echo "VMINFO ksym-typed firings=$n bpf_prog_active=$(val counts 1)" \
      "rq.cpu=$(val counts 2) cpu=$(val counts 3) rq.nr_running=$(val counts 4)" \
      "nf_dup_skb_recursion=$(val counts 5) nonsense=$bad"
    { pos "$n" && [ "$bad" = 0 ]; } || ok=1
  fi
  result ksym-typed $ok
fi

# No kernel BTF: /sys/kernel/btf hidden under a tmpfs.
if wanted nobtf; then
  ok=0
  mount -t tmpfs none /sys/kernel/btf
  # A CO-RE object fails, saying where it searched and what to supply.
  if out=$(/bin/ember load /fix/core_task.bpf-el.o 2>&1); then
    ok=1; echo "$out"
  else
    echo "$out" | sed 's/^/VMINFO nobtf error: /'
    echo "$out" | grep -q 'no BTF for kernel' || ok=1
    echo "$out" | grep -q 'supply one with --btf FILE' || ok=1
  fi
  # The same object with external BTF: a raw file, then a btfhub tree.
  for how in "--btf /btf/vmlinux.btf" "--btf-dir /btfhub"; do
    # shellcheck disable=SC2086 # two words: the flag and its value
    if start 1 /fix/core_task.bpf-el.o $how --dump counts; then
      opens
      stop || ok=1
      n=$(val counts 0) good=$(val counts 1)
      echo "VMINFO nobtf $how firings=$n tgid_matches=$good"
      { pos "$n" && [ "$n" = "$good" ]; } || ok=1
    else
      ok=1
      cat /tmp/run.err
    fi
  done
  # An object without CO-RE relocations needs no kernel BTF at all.
  if start 1 /fix/execsnoop.bpf-el.o --dump execs; then
    /bin/ember --version > /dev/null
    stop || ok=1
    n=$(val execs 0)
    echo "VMINFO nobtf no-CO-RE execsnoop execs=$n"
    pos "$n" || ok=1
  else
    ok=1
  fi
  umount /sys/kernel/btf
  result nobtf $ok
fi

# `ember run` on the shipped example: events streamed for the guest's
# execs, a clean exit on SIGTERM, no link left behind.
if wanted run; then
  ok=1
  if start 1 /fix/execsnoop.bpf-el.o --event 'events=struct event'; then
    for _ in 1 2 3; do /bin/ember --version > /dev/null; done
    stop && ok=0
    n=$(grep -c '"map":"events".*"filename":"/bin/ember"' /tmp/run.out)
    links=$(/bin/ember link list)
    echo "VMINFO run events_for_bin_ember=$n links_after=$(echo "$links" | grep -c .)"
    grep -m1 '"map":"events"' /tmp/run.out | sed 's/^/VMINFO run event: /'
    { [ "$n" -ge 3 ] && [ -z "$links" ] && grep -q '^detached 1 link' /tmp/run.err; } || ok=1
  fi
  result run $ok
fi

# A kprobe on a module function (nf_conntrack_netlink's
# ctnetlink_fill_info): by section, found in kallsyms, and as
# module:function (the PMU, or tracefs where the PMU refuses that form);
# vm_conntrack's dump of the entry it creates fires both.
# The info line saying the module has no BTF must appear $2 times (once
# for both probes when hidden, never when present).
kprobe_module() { # the scenario name, the count of absent-BTF lines
  ok=1
  if start 2 /fix/kprobe_module.bpf-el.o \
    --attach fill_info_mod=nf_conntrack_netlink:ctnetlink_fill_info --dump counts; then
    /bin/vm_conntrack
    stop && ok=0
    n=$(val counts 0) confirmed=$(val counts 1) mod=$(val counts 2)
    grep '^attached' /tmp/run.err | sed "s/^/VMINFO $1 /"
    grep '^ember: info: module ' /tmp/run.err | sed "s/^/VMINFO $1 /"
    absent=$(grep -c '^ember: info: module nf_conntrack_netlink has no BTF' /tmp/run.err)
    echo "VMINFO $1 by_section=$n confirmed=$confirmed module_form=$mod absent_btf_lines=$absent"
    { pos "$n" "$mod" && [ "$n" = "$confirmed" ] && [ "$absent" = "$2" ]; } || ok=1
  fi
}
if wanted kprobe-module; then
  kprobe_module kprobe-module 0
  result kprobe-module $ok
fi

# The same with nf_conntrack_netlink's BTF hidden (sysfs BTF replaced by a
# tmpfs holding every file but that one): the object relocates against
# vmlinux alone and fires, and one info line says the module has no BTF;
# an object relocating a type only that module has (struct
# ctnetlink_filter) fails naming the relocation, the type and the module.
if wanted kprobe-module-nobtf; then
  mkdir -p /tmp/btf
  cp /sys/kernel/btf/* /tmp/btf/
  rm /tmp/btf/nf_conntrack_netlink
  mount -t tmpfs none /sys/kernel/btf
  cp /tmp/btf/* /sys/kernel/btf/
  kprobe_module kprobe-module-nobtf 1
  if out=$(/bin/ember load /fix/kprobe_module_type.bpf-el.o 2>&1); then
    ok=1; echo "$out"
  else
    echo "$out" | grep -v '^[0-9]*: ' | head -12 | sed 's/^/VMINFO kprobe-module-nobtf error: /'
    echo "$out" | grep -q 'filter_family: insn [0-9]*: field offset of struct ctnetlink_filter.family: POISONED' || ok=1
    echo "$out" | grep -q 'may define it: .*nf_conntrack_netlink (/sys/kernel/btf/nf_conntrack_netlink absent)' || ok=1
  fi
  umount /sys/kernel/btf
  rm -rf /tmp/btf
  result kprobe-module-nobtf $ok
fi

# Kprobes (PMU and tracefs), kprobe.multi and ksyscall attached and shown
# to fire on openat(2); the binary prints its own VMTEST lines.
if wanted kprobe || wanted kprobe-multi || wanted ksyscall; then
  /bin/vm_kprobe /fix/kprobe.bpf-el.o || rc=1
  echo "VMINFO guest uptime $(cut -d' ' -f1 /proc/uptime)s after vm_kprobe"
fi

# fmod_ret, fentry on a BPF program, lsm_cgroup (in a cgroup2 hierarchy
# mounted here), netkit (a pair the binary makes; refused, saying so,
# before 6.7) and a module kprobe's tracefs retry, each shown to fire and
# stop: tests/src/bin/vm_attach prints its own VMTEST lines.
attach_names=""
for n in fmod-ret fentry-bpf lsm-cgroup netkit kprobe-module-retry; do
  if wanted $n; then attach_names="$attach_names $n"; fi
done
if [ -n "$attach_names" ]; then
  if wanted lsm-cgroup; then mount -t cgroup2 cgroup2 /sys/fs/cgroup; fi
  # shellcheck disable=SC2086 # one argument per scenario
  /bin/vm_attach $attach_names || rc=1
  echo "VMINFO guest uptime $(cut -d' ' -f1 /proc/uptime)s after vm_attach"
fi

# The same through the CLI: the XDP program loaded and pinned by `ember
# load`, fentry/fexit loaded against it by `ember run --target`, fired by
# test runs of the pinned program.
if wanted fentry-bpf-cli; then
  ok=1
  fb=/sys/fs/bpf/fentry_bpf
  if /bin/ember load --no-autoload on_entry --no-autoload on_exit --pin $fb \
    /fix/fentry_bpf.bpf-el.o > /tmp/run.err 2>&1 &&
    start 2 /fix/fentry_bpf.bpf-el.o --no-autoload xdp_target \
      --target on_entry=$fb/xdp_target --target on_exit=$fb/xdp_target --dump counts; then
    /bin/vm_attach test-run $fb/xdp_target 10
    t=$?
    stop && [ $t = 0 ] && ok=0
    e=$(val counts 1) x=$(val counts 2) r=$(val counts 3)
    echo "VMINFO fentry-bpf-cli entries=$e exits=$x last_return=$r"
    { [ "$e" = 10 ] && [ "$x" = 10 ] && [ "$r" = 2 ]; } || ok=1
  fi
  rm -rf $fb
  result fentry-bpf-cli $ok
fi

echo "VMINFO guest uptime $(cut -d' ' -f1 /proc/uptime)s"
echo "VMDONE rc=$rc"
# qemu's isa-debug-exit (port 0xf4) exits with (rc << 1) | 1.
printf "\\$(printf %03o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
