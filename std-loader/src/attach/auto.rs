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
            // Iterators over a map's elements need the map: the explicit
            // method takes it.
            "iter" | "iter.s"
                if matches!(
                    rest,
                    Some("bpf_map_elem" | "bpf_sk_storage_map" | "sockmap")
                ) =>
            {
                Err(no_target())
            }
            "iter" | "iter.s" => self.attach_iter(None),
            // Network programs need an interface, which no section names
            // (libbpf's `tc/ingress` included): the explicit methods.
            "xdp" | "xdp.frags" | "tc" | "tc/ingress" | "tc/egress" | "tcx/ingress"
            | "tcx/egress" | "classifier" | "netkit/primary" | "netkit/peer" => Err(no_target()),
            "uprobe" | "uprobe.s" => self.attach_uprobe_section(sec, rest, false, opts),
            "usdt" | "usdt.s" => self.attach_usdt_section(sec, rest, opts),
            "uretprobe" | "uretprobe.s" => self.attach_uprobe_section(sec, rest, true, opts),
            "uprobe.multi" | "uprobe.multi.s" => {
                self.attach_uprobe_multi_section(sec, rest, false, opts)
            }
            "uretprobe.multi" | "uretprobe.multi.s" => {
                self.attach_uprobe_multi_section(sec, rest, true, opts)
            }
            "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "kprobe.session"
            | "ksyscall" | "kretsyscall" => {
                self.attach_kprobe_family(base, &format!("section '{sec}'"), rest, opts)
            }
            _ => Err(no_target()),
        }
    }
}

