//! Links and attachment: `BPF_LINK_CREATE`, `BPF_LINK_UPDATE`,
//! `BPF_LINK_DETACH`, `BPF_RAW_TRACEPOINT_OPEN`, and the legacy
//! `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` / `BPF_PROG_QUERY`.

use core::ffi::CStr;
use core::mem::offset_of;

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::{bpf, bpf_errno, bpf_fd, errno, len_out};
use crate::attr::LinkCreateKprobeMultiAttr;
use crate::attr::LinkCreateUprobeMultiAttr;
use crate::attr::{
    LinkCreateAttr, LinkUpdateAttr, OneAttr, ProgAttachAttr, QueryAttr, RawTracepointAttr,
};
use crate::call::{Attr, Cmd, Layout};
use crate::error::Result;
use crate::id::ProgId;

/// `BPF_F_REPLACE`.
pub(crate) const F_REPLACE: u32 = 1 << 2;
/// `BPF_F_ALLOW_OVERRIDE`: a cgroup's one program may be overridden by
/// its descendants' programs.
pub const F_ALLOW_OVERRIDE: u32 = 1;
/// `BPF_F_ALLOW_MULTI`: a cgroup runs every program attached to it and
/// to its ancestors.
pub const F_ALLOW_MULTI: u32 = 1 << 1;
/// `BPF_F_NETFILTER_IP_DEFRAG`: the hook sees defragmented packets.
pub const NETFILTER_IP_DEFRAG: u32 = 1;

/// `BPF_LINK_TYPE_RAW_TRACEPOINT`.
pub const LINK_TYPE_RAW_TRACEPOINT: u32 = 1;
/// `BPF_LINK_TYPE_TRACING`.
pub const LINK_TYPE_TRACING: u32 = 2;
/// `BPF_LINK_TYPE_CGROUP`.
pub const LINK_TYPE_CGROUP: u32 = 3;
/// `BPF_LINK_TYPE_NETNS`.
pub const LINK_TYPE_NETNS: u32 = 5;
/// `BPF_LINK_TYPE_XDP`.
pub const LINK_TYPE_XDP: u32 = 6;
/// `BPF_LINK_TYPE_TCX`.
pub const LINK_TYPE_TCX: u32 = 11;
/// `BPF_LINK_TYPE_NETKIT`.
pub const LINK_TYPE_NETKIT: u32 = 13;

/// `BPF_F_BEFORE`: attach before the relative program or link (tcx,
/// netkit); without one, first.
pub const F_BEFORE: u32 = 1 << 3;
/// `BPF_F_AFTER`: attach after the relative program or link; without one,
/// last.
pub const F_AFTER: u32 = 1 << 4;
/// `BPF_F_ID`: the relative object is given by id, not fd.
pub const F_ID: u32 = 1 << 5;
/// `BPF_F_LINK`: the relative object is a link, not a program.
pub const F_LINK: u32 = 1 << 13;

/// The program or link a tcx or netkit attachment is placed next to
/// (`relative_fd` / `relative_id`); which of the two, and whether it is a
/// link, the flags say (`BPF_F_ID`, `BPF_F_LINK`).
#[derive(Debug, Clone, Copy, Default)]
pub enum Relative<'a> {
    /// None: first or last in the chain.
    #[default]
    None,
    /// A program or link fd.
    Fd(BorrowedFd<'a>),
    /// A program or link id (with `BPF_F_ID`).
    Id(u32),
}

