#!/usr/bin/env bash
# Runs ember's no-kernel unit tests under sanitizers (issue 12), on the
# nightly toolchain:
#   - ember-core's unit tests under Miri (undefined behaviour, leaks);
#   - ember-sys's unit tests, whose system calls go to the fake kernel of
#     sys/src/raw/fake.rs, under Miri too (its unsafe code lives in raw/),
#     and under AddressSanitizer with LeakSanitizer (on by default with
#     ASan on x86_64 Linux).
# Usage: tests/sanitize.sh [miri-core|miri-sys|asan]...  (default: all)
# Needs: rustup toolchain nightly with the miri and rust-src components.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
target=$(rustc +nightly -vV | sed -n 's/^host: //p')

run() {
  case "$1" in
    miri-core)
      step "miri: ember-core unit tests"
      # Skipped for size alone, each over a minute under Miri: a 16 M-entry
      # parameter list, the C dumper's work limit and deep chains, and a
      # walk over every fixture object (the sweeps cover that one natively).
      cargo +nightly miri test -p ember-core --lib -- \
        --skip exponential_nesting_and_huge_padding_hit_the_work_limit \
        --skip modifier_loop_and_deep_chains_end_in_errors \
        --skip bad_strings_and_vlen_are_errors \
        --skip parsed_objects_keep_their_invariants
      ;;
    miri-sys)
      step "miri: ember-sys unit tests (fake kernel)"
      cargo +nightly miri test -p ember-sys --lib
      ;;
    asan)
      step "AddressSanitizer + LeakSanitizer: ember-sys unit tests (fake kernel)"
      # --target keeps build scripts and proc macros uninstrumented and puts
      # the instrumented build in its own directory.
      RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        ASAN_OPTIONS="detect_leaks=1" \
        cargo +nightly test -p ember-sys --lib --target "$target"
      ;;
    *) echo "unknown step $1 (miri-core, miri-sys, asan)" >&2; exit 2 ;;
  esac
}

if [ $# = 0 ]; then set -- miri-core miri-sys asan; fi
for s in "$@"; do run "$s"; done
echo
echo "sanitizers passed: $*"
