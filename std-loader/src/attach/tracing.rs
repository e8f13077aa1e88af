//! Tracepoints, raw tracepoints, BTF-typed tracing (tp_btf, fentry, fexit,
//! fmod_ret, LSM, freplace), iterators and perf_event programs; and the
//! perf-event attachment the probe families share.

use std::ffi::CString;
use std::io::Read;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{
    AsFd, BorrowedFd, LinkCreate, LinkExtra, LinkTarget, PerfEvent, PerfEventAttr, iter_create,
    link_create, perf_event_open, raw_tracepoint_open,
};

use super::link::Inner;
use super::tracefs::{self, TracefsProbe};
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism, probe};
use crate::Program;

impl Program {
    pub(crate) fn attach_err(&self, target: impl Into<String>, kind: K) -> AttachError {
        AttachError::new(self.name(), target, kind)
    }

    fn expect_type(&self, target: &str, want: &[ProgType], what: &str) -> Result<(), AttachError> {
        if want.contains(&self.prog_type()) {
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

    /// Attaches to the tracepoint `category/name` (tracefs
    /// `events/<category>/<name>`): a perf event for the tracepoint, held
    /// by a perf-event link (5.15) or, before that or with
    /// [`AttachMode::Legacy`], carrying the program through
    /// `PERF_EVENT_IOC_SET_BPF`.
    ///
    /// # Errors
    /// [`K::NotFound`] naming the tracepoint when tracefs has no such
    /// event; the kernel's error otherwise.
    pub fn attach_tracepoint(
        &self,
        category: &str,
        name: &str,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let target = format!("tracepoint '{category}/{name}'");
        self.expect_type(&target, &[ProgType::TRACEPOINT], "a tracepoint")?;
        let id = tracefs::tracepoint_id(category, name)
            .map_err(|why| self.attach_err(&target, K::Unsupported(why)))?
            .ok_or_else(|| {
                self.attach_err(
                    &target,
                    K::NotFound(format!("tracepoint '{category}/{name}'")),
                )
            })?;
        // libbpf's choice: any process, CPU 0; the program runs wherever
        // the tracepoint fires.
        let perf = perf_event_open(&PerfEventAttr::tracepoint(id), None, Some(0), None)
            .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        self.attach_perf(perf, None, target, opts)
    }

    /// Attaches `perf` (opened for this program's event) as
    /// [`AttachMode`] says, taking ownership of it and of the tracefs
    /// `probe` it was made from.
    pub(crate) fn attach_perf(
        &self,
        perf: PerfEvent,
        probe: Option<TracefsProbe>,
        target: String,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let fail = |k| self.attach_err(&target, k);
        let use_link = match opts.mode {
            AttachMode::Legacy => false,
            AttachMode::Link => {
                if !probe::perf_link() {
                    return Err(fail(K::Unsupported(
                        "this kernel has no perf-event links (BPF_LINK_TYPE_PERF_EVENT, 5.15)"
                            .into(),
                    )));
                }
                true
            }
            AttachMode::Auto => probe::perf_link(),
        };
        let tracefs = probe.is_some();
        let inner = if use_link {
            let link = link_create(&LinkCreate {
                prog: self.fd(),
                target: LinkTarget::Fd(perf.as_fd()),
                attach_type: AttachType::PERF_EVENT.0,
                flags: 0,
                extra: LinkExtra::PerfEvent {
                    bpf_cookie: opts.cookie,
                },
            })
            .map_err(|e| fail(K::Sys(e)))?;
            Inner::Fd {
                link,
                perf: Some(perf),
                probe,
            }
        } else {
            if opts.cookie != 0 {
                return Err(fail(K::Unsupported(
                    "a cookie needs a perf-event link; the ioctl attachment has none".into(),
                )));
            }
            perf.set_bpf(self.fd()).map_err(|e| fail(K::Sys(e)))?;
            Inner::Ioctl { perf, probe }
        };
        let mechanism = match (&inner, tracefs) {
            (_, true) => Mechanism::TracefsEvent,
            (Inner::Fd { .. }, false) => Mechanism::PerfEventLink,
            _ => Mechanism::PerfIoctl,
        };
        // Events are opened enabled; enabling again is harmless and covers
        // an attr opened disabled. On failure the link drops and detaches.
        let link = Link::new(self.name(), target.clone(), mechanism, inner);
        if let Some(p) = link.perf_event() {
            p.enable().map_err(|e| fail(K::Sys(e)))?;
        }
        Ok(link)
    }

    /// Attaches a raw tracepoint program (`raw_tp`, or `raw_tp.w`) to the
    /// kernel tracepoint `name` (`sched_switch`, no category).
    ///
    /// # Errors
    /// [`K::NotFound`] when the kernel has no such tracepoint (`ENOENT`).
    pub fn attach_raw_tracepoint(&self, name: &str) -> Result<Link, AttachError> {
        let target = format!("raw tracepoint '{name}'");
        self.expect_type(
            &target,
            &[ProgType::RAW_TRACEPOINT, ProgType::RAW_TRACEPOINT_WRITABLE],
            "a raw tracepoint",
        )?;
        let c = CString::new(name)
            .map_err(|_| self.attach_err(&target, K::BadTarget("the name holds a NUL".into())))?;
        let fd = raw_tracepoint_open(self.fd(), Some(&c)).map_err(|e| {
            if e.errno == ember_sys::Errno::NOENT {
                self.attach_err(&target, K::NotFound(format!("raw tracepoint '{name}'")))
            } else {
                self.attach_err(&target, K::Sys(e))
            }
        })?;
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::BpfLink,
            bpf_link(fd),
        ))
    }

