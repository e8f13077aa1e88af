#!/usr/bin/env bash
# Measures the stripped static `ember` step by step, each row the README's
# "Static binaries" table shows: a commit (the tree as it was at that
# step, unpacked with `git archive`; `.` is the working tree), a target,
# an opt-level and RUSTFLAGS. Then prints where the rest goes: .text per
# crate and the biggest functions, from an unstripped build of the
# working tree.
#
# Usage: tests/vm/size.sh [LABEL-SUBSTRING]   (only the rows whose label
# contains it; builds into target/size/, one LTO build per row, minutes
# each on a busy machine)
# Needs: the x86_64-unknown-linux-musl target (stable), git, and for the
# last row nightly with rust-src and that target.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
gnu=$(rustc -vV | awk '/^host:/{print $2}')
musl=$(uname -m)-unknown-linux-musl
out=$root/target/size
only=${1:-}
# The link flags the shipped static build uses (tests/vm/run.sh).
# shellcheck source=tests/vm/static-flags.sh
. "$root/tests/vm/static-flags.sh"

# src REV: a directory holding the tree at REV.
src() {
  if [ "$1" = . ]; then
    echo "$root"
    return
  fi
  local d="$out/src/$1"
  if [ ! -f "$d/Cargo.toml" ]; then
    mkdir -p "$d"
    git -C "$root" archive "$1" | tar -x -C "$d"
  fi
  # Dated now, not at the commit nor at an earlier run: a target directory
  # shared by several rows must see each tree as changed.
  find "$d" -type f -exec touch {} +
  echo "$d"
}

# step NAME REV TARGET OPT RUSTFLAGS [cargo +toolchain and -Z flags...]
step() {
  local name=$1 rev=$2 target=$3 opt=$4 flags=$5
  shift 5
  (cd "$(src "$rev")" &&
    CARGO_PROFILE_MIN_SIZE_OPT_LEVEL=$opt RUSTFLAGS="$flags" CARGO_TARGET_DIR="$out/$name" \
      cargo "$@" build --quiet --profile min-size --bin ember --target "$target" >&2)
  stat -c %s "$out/$name/$target/min-size/ember"
}

prev=
# row LABEL NAME REV TARGET OPT RUSTFLAGS [...]: one table row.
row() {
  local label=$1
  shift
  case $label in *"$only"*) ;; *) return 0 ;; esac
  local bytes
  bytes=$(step "$@")
  if [ -n "$prev" ]; then
    printf '%-58s %9d bytes (%+d)\n' "$label" "$bytes" $((bytes - prev))
  else
    printf '%-58s %9d bytes\n' "$label" "$bytes"
  fi
  prev=$bytes
}

# Before issue 11's trimming.
base=9b91c31
row "glibc static, opt-level s" s-gnu $base "$gnu" s '-C target-feature=+crt-static'
row "glibc static, opt-level z" z-gnu $base "$gnu" z '-C target-feature=+crt-static'
row "musl, opt-level z" z-musl $base "$musl" z ''
row "rtnetlink encoded by hand" rtnl e53d996 "$musl" z ''
row "--duration parsed without f64" duration 6ca8da8 "$musl" z ''
row "clap without color, suggestions" clap f4d9451 "$musl" z ''
row "RELR relocations (-z pack-relative-relocs), shipped" relr f4d9451 "$musl" z \
  "$EMBER_STATIC_RUSTFLAGS"
# What the features merged after that step added, and what took it back
# (the rows share a target directory: only ember's crates rebuild).
row "regrown: main after the core check, btfhub tree, hardening merges" regrown d1c7c1c "$musl" z \
  "$EMBER_STATIC_RUSTFLAGS"
row "regrown: one shared sort (ember_core::order)" regrown d0aefda "$musl" z "$EMBER_STATIC_RUSTFLAGS"
row "regrown: no f64 printer in the CLI" regrown a90f8c8 "$musl" z "$EMBER_STATIC_RUSTFLAGS"
row "regrown: gzip by miniz_oxide + crc, not flate2" regrown 7019c0b "$musl" z "$EMBER_STATIC_RUSTFLAGS"
row "the same at the working tree (tests/vm/run.sh's build)" head . "$musl" z "$EMBER_STATIC_RUSTFLAGS"
shipped=$prev
# Measured only, each against the shipped row: no ASLR; rust-lld through
# rustc's private gcc-ld wrapper, folding identical functions; a nightly
# std without panic messages.
prev=$shipped
row "(measured only) non-PIE" nopie . "$musl" z "$EMBER_STATIC_RUSTFLAGS -C relocation-model=static"
gccld=$(rustc --print sysroot)/lib/rustlib/$gnu/bin/gcc-ld
prev=$shipped
row "(measured only) rust-lld, --icf=all" lldicf . "$musl" z \
  "$EMBER_STATIC_RUSTFLAGS -C link-arg=-B$gccld -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all"
prev=$shipped
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  row "(measured only) nightly build-std, panic=immediate-abort" tiny . "$musl" z \
    "$EMBER_STATIC_RUSTFLAGS -Zunstable-options -Cpanic=immediate-abort" \
    +nightly -Zbuild-std=std,panic_abort
else
  echo "(nightly rust-src missing: build-std row skipped)"
fi

[ -z "$only" ] || exit 0
# Where the bytes of the shipped build go (symbols need an unstripped link).
CARGO_PROFILE_MIN_SIZE_STRIP=false RUSTFLAGS="$EMBER_STATIC_RUSTFLAGS" \
  CARGO_TARGET_DIR="$out/syms" \
  cargo build --quiet --profile min-size --bin ember --target "$musl" >&2
nm -S --size-sort -C "$out/syms/$musl/min-size/ember" | python3 -c '
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
