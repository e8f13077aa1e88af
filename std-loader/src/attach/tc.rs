//! Traffic control: tcx links (`BPF_TCX_INGRESS` / `BPF_TCX_EGRESS`,
//! 6.6) with their ordering, legacy TC (a direct-action `cls_bpf` filter
//! under a `clsact` qdisc, through rtnetlink) where the kernel has no tcx
//! or [`AttachMode::Legacy`] asks, and netkit links (6.7).

use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    Errno, F_AFTER, F_BEFORE, F_ID, F_LINK, LinkCreate, LinkExtra, LinkTarget, ProgId, Relative,
    link_create, prog_query_ifindex,
};

use super::link::{Detach, Inner};
use super::netlink::{Rtnl, TC_H_MIN_EGRESS, TC_H_MIN_INGRESS};
use super::xdp::{Iface, resolve};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism};
use crate::Program;

/// Which way the packets a TC program sees go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcDirection {
    /// Received by the interface.
    Ingress,
    /// Sent by it.
    Egress,
}

/// Which netkit device of a pair a program runs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetkitSide {
    /// The primary device (`BPF_NETKIT_PRIMARY`).
    Primary,
    /// Its peer (`BPF_NETKIT_PEER`).
    Peer,
}

/// A program or link already on the chain, to be placed next to.
#[derive(Debug, Clone, Copy)]
pub enum Anchor<'a> {
    /// A program of this process.
    Program(&'a Program),
    /// A program by id.
    ProgramId(u32),
    /// A link of this process (a tcx or netkit bpf_link).
    Link(&'a Link),
    /// A link by id.
    LinkId(u32),
}

/// Where in a tcx or netkit chain the program goes (the kernel's
/// `bpf_mprog` ordering).
#[derive(Debug, Clone, Copy, Default)]
pub enum Place<'a> {
    /// After every program there (the default).
    #[default]
    Last,
    /// Before every program there.
    First,
    /// Right before the anchor.
    Before(Anchor<'a>),
    /// Right after the anchor.
    After(Anchor<'a>),
}

/// TC attach options.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcOpts<'a> {
    /// Place in the chain (tcx, netkit).
    pub place: Place<'a>,
    /// Fail (`ESTALE`) unless the chain is at this revision (tcx, netkit;
    /// 0: any).
    pub expected_revision: u64,
    /// Filter priority (legacy TC; 0: the kernel picks).
    pub priority: u16,
    /// Filter handle (legacy TC; 0: the kernel picks).
    pub handle: u32,
}

/// `BPF_PROG_QUERY` of `attach_type` on the loopback device (ifindex 1
/// in every namespace): a harmless question that a kernel without the
/// attach type refuses with `EINVAL`.
fn knows_device_attach_type(attach_type: AttachType) -> bool {
    !matches!(
        prog_query_ifindex(1, attach_type.0, &mut []),
        Err(e) if e.errno == Errno::INVAL
    )
}

/// Whether the kernel has tcx (`BPF_LINK_TYPE_TCX`, 6.6): it answers a
/// tcx query on the loopback device.
pub fn tcx_supported() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| knows_device_attach_type(AttachType::TCX_INGRESS))
}

/// Whether the kernel has netkit devices and their links (6.7,
/// `CONFIG_NETKIT`): without them a netkit query fails with `EINVAL`;
/// with them, a query on the loopback device fails otherwise (`ENXIO`:
/// not a netkit device).
pub fn netkit_supported() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| knows_device_attach_type(AttachType::NETKIT_PRIMARY))
}

