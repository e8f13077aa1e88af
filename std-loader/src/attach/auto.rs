//! Auto-attach: the target a program's section names, as libbpf's
//! `bpf_program__attach` reads it, and [`Ebpf::attach_all`].

use ember_core::object::section;

use super::{AttachError, AttachErrorKind as K, AttachOpts, Link};
use crate::{Ebpf, Program};

impl Program {
    /// Attaches where the program's section says (`tracepoint/sched/
    /// sched_switch`, `raw_tp/sys_enter`, `fentry/vfs_read`, `xdp` is not
    /// enough: it needs an interface).
    ///
    /// # Errors
    /// [`K::NoTarget`] when the section names no target (a bare
    /// `SEC("uprobe")`, `SEC("xdp")`): attach it with the explicit method
    /// for its type. Otherwise what that method returns.
    pub fn attach(&self) -> Result<Link, AttachError> {
        self.attach_with(AttachOpts::default())
    }

    /// [`Program::attach`] with options (mode, cookie).
    ///
    /// # Errors
    /// As [`Program::attach`].
    pub fn attach_with(&self, opts: AttachOpts) -> Result<Link, AttachError> {
        let sec = self.section();
        let no_target = || self.attach_err(format!("section '{sec}'"), K::NoTarget);
        let Some(def) = section::lookup(sec) else {
            return Err(no_target());
        };
        let rest = section::attach_target(def, sec);
        let base = def.pattern.trim_end_matches(['+', '/']);
        match base {
            "tracepoint" | "tp" => {
                let rest = rest.ok_or_else(no_target)?;
                let (cat, name) = rest.split_once('/').ok_or_else(|| {
                    self.attach_err(
                        format!("section '{sec}'"),
                        K::BadTarget(
                            "a tracepoint section is 'tracepoint/<category>/<name>'".into(),
                        ),
                    )
                })?;
                self.attach_tracepoint(cat, name, opts)
            }
            "raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w" => {
                self.attach_raw_tracepoint(rest.ok_or_else(no_target)?)
            }
            "tp_btf" | "fentry" | "fentry.s" | "fexit" | "fexit.s" | "fmod_ret" | "fmod_ret.s"
            | "lsm" | "lsm.s" => self.attach_btf(opts),
            // freplace loaded against a target program attaches there.
            "freplace" => self.attach_btf(opts),
            "iter" | "iter.s" => self.attach_iter(None),
            "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "kprobe.session"
            | "ksyscall" | "kretsyscall" => {
                self.attach_kprobe_family(base, &format!("section '{sec}'"), rest, opts)
            }
            _ => Err(no_target()),
        }
    }
}

impl Ebpf {
    /// Attaches every program whose section names its target, as
    /// libbpf's skeleton `attach` does; programs whose section names none
    /// (a bare `SEC("xdp")`) are returned by name in the second list so
    /// the caller can attach them explicitly or say they were skipped.
    ///
    /// # Errors
    /// The first failure; links made before it are detached.
    pub fn attach_all(&self) -> Result<(Vec<Link>, Vec<String>), AttachError> {
        let mut links = Vec::new();
        let mut skipped = Vec::new();
        for p in self.programs() {
            match p.attach() {
                Ok(l) => links.push(l),
                Err(e) if matches!(e.kind, K::NoTarget) => skipped.push(p.name().to_owned()),
                Err(e) => return Err(e),
            }
        }
        Ok((links, skipped))
    }
}
