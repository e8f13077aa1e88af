//! The only kernel entry points of ember, and the only code that touches
//! memory the kernel shares with us: `bpf(2)`, `perf_event_open(2)`, the
//! `PERF_EVENT_IOC_*` ioctls, the BPF socket options (`SO_ATTACH_BPF`,
//! ...), and `mmap(2)`ed regions.
//!
//! # Safety
//! Every system call goes through [`syscall`], the one funnel, which hands
//! it to [`enter`], the one `unsafe fn` that reaches the kernel. `enter`'s
//! contract is that every pointer the kernel will follow is live for the
//! call, long enough for what the kernel reads or writes, and exclusively
//! borrowed where the kernel writes.
//!
//! `syscall` meets it for `bpf(2)` because the attr is an [`Attr<'a>`]:
//! its pointer fields can only be set from borrows of `'a` (shared where
//! the kernel reads, `&mut` where it writes, per the layout table in
//! `call.rs`), the caller keeps the `Attr` (and so the borrows) alive
//! across the call by lending it as `&mut`, and [`Attr::prepare`] refuses
//! an attr whose length fields exceed their buffers, then writes each
//! pointer from its borrow right before the call. Buffers whose size the
//! kernel takes from the object (map keys and values) are checked against
//! the kernel's own description of the map by `MapFd`.
//!
//! `perf_event_open(attr, ..)` reads `attr.size` bytes of `attr` and, on
//! `E2BIG`, writes the `u32` size field back; this module sets that field
//! to the buffer's length itself, so the kernel stays inside the buffer.
//! The `PERF_EVENT_IOC_*` ioctls are only issued on a [`PerfEventFd`],
//! which can only be made from what `perf_event_open` returned, so the
//! opcode always reaches the perf driver, never some other driver that
//! could read the integer argument as a pointer.
//!
//! A new fd the kernel returns is adopted as an `OwnedFd` here, once, and
//! moved above 2.
//!
//! Under `cfg(test)` the fake in `raw/fake.rs` replaces `enter` (aya's
//! pattern), so unit tests and miri need no kernel; the checks in
//! `syscall` run either way.
//!
//! A [`Region`] owns one `mmap` and hands out no references to its bytes
//! except `&[AtomicU8]` of writable regions: the kernel (and BPF programs)
//! write that memory concurrently, so every access is atomic. Atomic
//! accesses to read-only pages are undefined behaviour in Rust except
//! register-sized `Relaxed` loads on the architectures `core::sync::atomic`
//! lists, so stores to read-only regions are refused and every load is a
//! relaxed load (followed by an acquire fence where acquire is wanted).
#![allow(
    unsafe_code,
    reason = "the one place ember enters the kernel or touches shared memory"
)]

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::call::Attr;

#[cfg(test)]
pub(crate) mod fake;
mod region;

pub(crate) use region::Region;

/// One system call, as the safe layers describe it.
#[derive(Debug)]
pub(crate) enum Syscall<'s, 'a> {
    /// `bpf(cmd, attr, size)`, with the command and size from `attr`.
    Bpf(&'s mut Attr<'a>),
    /// `perf_event_open(attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC)`;
    /// the `size` field of `attr` is set to `attr.len()` here.
    PerfEventOpen {
        /// `struct perf_event_attr`, as bytes (at least 64).
        attr: &'s mut [u8],
        /// Process (-1: every process; 0: the calling thread).
        pid: i32,
        /// CPU (-1: any).
        cpu: i32,
        /// Group leader.
        group: Option<&'s PerfEventFd>,
    },
    /// `perf_event_open` of a kprobe/uprobe PMU event: as
    /// `PerfEventOpen`, with `config1` (`kprobe_func` / `uprobe_path`) set
    /// here to the address of `name` (0 for `None`), which the kernel reads
    /// as a NUL-terminated string during the call.
    PerfEventOpenProbe {
        /// `struct perf_event_attr`, as bytes (at least 64).
        attr: &'s mut [u8],
        /// The function name or binary path `config1` points to.
        name: Option<&'s core::ffi::CStr>,
        /// Process (-1: every process).
        pid: i32,
        /// CPU (-1: any).
        cpu: i32,
    },
    /// A `PERF_EVENT_IOC_*` ioctl.
    PerfIoctl {
        /// The event.
        fd: &'s PerfEventFd,
        /// The request.
        op: PerfIoctl<'s>,
    },
    /// `setsockopt(fd, SOL_SOCKET, name, &int, 4)` for a BPF socket option.
    SockOpt {
        /// The socket.
        fd: BorrowedFd<'s>,
        /// The option.
        op: SockBpf<'s>,
    },
}

