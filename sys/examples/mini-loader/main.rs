//! A minimal static loader for an initramfs or a container: loads one
//! object against the running kernel's BTF, attaches every program whose
//! section names its target, pins maps, programs and links under a bpffs
//! directory, and exits; what it pinned stays in the kernel.
//!
//! ```text
//! mini-loader OBJ DIR
//!   DIR/maps/NAME    every map (`.` in a name becomes `_`, as libbpf does)
//!   DIR/progs/NAME   every program
//!   DIR/links/NAME   the link of every program attached by its section
//! ```
//!
//! Built with `panic = "abort"` (the `min-size` profile) and alone
//! (`-p ember-sys`) it is `#![no_std]`: ember-core (parse, CO-RE, BTF sanitizing, linking),
//! ember-sys (the syscalls) and libc for the process entry, `malloc` and
//! `write`; std's runtime (its backtrace symbolizer above all) would
//! double its size. Built with `panic = "unwind"` (dev, test, clippy),
//! the same loader runs on std's entry, as a no_std binary cannot unwind
//! on stable. On any failure it removes what it pinned, prints one line
//! naming the object, section, program or map at fault, and exits 1 (a
//! panic or an allocation failure aborts instead, leaving what was
//! pinned by then).
//! Objects needing what it does not do (ksyms, kfuncs, kconfig,
//! struct_ops, map-in-map, prog-array slots) are refused by name.
// no_std needs panic = "abort" (unwinding needs an unstable lang item)
// and no std in the graph: built together with `ember`, feature
// unification turns ember-sys's `std` on (and std-using dependencies
// with it), and the loader then runs on std's runtime.
#![cfg_attr(all(panic = "abort", not(feature = "std")), no_std, no_main)]

extern crate alloc;

mod attach;
mod files;
mod load;

use alloc::string::String;
use alloc::vec::Vec;

use files::Pins;

/// Where a line goes.
#[derive(Clone, Copy)]
enum Out {
    Stdout,
    Stderr,
}

/// Loads `args` = `[OBJ, DIR]`; the exit code.
fn run(args: &[&str]) -> i32 {
    let [obj, dir] = args else {
        say(Out::Stderr, "usage: mini-loader OBJ BPFFS_DIR");
        return 2;
    };
    let mut pins = Pins::default();
    match load_and_pin(obj, dir, &mut pins) {
        Ok(()) => 0,
        Err(e) => {
            pins.undo();
            let mut line = String::from("mini-loader: ");
            line.push_str(&e);
            say(Out::Stderr, &line);
            1
        }
    }
}

fn load_and_pin(obj: &str, dir: &str, pins: &mut Pins) -> Result<(), String> {
    let data = files::read(obj).map_err(|e| alloc::format!("{obj}: {}", files::errno(e)))?;
    let file = obj.rsplit('/').next().unwrap_or(obj);
    let loaded = load::load(&data, file)?;
    let sub = |s: &str| alloc::format!("{dir}/{s}");
    let (maps, progs, links) = (sub("maps"), sub("progs"), sub("links"));
    for d in [&maps, &progs, &links] {
        files::mkdir_all(d, &mut pins.dirs)
            .map_err(|e| alloc::format!("{d}: {}", files::errno(e)))?;
    }
    // Names come from the object's symbols: refuse any that would not be
    // one file directly under its pin directory, before pinning anything.
    for m in &loaded.maps {
        file_name("map", &m.name.replace('.', "_"))?;
    }
    for p in &loaded.progs {
        file_name("program", &p.name)?;
    }
    for m in &loaded.maps {
        let path = alloc::format!("{maps}/{}", m.name.replace('.', "_"));
        pins.pin(m.fd.fd(), &path)
            .map_err(|e| alloc::format!("pin map {} at {path}: {e}", m.name))?;
    }
    for p in &loaded.progs {
        let path = alloc::format!("{progs}/{}", p.name);
        pins.pin(ember_sys::AsFd::as_fd(&p.fd), &path)
            .map_err(|e| alloc::format!("pin program {} at {path}: {e}", p.name))?;
    }
    for p in &loaded.progs {
        attach::attach_and_pin(p, &links, pins)?;
    }
    say(Out::Stdout, &alloc::format!("pinned under {dir}"));
    Ok(())
}

/// `name` if it is a plain file name (not empty, `.` or `..`, no `/`).
fn file_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(alloc::format!(
            "{what} name '{name}' cannot be pinned as a file name"
        ));
    }
    Ok(())
}

