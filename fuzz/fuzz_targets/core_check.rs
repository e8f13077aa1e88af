//! `ember core check`'s per-BTF logic on arbitrary objects against fixed
//! target BTFs (the CO-RE family targets): never a panic, and every row
//! is consistent (ok exactly when there is no error; no more poisoned than
//! relocations; the poisoned count matches the `poisoned:` lines), the
//! same rows twice, and allocation in proportion to the object.
#![no_main]

use ember::check::{CheckObject, check_btf};
use ember_core::btf::Btf;
use ember_core::object::Object;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static TARGETS: [&[u8]; 4] = [
    include_bytes!("../../tests/fixtures/core/nesting.t-el.o"),
    include_bytes!("../../tests/fixtures/core/arrays___diff_arr_val_sz.t-el.o"),
    include_bytes!("../../tests/fixtures/core/types___diff.t-el.o"),
    include_bytes!("../../tests/fixtures/core16/enum64.t-el.o"),
];

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
    let objs = [CheckObject::new("fuzz", &obj)];
    let live = common::reset_peak();
    let rows = check_btf(&objs, &target, "t");
    let peak = common::peak_since(live);
    // The solver keeps both specs of every relocation (3,768 bytes per
    // 16-byte record: up to 236 times the records), plus the fixed
    // target's candidate lists and the rows' text.
    assert!(
        peak <= 256 * data.len() + (256 << 10),
        "allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(rows, check_btf(&objs, &target, "t"), "the same rows twice");
    for r in rows {
        assert_eq!(r.ok, r.errors.is_empty());
        assert!(r.poisoned <= r.relocations, "{r:?}");
        let lines = r
            .errors
            .iter()
            .filter(|e| e.starts_with("poisoned: "))
            .count();
        assert_eq!(lines, r.poisoned, "{r:?}");
    }
});