/// Counts `call` for fault injection, and fails it if it is the planned
/// one (the name is made here, so `fault` needs nothing of this module).
#[cfg(feature = "fault-inject")]
fn injected(call: &Syscall<'_, '_>) -> Result<(), Errno> {
    crate::fault::check_named(match call {
        Syscall::Bpf(a) => a.cmd().map_or("bpf", crate::call::Cmd::name),
        Syscall::PerfEventOpen { .. } | Syscall::PerfEventOpenProbe { .. } => "perf_event_open",
        Syscall::SockOpt { .. } => "setsockopt",
        Syscall::PerfIoctl { op, .. } => match op {
            PerfIoctl::Enable => "PERF_EVENT_IOC_ENABLE",
            PerfIoctl::Disable => "PERF_EVENT_IOC_DISABLE",
            PerfIoctl::SetBpf(_) => "PERF_EVENT_IOC_SET_BPF",
        },
    })
}
/// No fault injection: every call reaches the kernel.
#[cfg(not(feature = "fault-inject"))]
fn injected(_: &Syscall<'_, '_>) -> Result<(), Errno> {
    Ok(())
}

impl Syscall<'_, '_> {
    fn is_test_run(&self) -> bool {
        matches!(self, Syscall::Bpf(a) if a.cmd() == Some(crate::call::Cmd::ProgTestRun))
    }

    fn returns_fd(&self) -> bool {
        match self {
            Syscall::Bpf(a) => a.cmd().is_some_and(|c| c.returns_fd()),
            Syscall::PerfEventOpen { .. } => true,
            Syscall::PerfEventOpenProbe { .. } => true,
            Syscall::PerfIoctl { .. } | Syscall::SockOpt { .. } => false,
        }
    }
}

/// The BPF socket options ember sets; each takes an `int`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SockBpf<'a> {
    /// `SO_ATTACH_BPF` with a socket filter program fd.
    Attach(BorrowedFd<'a>),
    /// `SO_DETACH_BPF` (the same number as `SO_DETACH_FILTER`).
    Detach,
    /// `SO_ATTACH_REUSEPORT_EBPF` with an sk_reuseport program fd.
    AttachReuseport(BorrowedFd<'a>),
    /// `SO_DETACH_REUSEPORT_BPF`.
    DetachReuseport,
}

impl SockBpf<'_> {
    /// The option number and its `int` value.
    pub(crate) fn name_value(self) -> (i32, i32) {
        match self {
            SockBpf::Attach(p) => (SO_ATTACH_BPF, p.as_raw_fd()),
            SockBpf::Detach => (SO_DETACH_BPF, 0),
            SockBpf::AttachReuseport(p) => (SO_ATTACH_REUSEPORT_EBPF, p.as_raw_fd()),
            SockBpf::DetachReuseport => (SO_DETACH_REUSEPORT_BPF, 0),
        }
    }
}

/// `SO_ATTACH_BPF` (asm-generic/socket.h).
pub(crate) const SO_ATTACH_BPF: i32 = 50;
/// `SO_DETACH_BPF`, an alias of `SO_DETACH_FILTER`.
pub(crate) const SO_DETACH_BPF: i32 = 27;
/// `SO_ATTACH_REUSEPORT_EBPF`.
pub(crate) const SO_ATTACH_REUSEPORT_EBPF: i32 = 52;
/// `SO_DETACH_REUSEPORT_BPF`.
pub(crate) const SO_DETACH_REUSEPORT_BPF: i32 = 68;

