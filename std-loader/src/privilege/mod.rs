//! Why the kernel said EPERM.
//!
//! A program load, map creation or BTF load that fails with `EPERM` and an
//! empty verifier log says nothing by itself. The kernel refuses for one of
//! a few reasons, and most can be read back:
//!
//! - `kernel.unprivileged_bpf_disabled` is set and the process lacks
//!   `CAP_BPF`;
//! - the process lacks a capability the program or map type needs
//!   (`bpf_prog_load`/`map_create` in `kernel/bpf/syscall.c`: `CAP_BPF` for
//!   all but socket filters and cgroup skb programs, `CAP_PERFMON` for the
//!   tracing types, `CAP_NET_ADMIN` for the networking ones; `CAP_SYS_ADMIN`
//!   stands in for each, and was the only one before 5.8);
//! - the kernel is locked down, which refuses programs that need a BPF
//!   trampoline (fentry, fexit, fmod_ret, LSM) with a bare EPERM on this
//!   project's test kernel (6.18, `lockdown=integrity`);
//! - RLIMIT_MEMLOCK is too low on a kernel that charges BPF memory to it
//!   (before 5.11, without memcg accounting).
//!
//! Lockdown also withholds some helpers (`bpf_probe_write_user`, and
//! under confidentiality the kernel-memory reads), which the verifier then
//! refuses with EINVAL and a log that blames the program type;
//! [`lockdown_helper_cause`] says so.
//!
//! [`explain`] is the pure decision over a [`Snapshot`]; [`Snapshot::read`]
//! reads the system, and the loader calls it only after an EPERM, so a
//! successful load pays nothing. [`raise_memlock`] raises RLIMIT_MEMLOCK
//! once per process when the kernel needs it, as libbpf does.

use core::fmt;

use ember_core::object::{AttachType, MapType, ProgType};
use ember_sys::Errno;

mod memlock;
mod system;
#[cfg(test)]
mod tests;

pub use self::memlock::raise_memlock;
use self::system::read_lockdown;
/// The capability set type of [`Snapshot::effective`] (rustix's).
pub use rustix::thread::CapabilitySet;

/// The kernel lockdown mode (`/sys/kernel/security/lockdown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockdown {
    /// Not locked down.
    None,
    /// `integrity`: the running kernel cannot be modified from user space.
    Integrity,
    /// `confidentiality`: nor can kernel memory be read.
    Confidentiality,
}

impl Lockdown {
    /// Parses the securityfs file, whose active mode is the bracketed one:
    /// `none [integrity] confidentiality`.
    pub fn parse(text: &str) -> Option<Lockdown> {
        let active = text.split_whitespace().find_map(|w| w.strip_prefix('['))?;
        match active.strip_suffix(']')? {
            "none" => Some(Lockdown::None),
            "integrity" => Some(Lockdown::Integrity),
            "confidentiality" => Some(Lockdown::Confidentiality),
            _ => None,
        }
    }
}

impl fmt::Display for Lockdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Lockdown::None => "none",
            Lockdown::Integrity => "integrity",
            Lockdown::Confidentiality => "confidentiality",
        })
    }
}

/// A capability the kernel checks for a bpf(2) command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// `CAP_BPF` (5.8+).
    Bpf,
    /// `CAP_PERFMON` (5.8+).
    Perfmon,
    /// `CAP_NET_ADMIN`.
    NetAdmin,
    /// `CAP_SYS_ADMIN`, which stands in for each of the others.
    SysAdmin,
}

impl Capability {
    fn flag(self) -> CapabilitySet {
        match self {
            Capability::Bpf => CapabilitySet::BPF,
            Capability::Perfmon => CapabilitySet::PERFMON,
            Capability::NetAdmin => CapabilitySet::NET_ADMIN,
            Capability::SysAdmin => CapabilitySet::SYS_ADMIN,
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Capability::Bpf => "CAP_BPF",
            Capability::Perfmon => "CAP_PERFMON",
            Capability::NetAdmin => "CAP_NET_ADMIN",
            Capability::SysAdmin => "CAP_SYS_ADMIN",
        })
    }
}