/// The programs on `iface`'s tcx chain for `direction`, in the order
/// they run, and the chain's revision (for [`TcOpts::expected_revision`]).
///
/// # Errors
/// [`K::NotFound`] naming the interface; the kernel's error otherwise.
pub fn tcx_query(
    iface: Iface<'_>,
    direction: TcDirection,
) -> Result<(Vec<ProgId>, u64), AttachError> {
    let fail = |k| AttachError::new("", iface.to_string(), k);
    let ifindex = resolve(iface).map_err(fail)?;
    let attach_type = match direction {
        TcDirection::Ingress => AttachType::TCX_INGRESS,
        TcDirection::Egress => AttachType::TCX_EGRESS,
    };
    // The chain may grow between the count and the read: retry then.
    let mut ids = Vec::new();
    loop {
        let q =
            prog_query_ifindex(ifindex, attach_type.0, &mut ids).map_err(|e| fail(K::Sys(e)))?;
        let n = usize::try_from(q.prog_cnt).unwrap_or(usize::MAX);
        if n <= ids.len() {
            ids.truncate(n);
            return Ok((ids, q.revision));
        }
        ids = vec![ProgId(0); n];
    }
}

impl Program {
    /// Attaches this `sched_cls` program to `iface` in `direction`: a tcx
    /// link placed as [`TcOpts::place`] says where the kernel has tcx,
    /// else (or with [`AttachMode::Legacy`]) a direct-action `cls_bpf`
    /// filter under the interface's `clsact` qdisc, which is created if
    /// absent. Detaching a filter deletes it, and the qdisc too when this
    /// link created it and no filter is left under it.
    ///
    /// # Errors
    /// [`K::NotFound`] naming the interface; [`K::WrongType`] for a
    /// program that is not `sched_cls`; [`K::Unsupported`] for a cookie,
    /// for [`AttachMode::Link`] without tcx, or for placing a legacy
    /// filter before or after a program (legacy TC orders by priority);
    /// the kernel's error otherwise.
    pub fn attach_tc<'a>(
        &self,
        iface: impl Into<Iface<'a>>,
        direction: TcDirection,
        tc: TcOpts<'_>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let iface = iface.into();
        let dir = match direction {
            TcDirection::Ingress => "ingress",
            TcDirection::Egress => "egress",
        };
        let target = format!("{iface} (tc {dir})");
        let fail = |k| self.attach_err(&target, k);
        self.expect_net_type(&target, ProgType::SCHED_CLS, "a TC classifier")?;
        if opts.cookie != 0 {
            return Err(fail(K::Unsupported(
                "TC attachments carry no cookie".into(),
            )));
        }
        let use_link = match opts.mode {
            AttachMode::Legacy => false,
            AttachMode::Link if !tcx_supported() => {
                return Err(fail(K::Unsupported(
                    "this kernel has no tcx (BPF_LINK_TYPE_TCX, 6.6)".into(),
                )));
            }
            AttachMode::Link => true,
            AttachMode::Auto => tcx_supported(),
        };
        let ifindex = self.resolve_iface(iface, &target)?;
        if use_link {
            let attach_type = match direction {
                TcDirection::Ingress => AttachType::TCX_INGRESS,
                TcDirection::Egress => AttachType::TCX_EGRESS,
            };
            return self.mprog_link(ifindex, attach_type, &tc, target);
        }
        if matches!(tc.place, Place::Before(_) | Place::After(_)) {
            return Err(fail(K::Unsupported(
                "legacy TC orders filters by priority, not before or after a program".into(),
            )));
        }
        let hook = match direction {
            TcDirection::Ingress => TC_H_MIN_INGRESS,
            TcDirection::Egress => TC_H_MIN_EGRESS,
        };
        let mut nl = Rtnl::open().map_err(|e| fail(K::Sys(e)))?;
        let created = nl.clsact_add(ifindex).map_err(|e| fail(K::Sys(e)))?;
        let added = nl.filter_add(
            ifindex,
            hook,
            tc.priority,
            tc.handle,
            self.fd().as_raw_fd(),
            self.name(),
        );
        let (priority, handle) = match added {
            Ok(ph) => ph,
            Err(e) => {
                if created {
                    let _ = nl.clsact_del(ifindex);
                }
                return Err(fail(K::Sys(e)));
            }
        };
        let detach = TcFilter {
            nl,
            ifindex,
            hook,
            priority,
            handle,
            created_qdisc: created,
        };
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::Netlink,
            Inner::Custom(Box::new(detach)),
        ))
    }

    /// Attaches this `sched_cls` program to the netkit device `iface`
    /// (`BPF_NETKIT_PRIMARY` / `PEER`), placed as [`TcOpts::place`] says.
    /// netkit has only links: there is no legacy fallback.
    ///
    /// # Errors
    /// [`K::Unsupported`] when the kernel has no netkit; [`K::NotFound`]
    /// naming the interface; the kernel's error otherwise (`ENXIO` or
    /// `EINVAL` for a device that is not netkit).
    pub fn attach_netkit<'a>(
        &self,
        iface: impl Into<Iface<'a>>,
        side: NetkitSide,
        tc: TcOpts<'_>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let iface = iface.into();
        let (attach_type, what) = match side {
            NetkitSide::Primary => (AttachType::NETKIT_PRIMARY, "primary"),
            NetkitSide::Peer => (AttachType::NETKIT_PEER, "peer"),
        };
        let target = format!("{iface} (netkit {what})");
        let fail = |k| self.attach_err(&target, k);
        self.expect_net_type(&target, ProgType::SCHED_CLS, "a netkit program")?;
        if opts.cookie != 0 || opts.mode == AttachMode::Legacy {
            return Err(fail(K::Unsupported(
                "netkit attaches through links only, without cookies".into(),
            )));
        }
        if !netkit_supported() {
            return Err(fail(K::Unsupported(
                "this kernel has no netkit (CONFIG_NETKIT, 6.7)".into(),
            )));
        }
        let ifindex = self.resolve_iface(iface, &target)?;
        self.mprog_link(ifindex, attach_type, &tc, target)
    }

    /// A tcx or netkit link: both are `bpf_mprog` chains.
    fn mprog_link(
        &self,
        ifindex: u32,
        attach_type: AttachType,
        tc: &TcOpts<'_>,
        target: String,
    ) -> Result<Link, AttachError> {
        let fail = |k| self.attach_err(&target, k);
        let (side, anchor) = match tc.place {
            Place::Last => (0, None),
            Place::First => (F_BEFORE, None),
            Place::Before(a) => (F_BEFORE, Some(a)),
            Place::After(a) => (F_AFTER, Some(a)),
        };
        let (kind, relative) = match anchor {
            None => (0, Relative::None),
            Some(Anchor::Program(p)) => (0, Relative::Fd(p.fd())),
            Some(Anchor::ProgramId(id)) => (F_ID, Relative::Id(id)),
            Some(Anchor::LinkId(id)) => (F_ID | F_LINK, Relative::Id(id)),
            Some(Anchor::Link(l)) => match l.fd() {
                Some(fd) => (F_LINK, Relative::Fd(fd)),
                None => {
                    return Err(fail(K::Unsupported(format!(
                        "a {} link cannot anchor a tcx or netkit program",
                        l.mechanism()
                    ))));
                }
            },
        };
        let link = link_create(&LinkCreate {
            prog: self.fd(),
            target: LinkTarget::Ifindex(ifindex),
            attach_type: attach_type.0,
            flags: side | kind,
            extra: LinkExtra::Tcx {
                relative,
                expected_revision: tc.expected_revision,
            },
        })
        .map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::Fd {
            link,
            perf: None,
            probe: None,
        };
        Ok(Link::new(self.name(), target, Mechanism::BpfLink, inner))
    }
}

/// A `cls_bpf` filter added through rtnetlink, and whether its `clsact`
/// qdisc was created for it.
#[derive(Debug)]
struct TcFilter {
    nl: super::netlink::Rtnl,
    ifindex: u32,
    hook: u16,
    priority: u16,
    handle: u32,
    created_qdisc: bool,
}

impl Detach for TcFilter {
    fn detach(&mut self) -> Result<(), K> {
        let del = self
            .nl
            .filter_del(self.ifindex, self.hook, self.priority, self.handle)
            .map_err(K::Sys);
        if self.created_qdisc {
            // Someone may have added filters since: their qdisc now too.
            let empty = [TC_H_MIN_INGRESS, TC_H_MIN_EGRESS]
                .into_iter()
                .all(|h| self.nl.filters(self.ifindex, h).is_ok_and(|f| f.is_empty()));
            if empty {
                self.nl.clsact_del(self.ifindex).map_err(K::Sys)?;
            }
        }
        del
    }
}
