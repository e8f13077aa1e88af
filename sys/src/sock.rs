//! BPF programs on sockets through socket options: socket filters
//! (`SO_ATTACH_BPF`) and reuseport selectors (`SO_ATTACH_REUSEPORT_EBPF`).
//! rustix has no wrapper for these, so they go through the funnel in `raw`
//! like every other call.

use rustix::fd::BorrowedFd;

use crate::cmd::errno;
use crate::error::Result;
use crate::raw::{SockBpf, Syscall, syscall};

fn set(sock: BorrowedFd<'_>, op: SockBpf<'_>, name: &'static str) -> Result<()> {
    syscall(Syscall::SockOpt { fd: sock, op })
        .map(drop)
        .map_err(|e| errno(name, e))
}

/// `setsockopt(sock, SOL_SOCKET, SO_ATTACH_BPF, &prog)`—Attaches a
/// socket filter program to `sock`, replacing the filter it had; the
/// program sees every packet the socket receives and returns how many
/// bytes of it to keep (0 drops it).
///
/// # Errors
/// The kernel's errno: `ENOTSOCK`, `EINVAL` for a program that is not a
/// socket filter, `EPERM` for a socket whose filter is locked
/// (`SO_LOCK_FILTER`).
///
/// # References
/// socket(7); bpf(2) ("eBPF programs can be attached to sockets").
#[doc(alias = "SO_ATTACH_BPF")]
pub fn attach_socket_filter(sock: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<()> {
    set(sock, SockBpf::Attach(prog), "SO_ATTACH_BPF")
}

/// `setsockopt(sock, SOL_SOCKET, SO_DETACH_BPF, ..)`—Removes the filter
/// of `sock` (classic or BPF).
///
/// # Errors
/// `ENOENT` when there is none; `EPERM` for a locked filter.
///
/// # References
/// socket(7).
#[doc(alias = "SO_DETACH_BPF")]
#[doc(alias = "SO_DETACH_FILTER")]
pub fn detach_socket_filter(sock: BorrowedFd<'_>) -> Result<()> {
    set(sock, SockBpf::Detach, "SO_DETACH_BPF")
}

/// `setsockopt(sock, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog)`—Makes
/// an sk_reuseport program choose among the sockets of `sock`'s reuseport
/// group (every socket bound with `SO_REUSEPORT` to the same address).
///
/// # Errors
/// The kernel's errno (`EINVAL` for another program type or a socket
/// without `SO_REUSEPORT`).
///
/// # References
/// socket(7) (`SO_ATTACH_REUSEPORT_EBPF`).
#[doc(alias = "SO_ATTACH_REUSEPORT_EBPF")]
pub fn attach_reuseport(sock: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<()> {
    set(
        sock,
        SockBpf::AttachReuseport(prog),
        "SO_ATTACH_REUSEPORT_EBPF",
    )
}

/// `setsockopt(sock, SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, ..)`—Removes
/// the reuseport group's program.
///
/// # Errors
/// `ENOENT` when there is none, or the kernel's errno.
///
/// # References
/// socket(7).
#[doc(alias = "SO_DETACH_REUSEPORT_BPF")]
pub fn detach_reuseport(sock: BorrowedFd<'_>) -> Result<()> {
    set(sock, SockBpf::DetachReuseport, "SO_DETACH_REUSEPORT_BPF")
}

#[cfg(test)]
mod tests {
    use rustix::fd::{AsFd, AsRawFd};
    use rustix::io::Errno;

    use super::*;
    use crate::raw::fake::{Call, Fake, Reply};

    fn some_fd() -> rustix::fd::OwnedFd {
        rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
    }

    #[test]
    fn socket_options_carry_the_program_fd_and_name_the_option() {
        let f = Fake::install();
        let (sock, prog) = (some_fd(), some_fd());
        let (s, p) = (sock.as_raw_fd(), prog.as_raw_fd());
        attach_socket_filter(sock.as_fd(), prog.as_fd()).unwrap();
        detach_socket_filter(sock.as_fd()).unwrap();
        attach_reuseport(sock.as_fd(), prog.as_fd()).unwrap();
        detach_reuseport(sock.as_fd()).unwrap();
        assert_eq!(
            f.calls(),
            [
                Call::SockOpt(s, 50, p),
                Call::SockOpt(s, 27, 0),
                Call::SockOpt(s, 52, p),
                Call::SockOpt(s, 68, 0),
            ]
        );
        f.push([Reply::Err(Errno::NOTSOCK)]);
        let e = attach_socket_filter(sock.as_fd(), prog.as_fd()).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("SO_ATTACH_BPF", Errno::NOTSOCK));
        f.push([Reply::Err(Errno::NOENT)]);
        let e = detach_socket_filter(sock.as_fd()).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("SO_DETACH_BPF", Errno::NOENT));
    }

    #[test]
    fn without_a_fake_no_socket_option_is_set() {
        let (sock, prog) = (some_fd(), some_fd());
        let e = attach_socket_filter(sock.as_fd(), prog.as_fd()).unwrap_err();
        assert_eq!(e.errno, Errno::NOSYS);
    }
}