/// The bpf(2) command that was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `BPF_PROG_LOAD`.
    ProgLoad {
        /// The program type.
        prog_type: ProgType,
        /// The expected attach type.
        attach_type: Option<AttachType>,
        /// Whether the verifier log is empty (the refusal came before the
        /// verifier ran; a log means the verifier itself refused).
        empty_log: bool,
    },
    /// `BPF_MAP_CREATE`.
    MapCreate {
        /// The map type.
        map_type: MapType,
    },
    /// `BPF_BTF_LOAD`.
    BtfLoad,
}

impl Operation {
    /// Whether this is a program that runs on a BPF trampoline (fentry,
    /// fexit, fmod_ret, LSM, freplace).
    fn needs_trampoline(self) -> bool {
        match self {
            Operation::ProgLoad {
                prog_type,
                attach_type,
                ..
            } => {
                prog_type == ProgType::EXT
                    || matches!(
                        (prog_type, attach_type),
                        (
                            ProgType::TRACING,
                            Some(
                                AttachType::TRACE_FENTRY
                                    | AttachType::TRACE_FEXIT
                                    | AttachType::MODIFY_RETURN
                            )
                        ) | (ProgType::LSM, Some(AttachType::LSM_MAC))
                    )
            }
            _ => false,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::ProgLoad {
                prog_type,
                attach_type,
                ..
            } => {
                // The section word people write for trampoline programs.
                let word = match (*prog_type, *attach_type) {
                    (ProgType::EXT, _) => Some("freplace"),
                    (ProgType::TRACING, Some(AttachType::TRACE_FENTRY)) => Some("fentry"),
                    (ProgType::TRACING, Some(AttachType::TRACE_FEXIT)) => Some("fexit"),
                    (ProgType::TRACING, Some(AttachType::MODIFY_RETURN)) => Some("fmod_ret"),
                    (ProgType::LSM, Some(AttachType::LSM_MAC)) => Some("lsm"),
                    _ => None,
                };
                match word {
                    Some(w) => write!(f, "{w} programs"),
                    None => write!(f, "{prog_type} programs"),
                }
            }
            Operation::MapCreate { map_type } => write!(f, "{map_type} maps"),
            Operation::BtfLoad => f.write_str("loading BTF"),
        }
    }
}

/// RLIMIT_MEMLOCK and whether it matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memlock {
    /// The soft limit in bytes; `None` when unlimited.
    pub limit: Option<u64>,
    /// Whether the kernel charges BPF memory to the memory cgroup (5.11+)
    /// rather than to RLIMIT_MEMLOCK, as probed; `None` when the probe
    /// could not tell.
    pub memcg_accounting: Option<bool>,
    /// Why raising the limit failed, when ember tried and failed.
    pub raise_error: Option<Errno>,
}

/// What the kernel's permission checks depend on, read after a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The effective user id.
    pub euid: u32,
    /// The effective capabilities; `None` when capget(2) failed.
    pub effective: Option<CapabilitySet>,
    /// The lockdown mode; `None` when it cannot be read.
    pub lockdown: Option<Lockdown>,
    /// `kernel.unprivileged_bpf_disabled`; `None` when it cannot be read.
    pub unprivileged_bpf_disabled: Option<u32>,
    /// RLIMIT_MEMLOCK and memcg accounting.
    pub memlock: Memlock,
    /// `KERNEL_VERSION(major, minor, 0)` of the running kernel; 0 when
    /// unknown (then taken as recent).
    pub kernel_version: u32,
}

/// Why the kernel refused with EPERM, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpermReason {
    /// `kernel.unprivileged_bpf_disabled` is set and the process lacks
    /// `CAP_BPF`.
    UnprivilegedBpfDisabled {
        /// The sysctl's value (1: until reboot, 2: an admin may reset it).
        value: u32,
        /// Every capability the refused operation needs and the process
        /// lacks.
        missing: Vec<Capability>,
        /// Whether the process runs as root (whose capabilities were then
        /// dropped, by a container or a service manager).
        root: bool,
    },
    /// The process lacks capabilities the operation needs.
    MissingCapabilities {
        /// What was refused.
        op: Operation,
        /// The capabilities it lacks.
        missing: Vec<Capability>,
        /// Whether the process runs as root.
        root: bool,
    },
    /// The kernel is locked down, and lockdown refuses this program.
    Lockdown {
        /// What was refused.
        op: Operation,
        /// The mode read from securityfs.
        mode: Lockdown,
    },
    /// A trampoline program was refused with an empty log although every
    /// capability is there, and the lockdown mode could not be read: the
    /// kernel is most likely locked down.
    LikelyLockdown {
        /// What was refused.
        op: Operation,
    },
    /// The kernel charges BPF memory to RLIMIT_MEMLOCK, and it is low.
    Memlock {
        /// The limit in bytes.
        limit: u64,
        /// Why raising it failed, when ember tried.
        raise_error: Option<Errno>,
    },
}

