//! Programs on a network namespace: sk_lookup and flow dissectors (netns
//! links, 5.8; flow dissectors also by the legacy `BPF_PROG_ATTACH`), and
//! netfilter hooks (netfilter links, 6.4).
//!
//! The legacy flow dissector attachment and netfilter links take the
//! namespace of the calling thread, not an fd; for another namespace the
//! attachment (and its undoing) runs on a short-lived thread moved into it
//! with `setns(2)`, so no thread of the caller changes namespace.

use std::path::Path;
use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    AsFd, BorrowedFd, Errno, LinkCreate, LinkExtra, LinkTarget, NETFILTER_IP_DEFRAG, OwnedFd,
    link_create, prog_attach_current_netns, prog_detach_current_netns,
};

use super::cgroup::{dup, fd_path};
use super::link::{Detach, Inner};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism, probe};
use crate::Program;

/// Runs `f` on a thread in the network namespace `netns`.
fn in_netns<R: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> R + Send) -> Result<R, K> {
    let io = |source| K::Io {
        path: "(setns to the network namespace)".into(),
        source,
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::move_into_link_name_space(
                netns,
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(|e| io(e.into()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io(std::io::Error::other("the setns thread panicked"))))
    })
}

/// Whether the kernel has netns links for flow dissectors (5.8):
/// `BPF_LINK_CREATE` on fd -1 gets `EBADF` from the namespace lookup where
/// it does, `EINVAL` for the program type where it does not.
pub fn netns_link() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| {
        let fd = AttachType::FLOW_DISSECTOR;
        let Some(prog) = probe::trivial_prog(ProgType::FLOW_DISSECTOR, Some(fd)) else {
            return false;
        };
        let r = link_create(&LinkCreate {
            prog: prog.as_fd(),
            target: LinkTarget::Ifindex(u32::MAX),
            attach_type: fd.0,
            flags: 0,
            extra: LinkExtra::None,
        });
        matches!(r, Err(e) if e.errno == Errno::BADF)
    })
}

/// A flow dissector attached with `BPF_PROG_ATTACH` to a namespace,
/// detached from within it.
#[derive(Debug)]
struct NetnsProgAttach {
    netns: OwnedFd,
    prog: OwnedFd,
}

impl Detach for NetnsProgAttach {
    fn detach(&mut self) -> Result<(), K> {
        let (netns, prog) = (self.netns.as_fd(), self.prog.as_fd());
        // The kernel takes the namespace from the caller, and refuses a
        // target fd.
        in_netns(netns, || {
            prog_detach_current_netns(prog, AttachType::FLOW_DISSECTOR.0)
        })?
        .map_err(K::Sys)
    }
}

/// The address family of a netfilter hook (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NfProto {
    /// `NFPROTO_IPV4`.
    Ipv4,
    /// `NFPROTO_IPV6`.
    Ipv6,
}

/// A netfilter hook (`enum nf_inet_hooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NfHook {
    /// `NF_INET_PRE_ROUTING`.
    PreRouting,
    /// `NF_INET_LOCAL_IN`.
    LocalIn,
    /// `NF_INET_FORWARD`.
    Forward,
    /// `NF_INET_LOCAL_OUT`.
    LocalOut,
    /// `NF_INET_POST_ROUTING`.
    PostRouting,
}

/// Where a netfilter program hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Netfilter {
    /// Address family.
    pub proto: NfProto,
    /// Hook.
    pub hook: NfHook,
    /// Order among the hook's functions (lower first; the kernel refuses
    /// the extremes `INT_MIN` and `INT_MAX`).
    pub priority: i32,
    /// Whether the program sees defragmented packets
    /// (`BPF_F_NETFILTER_IP_DEFRAG`, 6.6).
    pub defrag: bool,
}

impl Program {
    /// Attaches an sk_lookup or flow_dissector program to the network
    /// namespace `netns` (an fd of `/proc/<pid>/ns/net` or
    /// `/run/netns/<name>`). sk_lookup has only netns links (5.9); flow
    /// dissectors use one where the kernel has them (5.8), else (or with
    /// [`AttachMode::Legacy`]) `BPF_PROG_ATTACH`.
    ///
    /// # Errors
    /// [`K::WrongType`] for another program type; the kernel's error
    /// (`EEXIST` for a second flow dissector in the namespace, or one in
    /// any namespace while the initial namespace has one).
    pub fn attach_netns(&self, netns: impl AsFd, opts: AttachOpts) -> Result<Link, AttachError> {
        let netns = netns.as_fd();
        let target = format!("network namespace '{}'", fd_path(netns));
        self.netns_at(netns, target, opts)
    }

