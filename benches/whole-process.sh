#!/usr/bin/env bash
# Whole-process comparison of ember against its peers (libbpf 1.1 through
# benches/c/libbpf-driver.c, and bpftool), each tool in a process of its
# own, run in interleaved pairs with hyperfine. README's whole-process
# figures come from this script's output.
#
#   benches/whole-process.sh [warm|cold|both]      (root; default: both)
#
# For each case and each pair i, one hyperfine call runs both commands
# once (after one warmup each when warm; after dropping the page cache
# before every run when cold), alternating which goes first. The ratio of
# pair i is peer time / ember time (>1: ember faster); the script prints
# their median, quartiles and range, for wall time and for CPU time
# (user + system: on a shared or virtual machine, wall time also counts
# waiting for a CPU). PAIRS (default 21 warm, 11 cold)
# sets the number of pairs. Cold runs drop the page cache of the whole
# machine: everything else running slows down meanwhile.
#
# Needs: hyperfine, bpftool, cc, libbpf-dev, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-both}
for t in hyperfine bpftool cc python3; do
  command -v "$t" >/dev/null || { echo "whole-process.sh: needs $t" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "whole-process.sh: loads need root" >&2; exit 1; }

out=$root/target/whole-process
mkdir -p "$out"
# Same flags as benches/build.rs.
cc -O2 -Wall -Wextra -Werror -o "$out/libbpf-driver" benches/c/libbpf-driver.c -lbpf
cargo build --quiet --release --bin ember
cargo build --quiet --release -p ember-benches --example ember-driver
# The same two built to ship: linked statically against glibc (static
# PIE, no dynamic loader work at start) with the release-lto profile (fat
# LTO, one codegen unit, stripped: a cold start reads fewer pages). The
# peer stays as Debian ships libbpf (shared).
static_flags='-C target-feature=+crt-static'
RUSTFLAGS=$static_flags cargo build --quiet --profile release-lto --bin ember \
  --target x86_64-unknown-linux-gnu
RUSTFLAGS=$static_flags cargo build --quiet --profile release-lto -p ember-benches \
  --example ember-driver --target x86_64-unknown-linux-gnu
ember=$root/target/release/ember
driver=$root/target/release/examples/ember-driver
sember=$root/target/x86_64-unknown-linux-gnu/release-lto/ember
sdriver=$root/target/x86_64-unknown-linux-gnu/release-lto/examples/ember-driver
lb=$out/libbpf-driver
vmlinux=/sys/kernel/btf/vmlinux
core=tests/fixtures/core_only.bpf-el.o
ksym=tests/fixtures/load.bpf-el.o

# name | ember command | peer command
cases=(
  "vmlinux open + validate (btf__parse)|$driver open $vmlinux|$lb open $vmlinux"
  "vmlinux open + validate, ember static LTO (btf__parse)|$sdriver open $vmlinux|$lb open $vmlinux"
  "load core_only.bpf-el.o (CO-RE, no ksyms; libbpf open+load+close)|$ember load $core|$lb load $core"
  "load core_only.bpf-el.o, ember static LTO (libbpf open+load+close)|$sember load $core|$lb load $core"
  "load load.bpf-el.o (untyped ksym; libbpf open+load+close)|$ember load $ksym|$lb load $ksym"
  "load load.bpf-el.o, ember static LTO (libbpf open+load+close)|$sember load $ksym|$lb load $ksym"
  "btf dump vmlinux format c (bpftool)|$ember btf dump $vmlinux --format c|bpftool btf dump file $vmlinux format c"
  "btf dump vmlinux format c, ember static LTO (bpftool)|$sember btf dump $vmlinux --format c|bpftool btf dump file $vmlinux format c"
)

# Every command must succeed on its own before anything is timed.
for c in "${cases[@]}"; do
  IFS='|' read -r name a b <<<"$c"
  $a >/dev/null || { echo "failed: $a" >&2; exit 1; }
  $b >/dev/null || { echo "failed: $b" >&2; exit 1; }
done

# run_pairs WARM|COLD NAME EMBER PEER: one JSON per pair under $dir.
run_pairs() {
  local kind=$1 name=$2 a=$3 b=$4 n i dir
  dir=$(mktemp -d "$out/pairs.XXXXXX")
  if [ "$kind" = cold ]; then n=${PAIRS:-11}; else n=${PAIRS:-21}; fi
  for ((i = 0; i < n; i++)); do
    local first=$a second=$b
    if ((i % 2)); then first=$b second=$a; fi
    if [ "$kind" = cold ]; then
      hyperfine -N --style none --runs 1 \
        --prepare "sh -c 'sync; echo 3 > /proc/sys/vm/drop_caches'" \
        --export-json "$dir/$i.json" "$first" "$second" >/dev/null
    else
      hyperfine -N --style none --runs 1 --warmup 1 \
        --export-json "$dir/$i.json" "$first" "$second" >/dev/null
    fi
  done
  python3 - "$kind" "$name" "$a" "$dir" <<'PY'
import json, os, statistics, sys
kind, name, ember_cmd, d = sys.argv[1:]
wall, cpu = [], []
for f in sorted(os.listdir(d)):
    res = json.load(open(os.path.join(d, f)))["results"]
    t = {r["command"]: (r["times"][0], r["user"] + r["system"]) for r in res}
    e = t.pop(ember_cmd)
    (p,) = t.values()
    wall.append(p[0] / e[0])
    cpu.append(p[1] / e[1])
def line(what, r):
    r = sorted(r)
    q = statistics.quantiles(r, n=4) if len(r) > 1 else r * 3
    return (f"      {what}: median {statistics.median(r):5.2f}x  IQR {q[0]:.2f}-{q[2]:.2f}"
            f"  range {r[0]:.2f}-{r[-1]:.2f}")
print(f"{kind:4}  {name}: {len(wall)} pairs, peer/ember")
print(line("wall time     ", wall))
print(line("CPU (user+sys)", cpu))
PY
  rm -rf "$dir"
}

echo "whole-process pairs on $(uname -r), $(nproc) CPUs; ratio = peer time / ember time"
for c in "${cases[@]}"; do
  IFS='|' read -r name a b <<<"$c"
  case $mode in
    warm | cold) run_pairs "$mode" "$name" "$a" "$b" ;;
    both) run_pairs warm "$name" "$a" "$b"; run_pairs cold "$name" "$a" "$b" ;;
    *) echo "usage: $0 [warm|cold|both]" >&2; exit 2 ;;
  esac
done
