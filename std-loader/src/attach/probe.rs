//! Attach-interface probes, run once per process when first needed (not at
//! load, so loading stays as cheap as before).

use std::sync::OnceLock;

use ember_core::object::{AttachType, ProgType};
use ember_sys::{AsFd, Errno, LinkCreate, LinkExtra, LinkTarget, OwnedFd, ProgLoad};

/// `r0 = 0; exit`.
const RET0: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];

/// A trivial program of `prog_type`, or `None` when the kernel refuses it.
pub(crate) fn trivial_prog(
    prog_type: ProgType,
    attach_type: Option<AttachType>,
) -> Option<OwnedFd> {
    trivial_prog_errno(prog_type, attach_type).ok()
}

/// [`trivial_prog`], with the kernel's errno when it refuses.
pub(crate) fn trivial_prog_errno(
    prog_type: ProgType,
    attach_type: Option<AttachType>,
) -> Result<OwnedFd, Errno> {
    ember_sys::prog_load(&mut ProgLoad {
        prog_type: prog_type.0,
        expected_attach_type: attach_type.map_or(0, |a| a.0),
        insns: &RET0,
        license: c"GPL",
        name: "ember_probe",
        ..Default::default()
    })
    .map_err(|e| e.error.errno)
}

/// Whether the kernel has perf-event links (`BPF_LINK_TYPE_PERF_EVENT`,
/// 5.15): libbpf's probe, `BPF_LINK_CREATE` with attach type
/// `BPF_PERF_EVENT` on an fd that is not a perf event. A kernel that knows
/// the attach type looks the fd up and says `EBADF`; an older one refuses
/// the attach type with `EINVAL`.
/// An answer that ENOMEM, EAGAIN or the like gave is not kept (see
/// [`crate::features::probe`]): the next attach probes again.
pub fn perf_link() -> bool {
    static P: OnceLock<bool> = OnceLock::new();
    if let Some(p) = P.get() {
        return *p;
    }
    let answer = trivial_prog_errno(ProgType::TRACEPOINT, None).and_then(|prog| {
        let r = ember_sys::link_create(&LinkCreate {
            prog: prog.as_fd(),
            // The program fd itself: certainly not a perf event.
            target: LinkTarget::Fd(prog.as_fd()),
            attach_type: AttachType::PERF_EVENT.0,
            flags: 0,
            extra: LinkExtra::None,
        });
        match r {
            Err(e) if e.errno == Errno::BADF => Ok(true),
            Err(e) => Err(e.errno),
            Ok(_) => Ok(false),
        }
    });
    match answer {
        Ok(p) => *P.get_or_init(|| p),
        Err(e) if crate::features::inconclusive(e) => false,
        Err(_) => *P.get_or_init(|| false),
    }
}