/// The perf ioctls ember issues.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PerfIoctl<'a> {
    /// `PERF_EVENT_IOC_ENABLE`.
    Enable,
    /// `PERF_EVENT_IOC_DISABLE`.
    Disable,
    /// `PERF_EVENT_IOC_SET_BPF` with a program fd.
    SetBpf(BorrowedFd<'a>),
}

/// `_IO('$', 0)`.
const PERF_EVENT_IOC_ENABLE: rustix::ioctl::Opcode = rustix::ioctl::opcode::none(b'$', 0);
/// `_IO('$', 1)`.
const PERF_EVENT_IOC_DISABLE: rustix::ioctl::Opcode = rustix::ioctl::opcode::none(b'$', 1);
/// `_IOW('$', 8, __u32)`.
const PERF_EVENT_IOC_SET_BPF: rustix::ioctl::Opcode = rustix::ioctl::opcode::write::<u32>(b'$', 8);
const _: () = assert!(PERF_EVENT_IOC_ENABLE == 0x2400);
const _: () = assert!(PERF_EVENT_IOC_DISABLE == 0x2401);
const _: () = assert!(PERF_EVENT_IOC_SET_BPF == 0x4004_2408);

/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
/// `PERF_ATTR_SIZE_VER0`, the smallest attr the kernel accepts.
pub(crate) const PERF_ATTR_MIN: usize = 64;
/// Offset of `config1` in `struct perf_event_attr` (within VER0).
const PERF_ATTR_CONFIG1: usize = 56;

/// An fd returned by `perf_event_open` (or a dup of one): the only fds the
/// perf ioctls are issued on.
#[derive(Debug)]
pub(crate) struct PerfEventFd(OwnedFd);

impl PerfEventFd {
    /// The fd.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Gives up the perf-event guarantee and returns the plain fd.
    pub(crate) fn into_owned(self) -> OwnedFd {
        self.0
    }
}

/// What a call returned.
#[derive(Debug)]
pub(crate) enum Ret {
    /// A non-negative value.
    Val(i64),
    /// A new fd (above 2).
    Fd(OwnedFd),
}

impl Ret {
    /// The fd of a call that returns one (`EINVAL` otherwise).
    pub(crate) fn fd(self) -> Result<OwnedFd, Errno> {
        match self {
            Ret::Fd(fd) => Ok(fd),
            Ret::Val(_) => Err(Errno::INVAL),
        }
    }

    /// The value of a call that returns no fd (0 for an fd, which is
    /// closed).
    pub(crate) fn val(self) -> i64 {
        match self {
            Ret::Val(v) => v,
            Ret::Fd(_) => 0,
        }
    }
}

/// `perf_event_open(attr, pid, cpu, group, PERF_FLAG_FD_CLOEXEC)`, with the
/// new fd moved above 2.
pub(crate) fn perf_event_open(
    attr: &mut [u8],
    pid: i32,
    cpu: i32,
    group: Option<&PerfEventFd>,
) -> Result<PerfEventFd, Errno> {
    syscall(Syscall::PerfEventOpen {
        attr,
        pid,
        cpu,
        group,
    })?
    .fd()
    .map(PerfEventFd)
}

/// `perf_event_open` of a probe PMU event whose `config1` the kernel
/// reads as the string `name`.
pub(crate) fn perf_event_open_probe(
    attr: &mut [u8],
    name: Option<&core::ffi::CStr>,
    pid: i32,
    cpu: i32,
) -> Result<PerfEventFd, Errno> {
    syscall(Syscall::PerfEventOpenProbe {
        attr,
        name,
        pid,
        cpu,
    })?
    .fd()
    .map(PerfEventFd)
}

