//! Attaching loaded programs: every attach point returns an owned
//! [`Link`] that detaches when dropped.
//!
//! The shape follows libbpf's `bpf_program__attach_*` family and cilium's
//! `link` package: one explicit method per attach type on
//! [`Program`](crate::Program) (in the submodules here), plus
//! [`Program::attach`](crate::Program::attach), which reads the target from
//! the program's section as libbpf's auto-attach does. A [`Link`] owns
//! everything the attachment created (the bpf_link fd, the perf event, the
//! tracefs probe, the netlink filter) and releases it on drop, so there is
//! no registry of link ids to keep in step (aya's `LinkId`).
//!
//! Fallbacks (a perf event with `PERF_EVENT_IOC_SET_BPF` where the kernel
//! has no perf-event links, ...) are chosen by feature probes, never by
//! kernel version; [`AttachMode`] forces one.

pub mod auto;
pub mod cgroup;
pub mod elf_sym;
mod error;
pub mod kprobe;
pub mod kprobe_multi;
pub mod ksyscall;
pub mod libpath;
pub mod link;
mod netlink;
pub mod netns;
pub mod probe;
pub mod rtnl_wire;
pub mod socket;
mod target;
pub mod tc;
pub mod tracefs;
pub mod tracing;
pub mod uprobe;
pub mod usdt;
pub mod xdp;

pub use cgroup::{CgroupFlags, CgroupOpts};
pub use error::{AttachError, AttachErrorKind};
pub use kprobe::{KprobeLocation, KprobeTarget};
pub use kprobe_multi::{KprobeMultiFunctions, KprobeMultiTarget};
pub use link::{Link, Mechanism};
pub use netns::{Netfilter, NfHook, NfProto};
pub use tc::{Anchor, NetkitSide, Place, TcDirection, TcOpts};
pub use uprobe::{MultiFunctions, UprobeLocation, UprobeMultiTarget, UprobeTarget};
pub use xdp::{Iface, XdpMode};

/// Which kernel interface an attachment uses when the kernel offers
/// several (libbpf's `probe_attach_mode`, widened to every family).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachMode {
    /// The newest interface the kernel supports, by probe: a bpf_link
    /// where there is one, else the legacy interface.
    #[default]
    Auto,
    /// A bpf_link only (`BPF_LINK_CREATE`, a perf-event link, tcx, an XDP
    /// link); fails where the kernel has none.
    Link,
    /// The legacy interface: a perf event with `PERF_EVENT_IOC_SET_BPF`
    /// (for tracepoints, kprobes, uprobes), tracefs `kprobe_events` /
    /// `uprobe_events` (for probes), netlink (XDP, TC), `BPF_PROG_ATTACH`
    /// (cgroups, netns, sockmaps).
    Legacy,
}

/// Attach options shared by every family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttachOpts {
    /// Interface choice.
    pub mode: AttachMode,
    /// The value `bpf_get_attach_cookie()` returns (needs a kernel with
    /// cookies; ignored as 0 otherwise).
    pub cookie: u64,
}
