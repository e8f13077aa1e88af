//! Raw BTF from arbitrary bytes: open (validate), then dump, resolve and
//! look up every type. No panic, allocation proportional to the input,
//! and the same verdict twice.
#![no_main]

use ember_core::btf::Btf;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let base = common::reset_peak();
    let first = Btf::parse(data);
    // One u32 offset per 12-byte record at most, plus small fixed overhead.
    let peak = common::peak_since(base);
    assert!(
        peak <= data.len() / 2 + 4096,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    let again = Btf::parse(data);
    assert_eq!(first.as_ref().err(), again.as_ref().err());
    if let Ok(btf) = first {
        common::exercise(&btf);
    }
});
