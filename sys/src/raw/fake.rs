//! A fake kernel for unit tests (aya's `sys/fake.rs` pattern): a
//! thread-local replacement of the one syscall funnel.
//!
//! [`Fake::install`] puts a fresh fake on the current thread; every call
//! `raw::syscall` makes on it is then checked exactly as for the kernel
//! (`Attr::prepare`), recorded as a [`Call`] (command and attr bytes, with
//! the pointers filled in) and answered from a script of [`Reply`]s:
//! a value, an errno, a fresh fd, or a closure that may write into the
//! attr and the buffers it borrows, as the kernel would. With the script
//! empty, calls that return fds get a fresh fd and others 0.
//! [`Fake::fail_nth`] fails one call with an errno, for error-injection
//! sweeps. Without an installed fake, every call fails with `ENOSYS`, so
//! unit tests never reach the real kernel.
//!
//! A child of `raw` only so that the module graph stays acyclic; it needs
//! no unsafe code and denies it again.
#![deny(unsafe_code)]

extern crate std;

use core::cell::RefCell;
use std::boxed::Box;
use std::collections::VecDeque;
use std::vec::Vec;

use rustix::fd::{AsRawFd, IntoRawFd};
use rustix::io::Errno;

use super::{PerfIoctl, Syscall};
use crate::call::{Attr, Cmd, Pointee, get32, get64};

/// What a closure reply computes.
pub(crate) type Handler = Box<dyn FnMut(&mut Syscall<'_, '_>) -> Result<i64, Errno>>;

/// One scripted answer.
pub(crate) enum Reply {
    /// Succeed with this value.
    Ret(i64),
    /// Succeed with a fresh fd (for commands that return one).
    Fd,
    /// Fail with this errno.
    Err(Errno),
    /// Compute the answer, writing into the call's buffers as the kernel
    /// would.
    With(Handler),
}

impl Reply {
    /// A closure reply.
    pub(crate) fn with(
        f: impl FnMut(&mut Syscall<'_, '_>) -> Result<i64, Errno> + 'static,
    ) -> Reply {
        Reply::With(Box::new(f))
    }

    /// A closure reply that sees the bpf attr only.
    pub(crate) fn attr(mut f: impl FnMut(&mut Attr<'_>) -> Result<i64, Errno> + 'static) -> Reply {
        Reply::with(move |call| match call {
            Syscall::Bpf(a) => f(a),
            _ => Err(Errno::NOSYS),
        })
    }
}

/// A recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    /// `bpf(cmd, attr)`.
    Bpf {
        /// The command.
        cmd: Cmd,
        /// The attr bytes as sent (pointers filled in).
        attr: Vec<u8>,
    },
    /// `perf_event_open`.
    PerfEventOpen {
        /// The attr bytes.
        attr: Vec<u8>,
        /// pid.
        pid: i32,
        /// cpu.
        cpu: i32,
        /// Group leader fd.
        group: Option<i32>,
    },
    /// A perf ioctl: (`ENABLE`/`DISABLE`/`SET_BPF`, program fd).
    PerfIoctl(&'static str, Option<i32>),
    /// A socket option: (socket fd, `SO_*`, value).
    SockOpt(i32, i32, i32),
}

impl Call {
    /// The bpf command.
    pub(crate) fn cmd(&self) -> Option<Cmd> {
        match self {
            Call::Bpf { cmd, .. } => Some(*cmd),
            _ => None,
        }
    }

    /// The attr bytes.
    pub(crate) fn attr(&self) -> &[u8] {
        match self {
            Call::Bpf { attr, .. } | Call::PerfEventOpen { attr, .. } => attr,
            Call::PerfIoctl(..) | Call::SockOpt(..) => &[],
        }
    }

    /// The `u32` at `off` of the attr.
    pub(crate) fn u32(&self, off: usize) -> u32 {
        get32(self.attr(), off)
    }

