#!/usr/bin/env bash
# Stripped static sizes of the no_std `mini-loader` example
# (sys/examples/mini-loader/), step by step, each step adding to the one
# before; README's "### mini-loader" quotes this output.
#
# The first steps are a scratch binary written into target/mini-size/floor
# (not part of the workspace): the empty no_std floor (libc's entry,
# malloc as the global allocator, an aborting panic handler), then what
# ember-core adds as the loader calls it: object parsing, CO-RE, and load
# preparation (sanitized BTF, linking). Then the example itself, built
# exactly as README says, non-PIE, and the same loader on std's runtime
# (panic = "unwind", its dev/test form) to show what no_std saves.
#
# Usage: tests/vm/mini-size.sh   (stable toolchain and the
# x86_64-unknown-linux-musl target; a few LTO builds, a few minutes on a
# busy machine)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
musl=$(uname -m)-unknown-linux-musl
out=$root/target/mini-size

# The scratch floor crate: its own workspace, the workspace's lock file
# and min-size profile.
floor=$out/floor
mkdir -p "$floor/src"
cp Cargo.lock "$floor/Cargo.lock"
cat >"$floor/Cargo.toml" <<EOF
[package]
name = "floor"
version = "0.0.0"
edition = "2024"
publish = false

[workspace]

[dependencies]
libc = { version = "0.2", default-features = false }
ember-core = { path = "$root/core", optional = true }

[features]
parse = ["dep:ember-core"]
core = ["parse"]
prep = ["core"]

[profile.min-size]
inherits = "release"
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true
debug = false
EOF
cat >"$floor/src/main.rs" <<'EOF'
//! The no_std floor and ember-core's share of the mini-loader, measured
//! by tests/vm/mini-size.sh. Reads OBJ (argv[1]) into a stack buffer and
//! uses ember-core as the loader does, so nothing is optimized away.
#![no_std]
#![no_main]
extern crate alloc;
use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_char, c_int, c_void};

#[link(name = "c", kind = "static", modifiers = "-bundle")]
unsafe extern "C" {}

struct Malloc;
unsafe impl GlobalAlloc for Malloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        unsafe { libc::aligned_alloc(l.align().max(16), l.size()).cast() }
    }
    unsafe fn dealloc(&self, p: *mut u8, _: Layout) {
        unsafe { libc::free(p.cast::<c_void>()) }
    }
}
#[global_allocator]
static A: Malloc = Malloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    unsafe { libc::abort() }
}
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    unsafe { libc::abort() }
}

#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let mut buf = alloc::vec![0u8; 1 << 20];
    let n = if argc > 1 {
        let fd = unsafe { libc::open(*argv.add(1), libc::O_RDONLY) };
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
    } else {
        0
    };
    buf.truncate(usize::try_from(n).unwrap_or(0));
    use_core(&buf)
}

#[cfg(not(feature = "parse"))]
fn use_core(b: &[u8]) -> c_int {
    b.len() as c_int
}

#[cfg(feature = "parse")]
fn use_core(b: &[u8]) -> c_int {
    use ember_core::object::Object;
    let Ok(obj) = Object::parse(b, "x") else { return 1 };
    #[cfg(feature = "core")]
    let mut code: alloc::vec::Vec<alloc::vec::Vec<u8>> =
        obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    #[cfg(feature = "core")]
    if let Ok(k) = ember_core::btf::Btf::parse(b) {
        let t = ember_core::reloc::Targets::single(&k);
        let Ok(plan) = ember_core::reloc::solve(&obj, &t) else { return 2 };
        if ember_core::reloc::apply(&obj, &plan, &mut code).is_err() {
            return 3;
        }
    }
    #[cfg(feature = "prep")]
    {
        use ember_core::load::{BtfFeatures, kernel_btf, link_program};
        let Ok(blob) = kernel_btf(&obj, &BtfFeatures::default()) else { return 4 };
        let Ok(l) = link_program(&obj, &code, ember_core::id::FuncIndex(0), &|_| Some(3)) else {
            return 5;
        };
        (blob.len() + l.insns.len()) as c_int
    }
    #[cfg(not(feature = "prep"))]
    {
        obj.programs().count() as c_int
    }
}
EOF

# floor FEATURES: the scratch binary's size.
floor() {
  CARGO_TARGET_DIR="$out/floor-target" cargo build --quiet --profile min-size \
    --manifest-path "$floor/Cargo.toml" --target "$musl" --features "$1" >&2
  stat -c %s "$out/floor-target/$musl/min-size/floor"
}

# step NAME RUSTFLAGS [env...]: the example's size.
step() {
  local name=$1 flags=$2
  shift 2
  env "$@" RUSTFLAGS="$flags" CARGO_TARGET_DIR="$out/$name" \
    cargo build --quiet --profile min-size -p ember-sys --example mini-loader \
    --target "$musl" >&2
  stat -c %s "$out/$name/$musl/min-size/examples/mini-loader"
}

prev=
report() { # name, bytes
  if [ -n "$prev" ]; then
    printf '%-58s %9d bytes (%+d)\n' "$1" "$2" $(($2 - prev))
  else
    printf '%-58s %9d bytes\n' "$1" "$2"
  fi
  prev=$2
}

# Each size is taken first, so that a failed build stops the script.
n=$(floor '') && report "no_std floor: libc entry, malloc, abort on panic" "$n"
n=$(floor parse) && report "+ ember-core: object parsing" "$n"
n=$(floor core) && report "+ CO-RE (BTF parse, solve, apply)" "$n"
n=$(floor prep) && report "+ load preparation (sanitized BTF, linking)" "$n"
n=$(step default '') && report "mini-loader (syscalls, maps, programs, attach, messages)" "$n"
n=$(step nopie '-C relocation-model=static') && report "non-PIE (-C relocation-model=static)" "$n"
prev=
n=$(step std '' CARGO_PROFILE_MIN_SIZE_PANIC=unwind) &&
  report "same loader on std's runtime (panic = \"unwind\")" "$n"
