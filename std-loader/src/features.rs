//! What the running kernel supports, probed once per process: each BTF
//! feature by loading a tiny blob that uses it (SPEC-CORE §6), and
//! mmapable array maps.

use core::cell::Cell;
use std::sync::OnceLock;

use ember_core::load::BtfFeatures;
use ember_sys::{Errno, MapCreate, btf_load, map_create};

/// The kernel's features, as probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Whether the kernel loads BTF at all (4.18+).
    pub btf: bool,
    /// Which BTF kinds it understands.
    pub btf_kinds: BtfFeatures,
    /// Whether array maps take `BPF_F_MMAPABLE` (5.5+).
    pub mmapable_arrays: bool,
    /// Whether programs may call `bpf_get_attach_cookie` (5.15+).
    pub bpf_cookie: bool,
}

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

const fn info(kind: u32, vlen: u32) -> u32 {
    (kind << 24) | vlen
}

/// A native-endian BTF blob from type words and a string table.
fn blob(types: &[u32], strs: &[u8]) -> Vec<u8> {
    let tlen = (types.len() * 4) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&0xeb9f_u16.to_ne_bytes());
    b.extend_from_slice(&[1, 0]);
    for w in [24, 0, tlen, tlen, strs.len() as u32] {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    for w in types {
        b.extend_from_slice(&w.to_ne_bytes());
    }
    b.extend_from_slice(strs);
    b
}

/// Whether `errno` says nothing about a probed feature: the kernel ran out
/// of memory, was busy or interrupted. Such an answer is not cached.
pub(crate) fn inconclusive(errno: Errno) -> bool {
    matches!(
        errno,
        Errno::NOMEM | Errno::AGAIN | Errno::INTR | Errno::BUSY | Errno::NOBUFS
    )
}

/// What the probes of one run found, and whether every answer was one.
struct Answers(Cell<bool>);

impl Answers {
    /// `ok` read as a yes or no; an inconclusive error is a no for now and
    /// marks the run unsure.
    fn yes<T>(&self, r: Result<T, Errno>) -> bool {
        match r {
            Ok(_) => true,
            Err(e) => {
                if inconclusive(e) {
                    self.0.set(false);
                }
                false
            }
        }
    }

    fn loads(&self, types: &[u32], strs: &[u8]) -> bool {
        self.yes(btf_load(&blob(types, strs), None).map_err(|e| e.errno))
    }
}

/// `int` as type 1: name "int" at string offset 1.
const INT: [u32; 4] = [1, info(KIND_INT, 0), 4, (1 << 24) | 32];
const STRS: &[u8] = b"\0int\0x\0.data\0?.data\0f\0tag\0";
const X: u32 = 5;
const DATA: u32 = 7;
const QDATA: u32 = 13;
const F: u32 = 20;
const TAG: u32 = 22;

/// Probes the running kernel (once per process: a result is kept unless
/// a probe failed for a reason that says nothing about its feature, such
/// as ENOMEM, so a passing fault cannot disable a feature for good).
pub fn probe() -> Features {
    static FEATURES: OnceLock<Features> = OnceLock::new();
    if let Some(f) = FEATURES.get() {
        return *f;
    }
    match probe_now() {
        (f, true) => *FEATURES.get_or_init(|| f),
        (f, false) => f,
    }
}

/// Probes the running kernel now, ignoring what [`probe`] keeps; `None`
/// when a probe failed for a reason that says nothing about its feature
/// (out of memory, busy, interrupted).
pub fn probe_uncached() -> Option<Features> {
    match probe_now() {
        (f, true) => Some(f),
        (_, false) => None,
    }
}

fn with_int(rest: &[u32]) -> Vec<u32> {
    INT.iter().chain(rest).copied().collect()
}

/// The features, and whether every probe gave an answer.
fn probe_now() -> (Features, bool) {
    let a = Answers(Cell::new(true));
    let loads = |types: &[u32], strs: &[u8]| a.loads(types, strs);
    let btf = loads(&INT, STRS);
    let func = |linkage| {
        // 2: int f(int x); 3: FUNC f.
        loads(
            &with_int(&[
                0,
                info(KIND_FUNC_PROTO, 1),
                1,
                X,
                1,
                F,
                info(KIND_FUNC, linkage),
                2,
            ]),
            STRS,
        )
    };
    let datasec = |name| {
        loads(
            &with_int(&[
                X,
                info(KIND_VAR, 0),
                1,
                0,
                name,
                info(KIND_DATASEC, 1),
                4,
                2,
                0,
                4,
            ]),
            STRS,
        )
    };
    let btf_kinds = BtfFeatures {
        func: btf && func(0),
        global_func: btf && func(1),
        datasec: btf && datasec(DATA),
        qmark_datasec: btf && datasec(QDATA),
        float: btf && loads(&[F, info(KIND_FLOAT, 0), 4], STRS),
        decl_tag: btf
            && loads(
                &with_int(&[
                    X,
                    info(KIND_VAR, 0),
                    1,
                    0,
                    TAG,
                    info(KIND_DECL_TAG, 0),
                    2,
                    u32::MAX,
                ]),
                STRS,
            ),
        type_tag: btf
            && loads(
                &with_int(&[TAG, info(KIND_TYPE_TAG, 0), 1, 0, info(KIND_PTR, 0), 2]),
                STRS,
            ),
        enum64: btf && loads(&[F, info(KIND_ENUM64, 0), 8], STRS),
    };
    let mmapable_arrays = a.yes(
        map_create(&MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            map_flags: ember_core::object::maps::BPF_F_MMAPABLE,
            name: "ember_probe",
            ..MapCreate::default()
        })
        .map_err(|e| e.errno),
    );
    let bpf_cookie = a.yes(probe_cookie());
    let f = Features {
        btf,
        btf_kinds,
        mmapable_arrays,
        bpf_cookie,
    };
    (f, a.0.get())
}

/// A tracepoint program calling `bpf_get_attach_cookie` (helper 174):
/// `call 174; r0 = 0; exit`.
fn probe_cookie() -> Result<ember_sys::OwnedFd, Errno> {
    let insns: [[u8; 8]; 3] = [
        {
            let mut i = [0x85, 0, 0, 0, 0, 0, 0, 0];
            i[4..].copy_from_slice(&174i32.to_ne_bytes());
            i
        },
        [0xb7, 0, 0, 0, 0, 0, 0, 0],
        [0x95, 0, 0, 0, 0, 0, 0, 0],
    ];
    let bytes: Vec<u8> = insns.concat();
    ember_sys::prog_load(&mut ember_sys::ProgLoad {
        prog_type: 5,
        insns: &bytes,
        license: c"GPL",
        name: "ember_probe",
        ..Default::default()
    })
    .map_err(|e| e.error.errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_blobs_parse() {
        // Each blob must at least be valid BTF to ember's own parser.
        let b = blob(&INT, STRS);
        ember_core::btf::Btf::parse(&b).expect("int blob");
    }
}
