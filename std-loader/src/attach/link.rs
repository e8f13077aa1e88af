//! The owned link: what an attachment created, released on drop.

use core::fmt;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ember_core::object::LinkType;
use ember_sys::{
    AsFd, BorrowedFd, LinkInfo, OwnedFd, PerfEvent, link_info, link_update, obj_get, obj_pin,
    prog_attach, prog_detach,
};

use super::tracefs::TracefsProbe;
use super::{AttachError, AttachErrorKind};
use crate::Program;

/// How an attachment reaches the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// A bpf_link (`BPF_LINK_CREATE`, `BPF_RAW_TRACEPOINT_OPEN`).
    BpfLink,
    /// A perf event held by a bpf_link (`BPF_LINK_TYPE_PERF_EVENT`, 5.15).
    PerfEventLink,
    /// A perf event with `PERF_EVENT_IOC_SET_BPF`, detached by closing it.
    PerfIoctl,
    /// A probe created in tracefs `kprobe_events` / `uprobe_events`
    /// (removed on detach), then attached as a perf event.
    TracefsEvent,
    /// A netlink request (XDP on the interface, a TC filter), undone by
    /// another on detach.
    Netlink,
    /// `BPF_PROG_ATTACH`, undone by `BPF_PROG_DETACH`.
    ProgAttach,
    /// A socket option (`SO_ATTACH_BPF`), undone by `SO_DETACH_BPF`.
    SocketOption,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::BpfLink => "bpf_link",
            Mechanism::PerfEventLink => "perf-event link",
            Mechanism::PerfIoctl => "perf ioctl",
            Mechanism::TracefsEvent => "tracefs event",
            Mechanism::Netlink => "netlink",
            Mechanism::ProgAttach => "PROG_ATTACH",
            Mechanism::SocketOption => "socket option",
        })
    }
}

/// An attachment the loader undoes itself (netlink, socket options):
/// implemented by the families that need one.
pub(crate) trait Detach: fmt::Debug + Send + Sync {
    /// Undoes the attachment; called once.
    fn detach(&mut self) -> Result<(), AttachErrorKind>;
}

/// What a link owns. Field order is drop order: the bpf_link closes
/// before the perf event it holds, the perf event before its tracefs
/// probe is removed.
#[derive(Debug)]
pub(crate) enum Inner {
    /// A bpf_link fd; for perf-event links also the event and probe.
    Fd {
        link: OwnedFd,
        perf: Option<PerfEvent>,
        probe: Option<TracefsProbe>,
    },
    /// A perf event carrying the program (`PERF_EVENT_IOC_SET_BPF`).
    Ioctl {
        perf: PerfEvent,
        probe: Option<TracefsProbe>,
    },
    /// `BPF_PROG_ATTACH` to `target` (a cgroup, netns, map or device).
    ProgAttach {
        target: OwnedFd,
        prog: OwnedFd,
        attach_type: u32,
        flags: u32,
    },
    /// Undone by its own code.
    Custom(Box<dyn Detach>),
    /// Several attachments made as one (a perf event per CPU).
    Group(Vec<Link>),
    /// Detached already (by [`Link::detach`]).
    Done,
}

/// An attached program. Dropping it detaches the program, unless the link
/// is pinned: a pinned link lives on in bpffs until [`Link::unpin`] (or
/// removing the pin file) and the last fd close.
#[must_use = "dropping a Link detaches the program"]
#[derive(Debug)]
pub struct Link {
    program: String,
    target: String,
    mechanism: Mechanism,
    inner: Inner,
    pinned: Option<PathBuf>,
}

impl Link {
    pub(crate) fn new(program: &str, target: String, mechanism: Mechanism, inner: Inner) -> Link {
        Link {
            program: program.to_owned(),
            target,
            mechanism,
            inner,
            pinned: None,
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The attached program's name.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// Where it is attached, as a user would say it (`tracepoint
    /// 'sched/sched_switch'`, `interface 'eth0' (ifindex 2)`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The kernel interface the attachment uses.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The bpf_link fd, for links that are bpf_links (plain and
    /// perf-event links).
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.inner {
            Inner::Fd { link, .. } => Some(link.as_fd()),
            _ => None,
        }
    }

    /// Whether the link can be pinned: a bpf_link that owns nothing the
    /// kernel would not clean up itself. A link over a tracefs probe is
    /// not, because the probe would outlive this process unremoved.
    pub fn can_pin(&self) -> bool {
        matches!(&self.inner, Inner::Fd { probe: None, .. })
    }

    /// Where it is pinned, if this process pinned it or opened it from a
    /// pin.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pinned.as_deref()
    }