/// A call in the form [`enter`] takes.
#[derive(Debug)]
pub(crate) enum Prepared<'s> {
    /// `bpf(cmd, attr, attr.len())`.
    Bpf {
        /// `enum bpf_cmd`.
        cmd: u32,
        /// The attr, pointers filled in.
        attr: &'s mut [u8],
    },
    /// `perf_event_open`.
    PerfEventOpen {
        /// The attr, `size` = its length.
        attr: &'s mut [u8],
        /// Process.
        pid: i32,
        /// CPU.
        cpu: i32,
        /// Group leader fd or -1.
        group: i32,
    },
    /// A perf ioctl on a perf event fd.
    PerfIoctl {
        /// The event.
        fd: BorrowedFd<'s>,
        /// The request.
        op: PerfIoctl<'s>,
    },
    /// `setsockopt(fd, SOL_SOCKET, name, &value, 4)`.
    SockOpt {
        /// The socket.
        fd: BorrowedFd<'s>,
        /// `SO_*`.
        name: i32,
        /// The `int` argument.
        value: i32,
    },
}

/// Performs `call`: the one funnel every system call of ember-sys goes
/// through. Returns the kernel's non-negative result (a new fd adopted and
/// moved above 2) or its errno.
///
/// # Errors
/// The kernel's errno, or `EINVAL`/`E2BIG`/`EBADF` for an [`Attr`] that
/// [`Attr::prepare`] refuses (then nothing reaches the kernel).
pub(crate) fn syscall(mut call: Syscall<'_, '_>) -> Result<Ret, Errno> {
    let returns_fd = call.returns_fd();
    // EINTR: interrupted before taking effect, the kernel asks for the
    // call again (bounded, so a signal storm cannot hang a load). Not for
    // test runs, whose EINTR reports a signal the caller may want to obey.
    let mut restarts = 8;
    let r = loop {
        match injected(&call).and_then(|()| run(&mut call)) {
            Err(Errno::INTR) if restarts > 0 && !call.is_test_run() => restarts -= 1,
            r => break r?,
        }
    };
    if !returns_fd {
        return Ok(Ret::Val(r));
    }
    let fd = adopt(r)?;
    if fd.as_raw_fd() > 2 {
        return Ok(Ret::Fd(fd));
    }
    // Moves an fd numbered 0..=2 above 2, so a closed stdin/stdout/stderr
    // is never mistaken for a BPF object (libbpf's `ensure_good_fd`); a
    // dup refers to the same object.
    rustix::io::fcntl_dupfd_cloexec(&fd, 3).map(Ret::Fd)
}

/// Checks `call` and puts it in the form [`enter`] takes.
fn prepare<'s>(call: &'s mut Syscall<'_, '_>) -> Result<Prepared<'s>, Errno> {
    Ok(match call {
        Syscall::Bpf(attr) => {
            let cmd = attr.cmd().ok_or(Errno::INVAL)? as u32;
            Prepared::Bpf {
                cmd,
                attr: attr.prepare()?,
            }
        }
        Syscall::PerfEventOpen {
            attr,
            pid,
            cpu,
            group,
        } => {
            if attr.len() < PERF_ATTR_MIN {
                return Err(Errno::INVAL);
            }
            let size = u32::try_from(attr.len()).map_err(|_| Errno::TOOBIG)?;
            attr.get_mut(4..8)
                .ok_or(Errno::INVAL)?
                .copy_from_slice(&size.to_ne_bytes());
            Prepared::PerfEventOpen {
                attr,
                pid: *pid,
                cpu: *cpu,
                group: group.map_or(-1, |g| g.fd().as_raw_fd()),
            }
        }
        Syscall::PerfEventOpenProbe {
            attr,
            name,
            pid,
            cpu,
        } => {
            if attr.len() < PERF_ATTR_MIN {
                return Err(Errno::INVAL);
            }
            let size = u32::try_from(attr.len()).map_err(|_| Errno::TOOBIG)?;
            attr.get_mut(4..8)
                .ok_or(Errno::INVAL)?
                .copy_from_slice(&size.to_ne_bytes());
            // config1, written from the borrow right before the call (as
            // `Attr::prepare` writes bpf pointers).
            let addr = name.map_or(0, |n| n.as_ptr().addr() as u64);
            attr.get_mut(PERF_ATTR_CONFIG1..PERF_ATTR_CONFIG1 + 8)
                .ok_or(Errno::INVAL)?
                .copy_from_slice(&addr.to_ne_bytes());
            Prepared::PerfEventOpen {
                attr,
                pid: *pid,
                cpu: *cpu,
                group: -1,
            }
        }
        Syscall::PerfIoctl { fd, op } => Prepared::PerfIoctl {
            fd: fd.fd(),
            op: *op,
        },
        Syscall::SockOpt { fd, op } => {
            let (name, value) = op.name_value();
            Prepared::SockOpt {
                fd: *fd,
                name,
                value,
            }
        }
    })
}