    /// The `u64` at `off` of the attr.
    pub(crate) fn u64(&self, off: usize) -> u64 {
        get64(self.attr(), off)
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    calls: Vec<Call>,
    fail: Option<(usize, Errno)>,
}

std::thread_local! {
    static FAKE: RefCell<Option<State>> = const { RefCell::new(None) };
    /// Fds made by [`fresh_fd`] and not yet handed to the code under test.
    static FRESH: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

/// The installed fake; uninstalled on drop.
#[derive(Debug)]
pub(crate) struct Fake(());

impl Fake {
    /// Installs a fresh fake on this thread.
    pub(crate) fn install() -> Fake {
        FAKE.with(|f| *f.borrow_mut() = Some(State::default()));
        Fake(())
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        FAKE.with(|s| f(s.borrow_mut().get_or_insert_with(State::default)))
    }

    /// Appends replies to the script.
    pub(crate) fn push(&self, r: impl IntoIterator<Item = Reply>) -> &Fake {
        self.with(|s| s.script.extend(r));
        self
    }

    /// Makes call number `n` (0-based, counting every call since install)
    /// fail with `e`, whatever the script says (a scripted reply for that
    /// call is used up).
    pub(crate) fn fail_nth(&self, n: usize, e: Errno) -> &Fake {
        self.with(|s| s.fail = Some((n, e)));
        self
    }

    /// The calls so far.
    pub(crate) fn calls(&self) -> Vec<Call> {
        self.with(|s| s.calls.clone())
    }

    /// The only call so far (panics otherwise).
    pub(crate) fn only(&self) -> Call {
        let c = self.calls();
        assert_eq!(c.len(), 1, "{c:?}");
        c.into_iter().next().unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        FAKE.with(|f| *f.borrow_mut() = None);
    }
}

/// A fresh fd, released for the code under test to adopt.
pub(crate) fn fresh_fd() -> i64 {
    let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).expect("eventfd");
    let fd = fd.into_raw_fd();
    FRESH.with(|f| f.borrow_mut().push(fd));
    i64::from(fd)
}

/// Checks that a call returning an fd returns one [`fresh_fd`] made and
/// released (so `raw::adopt` takes ownership of an fd nothing else owns),
/// and marks it handed over.
fn hand_over(r: Result<i64, Errno>) -> Result<i64, Errno> {
    if let Ok(v) = r {
        let known = FRESH.with(|f| {
            let mut f = f.borrow_mut();
            let at = f.iter().position(|&fd| i64::from(fd) == v)?;
            Some(f.swap_remove(at))
        });
        assert!(
            known.is_some(),
            "the fake returned fd {v}, which fresh_fd did not make"
        );
    }
    r
}

fn record(call: &Syscall<'_, '_>) -> Call {
    match call {
        Syscall::Bpf(a) => Call::Bpf {
            cmd: a.cmd().expect("a command attr"),
            attr: a.bytes().to_vec(),
        },
        Syscall::PerfEventOpen {
            attr,
            pid,
            cpu,
            group,
        } => Call::PerfEventOpen {
            attr: attr.to_vec(),
            pid: *pid,
            cpu: *cpu,
            group: group.map(|g| g.fd().as_raw_fd()),
        },
        Syscall::PerfEventOpenProbe { attr, pid, cpu, .. } => Call::PerfEventOpen {
            attr: attr.to_vec(),
            pid: *pid,
            cpu: *cpu,
            group: None,
        },
        Syscall::PerfIoctl { op, .. } => match op {
            PerfIoctl::Enable => Call::PerfIoctl("ENABLE", None),
            PerfIoctl::Disable => Call::PerfIoctl("DISABLE", None),
            PerfIoctl::SetBpf(p) => Call::PerfIoctl("SET_BPF", Some(p.as_raw_fd())),
        },
        Syscall::SockOpt { fd, op } => {
            let (name, value) = op.name_value();
            Call::SockOpt(fd.as_raw_fd(), name, value)
        }
    }
}

fn returns_fd(call: &Syscall<'_, '_>) -> bool {
    match call {
        Syscall::Bpf(a) => a.cmd().is_some_and(Cmd::returns_fd),
        Syscall::PerfEventOpen { .. } => true,
        Syscall::PerfEventOpenProbe { .. } => true,
        Syscall::PerfIoctl { .. } | Syscall::SockOpt { .. } => false,
    }
}

/// Answers `call` (from `raw::run`).
pub(crate) fn run(mut call: Syscall<'_, '_>) -> Result<i64, Errno> {
    let rec = record(&call);
    let next = FAKE.with(|f| {
        let mut f = f.borrow_mut();
        let s = f.as_mut()?;
        let n = s.calls.len();
        s.calls.push(rec);
        let reply = s.script.pop_front();
        Some(match s.fail {
            Some((k, e)) if k == n => Some(Reply::Err(e)),
            _ => reply,
        })
    });
    // The state is not borrowed while a closure runs.
    let fd = returns_fd(&call);
    let r = match next {
        None => Err(Errno::NOSYS),
        Some(None) if fd => Ok(fresh_fd()),
        Some(None) => Ok(0),
        Some(Some(Reply::Ret(v))) => Ok(v),
        Some(Some(Reply::Fd)) => Ok(fresh_fd()),
        Some(Some(Reply::Err(e))) => Err(e),
        Some(Some(Reply::With(mut f))) => f(&mut call),
    };
    if fd { hand_over(r) } else { r }
}

/// The bytes the kernel may write at pointer field `off` of `a`.
pub(crate) fn out_bytes<'x>(a: &'x mut Attr<'_>, off: usize) -> &'x mut [u8] {
    match a.pointee_mut(off) {
        Some(Pointee::BytesMut(b)) => b,
        other => panic!("no writable bytes at {off}: {other:?}"),
    }
}

/// The program ids the kernel may write at pointer field `off` of `a`.
pub(crate) fn out_prog_ids<'x>(a: &'x mut Attr<'_>, off: usize) -> &'x mut [crate::id::ProgId] {
    match a.pointee_mut(off) {
        Some(Pointee::ProgIdsMut(b)) => b,
        other => panic!("no writable ids at {off}: {other:?}"),
    }
}

/// The bytes the kernel reads at pointer field `off` of `a`.
pub(crate) fn in_bytes<'x>(a: &'x mut Attr<'_>, off: usize) -> &'x [u8] {
    match a.pointee_mut(off) {
        Some(Pointee::Bytes(b)) => b,
        Some(Pointee::BytesMut(b)) => b,
        other => panic!("no bytes at {off}: {other:?}"),
    }
}

/// The nested info struct at pointer field `off` of `a`.
pub(crate) fn nested<'x, 'a>(a: &'x mut Attr<'a>, off: usize) -> &'x mut Attr<'a> {
    match a.pointee_mut(off) {
        Some(Pointee::Nested(n)) => n,
        other => panic!("no nested struct at {off}: {other:?}"),
    }
}

/// The strings the kernel reads through the address array at pointer
/// field `off` of `a`, each checked to be at the address the array holds.
pub(crate) fn in_cstrs(a: &mut Attr<'_>, off: usize) -> Vec<std::string::String> {
    let at = get64(a.bytes(), off);
    match a.pointee_mut(off) {
        Some(Pointee::CStrs(strs, addrs)) => {
            assert_eq!(
                at,
                addrs.as_ptr().addr() as u64,
                "the field holds the array"
            );
            strs.iter()
                .zip(addrs.iter())
                .map(|(s, a)| {
                    assert_eq!(*a, s.as_ptr().addr() as u64, "the array holds the string");
                    s.to_string_lossy().into_owned()
                })
                .collect()
        }
        other => panic!("no string array at {off}: {other:?}"),
    }
}
