//! The only kernel entry point of ember: `bpf(2)`.
//!
//! # Safety
//! `bpf(cmd, attr, size)` reads and writes at most `size` bytes of `attr`
//! and, depending on `cmd`, dereferences pointers stored inside it (keys,
//! values, instruction arrays, log buffers). Every caller builds `attr`
//! from a typed `#[repr(C)]` struct in `attr.rs` whose pointer fields were
//! taken from live Rust slices that outlive the call, with their lengths
//! stored beside them; this module only forwards the bytes.
#![allow(unsafe_code, reason = "the one place ember enters the kernel")]

use rustix::io::Errno;

/// One system call.
#[derive(Debug)]
pub(crate) enum Syscall<'a> {
    /// `bpf(cmd, attr, attr.len())`.
    Bpf {
        /// The command.
        cmd: u32,
        /// The command's attribute struct, as bytes.
        attr: &'a mut [u8],
    },
}

/// Performs `call`, returning the kernel's non-negative result or errno.
pub(crate) fn syscall(call: Syscall<'_>) -> Result<i64, Errno> {
    match call {
        Syscall::Bpf { cmd, attr } => {
            let size = attr.len() as libc::c_uint;
            let ptr = attr.as_mut_ptr();
            // SAFETY: `ptr`/`size` describe `attr`, a live, exclusively
            // borrowed buffer; the kernel accesses at most `size` bytes of
            // it. Pointers inside it were set by attr.rs from slices the
            // caller keeps borrowed for the duration of this call (see the
            // module docs).
            let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd as libc::c_long, ptr, size) };
            if ret < 0 {
                // SAFETY: __errno_location has no preconditions; it returns
                // this thread's errno slot, valid for the thread's lifetime.
                let slot = unsafe { libc::__errno_location() };
                // SAFETY: `slot` is valid and aligned (see above); we read it
                // right after the failing call, before anything can change it.
                let e = unsafe { *slot };
                Err(Errno::from_raw_os_error(e))
            } else {
                Ok(ret)
            }
        }
    }
}

/// Turns a returned fd number into an owned fd.
pub(crate) fn owned_fd(raw: i64) -> Result<rustix::fd::OwnedFd, Errno> {
    let fd = i32::try_from(raw).map_err(|_| Errno::INVAL)?;
    // SAFETY: the kernel just returned `fd` as a new file descriptor that
    // nothing else owns; wrapping it transfers ownership exactly once.
    Ok(unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) })
}
