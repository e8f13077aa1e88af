//! The minimizer on arbitrary objects against fixed target BTFs (the
//! family targets): when the object solves against the full target, the
//! minimized BTF parses, and solving against it gives the same result for
//! every relocation (target type ids compared by the type they name).
//! Minimizing twice gives the same bytes, and allocates in proportion to
//! the object and the fixed target.
#![no_main]

use ember_core::btf::{Btf, TypeId};
use ember_core::minimize::Minimizer;
use ember_core::object::Object;
use ember_core::reloc::{RelocKind, Resolution, Targets, solve};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static TARGETS: [&[u8]; 6] = [
    include_bytes!("../../tests/fixtures/core/nesting.t-el.o"),
    include_bytes!("../../tests/fixtures/core/arrays___diff_arr_val_sz.t-el.o"),
    include_bytes!("../../tests/fixtures/core/bitfields___bit_sz_change.t-el.o"),
    include_bytes!("../../tests/fixtures/core/types___diff.t-el.o"),
    include_bytes!("../../tests/fixtures/core/flavors.t-el.o"),
    include_bytes!("../../tests/fixtures/core16/enum64.t-el.o"),
];

fn name(btf: &Btf<'_>, id: TypeId) -> (Option<ember_core::btf::Kind>, String) {
    match btf.get(id) {
        Some(t) => (Some(t.kind()), btf.name(&t).unwrap_or("?").to_owned()),
        None => (None, id.0.to_string()),
    }
}

fn key(r: &Resolution<'_, '_>, btf: &Btf<'_>) -> impl PartialEq + std::fmt::Debug {
    let x = r.res;
    let new = if r.kind == RelocKind::TypeIdTarget && x.new != 0 {
        name(btf, TypeId(x.new as u32))
    } else {
        (None, x.new.to_string())
    };
    (
        r.kind,
        x.orig,
        new,
        x.poison,
        x.validate,
        x.fail_memsz_adjust,
        (x.orig_sz, x.new_sz, x.orig_type),
        name(btf, x.new_type),
        r.target.as_ref().map(|(_, s)| s.bit_offset),
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, obj_bytes)) = data.split_first() else {
        return;
    };
    let Ok(obj) = Object::parse(obj_bytes, "fuzz") else {
        return;
    };
    let tb = TARGETS[usize::from(pick) % TARGETS.len()];
    let Ok(target) = Btf::parse_elf(tb, None) else {
        panic!("fixture target must parse")
    };
    let Ok(full) = solve(&obj, &Targets::single(&target)) else {
        return;
    };
    let minimize = || {
        let mut m = Minimizer::new(&target).expect("minimizer");
        m.add_object(&obj)
            .expect("an object that solves can be minimized");
        m.finish().expect("emit")
    };
    let live = common::reset_peak();
    let out = minimize();
    let peak = common::peak_since(live);
    // The solver keeps both specs of every relocation (3,768 bytes per
    // 16-byte record: up to 236 times the records), plus the fixed
    // target's candidate lists and the kept-type tables.
    assert!(
        peak <= 256 * data.len() + (256 << 10),
        "allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(out, minimize(), "the same bytes twice");
    let small = Btf::parse(&out).expect("minimized BTF parses");
    let again = solve(&obj, &Targets::single(&small)).expect("solves against minimized BTF");
    assert_eq!(full.len(), again.len());
    for (a, b) in full.iter().zip(&again) {
        assert_eq!(key(a, &target), key(b, &small), "relocation #{}", a.index);
    }
});