    /// [`Program::attach_netns`] to the namespace file at `path`
    /// (`/proc/self/ns/net` for this process's own).
    ///
    /// # Errors
    /// [`K::NotFound`] when there is no such file; otherwise as
    /// [`Program::attach_netns`].
    pub fn attach_netns_path(
        &self,
        path: impl AsRef<Path>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let (file, target) = self.open_target(path.as_ref(), "network namespace")?;
        self.netns_at(file.as_fd(), target, opts)
    }

    fn netns_at(
        &self,
        netns: BorrowedFd<'_>,
        target: String,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let fail = |k| self.attach_err(&target, k);
        let attach_type = match self.prog_type() {
            ProgType::SK_LOOKUP => AttachType::SK_LOOKUP,
            ProgType::FLOW_DISSECTOR => AttachType::FLOW_DISSECTOR,
            other => {
                return Err(fail(K::WrongType(format!(
                    "a {other} program does not attach to a network namespace"
                ))));
            }
        };
        let legacy_ok = attach_type == AttachType::FLOW_DISSECTOR;
        let use_link = match opts.mode {
            AttachMode::Legacy if !legacy_ok => {
                return Err(fail(K::Unsupported(
                    "sk_lookup attaches by netns link only".into(),
                )));
            }
            AttachMode::Legacy => false,
            AttachMode::Link | AttachMode::Auto if !legacy_ok => true,
            AttachMode::Link if !netns_link() => {
                return Err(fail(K::Unsupported(
                    "this kernel has no netns links (5.8)".into(),
                )));
            }
            AttachMode::Link => true,
            AttachMode::Auto => netns_link(),
        };
        if use_link {
            return self.link_to_fd(netns, attach_type.0, target);
        }
        let kept = dup(netns, "namespace").map_err(&fail)?;
        let prog = dup(self.fd(), "program").map_err(&fail)?;
        let prog_fd = self.fd();
        in_netns(netns, || prog_attach_current_netns(prog_fd, attach_type.0))
            .map_err(&fail)?
            .map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::Custom(Box::new(NetnsProgAttach { netns: kept, prog }));
        Ok(Link::new(self.name(), target, Mechanism::ProgAttach, inner))
    }

    /// Attaches a netfilter program (6.4) at `hook` in the network
    /// namespace `netns`, or the caller's with `None`, through a netfilter
    /// link. The program returns `NF_DROP` (0) or `NF_ACCEPT` (1).
    ///
    /// # Errors
    /// [`K::WrongType`] for another program type; the kernel's error
    /// (`EOPNOTSUPP` for defragmentation the kernel cannot do, `EBUSY`
    /// for a priority another hook function holds exclusively).
    pub fn attach_netfilter(
        &self,
        hook: Netfilter,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<Link, AttachError> {
        let target = format!(
            "netfilter {:?} {:?} priority {}{}",
            hook.proto,
            hook.hook,
            hook.priority,
            netns.map_or_else(String::new, |n| format!(
                " in network namespace '{}'",
                fd_path(n)
            ))
        );
        let fail = |k| self.attach_err(&target, k);
        if self.prog_type() != ProgType::NETFILTER {
            return Err(fail(K::WrongType(format!(
                "a {} program cannot attach as a netfilter hook",
                self.prog_type()
            ))));
        }
        let create = LinkCreate {
            prog: self.fd(),
            target: LinkTarget::None,
            attach_type: AttachType::NETFILTER.0,
            flags: 0,
            extra: LinkExtra::Netfilter {
                pf: match hook.proto {
                    NfProto::Ipv4 => 2,
                    NfProto::Ipv6 => 10,
                },
                hooknum: match hook.hook {
                    NfHook::PreRouting => 0,
                    NfHook::LocalIn => 1,
                    NfHook::Forward => 2,
                    NfHook::LocalOut => 3,
                    NfHook::PostRouting => 4,
                },
                priority: hook.priority,
                flags: if hook.defrag { NETFILTER_IP_DEFRAG } else { 0 },
            },
        };
        let link = match netns {
            None => link_create(&create),
            Some(n) => in_netns(n, || link_create(&create)).map_err(&fail)?,
        }
        .map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::Fd {
            link,
            perf: None,
            probe: None,
        };
        Ok(Link::new(self.name(), target, Mechanism::BpfLink, inner))
    }
}