/// Writes `line` and a newline (best effort: nowhere to report a failed
/// write to).
fn say(to: Out, line: &str) {
    let mut b = Vec::with_capacity(line.len() + 1);
    b.extend_from_slice(line.as_bytes());
    b.push(b'\n');
    glue::write_all(to, &b);
}

/// The no_std runtime: entry, allocator, panic handler and output, over
/// libc. The only `unsafe` of the example.
#[cfg(all(panic = "abort", not(feature = "std")))]
mod glue {
    use alloc::vec::Vec;
    use core::alloc::{GlobalAlloc, Layout};
    use core::ffi::{CStr, c_char, c_int, c_void};

    use super::Out;

    // libc's `std`-less build leaves linking it to std: name it here
    // (statically where the target links statically).
    #[cfg_attr(
        target_feature = "crt-static",
        link(name = "c", kind = "static", modifiers = "-bundle")
    )]
    #[cfg_attr(not(target_feature = "crt-static"), link(name = "c"))]
    unsafe extern "C" {}

    /// The alignment `malloc` guarantees for any block of at least this
    /// size: 16 on the 64-bit targets glibc and musl ship for (their
    /// `max_align_t`), 8 elsewhere (std's `MIN_ALIGN` table).
    const MALLOC_ALIGN: usize = if cfg!(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64",
        target_arch = "powerpc64",
        target_arch = "s390x",
    )) {
        16
    } else {
        8
    };

    /// Whether `malloc`/`realloc` alone align `l`: a block smaller than
    /// the alignment may come back aligned only to its own size (as std's
    /// `System` allocator also assumes).
    fn malloc_aligns(l: Layout) -> bool {
        l.align() <= MALLOC_ALIGN && l.align() <= l.size()
    }

    /// The global allocator: libc's `malloc` family.
    struct Malloc;

    // SAFETY: each method forwards to libc's allocator, which returns
    // memory of at least the size asked (or null), aligned as asked: by
    // `malloc` where `malloc_aligns` says it does, else by
    // `posix_memalign`; `dealloc` and `realloc` get only pointers these
    // methods returned, and `free` takes both kinds.
    unsafe impl GlobalAlloc for Malloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            if malloc_aligns(l) {
                // SAFETY: any size is valid for `malloc`.
                unsafe { libc::malloc(l.size()) }.cast()
            } else {
                let mut p: *mut c_void = core::ptr::null_mut();
                // `posix_memalign` wants a multiple of the pointer size.
                let align = l.align().max(core::mem::size_of::<usize>());
                // SAFETY: `p` is a valid out pointer; `align` is a power
                // of two (a `Layout`'s, or the pointer size) and a
                // multiple of `sizeof(void *)`; any size is valid.
                let rc = unsafe { libc::posix_memalign(&mut p, align, l.size()) };
                if rc == 0 {
                    p.cast()
                } else {
                    core::ptr::null_mut()
                }
            }
        }

        unsafe fn dealloc(&self, p: *mut u8, _: Layout) {
            // SAFETY: `p` came from `alloc` or `realloc` (the trait's
            // contract), so from `malloc`, `posix_memalign` or `realloc`.
            unsafe { libc::free(p.cast::<c_void>()) }
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            // `realloc` keeps `malloc`'s alignment only; the new size must
            // still allow it.
            let new_layout = Layout::from_size_align(new, l.align());
            if malloc_aligns(l) && new_layout.is_ok_and(malloc_aligns) {
                // SAFETY: `p` is live and from this allocator, and `new`
                // is nonzero (the trait's contract).
                unsafe { libc::realloc(p.cast::<c_void>(), new) }.cast()
            } else {
                // SAFETY: the default copy-and-free over `alloc` and
                // `dealloc`, under the trait's own contract.
                unsafe { GlobalAlloc::realloc(&Fallback, p, l, new) }
            }
        }
    }

    /// `Malloc` without its own `realloc`, for over-aligned blocks.
    struct Fallback;

    // SAFETY: forwards to `Malloc`'s `alloc` and `dealloc`, whose contract
    // is the same.
    unsafe impl GlobalAlloc for Fallback {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: the caller's contract, passed on.
            unsafe { Malloc.alloc(l) }
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { Malloc.dealloc(p, l) }
        }
    }

    #[global_allocator]
    static ALLOC: Malloc = Malloc;

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
        // Formatted on the stack: the allocator may be what failed.
        let mut line = StackLine::default();
        let _ = core::fmt::Write::write_str(&mut line, "mini-loader: internal error (panic)");
        if let Some(at) = info.location() {
            let _ = core::fmt::write(
                &mut line,
                format_args!(" at {}:{}:{}", at.file(), at.line(), at.column()),
            );
        }
        let _ = core::fmt::Write::write_str(&mut line, "\n");
        write_all(Out::Stderr, line.bytes());
        // SAFETY: `abort` has no preconditions.
        unsafe { libc::abort() }
    }

    /// A line built without allocating, cut at 256 bytes.
    struct StackLine {
        buf: [u8; 256],
        len: usize,
    }

    impl Default for StackLine {
        fn default() -> Self {
            StackLine {
                buf: [0; 256],
                len: 0,
            }
        }
    }

    impl StackLine {
        fn bytes(&self) -> &[u8] {
            self.buf.get(..self.len).unwrap_or(&[])
        }
    }

    impl core::fmt::Write for StackLine {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for (d, b) in self.buf.iter_mut().skip(self.len).zip(s.bytes()) {
                *d = b;
                self.len = self.len.saturating_add(1);
            }
            Ok(())
        }
    }

    // The precompiled `alloc` was built to unwind: its `format` keeps
    // landing pads naming these two symbols. With panic = "abort" nothing
    // unwinds, so neither is ever called; defining them spares linking an
    // unwinder (the musl target's libunwind) for nothing. (This
    // `_Unwind_Resume` also stands in for the one static libc members
    // built with `-fexceptions` name, for thread cancellation cleanup: the
    // loader has one thread and never cancels it.)
    /// Never called (see above); aborts if it ever were.
    #[unsafe(no_mangle)]
    extern "C" fn rust_eh_personality() -> ! {
        // SAFETY: `abort` has no preconditions.
        unsafe { libc::abort() }
    }

    /// Never called (see above); aborts if it ever were.
    #[unsafe(no_mangle)]
    extern "C" fn _Unwind_Resume() -> ! {
        // SAFETY: `abort` has no preconditions.
        unsafe { libc::abort() }
    }

    /// The process entry libc's start code calls.
    #[unsafe(no_mangle)]
    extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
        let n = usize::try_from(argc).unwrap_or(0);
        // SAFETY: libc hands `main` an `argv` of `argc` valid, aligned
        // pointers that live as long as the process.
        let argv = unsafe { core::slice::from_raw_parts(argv, n) };
        let mut args = Vec::with_capacity(n.saturating_sub(1));
        for &p in argv.iter().skip(1) {
            // SAFETY: each is a NUL-terminated string that lives as long
            // as the process.
            let arg = unsafe { CStr::from_ptr(p) };
            let Ok(arg) = arg.to_str() else {
                super::say(Out::Stderr, "mini-loader: arguments must be UTF-8");
                return 2;
            };
            args.push(arg);
        }
        super::run(&args)
    }

    /// Writes all of `b` to stdout or stderr, retrying short and
    /// interrupted writes; gives up on any other error or a write of 0.
    pub(super) fn write_all(to: Out, mut b: &[u8]) {
        let fd = match to {
            Out::Stdout => 1,
            Out::Stderr => 2,
        };
        while !b.is_empty() {
            // SAFETY: `b` is a live buffer of `b.len()` bytes.
            let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            let Some(rest) = usize::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .and_then(|n| b.get(n..))
            else {
                return;
            };
            b = rest;
        }
    }

    /// This thread's `errno`.
    fn errno() -> c_int {
        // SAFETY: `__errno_location` has no preconditions.
        let slot = unsafe { libc::__errno_location() };
        // SAFETY: it points at this thread's errno, valid for the
        // thread's life.
        unsafe { *slot }
    }
}

/// Dev and test builds (`panic = "unwind"`), or builds with std in the
/// graph anyway: the same loader on std's runtime.
#[cfg(any(panic = "unwind", feature = "std"))]
mod glue {
    use super::Out;

    /// Writes all of `b` to stdout or stderr.
    pub(super) fn write_all(to: Out, b: &[u8]) {
        use std::io::Write;
        let _ = match to {
            Out::Stdout => std::io::stdout().write_all(b),
            Out::Stderr => std::io::stderr().write_all(b),
        };
    }
}

#[cfg(any(panic = "unwind", feature = "std"))]
fn main() {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let Some(args) = args
        .iter()
        .map(|a| a.to_str())
        .collect::<Option<Vec<&str>>>()
    else {
        say(Out::Stderr, "mini-loader: arguments must be UTF-8");
        std::process::exit(2);
    };
    std::process::exit(run(&args));
}
