//! The CO-RE solver on arbitrary objects against fixed target BTFs (the
//! family targets): parse, solve with both candidate strategies (which
//! must agree), and patch a copy of the code. No panic; the same plan and
//! the same patched code twice; the solver's allocation in proportion to
//! the object (plus the fixed target's index).
#![no_main]

use ember_core::btf::Btf;
use ember_core::object::Object;
use ember_core::reloc::{CandidateSearch, Targets, apply, solve_with};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static TARGETS: [&[u8]; 4] = [
    include_bytes!("../../tests/fixtures/core/nesting.t-el.o"),
    include_bytes!("../../tests/fixtures/core/arrays___diff_arr_val_sz.t-el.o"),
    include_bytes!("../../tests/fixtures/core/bitfields___bit_sz_change.t-el.o"),
    include_bytes!("../../tests/fixtures/core/types___diff.t-el.o"),
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
    let targets = Targets::single(&target);
    let live = common::reset_peak();
    let scan = solve_with(&obj, &targets, CandidateSearch::Scan);
    let peak = common::peak_since(live);
    // The solver keeps both specs of every relocation (3,768 bytes per
    // 16-byte record: up to 236 times the records), plus the fixed
    // target's candidate lists.
    assert!(
        peak <= 256 * data.len() + (256 << 10),
        "allocated {peak} for {} bytes",
        data.len()
    );
    let index = solve_with(&obj, &targets, CandidateSearch::Index);
    match (&scan, &index) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert_eq!((x.kind, x.res), (y.kind, y.res));
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!(
            "scan and index disagree: {:?} vs {:?}",
            scan.as_ref().err(),
            index.as_ref().err()
        ),
    }
    let again = solve_with(&obj, &targets, CandidateSearch::Scan);
    match (&scan, &again) {
        (Ok(a), Ok(b)) => {
            let key = |p: &[ember_core::reloc::Resolution<'_, '_>]| {
                p.iter().map(|x| (x.kind, x.res)).collect::<Vec<_>>()
            };
            assert_eq!(key(a), key(b), "the same plan twice");
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("the same object solved once and failed once"),
    }
    if let Ok(plan) = scan {
        let patch = || {
            let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
            let r = apply(&obj, &plan, &mut code).map_err(|e| e.to_string());
            (r, code)
        };
        assert_eq!(patch(), patch(), "the same code patched twice");
    }
});