#[cfg(not(test))]
fn run(call: &mut Syscall<'_, '_>) -> Result<i64, Errno> {
    let p = prepare(call)?;
    // SAFETY: `prepare` built `p` from a `Syscall`: for bpf, from an
    // `Attr<'a>` that `Attr::prepare` checked (no misuse recorded, every
    // length field within its borrow, written buffers exclusively
    // borrowed), whose pointers it wrote from those borrows just now; the
    // `Attr` and its borrows stay alive while `call` is borrowed, until
    // after this returns. For perf_event_open, `attr` is exclusively
    // borrowed, at least 64 bytes, its `size` field equal to its length,
    // and `group` is -1 or a borrowed perf event fd; a probe's `config1`
    // holds 0 or the address of the NUL-terminated `name` that `call`
    // borrows. For the ioctls, `fd` came from a `PerfEventFd`. Socket
    // options come from `SockBpf`, all `int`s.
    unsafe { enter(p) }
}

#[cfg(test)]
fn run(call: &mut Syscall<'_, '_>) -> Result<i64, Errno> {
    // The same checks as for the kernel; the fake then sees the call.
    prepare(call)?;
    fake::run(call)
}

/// Adopts a new fd the kernel (or, in tests, the fake) just returned.
fn adopt(raw: i64) -> Result<OwnedFd, Errno> {
    let fd = i32::try_from(raw).map_err(|_| Errno::INVAL)?;
    // SAFETY: `syscall` calls this only with the result of a call that
    // returns a new file descriptor (`Cmd::returns_fd`, perf_event_open),
    // which nothing else owns (in tests the fake checks that it returns an
    // fd it created and released for this, once); wrapping it transfers
    // ownership exactly once.
    Ok(unsafe { <OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) })
}