    /// What the kernel reports about the link (id, type, program id).
    ///
    /// # Errors
    /// [`AttachErrorKind::Unsupported`] for a link that is not a
    /// bpf_link; the kernel's error otherwise.
    pub fn info(&self) -> Result<LinkInfo, AttachError> {
        let fd = self
            .fd()
            .ok_or_else(|| self.not_a_bpf_link("report info"))?;
        link_info(fd).map_err(|e| self.err(AttachErrorKind::Sys(e)))
    }

    /// Pins the link at `path` in a bpffs, so it stays attached after
    /// this process exits.
    ///
    /// # Errors
    /// [`AttachErrorKind::Unsupported`] when [`Link::can_pin`] is false;
    /// the kernel's error otherwise.
    pub fn pin(&mut self, path: impl AsRef<Path>) -> Result<(), AttachError> {
        let path = path.as_ref();
        if !self.can_pin() {
            return Err(self.err(AttachErrorKind::Unsupported(format!(
                "a {} link cannot be pinned",
                self.mechanism
            ))));
        }
        let fd = self.fd().ok_or_else(|| self.not_a_bpf_link("pin"))?;
        obj_pin(fd, &cpath(path)).map_err(|e| self.err(AttachErrorKind::Sys(e)))?;
        self.pinned = Some(path.to_owned());
        Ok(())
    }

    /// Removes the pin; the link detaches when the last fd closes (this
    /// one, when it is dropped).
    ///
    /// # Errors
    /// The file's removal error; [`AttachErrorKind::Unsupported`] when
    /// it is not pinned.
    pub fn unpin(&mut self) -> Result<(), AttachError> {
        let Some(path) = self.pinned.take() else {
            return Err(self.err(AttachErrorKind::Unsupported("it is not pinned".into())));
        };
        std::fs::remove_file(&path).map_err(|source| {
            let e = self.err(AttachErrorKind::Io {
                path: path.clone(),
                source,
            });
            self.pinned = Some(path);
            e
        })
    }

    /// Opens a link pinned at `path`, checking that it is a bpf_link of
    /// type `expect` (when given). The returned link detaches on drop only
    /// after [`Link::unpin`].
    ///
    /// # Errors
    /// The kernel's error opening it, or [`AttachErrorKind::WrongType`]
    /// when the pin is another kind of object or link.
    pub fn from_pin(path: impl AsRef<Path>, expect: Option<LinkType>) -> Result<Link, AttachError> {
        let path = path.as_ref();
        let target = format!("pin '{}'", path.display());
        let fail = |kind| AttachError::new("", target.clone(), kind);
        let fd = obj_get(&cpath(path)).map_err(|e| fail(AttachErrorKind::Sys(e)))?;
        // A pinned map or program opens too, and its info would decode as
        // a link's: ask what the fd is.
        let not_link = || {
            fail(AttachErrorKind::WrongType(
                "the pinned object is not a link".into(),
            ))
        };
        if !is_bpf_link(fd.as_fd()) {
            return Err(not_link());
        }
        let info = link_info(fd.as_fd()).map_err(|_| not_link())?;
        let got = LinkType(info.link_type);
        if let Some(want) = expect.filter(|w| *w != got) {
            return Err(fail(AttachErrorKind::WrongType(format!(
                "the pinned link is a {got} link, not {want}"
            ))));
        }
        let mechanism = if got == LinkType::PERF_EVENT {
            Mechanism::PerfEventLink
        } else {
            Mechanism::BpfLink
        };
        let program = ember_sys::get_fd_by_id(info.prog_id, 0)
            .and_then(|p| ember_sys::prog_info(p.as_fd()))
            .map(|p| p.name().to_owned())
            .unwrap_or_default();
        Ok(Link {
            program,
            target,
            mechanism,
            inner: Inner::Fd {
                link: fd,
                perf: None,
                probe: None,
            },
            pinned: Some(path.to_owned()),
        })
    }