/// What to do about missing capabilities.
fn grant(f: &mut fmt::Formatter<'_>, caps: &[Capability], root: bool) -> fmt::Result {
    if root {
        f.write_str("; being root is not enough once they are dropped: keep ")?;
        list(f, caps)?;
        f.write_str(" in the bounding and effective sets (container or service settings)")
    } else {
        f.write_str("; run it as root or grant ")?;
        list(f, caps)?;
        f.write_str(" (setcap, or AmbientCapabilities= in a systemd unit)")
    }
}

/// `a and b`, `a, b and c`.
fn list(f: &mut fmt::Formatter<'_>, caps: &[Capability]) -> fmt::Result {
    for (i, c) in caps.iter().enumerate() {
        if i > 0 {
            f.write_str(if i + 1 == caps.len() { " and " } else { ", " })?;
        }
        write!(f, "{c}")?;
    }
    Ok(())
}

impl fmt::Display for EpermReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EpermReason::UnprivilegedBpfDisabled {
                value,
                missing,
                root,
            } => {
                write!(
                    f,
                    "kernel.unprivileged_bpf_disabled is {value}, so bpf(2) needs CAP_BPF \
                     (or CAP_SYS_ADMIN), and this process lacks "
                )?;
                list(f, missing)?;
                grant(f, missing, *root)?;
                if *value == 2 && !root {
                    f.write_str("; or have an admin set the sysctl to 0")?;
                }
                Ok(())
            }
            EpermReason::MissingCapabilities { op, missing, root } => {
                write!(f, "{op} need ")?;
                list(f, missing)?;
                if !missing.contains(&Capability::SysAdmin) {
                    f.write_str(" (or CAP_SYS_ADMIN)")?;
                }
                f.write_str(", which this process lacks")?;
                grant(f, missing, *root)
            }
            EpermReason::Lockdown { op, mode } => write!(
                f,
                "the kernel is locked down ({mode}), and lockdown refuses {op}, which need a BPF \
                 trampoline; use kprobe, tracepoint or tp_btf programs instead, or boot without \
                 lockdown where policy allows"
            ),
            EpermReason::LikelyLockdown { op } => write!(
                f,
                "{op} were refused with an empty log although this process has CAP_BPF and \
                 CAP_PERFMON: the kernel is most likely locked down (/sys/kernel/security/lockdown \
                 cannot be read to confirm), which refuses programs on a BPF trampoline; use \
                 kprobe, tracepoint or tp_btf programs instead"
            ),
            EpermReason::Memlock { limit, raise_error } => {
                write!(
                    f,
                    "this kernel charges BPF memory to RLIMIT_MEMLOCK (no memcg accounting, as \
                     before 5.11), which is {limit} bytes"
                )?;
                if let Some(e) = raise_error {
                    write!(f, " and could not be raised ({e})")?;
                }
                f.write_str("; raise it (ulimit -l unlimited, or LimitMEMLOCK=infinity) or grant CAP_SYS_RESOURCE")
            }
        }
    }
}

const fn version(major: u32, minor: u32) -> u32 {
    (major << 16) | (minor << 8)
}

/// Whether the kernel checks CAP_BPF and CAP_PERFMON (5.8+), rather than
/// CAP_SYS_ADMIN alone.
fn has_cap_bpf(kernel_version: u32) -> bool {
    kernel_version == 0 || kernel_version >= version(5, 8)
}

