//! `.BTF.ext` from arbitrary bytes: parse (validating the framing), then
//! decode every record of every block; iteration must not fail after a
//! successful parse. Parsing and decoding allocate nothing (records are
//! read in place), and a second pass decodes the same records.
#![no_main]

use ember_core::ext::{BtfExt, CoreRelo, FuncInfo, LineInfo};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Every record of every block, folded into one value per record kind
/// (so a second pass can be compared without keeping the records).
fn fold(ext: &BtfExt<'_>) -> (usize, u64, u64, u64) {
    let mut n = 0usize;
    let mut h = (0u64, 0u64, 0u64);
    let mix = |h: u64, x: u64| h.rotate_left(5) ^ x;
    for b in ext.func_info() {
        assert!(!b.is_empty());
        for r in b.records() {
            let FuncInfo { insn_off, type_id } = r;
            h.0 = mix(mix(h.0, u64::from(insn_off.0)), u64::from(type_id.0));
            n += 1;
        }
    }
    for b in ext.line_info() {
        assert!(!b.is_empty());
        for r in b.records() {
            let r: LineInfo = r;
            h.1 = mix(mix(h.1, u64::from(r.line())), u64::from(r.column()));
            n += 1;
        }
    }
    for b in ext.core_relos() {
        assert!(!b.is_empty());
        for r in b.records() {
            let r: CoreRelo = r;
            h.2 = mix(mix(h.2, u64::from(r.kind)), u64::from(r.access_str_off.0));
            n += 1;
        }
    }
    (n, h.0, h.1, h.2)
}

fuzz_target!(|data: &[u8]| {
    let live = common::reset_peak();
    let parsed = BtfExt::parse(data);
    let first = parsed.as_ref().ok().map(fold);
    assert_eq!(
        common::peak_since(live),
        0,
        "parsing and decoding allocate nothing"
    );
    let again = BtfExt::parse(data);
    assert_eq!(parsed.as_ref().err(), again.as_ref().err());
    let Some(first) = first else { return };
    assert_eq!(
        Some(first),
        again.ok().as_ref().map(fold),
        "the same records twice"
    );
    // Every record is at least 8 bytes, and each of the three subsections
    // lies in the input (they may overlap): the count is bounded by it.
    assert!(first.0 <= 3 * (data.len() / 8));
});
