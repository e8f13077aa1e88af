#!/usr/bin/env bash
# Boots Debian's 6.1 kernel (the linux-image-amd64 package, unpacked, not
# installed) in qemu with a busybox initramfs that holds a static `ember`
# and the tests/fixtures/vm objects. The guest loads nf_conntrack, runs
# `ember load` on each object and prints one `VMTEST <name> OK|FAIL` line
# per check; qemu's exit status carries the guest's verdict.
#
# Usage: tests/vm/run.sh [CONSOLE_LOG]   (default: target/vm/console.log)
# EMBER_VM_KERNEL=<meta package> boots another Debian kernel (default
# linux-image-amd64, 6.1; linux-image-6.12-amd64 has CONFIG_FPROBE), cached
# under target/vm-<meta package>.
# Needs: qemu-system-x86, busybox-static, cpio, kmod, apt (to download the
# kernel package), python3; a Rust toolchain for the static build.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
meta=${EMBER_VM_KERNEL:-linux-image-amd64}
out="$root/target/vm${EMBER_VM_KERNEL:+-$EMBER_VM_KERNEL}"
log=${1:-"$out/console.log"}
mkdir -p "$out"

need() { command -v "$1" >/dev/null 2>&1 || { echo "vm/run.sh: needs $1 ($2)" >&2; exit 2; }; }
need qemu-system-x86_64 "apt-get install qemu-system-x86"
need busybox "apt-get install busybox-static"
need cpio "apt-get install cpio"
need depmod "apt-get install kmod"
need xz "apt-get install xz-utils"
[ -z "${EMBER_VM_KERNEL:-}" ] || need zstd "apt-get install zstd"

