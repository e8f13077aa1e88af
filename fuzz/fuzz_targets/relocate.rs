//! The CO-RE solver on arbitrary objects against fixed target BTFs (the
//! family targets): parse, solve with both candidate strategies (which
//! must agree), and patch a copy of the code. No panic, same verdict twice.
#![no_main]

use ember_core::btf::Btf;
use ember_core::object::Object;
use ember_core::reloc::{CandidateSearch, Targets, apply, solve_with};
use libfuzzer_sys::fuzz_target;

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
    let scan = solve_with(&obj, &targets, CandidateSearch::Scan);
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
    if let Ok(plan) = scan {
        let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
        let _ = apply(&obj, &plan, &mut code);
    }
});
