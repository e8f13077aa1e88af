//! BPF ELF objects from arbitrary bytes: parse, then walk every program,
//! map, extern and relocation the way `ember object inspect` does.
//! Allocation is in proportion to the input, and a second parse gives the
//! same object (compared by its tables, not its borrowed bytes).
#![no_main]

use ember_core::object::Object;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// What parsing decided: every table but the code and data bytes.
fn tables(o: &Object<'_>) -> String {
    let code: Vec<_> = o
        .code
        .iter()
        .map(|c| (c.insn_count(), c.relocs.len()))
        .collect();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
        o.license,
        o.kern_version,
        code,
        o.functions,
        o.externs,
        o.sections,
        o.data_symbols,
        o.data.len(),
        o.struct_ops.len(),
        o.maps,
    )
}

fuzz_target!(|data: &[u8]| {
    let live = common::reset_peak();
    let parsed = Object::parse(data, "fuzz");
    // Tables are bounded by symbol and relocation counts, each entry a few
    // words; the BTF offset table is bounded as in the btf target.
    let peak = common::peak_since(live);
    assert!(
        peak <= data.len() * 16 + 65536,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    let again = Object::parse(data, "fuzz");
    match (&parsed, &again) {
        (Ok(a), Ok(b)) => assert_eq!(tables(a), tables(b), "the same object twice"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("the same input parsed once and failed once"),
    }
    let Ok(obj) = parsed else { return };
    assert!(
        obj.check_invariants(),
        "parsed object breaks its invariants"
    );
    for f in &obj.functions {
        let insns = obj.insns(f);
        assert_eq!(insns.len(), f.len as usize * 8);
        let _ = obj.core_relo_count(f);
        if f.len > 0 {
            assert!(obj.function_at(f.section, f.start).is_some());
        }
    }
    for c in &obj.code {
        for r in &c.relocs {
            assert!(r.insn.0 < c.insn_count());
        }
    }
    for m in &obj.maps {
        let _ = (&m.name, m.inner.as_ref().map(|i| i.key_size));
    }
    if let Some(btf) = &obj.btf {
        common::exercise(btf);
    }
});
