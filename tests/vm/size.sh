#!/usr/bin/env bash
# Measures the stripped static `ember` step by step (each step adds to the
# one before) and prints where the rest goes: .text per crate and the
# biggest functions, from an unstripped build of the last stable step.
#
# Usage: tests/vm/size.sh   (builds into target/size/; several LTO builds,
# minutes on a busy machine)
# Needs: the x86_64-unknown-linux-musl target (stable), and for the last
# step nightly with rust-src and that target.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
gnu=$(rustc -vV | awk '/^host:/{print $2}')
musl=$(uname -m)-unknown-linux-musl
out=target/size

# step NAME TARGET OPT RUSTFLAGS [cargo +toolchain and -Z flags...]
step() {
  local name=$1 target=$2 opt=$3 flags=$4
  shift 4
  CARGO_PROFILE_MIN_SIZE_OPT_LEVEL=$opt RUSTFLAGS="$flags" CARGO_TARGET_DIR="$out/$name" \
    cargo "$@" build --quiet --profile min-size --bin ember --target "$target" >&2
  stat -c %s "$out/$name/$target/min-size/ember"
}

prev=
report() { # name, bytes
  if [ -n "$prev" ]; then
    printf '%-44s %9d bytes (%+d)\n' "$1" "$2" $(($2 - prev))
  else
    printf '%-44s %9d bytes\n' "$1" "$2"
  fi
  prev=$2
}

report "glibc static, opt-level s" "$(step s-gnu "$gnu" s '-C target-feature=+crt-static')"
report "glibc static, opt-level z" "$(step z-gnu "$gnu" z '-C target-feature=+crt-static')"
report "musl, opt-level z (tests/vm/run.sh)" "$(step z-musl "$musl" z '')"
report "musl, z, non-PIE" "$(step z-musl-nopie "$musl" z '-C relocation-model=static')"
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  report "+ nightly build-std, panic=immediate-abort" "$(step tiny "$musl" z \
    '-C relocation-model=static -Zunstable-options -Cpanic=immediate-abort' \
    +nightly -Zbuild-std=std,panic_abort)"
else
  echo "(nightly rust-src missing: build-std step skipped)"
fi

# Where the bytes of the musl z build go (symbols need an unstripped link).
CARGO_PROFILE_MIN_SIZE_OPT_LEVEL=z CARGO_PROFILE_MIN_SIZE_STRIP=false \
  CARGO_TARGET_DIR="$out/z-musl-syms" \
  cargo build --quiet --profile min-size --bin ember --target "$musl" >&2
nm -S --size-sort -C "$out/z-musl-syms/$musl/min-size/ember" | python3 -c '
import collections, re, sys
by_crate, funcs = collections.Counter(), []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTwW":
        continue
    size, name = int(parts[1], 16), parts[3]
    m = re.match(r"<?([A-Za-z_][A-Za-z0-9_]*)::", name)
    by_crate[m.group(1) if m else "(C: libc, compiler-rt)"] += size
    funcs.append((size, name))
print("\n.text by crate (KiB):")
for crate, size in by_crate.most_common(15):
    print(f"  {size / 1024:8.1f}  {crate}")
print("\nbiggest functions (bytes):")
for size, name in sorted(funcs, reverse=True)[:15]:
    print(f"  {size:8d}  {name[:110]}")
'
