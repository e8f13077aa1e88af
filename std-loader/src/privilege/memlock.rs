//! RLIMIT_MEMLOCK: raised once per process on kernels that charge BPF
//! memory to it, and remembered for the EPERM explanation.

use std::sync::OnceLock;

use ember_sys::Errno;

use super::system::running_kernel_version;
use super::*;

/// The outcome of [`raise_memlock`], kept for the process.
#[derive(Debug, Clone, Copy)]
pub(super) struct MemlockState {
    pub(super) memcg_accounting: Option<bool>,
    pub(super) raise_error: Option<Errno>,
}

pub(super) static MEMLOCK: OnceLock<MemlockState> = OnceLock::new();

/// Whether the kernel accounts BPF memory to the memory cgroup, probed as
/// libbpf's `FEAT_MEMCG_ACCOUNT` does: `bpf_ktime_get_coarse_ns` (helper
/// 160) came in 5.11 with memcg accounting, so a socket filter calling it
/// loads exactly when the accounting is there. `None` when the load fails
/// for another reason than an unknown helper.
pub(super) fn probe_memcg_accounting() -> Option<bool> {
    let mut call = [0x85u8, 0, 0, 0, 0, 0, 0, 0];
    call[4..].copy_from_slice(&160i32.to_ne_bytes());
    let exit = [0x95u8, 0, 0, 0, 0, 0, 0, 0];
    let insns = [call, exit].concat();
    match ember_sys::prog_load(&mut ember_sys::ProgLoad {
        prog_type: ProgType::SOCKET_FILTER.0,
        insns: &insns,
        license: c"GPL",
        name: "ember_memcg",
        ..Default::default()
    }) {
        Ok(_) => Some(true),
        Err(e) if e.error.errno == Errno::INVAL => Some(false),
        Err(_) => None,
    }
}

/// Raises RLIMIT_MEMLOCK to unlimited (or else to its hard limit) when the
/// kernel charges BPF memory to it: once per process, and only when the
/// memcg probe does not show memcg accounting (as libbpf's
/// `bump_rlimit_memlock`). [`EbpfLoader`](crate::EbpfLoader) calls it
/// before each load; later calls return at once.
///
/// # Errors
/// Why raising the limit to unlimited failed (kept, and named when a later
/// load is refused with EPERM).
pub fn raise_memlock() -> Result<(), Errno> {
    let state = MEMLOCK.get_or_init(|| {
        let memcg_accounting = probe_memcg_accounting();
        // An inconclusive probe (EPERM: unprivileged) decides nothing; the
        // kernel's version does.
        let charged = match memcg_accounting {
            Some(memcg) => !memcg,
            None => running_kernel_version() < version(5, 11),
        };
        let raise_error = if charged { raise_memlock_now() } else { None };
        MemlockState {
            memcg_accounting,
            raise_error,
        }
    });
    state.raise_error.map_or(Ok(()), Err)
}

fn raise_memlock_now() -> Option<Errno> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let unlimited = Rlimit {
        current: None,
        maximum: None,
    };
    let e = setrlimit(Resource::Memlock, unlimited).err()?;
    // Without CAP_SYS_RESOURCE the soft limit can still go up to the hard.
    let hard = getrlimit(Resource::Memlock).maximum;
    let _ = setrlimit(
        Resource::Memlock,
        Rlimit {
            current: hard,
            maximum: hard,
        },
    );
    log::warn!("cannot raise RLIMIT_MEMLOCK to unlimited: {e}");
    Some(e)
}
