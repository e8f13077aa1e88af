#!/usr/bin/env bash
# Runs every check and test of ember: the one command README names.
#
# On a fresh Debian machine run as root it installs what the tests use
# (clang/llvm for BPF fixtures and header compiles, bpftool and libbpf-dev as
# the reference oracle); as another user it says what to install and stops.
# Set EMBER_REQUIRE_KERNEL=1 to turn every "skipped: ..." into a failure
# (CI does). Set EMBER_FUZZ_SECONDS=N to fuzz each target N seconds (default
# 20 when cargo-fuzz and a nightly toolchain are present; 0 disables).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

# 1. Debian packages.
# qemu-system-x86, busybox-static, cpio, kmod: the VM guest (tests/vm/run.sh).
pkgs=(clang clang-16 llvm bpftool libbpf-dev pkg-config python3 xz-utils qemu-system-x86 busybox-static cpio kmod)
# zstd: the Debian 6.12 guest's kernel payload (tests/tests/vm_fprobe.rs).
pkgs+=(zstd)
# iproute2 (ip, tc): the network attach tests build netns and veth pairs.
pkgs+=(iproute2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]}" >&2
    echo "install them with: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# The musl target: the VM guest's static ember is built for it, and the
# VM test holds that build to issue 11's 1.5 MiB (static glibc is 0.8 MB
# bigger). rustup fetches it from the Rust distribution server.
musl=$(uname -m)-unknown-linux-musl
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$musl"; then
  step "rust target $musl"
  rustup target add "$musl" >/dev/null 2>&1 || echo "could not add $musl: the VM test's size check will say so"
fi

# 2. Reference inputs that are downloaded, never committed.
step "Debian 6.1 kernel BTF (tests/scripts/kernel-btf.sh)"
if ! EMBER_KERNEL_BTF_DIR=$(tests/scripts/kernel-btf.sh); then
  if [ "${EMBER_REQUIRE_KERNEL:-0}" = 1 ]; then exit 1; fi
  echo "continuing without it: those tests will say 'skipped'"
  EMBER_KERNEL_BTF_DIR=
fi
export EMBER_KERNEL_BTF_DIR

step "format"
cargo fmt --all --check
# The fuzz crate is its own workspace: formatted, not built, here.
cargo fmt --manifest-path fuzz/Cargo.toml --check

step "clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The small-loader build: ember without its default features.
cargo clippy -p ember --no-default-features --lib --examples --quiet -- -D warnings

step "unsafe audit"
# Only the audited modules may opt into unsafe code.
allowed='^(sys/src/raw\.rs|std-loader/src/mapped\.rs)$'
bad=$(git ls-files '*.rs' | xargs grep -l -E 'allow\(unsafe_code|expect\(unsafe_code' | grep -v -E "$allowed" || true)
if [ -n "$bad" ]; then echo "unsafe_code allowed outside the audited modules: $bad" >&2; exit 1; fi

step "no_std check"
cargo check --quiet --manifest-path tests/nostd-check/Cargo.toml

step "fixtures are up to date"
tests/fixtures/build.sh --check

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "benches and the mini-loader build"
# Built, not run: benches need a quiet machine (README, Performance).
cargo bench --no-run --quiet -p ember-benches
cargo build --quiet --profile min-size -p ember-sys --example mini-loader
echo "mini-loader (min-size, dynamic): $(stat -c %s target/min-size/examples/mini-loader) bytes"

step "tests"
results=$(mktemp)
cargo test --workspace --release 2>&1 | tee "$results"
passed=$(grep -o '[0-9]* passed' "$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]* failed' "$results" | awk '{s+=$1} END {print s+0}')
rm -f "$results"

step "sanitizers"
# AddressSanitizer + LeakSanitizer over ember-sys's fake-kernel unit tests
# (about 20 s cold); Miri takes about 3 min, so CI leaves it to
# tests/sanitize.sh miri-core miri-sys.
if cargo +nightly --version >/dev/null 2>&1; then
  tests/sanitize.sh asan
else
  echo "sanitizers skipped: needs a nightly toolchain"
fi

step "fuzz"
# Each target's whole output goes to fuzz/logs/ci-TARGET.log; a passing
# target prints its last line, a failing one the libFuzzer report and the
# input it kept, and the others still run before the step fails.
fuzz_all() {
  local bad=()
  mkdir -p fuzz/logs
  # The targets' own code (their workspace is apart from the main one).
  cargo +nightly clippy --manifest-path fuzz/Cargo.toml --all-targets --quiet -- -D warnings
  for t in $(cargo +nightly fuzz list --fuzz-dir fuzz); do
    mkdir -p "fuzz/corpus/$t" "fuzz/seeds/$t"
    local log="fuzz/logs/ci-$t.log"
    if cargo +nightly fuzz run --fuzz-dir fuzz "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
      -- -max_total_time="$secs" -rss_limit_mb=2048 >"$log" 2>&1; then
      echo "$t: $(grep '^Done' "$log" | tail -n 1)"
    else
      bad+=("$t")
      echo "$t: FAILED; the report:"
      grep -v -e '^#[0-9]' -e '^"' -e '^ *Compiling' "$log" | tail -n 80
      for a in fuzz/artifacts/"$t"/*; do
        [ -f "$a" ] && echo "kept input $a: $(od -An -c -N 512 "$a" | tr -s ' ' | head -c 2000)"
      done
    fi
  done
  if [ ${#bad[@]} -gt 0 ]; then
    echo "fuzz targets failed: ${bad[*]}"
    return 1
  fi
}
secs=${EMBER_FUZZ_SECONDS:-20}
if [ "$secs" != 0 ]; then
  if ! cargo +nightly fuzz --version >/dev/null 2>&1 && [ "${EMBER_REQUIRE_KERNEL:-0}" = 1 ]; then
    cargo install cargo-fuzz --locked --quiet
  fi
  if cargo +nightly fuzz --version >/dev/null 2>&1; then
    fuzz_all
  else
    echo "fuzz skipped: needs 'cargo install cargo-fuzz' and a nightly toolchain"
  fi
fi
echo
echo "all checks passed"
echo "tests: $passed passed, $failed failed"