    /// Replaces the attached program with `prog`, atomically where the
    /// kernel can: `BPF_LINK_UPDATE` for bpf_links, `BPF_F_REPLACE` for a
    /// cgroup program attached with `BPF_PROG_ATTACH`.
    ///
    /// # Errors
    /// [`AttachErrorKind::Unsupported`] for other mechanisms; the
    /// kernel's error (`EINVAL` for a program of another type).
    pub fn update(&mut self, prog: &Program) -> Result<(), AttachError> {
        let new = prog.fd();
        let res = match &mut self.inner {
            Inner::Fd {
                link, perf: None, ..
            } => link_update(link.as_fd(), new, None),
            Inner::ProgAttach {
                target,
                prog: old,
                attach_type,
                flags,
            } => {
                // BPF_F_REPLACE exists for ALLOW_MULTI only; a cgroup's
                // single program (and a sockmap's) is replaced by attaching
                // again with the same flags.
                let replace = (*flags & ember_sys::F_ALLOW_MULTI != 0).then(|| old.as_fd());
                let r = prog_attach(new, target.as_fd(), *attach_type, *flags, replace);
                if r.is_ok() {
                    match new.try_clone_to_owned() {
                        Ok(fd) => *old = fd,
                        Err(e) => {
                            return Err(self.err(AttachErrorKind::Io {
                                path: PathBuf::from("(dup of the program fd)"),
                                source: e,
                            }));
                        }
                    }
                }
                r
            }
            _ => {
                return Err(self.err(AttachErrorKind::Unsupported(format!(
                    "a {} link cannot swap its program",
                    self.mechanism
                ))));
            }
        };
        res.map_err(|e| self.err(AttachErrorKind::Sys(e)))?;
        self.program = prog.name().to_owned();
        Ok(())
    }

    /// Detaches now, reporting what the kernel says (dropping detaches
    /// too, but can only log a failure). A pinned link is unpinned first.
    ///
    /// # Errors
    /// The first failure; the rest is still released.
    pub fn detach(mut self) -> Result<(), AttachError> {
        if self.pinned.is_some() {
            self.unpin()?;
        }
        let inner = core::mem::replace(&mut self.inner, Inner::Done);
        release(inner).map_err(|k| self.err(k))
    }

    fn err(&self, kind: AttachErrorKind) -> AttachError {
        AttachError::new(&self.program, self.target.clone(), kind)
    }

    fn not_a_bpf_link(&self, what: &str) -> AttachError {
        self.err(AttachErrorKind::Unsupported(format!(
            "a {} link is not a bpf_link and cannot {what}",
            self.mechanism
        )))
    }
}

/// Undoes what `inner` holds; every part is released even when one fails.
fn release(inner: Inner) -> Result<(), AttachErrorKind> {
    match inner {
        Inner::Fd { .. } | Inner::Done => Ok(()),
        Inner::Ioctl { perf, probe } => {
            // Closing the event detaches the program; disabling first
            // stops it firing in between, as libbpf does.
            let r = perf.disable().map_err(AttachErrorKind::Sys);
            drop(perf);
            drop(probe);
            r
        }
        Inner::ProgAttach {
            target,
            prog,
            attach_type,
            ..
        } => prog_detach(Some(prog.as_fd()), target.as_fd(), attach_type)
            .map_err(AttachErrorKind::Sys),
        Inner::Custom(mut d) => d.detach(),
        Inner::Group(links) => {
            let mut first = Ok(());
            for l in links {
                if let Err(e) = l.detach() {
                    first = first.and(Err(e.kind));
                }
            }
            first
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let inner = core::mem::replace(&mut self.inner, Inner::Done);
        if let Err(e) = release(inner) {
            log::warn!("{}", self.err(e));
        }
    }
}

/// Whether `fd` is a bpf_link: its `/proc/self/fd` entry names the
/// anonymous inode `bpf-link`.
fn is_bpf_link(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-link")
}

pub(crate) fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default()
}
