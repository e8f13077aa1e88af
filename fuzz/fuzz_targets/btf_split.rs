//! Split BTF from arbitrary bytes over a fixed base (the fixture object's
//! BTF): ids and string offsets continue the base's. Allocation is in
//! proportion to the input, and the verdict is the same twice.
#![no_main]

use ember_core::btf::Btf;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static BASE_OBJ: &[u8] = include_bytes!("../../tests/fixtures/btf_kinds.bpf-el.o");

fuzz_target!(|data: &[u8]| {
    let Ok(base) = Btf::parse_elf(BASE_OBJ, None) else {
        panic!("fixture base must parse");
    };
    let live = common::reset_peak();
    let split = Btf::parse_split(data, &base);
    let peak = common::peak_since(live);
    assert!(
        peak <= data.len() / 2 + 4096,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    let again = Btf::parse_split(data, &base);
    assert_eq!(split.as_ref().err(), again.as_ref().err());
    if let Ok(btf) = split {
        assert_eq!(btf.start_id(), ember_core::btf::TypeId(base.type_count()));
        common::exercise(&btf);
    }
});