# 1. The kernel package, unpacked once (cached under target/vm).
kroot="$out/kpkg"
if [ ! -d "$kroot/lib/modules" ]; then
  pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$pkg" ] || { apt-get update -qq >/dev/null 2>&1 || true; pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
  [ -n "$pkg" ] || { echo "vm/run.sh: apt knows no $meta" >&2; exit 2; }
  rm -rf "$out/deb" "$kroot" && mkdir -p "$out/deb"
  (cd "$out/deb" && apt-get download "$pkg" >/dev/null)
  dpkg -x "$out"/deb/*.deb "$kroot"
  rm -rf "$out/deb"
fi
kver=$(ls "$kroot/lib/modules" | head -n1)
[ -f "$kroot/lib/modules/$kver/modules.dep" ] || depmod -b "$kroot" "$kver"

# The ELF vmlinux boots through qemu's PVH entry, skipping the BIOS and the
# in-guest decompression (seconds under TCG). The payload is XZ (6.1) or
# zstd (6.12), where the bzImage setup header says.
vmlinux="$out/vmlinux-$kver"
if [ ! -s "$vmlinux" ]; then
  python3 - "$kroot/boot/vmlinuz-$kver" "$vmlinux" <<'PY'
import lzma, struct, subprocess, sys
d = open(sys.argv[1], 'rb').read()
setup = (d[0x1f1] or 4) + 1
off, n = struct.unpack_from('<II', d, 0x248)
payload = d[setup * 512 + off:setup * 512 + off + n]
if payload.startswith(b'\xfd7zXZ\x00'):
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
elif payload.startswith(b'\x28\xb5\x2f\xfd'):
    # zstd decodes the frame, then objects to the size word after it.
    elf = subprocess.run(['zstd', '-dc'], input=payload, capture_output=True).stdout
else:
    sys.exit("payload is neither XZ nor zstd")
if elf[:4] != b'\x7fELF':
    sys.exit("payload is not ELF")
open(sys.argv[2], 'wb').write(elf)
PY
fi

# 2. A static ember (glibc, crt-static): nothing in the guest but busybox.
host=$(rustc -vV | awk '/^host:/{print $2}')
(cd "$root" && RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --quiet --profile min-size --bin ember --bin vm_kprobe --target "$host")
ember="$root/target/$host/min-size/ember"
# The kprobe check drives the library itself (tests/src/bin/vm_kprobe.rs).
vm_kprobe="$root/target/$host/min-size/vm_kprobe"

# 3. The initramfs.
ir="$out/initramfs"
rm -rf "$ir"
mkdir -p "$ir"/{bin,sbin,proc,sys,dev,tmp,fix,lib/modules/$kver}
cp "$(command -v busybox)" "$ir/bin/busybox"
for a in $("$ir/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ir/bin/$a"; done
for a in modprobe insmod poweroff; do ln -sf ../bin/busybox "$ir/sbin/$a"; done
order=()
while read -r _ path _; do
  rel=${path#"$kroot/lib/modules/$kver/"}
  mkdir -p "$ir/lib/modules/$kver/$(dirname "$rel")"
  cp "$path" "$ir/lib/modules/$kver/$rel"
  # busybox insmod takes plain .ko files (6.12 ships them XZ-compressed).
  case $rel in *.ko.xz) xz -d "$ir/lib/modules/$kver/$rel"; rel=${rel%.xz} ;; esac
  order+=("$rel")
done < <(modprobe -d "$kroot" -S "$kver" --show-depends nf_conntrack | grep '^insmod')
printf '%s\n' "${order[@]}" | awk '!seen[$0]++' > "$ir/load-order"
cp "$ember" "$ir/bin/ember"
cp "$vm_kprobe" "$ir/bin/vm_kprobe"
cp "$root"/tests/fixtures/attach/kprobe.bpf-el.o "$ir/fix/"
cp "$root"/tests/fixtures/vm/*.bpf-el.o "$root"/tests/fixtures/freplace.bpf-el.o "$ir/fix/"

cat > "$ir/init" <<'INIT'
#!/bin/busybox sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t bpf bpf /sys/fs/bpf
kv=$(uname -r)
while read -r m; do insmod "/lib/modules/$kv/$m" 2>/dev/null; done < /load-order
echo "VMINFO kernel $kv modules: $(ls /sys/kernel/btf | tr '\n' ' ')"
rc=0
check() { # name, what the output must contain, ember arguments...
  name=$1; want=$2; shift 2
  if out=$(/bin/ember "$@" 2>&1) && echo "$out" | grep -q "$want"; then
    echo "VMTEST $name OK"
  else
    echo "VMTEST $name FAIL"; echo "$out" | head -40; rc=1
  fi
}
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
# Kprobes (PMU and tracefs), kprobe.multi and ksyscall attached and shown
# to fire on openat(2); the binary prints its own VMTEST lines.
/bin/vm_kprobe /fix/kprobe.bpf-el.o || rc=1
echo "VMDONE rc=$rc"
# qemu's isa-debug-exit (port 0xf4) exits with (rc << 1) | 1.
printf "\\$(printf %03o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
INIT
chmod +x "$ir/init"
(cd "$ir" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out/initramfs.cpio.gz"

# 4. Boot. This host's /dev/kvm (if any) may not be hardware KVM; use it
# only when kvm_intel/kvm_amd is loaded.
if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
  accel=(-accel kvm -cpu host)
else
  accel=(-accel tcg -cpu max)
fi
set +e
timeout 600 qemu-system-x86_64 "${accel[@]}" -m 1G -smp 2 \
  -nographic -no-reboot -nodefaults -serial stdio -display none \
  -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
  -kernel "$vmlinux" -initrd "$out/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet" > "$log" 2>&1 < /dev/null
qrc=$?
set -e
grep -E '^(VMINFO|VMTEST|VMDONE)' "$log" || true
case $qrc in
  1) exit 0 ;;                       # guest rc 0
  124) echo "vm/run.sh: qemu timed out (log: $log)" >&2; exit 1 ;;
  0) echo "vm/run.sh: the guest did not report (log: $log)" >&2; exit 1 ;;
  *) echo "vm/run.sh: guest rc $(( (qrc - 1) / 2 )) (log: $log)" >&2; exit 1 ;;
esac