impl PartialEq for Relative<'_> {
    fn eq(&self, other: &Self) -> bool {
        use rustix::fd::AsRawFd;
        match (self, other) {
            (Relative::None, Relative::None) => true,
            (Relative::Fd(a), Relative::Fd(b)) => a.as_raw_fd() == b.as_raw_fd(),
            (Relative::Id(a), Relative::Id(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Relative<'_> {}

/// Where a link attaches.
#[derive(Debug, Clone, Copy)]
pub enum LinkTarget<'a> {
    /// No target object (tracing, `tp_btf`, LSM, iterators).
    None,
    /// A cgroup, netns, program (freplace) or other object fd.
    Fd(BorrowedFd<'a>),
    /// A network device (XDP, tcx, netkit).
    Ifindex(u32),
}

/// The type-dependent tail of `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkExtra<'a> {
    /// Nothing.
    #[default]
    None,
    /// `target_btf_id` (freplace: the BTF id of the replaced function).
    TargetBtfId(u32),
    /// `perf_event.bpf_cookie` (attach type `BPF_PERF_EVENT`, with a
    /// perf event fd as target).
    PerfEvent {
        /// Value for `bpf_get_attach_cookie()`.
        bpf_cookie: u64,
    },
    /// `tracing` (fentry, fexit, fmod_ret, LSM).
    Tracing {
        /// Target BTF id (0: the program's `attach_btf_id`).
        target_btf_id: u32,
        /// Value for `bpf_get_attach_cookie()`.
        cookie: u64,
    },
    /// `iter_info` (attach type `BPF_TRACE_ITER`): the bytes of a
    /// `union bpf_iter_link_info` (a map fd for map iterators, a cgroup or
    /// task for those iterators), which the kernel reads.
    Iter(&'a [u8]),
    /// `tcx` and `netkit` (attach types `BPF_TCX_*`, `BPF_NETKIT_*`, with
    /// an ifindex target): the program's place in the device's chain.
    Tcx {
        /// The program or link placed next to (`BPF_F_BEFORE` /
        /// `BPF_F_AFTER` in the flags say on which side).
        relative: Relative<'a>,
        /// Fail with `ESTALE` unless the chain is at this revision (0:
        /// any).
        expected_revision: u64,
    },
    /// `uprobe_multi` (attach type `BPF_TRACE_UPROBE_MULTI`, 6.6): one
    /// link holding a uprobe at each offset of one binary. `cnt` is
    /// `offsets.len()`; `ref_ctr_offsets` and `cookies` are empty or as
    /// long as `offsets` (else `EINVAL`, before the call).
    UprobeMulti {
        /// The binary.
        path: &'a CStr,
        /// File offsets of the probes.
        offsets: &'a [u64],
        /// USDT semaphore file offsets, one per probe, or empty.
        ref_ctr_offsets: &'a [u64],
        /// `bpf_get_attach_cookie()` values, one per probe, or empty.
        cookies: &'a [u64],
        /// `BPF_F_UPROBE_MULTI_RETURN` for return probes.
        flags: u32,
        /// Only this process (0: every process).
        pid: u32,
    },
    /// `kprobe_multi` (attach type `BPF_TRACE_KPROBE_MULTI`, 5.18, or
    /// `BPF_TRACE_KPROBE_SESSION`, 6.10): one link holding a kprobe on each
    /// kernel function, named in `syms` or given by address in `addrs`
    /// (exactly one of the two non-empty; `cnt` is its length). `cookies`
    /// is empty or one per function (else `EINVAL`, before the call).
    KprobeMulti {
        /// Function names (the kernel resolves each through kallsyms).
        syms: &'a [&'a CStr],
        /// Function addresses.
        addrs: &'a [u64],
        /// `bpf_get_attach_cookie()` values, one per function, or empty.
        cookies: &'a [u64],
        /// `BPF_F_KPROBE_MULTI_RETURN` for return probes.
        flags: u32,
    },
    /// `netfilter` (attach type `BPF_NETFILTER`, 6.4): where in the
    /// netfilter hooks of the caller's network namespace.
    Netfilter {
        /// `NFPROTO_IPV4` (2) or `NFPROTO_IPV6` (10).
        pf: u32,
        /// `NF_INET_PRE_ROUTING` (0) .. `NF_INET_POST_ROUTING` (4).
        hooknum: u32,
        /// Order among the hook's functions (lower runs first).
        priority: i32,
        /// [`NETFILTER_IP_DEFRAG`] or 0.
        flags: u32,
    },
}

/// `BPF_F_UPROBE_MULTI_RETURN`: `uprobe_multi` probes fire on return.
pub const F_UPROBE_MULTI_RETURN: u32 = 1;

/// `BPF_F_KPROBE_MULTI_RETURN`: `kprobe_multi` probes fire on return.
pub const F_KPROBE_MULTI_RETURN: u32 = 1;

/// What `BPF_LINK_CREATE` needs.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreate<'a> {
    /// The program.
    pub prog: BorrowedFd<'a>,
    /// Where it attaches.
    pub target: LinkTarget<'a>,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// Flags.
    pub flags: u32,
    /// Type-dependent tail.
    pub extra: LinkExtra<'a>,
}

/// `BPF_LINK_CREATE`—Attaches a program through a link; closing the last
/// fd of the link (and unpinning it) detaches it.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `Documentation/bpf/`.
#[doc(alias = "BPF_LINK_CREATE")]
pub fn link_create(l: &LinkCreate<'_>) -> Result<OwnedFd> {
    type A = LinkCreateAttr;
    let mut a = match l.extra {
        LinkExtra::Iter(_) => Attr::with_layout(Cmd::LinkCreate, Layout::LinkCreateIter),
        LinkExtra::UprobeMulti { .. } => {
            Attr::with_wider_layout(Cmd::LinkCreate, Layout::LinkCreateUprobeMulti)
        }
        LinkExtra::KprobeMulti { .. } => {
            Attr::with_layout(Cmd::LinkCreate, Layout::LinkCreateKprobeMulti)
        }
        _ => Attr::new(Cmd::LinkCreate),
    };
    a.put_fd(offset_of!(A, prog_fd), l.prog);
    match l.target {
        LinkTarget::None => {}
        LinkTarget::Fd(fd) => a.put_fd(offset_of!(A, target_fd), fd),
        LinkTarget::Ifindex(i) => a.put_u32(offset_of!(A, target_fd), i),
    }
    a.put_u32(offset_of!(A, attach_type), l.attach_type);
    a.put_u32(offset_of!(A, flags), l.flags);
    // The union at 16.. holds pointers for some attach types (iterators,
    // kprobe/uprobe multi), which the kernel only reads; ember writes
    // integers there only.
    match l.extra {
        LinkExtra::None => {}
        LinkExtra::TargetBtfId(id) => a.put_u32(offset_of!(A, target_btf_id), id),
        LinkExtra::PerfEvent { bpf_cookie } => {
            a.put_u64(offset_of!(A, target_btf_id), bpf_cookie);
        }
        LinkExtra::Tracing {
            target_btf_id,
            cookie,
        } => {
            a.put_u32(offset_of!(A, target_btf_id), target_btf_id);
            a.put_u64(offset_of!(A, cookie), cookie);
        }
        LinkExtra::Iter(info) => {
            if !info.is_empty() {
                a.put_slice(offset_of!(A, target_btf_id), info);
                a.put_len(offset_of!(A, cookie), info.len());
            }
        }
        // `tcx` and `netkit` share the layout: a relative fd or id at the
        // union's start, the expected revision at 8.
        LinkExtra::Tcx {
            relative,
            expected_revision,
        } => {
            match relative {
                Relative::None => {}
                Relative::Fd(fd) => a.put_fd(offset_of!(A, target_btf_id), fd),
                Relative::Id(id) => a.put_u32(offset_of!(A, target_btf_id), id),
            }
            a.put_u64(offset_of!(A, cookie), expected_revision);
        }
        LinkExtra::UprobeMulti {
            path,
            offsets,
            ref_ctr_offsets,
            cookies,
            flags,
            pid,
        } => {
            type U = LinkCreateUprobeMultiAttr;
            let n = offsets.len();
            if n == 0
                || [ref_ctr_offsets, cookies]
                    .iter()
                    .any(|s| !s.is_empty() && s.len() != n)
            {
                return Err(errno("BPF_LINK_CREATE", Errno::INVAL));
            }
            a.put_cstr(offset_of!(U, path), path);
            a.put_slice(offset_of!(U, offsets), offsets);
            a.put_slice(offset_of!(U, ref_ctr_offsets), ref_ctr_offsets);
            a.put_slice(offset_of!(U, cookies), cookies);
            a.put_len(offset_of!(U, cnt), n);
            a.put_u32(offset_of!(U, uprobe_flags), flags);
            a.put_u32(offset_of!(U, pid), pid);
        }
        LinkExtra::KprobeMulti {
            syms,
            addrs,
            cookies,
            flags,
        } => {
            type K = LinkCreateKprobeMultiAttr;
            let n = syms.len().max(addrs.len());
            if n == 0
                || (!syms.is_empty() && !addrs.is_empty())
                || (!cookies.is_empty() && cookies.len() != n)
            {
                return Err(errno("BPF_LINK_CREATE", Errno::INVAL));
            }
            a.put_u32(offset_of!(K, kprobe_flags), flags);
            a.put_len(offset_of!(K, cnt), n);
            a.put_cstrs(offset_of!(K, syms), syms);
            a.put_slice(offset_of!(K, addrs), addrs);
            a.put_slice(offset_of!(K, cookies), cookies);
        }
        LinkExtra::Netfilter {
            pf,
            hooknum,
            priority,
            flags,
        } => {
            // struct { __u32 pf; __u32 hooknum; __s32 priority; __u32 flags; }
            let at = offset_of!(A, target_btf_id);
            a.put_u32(at, pf);
            a.put_u32(at + 4, hooknum);
            a.put_u32(at + 8, priority.cast_unsigned());
            a.put_u32(at + 12, flags);
        }
    }
    bpf_fd(&mut a)
}

/// `BPF_ITER_CREATE`—Opens a new iterator over the iterator link `link`;
/// reading the returned fd runs the program and yields its output.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `kernel/bpf/bpf_iter.c`.
#[doc(alias = "BPF_ITER_CREATE")]
pub fn iter_create(link: BorrowedFd<'_>) -> Result<OwnedFd> {
    let mut a = Attr::new(Cmd::IterCreate);
    a.put_fd(offset_of!(OneAttr, value), link);
    bpf_fd(&mut a)
}

/// `BPF_LINK_UPDATE`—Swaps the program of `link` for `new_prog`; with
/// `old_prog`, only if that is the current one (`BPF_F_REPLACE` is set
/// for you).
///
/// # Errors
/// The kernel's errno (`EPERM` when `old_prog` is not current).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_LINK_UPDATE")]
pub fn link_update(
    link: BorrowedFd<'_>,
    new_prog: BorrowedFd<'_>,
    old_prog: Option<BorrowedFd<'_>>,
) -> Result<()> {
    type A = LinkUpdateAttr;
    let mut a = Attr::new(Cmd::LinkUpdate);
    a.put_fd(offset_of!(A, link_fd), link);
    a.put_fd(offset_of!(A, new_prog_fd), new_prog);
    if let Some(old) = old_prog {
        a.put_u32(offset_of!(A, flags), F_REPLACE);
        a.put_fd(offset_of!(A, old_prog_fd), old);
    }
    bpf(&mut a).map(drop)
}

/// `BPF_LINK_DETACH`—Detaches `link` now; the fd stays open but defunct.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_LINK_DETACH")]
pub fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    let mut a = Attr::new(Cmd::LinkDetach);
    a.put_fd(offset_of!(OneAttr, value), link);
    bpf(&mut a).map(drop)
}

/// `BPF_RAW_TRACEPOINT_OPEN`—Attaches a raw tracepoint program to the
/// tracepoint `name`; `None` for a BTF-typed (`tp_btf`) tracing program,
/// whose target was fixed at load. Returns the link.
///
/// # Errors
/// The kernel's errno (`ENOENT` for an unknown tracepoint).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_RAW_TRACEPOINT_OPEN")]
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&CStr>) -> Result<OwnedFd> {
    let mut a = Attr::new(Cmd::RawTracepointOpen);
    if let Some(n) = name {
        a.put_cstr(offset_of!(RawTracepointAttr, name), n);
    }
    a.put_fd(offset_of!(RawTracepointAttr, prog_fd), prog);
    bpf_fd(&mut a)
}