impl Program {
    /// Attaches to a target the user wrote as text (`ember run --attach
    /// PROG=TARGET`), read by the program's type: a tracepoint
    /// `category/name`, a raw tracepoint name, `cpu-clock[:PERIOD_NS]` for
    /// perf_event programs, `IFACE[:generic|driver|offload]` for XDP,
    /// `IFACE[:ingress|egress]` for tc (tcx where the kernel has it),
    /// `BINARY:SYMBOL[+OFF]` for uprobes, `BINARY:PROVIDER:NAME` for USDT,
    /// for kprobe-family programs what would follow their section's kind
    /// (`FUNC[+OFF]`, `MODULE:FUNC`, a glob, a syscall name), a cgroup
    /// path for cgroup programs (`PATH:ingress|egress` for `cgroup/skb`),
    /// a network namespace path for sk_lookup and flow_dissector, the
    /// netkit primary device's name for either netkit side, a cgroup path
    /// for lsm_cgroup.
    ///
    /// # Errors
    /// [`K::BadTarget`] when the text does not fit the type;
    /// [`K::Unsupported`] for a type with no text form; otherwise what the
    /// explicit method returns.
    pub fn attach_to(&self, target: &str, opts: AttachOpts) -> Result<Link, AttachError> {
        use ember_core::object::ProgType as P;
        let bad = |why: &str| self.attach_err(format!("'{target}'"), K::BadTarget(why.into()));
        match self.prog_type() {
            P::TRACEPOINT => {
                let (cat, name) = target
                    .split_once('/')
                    .ok_or_else(|| bad("a tracepoint is CATEGORY/NAME"))?;
                self.attach_tracepoint(cat, name, opts)
            }
            P::RAW_TRACEPOINT | P::RAW_TRACEPOINT_WRITABLE => self.attach_raw_tracepoint(target),
            P::PERF_EVENT => {
                let (ev, period) = target.split_once(':').unwrap_or((target, "1000000"));
                if ev != "cpu-clock" {
                    return Err(bad("a perf_event target is cpu-clock[:PERIOD_NS]"));
                }
                let period: u64 = period
                    .parse()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the period is a positive number of nanoseconds"))?;
                self.attach_perf_event(&ember_sys::PerfEventAttr::cpu_clock(period), opts)
            }
            P::XDP => {
                use super::xdp::XdpMode;
                let (iface, mode) = target.split_once(':').unwrap_or((target, ""));
                let mode = match mode {
                    "" => XdpMode::Default,
                    "generic" | "skb" => XdpMode::Generic,
                    "driver" | "native" => XdpMode::Driver,
                    "offload" | "hw" => XdpMode::Offload,
                    _ => return Err(bad("an XDP target is IFACE[:generic|driver|offload]")),
                };
                self.attach_xdp(iface, mode, opts)
            }
            // netkit: the primary device's name, for either side.
            P::SCHED_CLS
                if matches!(
                    self.attach_type(),
                    Some(ember_core::object::AttachType::NETKIT_PRIMARY)
                        | Some(ember_core::object::AttachType::NETKIT_PEER)
                ) =>
            {
                use super::tc::{NetkitSide, TcOpts};
                let side =
                    if self.attach_type() == Some(ember_core::object::AttachType::NETKIT_PEER) {
                        NetkitSide::Peer
                    } else {
                        NetkitSide::Primary
                    };
                self.attach_netkit(target, side, TcOpts::default(), opts)
            }
            P::SCHED_CLS => {
                use super::tc::{TcDirection, TcOpts};
                use ember_core::object::AttachType as A;
                let (iface, dir) = target.split_once(':').unwrap_or((target, ""));
                let dir = match (dir, self.attach_type()) {
                    ("ingress", _) => TcDirection::Ingress,
                    ("egress", _) => TcDirection::Egress,
                    ("", Some(A::TCX_EGRESS)) => TcDirection::Egress,
                    ("", _) => TcDirection::Ingress,
                    _ => return Err(bad("a tc target is IFACE[:ingress|egress]")),
                };
                self.attach_tc(iface, dir, TcOpts::default(), opts)
            }
            P::KPROBE if self.uprobe_kind().is_some() => self.attach_uprobe_text(target, opts),
            P::KPROBE if self.is_usdt() => self.attach_usdt_text(target, opts),
            // kprobe-family sections: the text is what would follow
            // `kind/` in the section (`func+0x10`, `mod:func`, a glob, a
            // syscall name); a section libbpf does not know reads as kprobe.
            P::KPROBE => {
                let kind = section::lookup(self.section())
                    .map_or("kprobe", |d| d.pattern.trim_end_matches(['+', '/']));
                self.attach_kprobe_family(kind, &format!("'{target}'"), Some(target), opts)
            }
            // A cgroup by path; `cgroup/skb` takes `PATH:ingress|egress`.
            P::CGROUP_SKB
            | P::CGROUP_SOCK
            | P::CGROUP_SOCK_ADDR
            | P::SOCK_OPS
            | P::CGROUP_SOCKOPT
            | P::CGROUP_SYSCTL
            | P::CGROUP_DEVICE => {
                use super::cgroup::CgroupOpts;
                use ember_core::object::AttachType as A;
                let (path, dir) = match target.rsplit_once(':') {
                    Some((p, "ingress")) => (p, Some(A::CGROUP_INET_INGRESS)),
                    Some((p, "egress")) => (p, Some(A::CGROUP_INET_EGRESS)),
                    _ => (target, None),
                };
                let cg = CgroupOpts {
                    mode: opts.mode,
                    attach_type: dir,
                    ..CgroupOpts::default()
                };
                self.attach_cgroup_path(path, cg)
            }
            // lsm_cgroup: the cgroup by path.
            P::LSM if self.attach_type() == Some(ember_core::object::AttachType::LSM_CGROUP) => {
                let cg = super::cgroup::CgroupOpts {
                    mode: opts.mode,
                    ..super::cgroup::CgroupOpts::default()
                };
                self.attach_cgroup_path(target, cg)
            }
            // A network namespace by path (`/proc/self/ns/net`,
            // `/run/netns/NAME`).
            P::SK_LOOKUP | P::FLOW_DISSECTOR => self.attach_netns_path(target, opts),
            t => Err(self.attach_err(
                format!("'{target}'"),
                K::Unsupported(format!(
                    "{t} programs have no text target form here; use the library API"
                )),
            )),
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
    pub fn attach_all(&self, opts: AttachOpts) -> Result<(Vec<Link>, Vec<String>), AttachError> {
        let mut links = Vec::new();
        let mut skipped = Vec::new();
        for p in self.programs() {
            match p.attach_with(opts) {
                Ok(l) => links.push(l),
                Err(e) if matches!(e.kind, K::NoTarget) => skipped.push(p.name().to_owned()),
                Err(e) => return Err(e),
            }
        }
        Ok((links, skipped))
    }
}
