#!/usr/bin/env bash
# Stripped sizes of the static `mini-loader` example
# (std-loader/examples/mini-loader.rs), step by step, each step adding to
# the one before; README's "Static binaries" quotes this output.
#
# Usage: tests/vm/mini-size.sh   (builds into target/mini-size/; a few LTO
# builds, minutes on a busy machine)
# Needs: the x86_64-unknown-linux-musl target, and for the last step
# nightly with rust-src.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
musl=$(uname -m)-unknown-linux-musl
out=target/mini-size

# step NAME RUSTFLAGS [cargo +toolchain, -Z and feature flags...]
step() {
  local name=$1 flags=$2
  shift 2
  RUSTFLAGS="-C target-feature=+crt-static $flags" CARGO_TARGET_DIR="$out/$name" \
    cargo "$@" --profile min-size -p ember --example mini-loader --target "$musl" >&2
  stat -c %s "$out/$name/$musl/min-size/examples/mini-loader"
}

prev=
report() { # name, bytes
  if [ -n "$prev" ]; then
    printf '%-52s %9d bytes (%+d)\n' "$1" "$2" $(($2 - prev))
  else
    printf '%-52s %9d bytes\n' "$1" "$2"
  fi
  prev=$2
}

report "musl static, min-size, default features" "$(step default '' build --quiet)"
report "--no-default-features (no btfhub: lzma-rs, tar)" \
  "$(step default '' build --quiet --no-default-features)"
report "non-PIE (-C relocation-model=static)" \
  "$(step nopie '-C relocation-model=static' build --quiet --no-default-features)"
if rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  report "nightly build-std, panic=immediate-abort" "$(step tiny \
    '-C relocation-model=static -Zunstable-options -Cpanic=immediate-abort' \
    +nightly build --quiet -Zbuild-std=std,panic_abort --no-default-features)"
  # No unwinding is left to do after an immediate abort: drop the tables.
  report "no unwind tables (-C force-unwind-tables=no)" "$(step tiny-nounwind \
    '-C relocation-model=static -Zunstable-options -Cpanic=immediate-abort -C force-unwind-tables=no' \
    +nightly build --quiet -Zbuild-std=std,panic_abort --no-default-features)"
else
  echo "(nightly rust-src missing: build-std step skipped)"
fi
