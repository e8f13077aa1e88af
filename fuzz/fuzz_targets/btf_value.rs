//! Bytes decoded through BTF types (`ember map dump`, `ember run
//! --event`): any BTF blob and any data never panic, decode the same way
//! twice, and allocate in proportion to the input.
#![no_main]

mod common;

use ember::btf_value::decode;
use ember_core::btf::{Btf, TypeId};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|input: &[u8]| {
    // [btf length: u16 LE][btf][data]
    let Some((len, rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (raw, data) = rest.split_at(len);
    let Ok(btf) = Btf::parse(raw) else { return };
    common::exercise(&btf);
    let base = common::reset_peak();
    for id in 1..=btf.type_count().min(64) {
        let a = decode(&btf, TypeId(id), data);
        let b = decode(&btf, TypeId(id), data);
        assert_eq!(a, b, "nondeterministic");
    }
    let peak = common::peak_since(base);
    assert!(
        peak <= 256 * (data.len() + 4096),
        "{peak} bytes for {} data bytes",
        data.len()
    );
});