    /// Attaches a program whose target was fixed at load through its BTF
    /// id: `tp_btf`, fentry, fexit, fmod_ret, LSM, and freplace loaded
    /// against a target program. With a cookie (5.19+) through
    /// `BPF_LINK_CREATE`, else `BPF_RAW_TRACEPOINT_OPEN` (5.5+).
    ///
    /// # Errors
    /// The kernel's error.
    pub fn attach_btf(&self, opts: AttachOpts) -> Result<Link, AttachError> {
        let target = format!("'{}' (BTF id {})", self.section(), self.attach_btf_id());
        self.expect_type(
            &target,
            &[ProgType::TRACING, ProgType::LSM, ProgType::EXT],
            "a BTF-typed target",
        )?;
        let fd = if opts.cookie != 0 || opts.mode == AttachMode::Link {
            link_create(&LinkCreate {
                prog: self.fd(),
                target: LinkTarget::None,
                attach_type: self.attach_type().map_or(0, |a| a.0),
                flags: 0,
                extra: LinkExtra::Tracing {
                    target_btf_id: 0,
                    cookie: opts.cookie,
                },
            })
        } else {
            raw_tracepoint_open(self.fd(), None)
        }
        .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::BpfLink,
            bpf_link(fd),
        ))
    }

    /// Attaches an iterator program (`iter/task`, `iter/bpf_map_elem`,
    /// ...); `map` is the map a map iterator walks. Read its output with
    /// [`Link::read_iter`].
    ///
    /// # Errors
    /// The kernel's error (`EACCES`/`EINVAL` for a map iterator without a
    /// map).
    pub fn attach_iter(&self, map: Option<BorrowedFd<'_>>) -> Result<Link, AttachError> {
        let target = format!("iterator '{}'", self.section());
        self.expect_type(&target, &[ProgType::TRACING], "an iterator")?;
        // union bpf_iter_link_info { struct { __u32 map_fd; } map; ... }
        let info = map.map(|m| {
            use std::os::fd::AsRawFd;
            (m.as_raw_fd() as u32).to_ne_bytes()
        });
        let fd = link_create(&LinkCreate {
            prog: self.fd(),
            target: LinkTarget::None,
            attach_type: AttachType::TRACE_ITER.0,
            flags: 0,
            extra: LinkExtra::Iter(info.as_ref().map_or(&[][..], |i| &i[..])),
        })
        .map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::BpfLink,
            bpf_link(fd),
        ))
    }

    /// Attaches a `perf_event` program to `attr` (a software or hardware
    /// event, with its period or frequency) on every online CPU, all
    /// processes: one link that holds an event per CPU.
    ///
    /// # Errors
    /// The kernel's error for the first CPU that fails (the events opened
    /// before it are closed).
    pub fn attach_perf_event(
        &self,
        attr: &PerfEventAttr,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let target = format!(
            "perf event (type {}, config {})",
            attr.layout().type_,
            attr.layout().config
        );
        self.expect_type(&target, &[ProgType::PERF_EVENT], "a perf event")?;
        let cpus =
            ember_sys::cpu::online_cpus().map_err(|e| self.attach_err(&target, K::Sys(e)))?;
        let mut links = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            let perf = perf_event_open(attr, None, Some(cpu), None)
                .map_err(|e| self.attach_err(format!("{target} on CPU {cpu}"), K::Sys(e)))?;
            links.push(self.attach_perf(perf, None, format!("{target} on CPU {cpu}"), opts)?);
        }
        let mechanism = links
            .first()
            .map_or(Mechanism::PerfEventLink, Link::mechanism);
        Ok(Link::new(
            self.name(),
            target,
            mechanism,
            Inner::Group(links),
        ))
    }
}

fn bpf_link(link: ember_sys::OwnedFd) -> Inner {
    Inner::Fd {
        link,
        perf: None,
        probe: None,
    }
}

impl Link {
    /// The perf event this link holds, if any.
    pub(crate) fn perf_event(&self) -> Option<&PerfEvent> {
        match self.inner() {
            Inner::Fd { perf, .. } => perf.as_ref(),
            Inner::Ioctl { perf, .. } => Some(perf),
            _ => None,
        }
    }

    /// Runs the iterator once and returns all it printed (an iterator
    /// link from [`Program::attach_iter`]); each call starts afresh.
    ///
    /// # Errors
    /// [`K::WrongType`] for a link that is not an iterator; the kernel's
    /// error creating or reading it.
    pub fn read_iter(&self) -> Result<Vec<u8>, AttachError> {
        let fail = |k| AttachError::new(self.program(), self.target().to_owned(), k);
        let Some(fd) = self.fd() else {
            return Err(fail(K::WrongType("not an iterator link".into())));
        };
        let it = iter_create(fd).map_err(|e| fail(K::Sys(e)))?;
        let mut out = Vec::new();
        std::fs::File::from(it)
            .read_to_end(&mut out)
            .map_err(|source| {
                fail(K::Io {
                    path: "(iterator fd)".into(),
                    source,
                })
            })?;
        Ok(out)
    }
}
