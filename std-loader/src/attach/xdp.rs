//! XDP on a network interface: an XDP bpf_link (`BPF_LINK_CREATE` with
//! `BPF_XDP`, 5.9) or, before that or with [`AttachMode::Legacy`],
//! rtnetlink `IFLA_XDP` (libbpf's `bpf_xdp_attach`); and [`Iface`], how
//! the network families name an interface.

use core::fmt;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{AsFd, LinkCreate, LinkExtra, LinkTarget, OwnedFd, ProgId, link_create};

use super::link::{Detach, Inner};
use super::netlink::{Rtnl, XDP_FLAGS_REPLACE, XDP_FLAGS_UPDATE_IF_NOEXIST};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism};
use crate::Program;

/// A network interface, by name (resolved as `if_nametoindex` does, in
/// the calling thread's network namespace) or by ifindex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Iface<'a> {
    /// Its name (`eth0`).
    Name(&'a str),
    /// Its ifindex.
    Index(u32),
}

impl<'a> From<&'a str> for Iface<'a> {
    fn from(n: &'a str) -> Self {
        Iface::Name(n)
    }
}

impl<'a> From<&'a String> for Iface<'a> {
    fn from(n: &'a String) -> Self {
        Iface::Name(n)
    }
}

impl From<u32> for Iface<'_> {
    fn from(i: u32) -> Self {
        Iface::Index(i)
    }
}

impl fmt::Display for Iface<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Iface::Name(n) => write!(f, "interface '{n}'"),
            Iface::Index(i) => write!(f, "interface with ifindex {i}"),
        }
    }
}

/// Where on the interface an XDP program runs (`XDP_FLAGS_*_MODE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum XdpMode {
    /// The kernel's choice: the driver's hook where it has one, else
    /// generic.
    #[default]
    Default,
    /// Generic XDP on the socket buffer (`XDP_FLAGS_SKB_MODE`), on any
    /// interface.
    Generic,
    /// The driver's hook (`XDP_FLAGS_DRV_MODE`).
    Driver,
    /// Offloaded to the NIC (`XDP_FLAGS_HW_MODE`).
    Offload,
}

impl XdpMode {
    /// The `XDP_FLAGS_*_MODE` bit.
    pub fn flags(self) -> u32 {
        match self {
            XdpMode::Default => 0,
            XdpMode::Generic => 1 << 1,
            XdpMode::Driver => 1 << 2,
            XdpMode::Offload => 1 << 3,
        }
    }
}

/// Whether the running kernel's BTF names the kernel struct `name`: how
/// the network families tell whether the kernel has a link type
/// (`bpf_xdp_link`, `tcx_link`, `netkit_link`) without trying it on a
/// real interface. No BTF: `false`, and the legacy interface is used.
pub(crate) fn kernel_has_struct(name: &str) -> bool {
    let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return false;
    };
    let mut needle = Vec::with_capacity(name.len().saturating_add(2));
    needle.push(0);
    needle.extend_from_slice(name.as_bytes());
    needle.push(0);
    btf.windows(needle.len()).any(|w| w == needle.as_slice())
}

/// Whether the kernel has XDP links (`BPF_LINK_TYPE_XDP`, 5.9).
pub fn xdp_link_supported() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| kernel_has_struct("bpf_xdp_link"))
}

/// The ifindex of `iface` in the calling thread's network namespace.
pub(crate) fn resolve(iface: Iface<'_>) -> Result<u32, K> {
    let mut nl = Rtnl::open().map_err(K::Sys)?;
    let found = match iface {
        // The kernel refuses names of IFNAMSIZ or more (EINVAL): none
        // such can exist.
        Iface::Name(n) if n.is_empty() || n.len() >= 16 || n.contains(['/', '\0']) => None,
        Iface::Name(n) => nl.ifindex(n).map_err(K::Sys)?,
        Iface::Index(i) => nl.has_ifindex(i).map_err(K::Sys)?.then_some(i),
    };
    found.ok_or_else(|| K::NotFound(iface.to_string()))
}

/// The id of the XDP program attached to `iface` (in any mode, through
/// a link or not), as rtnetlink reports it (`IFLA_XDP_PROG_ID`).
///
/// # Errors
/// [`K::NotFound`] naming the interface; the socket's error otherwise.
pub fn attached_xdp_prog(iface: Iface<'_>) -> Result<Option<ProgId>, AttachError> {
    let fail = |k| AttachError::new("", iface.to_string(), k);
    let ifindex = resolve(iface).map_err(fail)?;
    let mut nl = Rtnl::open().map_err(|e| fail(K::Sys(e)))?;
    nl.xdp_prog_id(ifindex)
        .map(|id| id.map(ProgId))
        .map_err(|e| fail(K::Sys(e)))
}

