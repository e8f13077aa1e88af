//! cgroup programs (cgroup_skb, cgroup_sock, sock_addr, sock_ops,
//! sockopt, sysctl, device, lsm_cgroup): a cgroup bpf_link
//! (`BPF_LINK_CREATE` with the cgroup fd, 5.7) or the legacy
//! `BPF_PROG_ATTACH` with its sharing flags.
//!
//! A link always shares its cgroup with other programs (the kernel attaches
//! it as `BPF_F_ALLOW_MULTI`), so [`CgroupFlags::Override`],
//! [`CgroupFlags::Exclusive`] and [`CgroupOpts::replace`] exist only with
//! `BPF_PROG_ATTACH`; [`AttachMode::Auto`] picks it for them.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    AsFd, BorrowedFd, Errno, F_ALLOW_MULTI, F_ALLOW_OVERRIDE, LinkCreate, LinkExtra, LinkTarget,
    OwnedFd, link_create, prog_attach,
};

use super::link::Inner;
use super::{AttachError, AttachErrorKind as K, AttachMode, Link, Mechanism, probe};
use crate::Program;

/// How a program shares its cgroup with others (`BPF_PROG_ATTACH`'s
/// flags; every program of one attach type on one cgroup must agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CgroupFlags {
    /// `BPF_F_ALLOW_MULTI`: every program attached here and on the
    /// ancestors runs (what a link does).
    #[default]
    Multi,
    /// `BPF_F_ALLOW_OVERRIDE`: one program, which a descendant's program
    /// overrides.
    Override,
    /// No flag: one program, and descendants may attach none.
    Exclusive,
}

impl CgroupFlags {
    fn bits(self) -> u32 {
        match self {
            CgroupFlags::Multi => F_ALLOW_MULTI,
            CgroupFlags::Override => F_ALLOW_OVERRIDE,
            CgroupFlags::Exclusive => 0,
        }
    }
}

/// Options of [`Program::attach_cgroup`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CgroupOpts<'p> {
    /// Link or `BPF_PROG_ATTACH`.
    pub mode: AttachMode,
    /// Sharing (only [`CgroupFlags::Multi`] with a link).
    pub flags: CgroupFlags,
    /// The attach type, for programs whose section names none
    /// (`cgroup/skb`: ingress or egress); else the one it was loaded with.
    pub attach_type: Option<AttachType>,
    /// A program attached with `BPF_PROG_ATTACH` and
    /// [`CgroupFlags::Multi`] to put this one in its place, atomically
    /// (`BPF_F_REPLACE`). Its own [`Link`] then detaches nothing.
    pub replace: Option<&'p Program>,
}

const CGROUP_TYPES: [ProgType; 8] = [
    ProgType::CGROUP_SKB,
    ProgType::CGROUP_SOCK,
    ProgType::CGROUP_SOCK_ADDR,
    ProgType::SOCK_OPS,
    ProgType::CGROUP_DEVICE,
    ProgType::CGROUP_SYSCTL,
    ProgType::CGROUP_SOCKOPT,
    ProgType::LSM,
];

/// Whether the kernel has cgroup links (5.7): `BPF_LINK_CREATE` of a
/// cgroup_skb program on fd -1 gets `EBADF` from the cgroup lookup where
/// it does, `EINVAL` for the program type where it does not.
pub fn cgroup_link() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    *P.get_or_init(|| {
        let egress = AttachType::CGROUP_INET_EGRESS;
        let Some(prog) = probe::trivial_prog(ProgType::CGROUP_SKB, Some(egress)) else {
            return false;
        };
        let r = link_create(&LinkCreate {
            prog: prog.as_fd(),
            target: LinkTarget::Ifindex(u32::MAX),
            attach_type: egress.0,
            flags: 0,
            extra: LinkExtra::None,
        });
        matches!(r, Err(e) if e.errno == Errno::BADF)
    })
}

/// What `/proc/self/fd/<fd>` says an fd is, for error messages.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> String {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_or_else(
        |_| format!("fd {}", fd.as_raw_fd()),
        |p| p.display().to_string(),
    )
}

/// A dup of `fd` for a link to keep.
pub(crate) fn dup(fd: BorrowedFd<'_>, what: &str) -> Result<OwnedFd, K> {
    fd.try_clone_to_owned().map_err(|source| K::Io {
        path: PathBuf::from(format!("(dup of the {what} fd)")),
        source,
    })
}