/// `BPF_PROG_ATTACH`—Attaches `prog` to `target` (a cgroup, netns, sockmap
/// or device fd) the legacy way, which outlives the fd. With `replace`,
/// that program is replaced (`BPF_F_REPLACE` is set for you).
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_PROG_ATTACH")]
pub fn prog_attach(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> Result<()> {
    type A = ProgAttachAttr;
    let mut a = Attr::new(Cmd::ProgAttach);
    a.put_fd(offset_of!(A, target_fd), target);
    a.put_fd(offset_of!(A, attach_bpf_fd), prog);
    a.put_u32(offset_of!(A, attach_type), attach_type);
    let flags = match replace {
        Some(old) => {
            a.put_fd(offset_of!(A, replace_bpf_fd), old);
            flags | F_REPLACE
        }
        None => flags,
    };
    a.put_u32(offset_of!(A, attach_flags), flags);
    bpf(&mut a).map(drop)
}

/// `BPF_PROG_ATTACH` with no target—Attaches `prog` to the calling
/// thread's network namespace (flow dissectors: the kernel refuses a
/// target fd for them).
///
/// # Errors
/// The kernel's errno (`EEXIST` when this program is attached already).
///
/// # References
/// bpf(2); `kernel/bpf/net_namespace.c`.
#[doc(alias = "BPF_PROG_ATTACH")]
pub fn prog_attach_current_netns(prog: BorrowedFd<'_>, attach_type: u32) -> Result<()> {
    type A = ProgAttachAttr;
    let mut a = Attr::new(Cmd::ProgAttach);
    a.put_fd(offset_of!(A, attach_bpf_fd), prog);
    a.put_u32(offset_of!(A, attach_type), attach_type);
    bpf(&mut a).map(drop)
}

/// `BPF_PROG_DETACH` with no target—Detaches `prog` from the calling
/// thread's network namespace (the counterpart of
/// [`prog_attach_current_netns`]).
///
/// # Errors
/// The kernel's errno (`ENOENT` when it is not attached there).
///
/// # References
/// bpf(2); `kernel/bpf/net_namespace.c`.
#[doc(alias = "BPF_PROG_DETACH")]
pub fn prog_detach_current_netns(prog: BorrowedFd<'_>, attach_type: u32) -> Result<()> {
    type A = ProgAttachAttr;
    let mut a = Attr::new(Cmd::ProgDetach);
    a.put_fd(offset_of!(A, attach_bpf_fd), prog);
    a.put_u32(offset_of!(A, attach_type), attach_type);
    bpf(&mut a).map(drop)
}

/// `BPF_PROG_DETACH`—Detaches `prog` (or, with `None`, the one program
/// attached without `BPF_F_ALLOW_MULTI`) from `target`.
///
/// # Errors
/// The kernel's errno (`ENOENT` when nothing matches).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_PROG_DETACH")]
pub fn prog_detach(
    prog: Option<BorrowedFd<'_>>,
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<()> {
    type A = ProgAttachAttr;
    let mut a = Attr::new(Cmd::ProgDetach);
    a.put_fd(offset_of!(A, target_fd), target);
    if let Some(p) = prog {
        a.put_fd(offset_of!(A, attach_bpf_fd), p);
    }
    a.put_u32(offset_of!(A, attach_type), attach_type);
    bpf(&mut a).map(drop)
}

/// What `BPF_PROG_QUERY` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgQuery {
    /// The container's attach flags (`BPF_F_ALLOW_MULTI`, ...).
    pub attach_flags: u32,
    /// Programs attached, which may exceed what the slice held.
    pub prog_cnt: u32,
    /// Leading ids (and flags) written to the caller's slices.
    pub written: usize,
    /// Attachment revision (kernels with multi-program attachment; else 0).
    pub revision: u64,
}

/// `BPF_PROG_QUERY`—Lists the ids of programs attached to `target` for
/// `attach_type` into `prog_ids` (and their attach flags into
/// `prog_attach_flags`; the kernel fills the shorter length of the two).
/// `query_flags` may be `BPF_F_QUERY_EFFECTIVE` (1) for the programs that
/// actually run, inherited ones included (the kernel then refuses
/// `prog_attach_flags`).
///
/// When the slice is too short the kernel fills it and says `ENOSPC`;
/// that is not an error here: `prog_cnt > written` tells.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_PROG_QUERY")]
pub fn prog_query(
    target: BorrowedFd<'_>,
    attach_type: u32,
    query_flags: u32,
    prog_ids: &mut [ProgId],
    prog_attach_flags: Option<&mut [u32]>,
) -> Result<ProgQuery> {
    type Q = QueryAttr;
    let cmd = Cmd::ProgQuery;
    let room = prog_attach_flags
        .as_deref()
        .map_or(prog_ids.len(), |f| f.len().min(prog_ids.len()));
    let room = len_out(room);
    let mut a = Attr::new(cmd);
    a.put_fd(offset_of!(Q, target_fd), target);
    a.put_u32(offset_of!(Q, attach_type), attach_type);
    a.put_u32(offset_of!(Q, query_flags), query_flags);
    if room > 0 {
        a.put_u32(offset_of!(Q, prog_cnt), room);
        a.put_mut_slice(offset_of!(Q, prog_ids), prog_ids);
        if let Some(f) = prog_attach_flags {
            a.put_mut_slice(offset_of!(Q, prog_attach_flags), f);
        }
    }
    match bpf_errno(&mut a) {
        Ok(_) => {}
        Err(e) if e == Errno::NOSPC => {}
        Err(e) => return Err(errno(cmd.name(), e)),
    }
    let prog_cnt = a.get_u32(offset_of!(Q, prog_cnt));
    Ok(ProgQuery {
        attach_flags: a.get_u32(offset_of!(Q, attach_flags)),
        prog_cnt,
        written: usize::try_from(prog_cnt.min(room)).unwrap_or(usize::MAX),
        revision: a.get_u64(offset_of!(Q, revision)),
    })
}

/// `BPF_PROG_QUERY` on a network device—Lists, in chain order, the ids of
/// the programs attached to the interface `ifindex` (in the calling
/// thread's network namespace) for `attach_type` (`BPF_TCX_INGRESS`,
/// `BPF_TCX_EGRESS`, `BPF_NETKIT_*`), as [`prog_query`] does for an fd
/// target. The revision tells [`LinkExtra::Tcx`]'s `expected_revision`.
///
/// # Errors
/// The kernel's errno (`ENODEV` for no such interface).
///
/// # References
/// bpf(2); `kernel/bpf/mprog.c`.
#[doc(alias = "BPF_PROG_QUERY")]
pub fn prog_query_ifindex(
    ifindex: u32,
    attach_type: u32,
    prog_ids: &mut [ProgId],
) -> Result<ProgQuery> {
    type Q = QueryAttr;
    let cmd = Cmd::ProgQuery;
    let room = len_out(prog_ids.len());
    let mut a = Attr::new(cmd);
    a.put_u32(offset_of!(Q, target_fd), ifindex);
    a.put_u32(offset_of!(Q, attach_type), attach_type);
    if room > 0 {
        a.put_u32(offset_of!(Q, prog_cnt), room);
        a.put_mut_slice(offset_of!(Q, prog_ids), prog_ids);
    }
    match bpf_errno(&mut a) {
        Ok(_) => {}
        Err(e) if e == Errno::NOSPC => {}
        Err(e) => return Err(errno(cmd.name(), e)),
    }
    let prog_cnt = a.get_u32(offset_of!(Q, prog_cnt));
    Ok(ProgQuery {
        attach_flags: a.get_u32(offset_of!(Q, attach_flags)),
        prog_cnt,
        written: usize::try_from(prog_cnt.min(room)).unwrap_or(usize::MAX),
        revision: a.get_u64(offset_of!(Q, revision)),
    })
}