impl Program {
    /// Resolves `iface` in the calling thread's network namespace.
    pub(crate) fn resolve_iface(&self, iface: Iface<'_>, target: &str) -> Result<u32, AttachError> {
        resolve(iface).map_err(|k| self.attach_err(target, k))
    }

    /// Attaches this XDP program to `iface` in `mode`: through an XDP
    /// bpf_link (pinnable, [`Link::update`] swaps the program) where the
    /// kernel has them, else (or with [`AttachMode::Legacy`]) through
    /// rtnetlink `IFLA_XDP`, refusing to replace a program already there
    /// (`XDP_FLAGS_UPDATE_IF_NOEXIST`) and, on detach, removing only its
    /// own (`XDP_FLAGS_REPLACE` with `IFLA_XDP_EXPECTED_FD`).
    ///
    /// # Errors
    /// [`K::NotFound`] naming the interface when there is none;
    /// [`K::WrongType`] for a program that is not XDP;
    /// [`K::Unsupported`] for a cookie (XDP has none) or
    /// [`AttachMode::Link`] on a kernel without XDP links; the kernel's
    /// error otherwise (`EBUSY`: another program is attached).
    pub fn attach_xdp<'a>(
        &self,
        iface: impl Into<Iface<'a>>,
        mode: XdpMode,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let iface = iface.into();
        let target = format!("{iface} (XDP)");
        let fail = |k| self.attach_err(&target, k);
        self.expect_net_type(&target, ProgType::XDP, "XDP")?;
        if opts.cookie != 0 {
            return Err(fail(K::Unsupported(
                "XDP attachments carry no cookie".into(),
            )));
        }
        let ifindex = self.resolve_iface(iface, &target)?;
        let use_link = match opts.mode {
            AttachMode::Legacy => false,
            AttachMode::Link if !xdp_link_supported() => {
                return Err(fail(K::Unsupported(
                    "this kernel has no XDP links (BPF_LINK_TYPE_XDP, 5.9)".into(),
                )));
            }
            AttachMode::Link => true,
            AttachMode::Auto => xdp_link_supported(),
        };
        if use_link {
            let link = link_create(&LinkCreate {
                prog: self.fd(),
                target: LinkTarget::Ifindex(ifindex),
                attach_type: AttachType::XDP.0,
                flags: mode.flags(),
                extra: LinkExtra::None,
            })
            .map_err(|e| fail(K::Sys(e)))?;
            let inner = Inner::Fd {
                link,
                perf: None,
                probe: None,
            };
            return Ok(Link::new(self.name(), target, Mechanism::BpfLink, inner));
        }
        let mut nl = Rtnl::open().map_err(|e| fail(K::Sys(e)))?;
        // Our own copy of the program fd: IFLA_XDP_EXPECTED_FD on detach
        // must name this program whatever happens to the caller's.
        let prog = self
            .fd()
            .try_clone_to_owned()
            .map_err(|e| fail(K::Sys(dup_error(&e))))?;
        let flags = mode.flags();
        nl.xdp_set(
            ifindex,
            prog.as_raw_fd(),
            flags | XDP_FLAGS_UPDATE_IF_NOEXIST,
            None,
        )
        .map_err(|e| fail(K::Sys(e)))?;
        let detach = XdpNetlink {
            nl,
            ifindex,
            flags,
            prog,
        };
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::Netlink,
            Inner::Custom(Box::new(detach)),
        ))
    }

    pub(crate) fn expect_net_type(
        &self,
        target: &str,
        want: ProgType,
        what: &str,
    ) -> Result<(), AttachError> {
        if self.prog_type() == want {
            return Ok(());
        }
        Err(self.attach_err(
            target,
            K::WrongType(format!(
                "a {} program cannot attach as {what}",
                self.prog_type()
            )),
        ))
    }
}

pub(crate) fn dup_error(e: &std::io::Error) -> ember_sys::SysError {
    ember_sys::SysError {
        cmd: "dup",
        errno: ember_sys::Errno::from_io_error(e).unwrap_or(ember_sys::Errno::IO),
    }
}

/// An XDP program attached through rtnetlink, removed only if it is
/// still ours.
#[derive(Debug)]
struct XdpNetlink {
    nl: Rtnl,
    ifindex: u32,
    flags: u32,
    prog: OwnedFd,
}

impl Detach for XdpNetlink {
    fn detach(&mut self) -> Result<(), K> {
        let expected = self.prog.as_fd().as_raw_fd();
        self.nl
            .xdp_set(
                self.ifindex,
                -1,
                self.flags | XDP_FLAGS_REPLACE,
                Some(expected),
            )
            .map_err(K::Sys)
    }
}
