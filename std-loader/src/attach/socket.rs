//! Programs on sockets: socket filters and reuseport selectors through
//! socket options, and sk_msg / sk_skb programs on a sockmap or sockhash
//! (a sockmap link on 6.10+, else `BPF_PROG_ATTACH` with the map fd).

use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    AsFd, BorrowedFd, LinkCreate, LinkExtra, LinkTarget, MapCreate, OwnedFd, attach_reuseport,
    attach_socket_filter, detach_reuseport, detach_socket_filter, link_create, map_create,
    prog_attach,
};

use super::cgroup::{dup, fd_path};
use super::link::{Detach, Inner};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism, probe};
use crate::Program;

/// A socket option to undo: the link keeps a dup of the socket, so the
/// socket stays open (and filtered) until the link is dropped.
#[derive(Debug)]
struct SocketOption {
    sock: OwnedFd,
    reuseport: bool,
}

impl Detach for SocketOption {
    fn detach(&mut self) -> Result<(), K> {
        let s = self.sock.as_fd();
        if self.reuseport {
            detach_reuseport(s)
        } else {
            detach_socket_filter(s)
        }
        .map_err(K::Sys)
    }
}

/// Whether the kernel has sockmap links (`BPF_LINK_TYPE_SOCKMAP`, 6.10):
/// a trivial sk_msg program linked to a fresh one-slot sockmap. No socket
/// is ever in that map, so the program never runs.
pub fn sockmap_link() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| {
        let verdict = AttachType::SK_MSG_VERDICT;
        let Some(prog) = probe::trivial_prog(ProgType::SK_MSG, Some(verdict)) else {
            return false;
        };
        let Ok(map) = map_create(&MapCreate {
            map_type: ember_core::object::MapType::SOCKMAP.0,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            name: "ember_probe",
            ..Default::default()
        }) else {
            return false;
        };
        link_create(&LinkCreate {
            prog: prog.as_fd(),
            target: LinkTarget::Fd(map.as_fd()),
            attach_type: verdict.0,
            flags: 0,
            extra: LinkExtra::None,
        })
        .is_ok()
    })
}

impl Program {
    /// Attaches a socket filter (`SEC("socket")`) to `sock` with
    /// `SO_ATTACH_BPF`, replacing the filter it had; dropping the link
    /// removes it (`SO_DETACH_BPF`). The program returns how many bytes
    /// of each received packet to keep: 0 drops it.
    ///
    /// # Errors
    /// [`K::WrongType`] for another program type; the kernel's error
    /// (`ENOTSOCK` for an fd that is not a socket).
    pub fn attach_socket(&self, sock: impl AsFd) -> Result<Link, AttachError> {
        self.socket_option(sock.as_fd(), ProgType::SOCKET_FILTER, false)
    }

    /// Attaches an sk_reuseport program to the reuseport group of `sock`
    /// (a socket bound with `SO_REUSEPORT`) with
    /// `SO_ATTACH_REUSEPORT_EBPF`; dropping the link removes it.
    ///
    /// # Errors
    /// As [`Program::attach_socket`].
    pub fn attach_reuseport(&self, sock: impl AsFd) -> Result<Link, AttachError> {
        self.socket_option(sock.as_fd(), ProgType::SK_REUSEPORT, true)
    }

    fn socket_option(
        &self,
        sock: BorrowedFd<'_>,
        want: ProgType,
        reuseport: bool,
    ) -> Result<Link, AttachError> {
        let target = format!("socket '{}'", fd_path(sock));
        let fail = |k| self.attach_err(&target, k);
        if self.prog_type() != want {
            return Err(fail(K::WrongType(format!(
                "a {} program cannot attach as a {want} program",
                self.prog_type()
            ))));
        }
        let kept = dup(sock, "socket").map_err(&fail)?;
        if reuseport {
            attach_reuseport(sock, self.fd())
        } else {
            attach_socket_filter(sock, self.fd())
        }
        .map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::Custom(Box::new(SocketOption {
            sock: kept,
            reuseport,
        }));
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::SocketOption,
            inner,
        ))
    }

    /// Attaches an sk_msg or sk_skb program to the sockmap or sockhash
    /// `map`: it then runs for the sockets in the map. The attach type is
    /// the program's (`sk_msg`, `sk_skb/stream_verdict`, ...) or
    /// `attach_type` (for a bare `sk_skb`). Through a sockmap link where
    /// the kernel has them (6.10), else `BPF_PROG_ATTACH` with the map as
    /// target, undone by `BPF_PROG_DETACH`. The cookie is unused.
    ///
    /// # Errors
    /// [`K::WrongType`] for another program type, [`K::NoTarget`] when no
    /// attach type is known; the kernel's error (`EINVAL` for a map that
    /// is not a sockmap or sockhash, `EBUSY` when a link holds the map's
    /// slot for this attach type already).
    pub fn attach_sockmap(
        &self,
        map: impl AsFd,
        attach_type: Option<AttachType>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let map = map.as_fd();
        let name = ember_sys::map_info(map).map_or_else(|_| fd_path(map), |i| i.name().to_owned());
        let target = format!("sockmap '{name}'");
        let fail = |k| self.attach_err(&target, k);
        if ![ProgType::SK_MSG, ProgType::SK_SKB].contains(&self.prog_type()) {
            return Err(fail(K::WrongType(format!(
                "a {} program does not attach to a sockmap",
                self.prog_type()
            ))));
        }
        let attach_type = attach_type
            .or(self.attach_type())
            .ok_or_else(|| fail(K::NoTarget))?;
        let use_link = match opts.mode {
            AttachMode::Legacy => false,
            AttachMode::Link if !sockmap_link() => {
                return Err(fail(K::Unsupported(
                    "this kernel has no sockmap links (6.10)".into(),
                )));
            }
            AttachMode::Link => true,
            AttachMode::Auto => sockmap_link(),
        };
        if use_link {
            return self.link_to_fd(map, attach_type.0, target);
        }
        let kept = dup(map, "map").map_err(&fail)?;
        let prog = dup(self.fd(), "program").map_err(&fail)?;
        // The legacy attachment replaces a program the map had.
        prog_attach(self.fd(), map, attach_type.0, 0, None).map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::ProgAttach {
            target: kept,
            prog,
            attach_type: attach_type.0,
            flags: 0,
        };
        Ok(Link::new(self.name(), target, Mechanism::ProgAttach, inner))
    }
}