/// The capabilities `op` needs, as `kernel/bpf/syscall.c` checks them.
fn required(op: Operation, kernel_version: u32) -> Vec<Capability> {
    use Capability::{Bpf, NetAdmin, Perfmon};
    let mut need = match op {
        Operation::ProgLoad { prog_type: t, .. } => {
            let mut v = Vec::new();
            if !matches!(t, ProgType::SOCKET_FILTER | ProgType::CGROUP_SKB) {
                v.push(Bpf);
            }
            // is_net_admin_prog_type()
            if matches!(
                t,
                ProgType::SCHED_CLS
                    | ProgType::SCHED_ACT
                    | ProgType::XDP
                    | ProgType::LWT_IN
                    | ProgType::LWT_OUT
                    | ProgType::LWT_XMIT
                    | ProgType::LWT_SEG6LOCAL
                    | ProgType::SK_SKB
                    | ProgType::SK_MSG
                    | ProgType::FLOW_DISSECTOR
                    | ProgType::CGROUP_DEVICE
                    | ProgType::CGROUP_SOCK
                    | ProgType::CGROUP_SOCK_ADDR
                    | ProgType::CGROUP_SOCKOPT
                    | ProgType::CGROUP_SYSCTL
                    | ProgType::SOCK_OPS
                    | ProgType::EXT
                    | ProgType::NETFILTER
            ) {
                v.push(NetAdmin);
            }
            // is_perfmon_prog_type()
            if matches!(
                t,
                ProgType::KPROBE
                    | ProgType::TRACEPOINT
                    | ProgType::PERF_EVENT
                    | ProgType::RAW_TRACEPOINT
                    | ProgType::RAW_TRACEPOINT_WRITABLE
                    | ProgType::TRACING
                    | ProgType::LSM
                    | ProgType::STRUCT_OPS
                    | ProgType::EXT
            ) {
                v.push(Perfmon);
            }
            v
        }
        Operation::MapCreate { map_type: t } => match t {
            MapType::ARRAY
            | MapType::PERCPU_ARRAY
            | MapType::PROG_ARRAY
            | MapType::PERF_EVENT_ARRAY
            | MapType::CGROUP_ARRAY
            | MapType::ARRAY_OF_MAPS
            | MapType::HASH
            | MapType::PERCPU_HASH
            | MapType::HASH_OF_MAPS
            | MapType::RINGBUF
            | MapType::USER_RINGBUF
            | MapType::CGROUP_STORAGE
            | MapType::PERCPU_CGROUP_STORAGE => Vec::new(),
            MapType::SOCKMAP
            | MapType::SOCKHASH
            | MapType::DEVMAP
            | MapType::DEVMAP_HASH
            | MapType::XSKMAP => vec![NetAdmin],
            _ => vec![Bpf],
        },
        Operation::BtfLoad => vec![Bpf],
    };
    if !has_cap_bpf(kernel_version) {
        // Before 5.8 CAP_SYS_ADMIN was checked where CAP_BPF and
        // CAP_PERFMON are now, and alone for programs.
        let prog = matches!(op, Operation::ProgLoad { .. });
        need = need
            .into_iter()
            .filter_map(|c| match c {
                Bpf | Perfmon => Some(Capability::SysAdmin),
                NetAdmin if prog => None,
                c => Some(c),
            })
            .collect();
    }
    need.dedup();
    need
}

/// Whether `caps` satisfies the kernel's check for `cap` (CAP_SYS_ADMIN
/// stands in for the others: `bpf_ns_capable`).
fn has(caps: CapabilitySet, cap: Capability) -> bool {
    caps.contains(cap.flag())
        || (cap != Capability::SysAdmin && caps.contains(CapabilitySet::SYS_ADMIN))
}