/// Enters the kernel.
///
/// # Safety
/// - `Bpf`: every pointer field of `attr` that the kernel follows for
///   `cmd` holds NULL or the address of memory that stays live until this
///   returns and spans at least the length the kernel uses (from the
///   paired length field, or the object's own sizes for map keys and
///   values); memory the kernel writes is not otherwise accessed during
///   the call (it comes from a `&mut` borrow).
/// - `PerfEventOpen`: `attr` is at least `PERF_ATTR_MIN` bytes and its
///   `size` field equals its length; `attr` sets no field that makes the
///   kernel read user memory except through valid pointers (`config1`
///   of a probe PMU event: 0 or a live NUL-terminated string).
/// - `PerfIoctl`: `fd` is a perf event fd.
/// - `SockOpt`: `name` is a `SOL_SOCKET` option that takes an `int`.
#[cfg_attr(
    test,
    expect(dead_code, reason = "the fake replaces the kernel in unit tests")
)]
pub(crate) unsafe fn enter(call: Prepared<'_>) -> Result<i64, Errno> {
    match call {
        Prepared::Bpf { cmd, attr } => {
            let size = libc::c_uint::try_from(attr.len()).map_err(|_| Errno::TOOBIG)?;
            let ptr = attr.as_mut_ptr();
            // SAFETY: `ptr`/`size` describe `attr`, a live, exclusively
            // borrowed buffer; the kernel accesses at most `size` bytes of
            // it, and follows its pointers only within the bounds the
            // caller guaranteed (see `# Safety`).
            let ret = unsafe { libc::syscall(libc::SYS_bpf, libc::c_long::from(cmd), ptr, size) };
            if ret < 0 { Err(errno()) } else { Ok(ret) }
        }
        Prepared::PerfEventOpen {
            attr,
            pid,
            cpu,
            group,
        } => {
            let ptr = attr.as_mut_ptr();
            // SAFETY: `ptr` points to `attr`, a live, exclusively borrowed
            // buffer of at least 64 bytes whose `size` field equals its
            // length (caller): the kernel reads at most `size` bytes and
            // writes back only that `u32` field (on E2BIG). No field that
            // perf.rs sets makes the kernel write to user memory; the
            // kprobe/uprobe PMUs *read* a NUL-terminated string through
            // config1, which only `PerfEventOpenProbe` sets, to a live
            // `CStr` (caller). `group` is -1 or an fd borrowed
            // for this call. The returned fd is new and owned by nobody
            // else.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_perf_event_open,
                    ptr,
                    libc::c_long::from(pid),
                    libc::c_long::from(cpu),
                    libc::c_long::from(group),
                    PERF_FLAG_FD_CLOEXEC,
                )
            };
            if ret < 0 { Err(errno()) } else { Ok(ret) }
        }
        Prepared::PerfIoctl { fd, op } => {
            let r = match op {
                PerfIoctl::Enable => {
                    // SAFETY: PERF_EVENT_IOC_ENABLE is `_IO('$', 0)`, a
                    // valid opcode taking no argument (kernel `_perf_ioctl`).
                    let ioctl = unsafe { rustix::ioctl::NoArg::<PERF_EVENT_IOC_ENABLE>::new() };
                    // SAFETY: `fd` is a perf event fd (caller), so the
                    // request reaches the perf driver, which reads no user
                    // memory for it.
                    unsafe { rustix::ioctl::ioctl(fd, ioctl) }
                }
                PerfIoctl::Disable => {
                    // SAFETY: PERF_EVENT_IOC_DISABLE is `_IO('$', 1)`, a
                    // valid opcode taking no argument.
                    let ioctl = unsafe { rustix::ioctl::NoArg::<PERF_EVENT_IOC_DISABLE>::new() };
                    // SAFETY: as for Enable.
                    unsafe { rustix::ioctl::ioctl(fd, ioctl) }
                }
                PerfIoctl::SetBpf(prog) => {
                    let n = usize::try_from(prog.as_raw_fd()).map_err(|_| Errno::BADF)?;
                    // SAFETY: PERF_EVENT_IOC_SET_BPF is `_IOW('$', 8, u32)`
                    // and takes the program fd as the integer argument
                    // itself (kernel `_perf_ioctl` hands `arg` to
                    // `perf_event_set_bpf_prog` as an fd), never as a
                    // pointer; any fd number is in range (a non-program
                    // gives EBADF/EINVAL).
                    let ioctl = unsafe {
                        rustix::ioctl::IntegerSetter::<PERF_EVENT_IOC_SET_BPF>::new_usize(n)
                    };
                    // SAFETY: `fd` is a perf event fd (caller), so the
                    // integer reaches the perf driver, which uses it as an
                    // fd only.
                    unsafe { rustix::ioctl::ioctl(fd, ioctl) }
                }
            };
            r.map(|()| 0)
        }
        Prepared::SockOpt { fd, name, value } => {
            let len = libc::socklen_t::try_from(size_of::<i32>()).map_err(|_| Errno::INVAL)?;
            let ptr: *const i32 = &value;
            // SAFETY: `ptr` points to `value`, a live local `int` of `len`
            // bytes; for the `int` options this module issues (caller) the
            // kernel copies exactly that many bytes in and keeps no
            // pointer. A non-socket `fd` gives ENOTSOCK.
            let ret = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    name,
                    ptr.cast::<libc::c_void>(),
                    len,
                )
            };
            if ret < 0 { Err(errno()) } else { Ok(0) }
        }
    }
}

/// This thread's errno, read right after a failing call.
fn errno() -> Errno {
    // SAFETY: __errno_location has no preconditions; it returns this
    // thread's errno slot, valid for the thread's lifetime.
    let slot = unsafe { libc::__errno_location() };
    // SAFETY: `slot` is valid and aligned (see above); the caller reads it
    // right after the failing call, before anything can change it.
    let e = unsafe { *slot };
    Errno::from_raw_os_error(e)
}
