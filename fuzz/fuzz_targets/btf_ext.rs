//! `.BTF.ext` from arbitrary bytes: parse (validating the framing), then
//! decode every record of every block; iteration must not fail after a
//! successful parse.
#![no_main]

use ember_core::ext::BtfExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ext) = BtfExt::parse(data) else { return };
    let mut n = 0usize;
    for b in ext.func_info() {
        assert!(!b.is_empty());
        n += b
            .records()
            .map(|r| r.insn_off.0 as usize & 1)
            .sum::<usize>();
    }
    for b in ext.line_info() {
        assert!(!b.is_empty());
        n += b
            .records()
            .map(|r| (r.line() + r.column()) as usize & 1)
            .sum::<usize>();
    }
    for b in ext.core_relos() {
        assert!(!b.is_empty());
        n += b.records().map(|r| r.kind as usize & 1).sum::<usize>();
    }
    // Every record is at least 8 bytes: the count is bounded by the input.
    assert!(n <= data.len() / 8);
});