/// Why `op` was refused with EPERM, given what `s` says about the process
/// and the kernel; `None` when nothing explains it.
///
/// The checks go in the kernel's order: the unprivileged sysctl, then the
/// capabilities, then (for programs the verifier never logged about)
/// lockdown and RLIMIT_MEMLOCK.
pub fn explain(op: Operation, s: &Snapshot) -> Option<EpermReason> {
    if let Operation::ProgLoad {
        empty_log: false, ..
    } = op
    {
        // The verifier ran and said why.
        return None;
    }
    if let Some(caps) = s.effective {
        let missing: Vec<Capability> = required(op, s.kernel_version)
            .into_iter()
            .filter(|&c| !has(caps, c))
            .collect();
        let bpf = if has_cap_bpf(s.kernel_version) {
            Capability::Bpf
        } else {
            Capability::SysAdmin
        };
        if let Some(value) = s.unprivileged_bpf_disabled.filter(|&v| v != 0) {
            if !has(caps, bpf) {
                let mut missing = missing;
                if !missing.contains(&bpf) {
                    missing.insert(0, bpf);
                }
                return Some(EpermReason::UnprivilegedBpfDisabled {
                    value,
                    missing,
                    root: s.euid == 0,
                });
            }
        }
        if !missing.is_empty() {
            return Some(EpermReason::MissingCapabilities {
                op,
                missing,
                root: s.euid == 0,
            });
        }
    }
    if op.needs_trampoline() {
        match s.lockdown {
            Some(Lockdown::None) => {}
            Some(mode) => return Some(EpermReason::Lockdown { op, mode }),
            // Only when the capabilities are known to be there.
            None if s.effective.is_some() => return Some(EpermReason::LikelyLockdown { op }),
            None => {}
        }
    }
    let m = s.memlock;
    let charged = match m.memcg_accounting {
        Some(memcg) => !memcg,
        None => s.kernel_version != 0 && s.kernel_version < version(5, 11),
    };
    match (op, m.limit) {
        (Operation::BtfLoad, _) | (_, None) => None,
        (_, Some(limit)) if charged => Some(EpermReason::Memlock {
            limit,
            raise_error: m.raise_error,
        }),
        _ => None,
    }
}

/// The helpers lockdown withholds from programs (`bpf_tracing_func_proto`
/// and `bpf_base_func_proto` return no prototype, so the verifier refuses
/// the call with EINVAL and `program of this type cannot use helper`):
/// id, name, and the mode from which on it is withheld.
const LOCKDOWN_HELPERS: [(u32, &str, Lockdown); 5] = [
    (36, "bpf_probe_write_user", Lockdown::Integrity),
    (4, "bpf_probe_read", Lockdown::Confidentiality),
    (45, "bpf_probe_read_str", Lockdown::Confidentiality),
    (113, "bpf_probe_read_kernel", Lockdown::Confidentiality),
    (115, "bpf_probe_read_kernel_str", Lockdown::Confidentiality),
];

/// The helper id of the verifier's `cannot use helper NAME#ID` (or older
/// kernels' `unknown func NAME#ID`) line.
fn refused_helper(log: &str) -> Option<u32> {
    log.lines().find_map(|l| {
        let rest = l
            .split_once("cannot use helper ")
            .or_else(|| l.split_once("unknown func "))?
            .1;
        rest.rsplit_once('#')?.1.trim().parse().ok()
    })
}

/// Why the verifier refused a helper call, when lockdown in `mode`
/// withholds that helper; `None` for any other log.
pub fn lockdown_helper_cause(log: &str, mode: Lockdown) -> Option<String> {
    let id = refused_helper(log)?;
    let (_, name, from) = LOCKDOWN_HELPERS.iter().find(|(i, ..)| *i == id)?;
    let withheld = match from {
        Lockdown::Integrity => mode != Lockdown::None,
        _ => mode == Lockdown::Confidentiality,
    };
    withheld.then(|| {
        let advice = if id == 36 {
            "no locked-down kernel offers it"
        } else {
            "use bpf_probe_read_user for user memory; kernel memory cannot be read in this mode"
        };
        format!("{name} is withheld by kernel lockdown ({mode}), which is why the verifier refuses it; {advice}")
    })
}

/// [`lockdown_helper_cause`] for this kernel: reads the lockdown mode only
/// when the log refuses a helper lockdown may withhold.
pub(crate) fn helper_cause(log: &str) -> Option<String> {
    let id = refused_helper(log)?;
    LOCKDOWN_HELPERS
        .iter()
        .any(|(i, ..)| *i == id)
        .then_some(())?;
    lockdown_helper_cause(log, read_lockdown()?)
}

/// Explains `errno` from `op` when it is EPERM, reading the system only
/// then.
pub(crate) fn explain_errno(errno: Errno, op: Operation) -> Option<Box<EpermReason>> {
    (errno == Errno::PERM)
        .then(|| explain(op, &Snapshot::read()))
        .flatten()
        .map(Box::new)
}