impl Program {
    /// Attaches a cgroup program to the cgroup (v2 directory) `cgroup`:
    /// through a cgroup link where the kernel has them and `opts` allow
    /// (libbpf's `bpf_program__attach_cgroup`), else `BPF_PROG_ATTACH`
    /// (`bpf_prog_attach_opts`). The attach type is the program's
    /// (`cgroup_skb/egress`, `cgroup/connect4`, `lsm_cgroup/...`) or
    /// [`CgroupOpts::attach_type`].
    ///
    /// # Errors
    /// [`K::WrongType`] for a program that is not a cgroup program,
    /// [`K::NoTarget`] when no attach type is known, [`K::Unsupported`] for
    /// flags a link cannot have under [`AttachMode::Link`]; the kernel's
    /// error otherwise (`EPERM` when the cgroup's programs of this type
    /// were attached with other flags).
    pub fn attach_cgroup(
        &self,
        cgroup: impl AsFd,
        opts: CgroupOpts<'_>,
    ) -> Result<Link, AttachError> {
        let cgroup = cgroup.as_fd();
        let target = format!("cgroup '{}'", fd_path(cgroup));
        self.cgroup_at(cgroup, target, opts)
    }

    /// [`Program::attach_cgroup`] to the cgroup directory at `path`
    /// (`/sys/fs/cgroup/app`).
    ///
    /// # Errors
    /// [`K::NotFound`] when there is no such directory; otherwise as
    /// [`Program::attach_cgroup`].
    pub fn attach_cgroup_path(
        &self,
        path: impl AsRef<Path>,
        opts: CgroupOpts<'_>,
    ) -> Result<Link, AttachError> {
        let (dir, target) = self.open_target(path.as_ref(), "cgroup")?;
        self.cgroup_at(dir.as_fd(), target, opts)
    }

    fn cgroup_at(
        &self,
        cgroup: BorrowedFd<'_>,
        target: String,
        opts: CgroupOpts<'_>,
    ) -> Result<Link, AttachError> {
        let fail = |k| self.attach_err(&target, k);
        if !CGROUP_TYPES.contains(&self.prog_type()) {
            return Err(fail(K::WrongType(format!(
                "a {} program does not attach to a cgroup",
                self.prog_type()
            ))));
        }
        let attach_type = opts
            .attach_type
            .or(self.attach_type())
            .ok_or_else(|| fail(K::NoTarget))?;
        if self.prog_type() == ProgType::LSM && attach_type != AttachType::LSM_CGROUP {
            return Err(fail(K::WrongType(
                "only lsm_cgroup programs of the LSM type attach to a cgroup".into(),
            )));
        }
        if opts.replace.is_some() && opts.flags != CgroupFlags::Multi {
            // The kernel's EINVAL, said before anything is attempted.
            return Err(fail(K::Unsupported(
                "replacing a program needs CgroupFlags::Multi (BPF_F_REPLACE with ALLOW_MULTI)"
                    .into(),
            )));
        }
        let shared = opts.flags == CgroupFlags::Multi && opts.replace.is_none();
        let use_link = match opts.mode {
            AttachMode::Legacy => false,
            AttachMode::Link if !shared => {
                return Err(fail(K::Unsupported(
                    "a cgroup link always shares the cgroup (ALLOW_MULTI) and cannot replace; \
                     use AttachMode::Legacy for other flags"
                        .into(),
                )));
            }
            AttachMode::Link if !cgroup_link() => {
                return Err(fail(K::Unsupported(
                    "this kernel has no cgroup links (5.7)".into(),
                )));
            }
            AttachMode::Link => true,
            AttachMode::Auto => shared && cgroup_link(),
        };
        if use_link {
            return self.link_to_fd(cgroup, attach_type.0, target);
        }
        // Dups first: once attached, nothing may fail before the link
        // that detaches it exists.
        let kept = dup(cgroup, "cgroup").map_err(&fail)?;
        let prog = dup(self.fd(), "program").map_err(&fail)?;
        let flags = opts.flags.bits();
        prog_attach(
            self.fd(),
            cgroup,
            attach_type.0,
            flags,
            opts.replace.map(Program::fd),
        )
        .map_err(|e| fail(K::Sys(e)))?;
        let inner = Inner::ProgAttach {
            target: kept,
            prog,
            attach_type: attach_type.0,
            flags,
        };
        Ok(Link::new(self.name(), target, Mechanism::ProgAttach, inner))
    }
}
