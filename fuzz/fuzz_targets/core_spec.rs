//! CO-RE access-spec strings (`0:1:2`) against a fixed BTF (the
//! core_kernel fixture's): `parse_spec` never panics, allocates nothing,
//! gives the same spec twice, and the spec written back from its raw
//! indices parses to the same spec.
#![no_main]

use ember_core::btf::{Btf, TypeId};
use ember_core::reloc::report::SpecPath;
use ember_core::reloc::{RelocKind, Spec, parse_spec};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static OBJ: &[u8] = include_bytes!("../../tests/fixtures/core_kernel.bpf-el.o");

/// Everything a spec says, for comparing two.
fn key<'a>(s: &Spec<'a>) -> impl PartialEq + core::fmt::Debug + use<'a> {
    (
        s.root_type_id,
        s.kind,
        s.raw.clone(),
        s.accessors.clone(),
        s.bit_offset,
    )
}

fuzz_target!(|data: &[u8]| {
    let [k, a, b, rest @ ..] = data else { return };
    let Ok(access) = core::str::from_utf8(rest) else {
        return;
    };
    let btf = Btf::parse_elf(OBJ, None).expect("the fixture's BTF parses");
    let kind = RelocKind::from_u32(u32::from(*k) % 13).expect("13 kinds");
    // Mostly real ids, and a few past the end.
    let id = TypeId(u32::from(u16::from_le_bytes([*a, *b])) % (btf.type_count() + 2));
    let live = common::reset_peak();
    let first = parse_spec(&btf, id, access, kind);
    // Specs live in fixed-size vectors; nothing is allocated.
    let peak = common::peak_since(live);
    assert_eq!(peak, 0, "parse_spec allocated {peak} bytes");
    let again = parse_spec(&btf, id, access, kind);
    let spec = match (first, again) {
        (Ok(x), Ok(y)) => {
            assert_eq!(key(&x), key(&y), "nondeterministic");
            x
        }
        (Err(x), Err(y)) => {
            assert_eq!(x, y, "nondeterministic");
            return;
        }
        (x, y) => panic!("nondeterministic: {:?} vs {:?}", x.err(), y.err()),
    };
    // One raw index per `:`-separated part, and never more accessors.
    assert_eq!(spec.raw.len(), access.split(':').count());
    assert!(spec.accessors.len() <= spec.raw.len());
    // Round trip: the canonical string of the raw indices means the same.
    let canon: Vec<String> = spec.raw.iter().map(u32::to_string).collect();
    let canon = canon.join(":");
    let back = parse_spec(&btf, id, &canon, kind).expect("a canonical spec parses");
    assert_eq!(key(&back), key(&spec), "{access:?} vs {canon:?}");
    let path = SpecPath {
        btf: &btf,
        spec: &spec,
    }
    .to_string();
    assert_eq!(
        path,
        SpecPath {
            btf: &btf,
            spec: &back
        }
        .to_string()
    );
});
