//! `/etc/ld.so.cache` from arbitrary bytes: parsing never panics, is
//! deterministic, allocates in proportion to the input, and every entry's
//! strings lie inside the input; the entries written back as a new-format
//! cache parse to the same entries.
#![no_main]

use ember::attach::libpath::{self, CacheEntry};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// A glibc 2.32+ cache of `entries`: the 48-byte header (magic, then
/// `nlibs` at 20), 24-byte entries, and their strings after the table.
fn write_cache(entries: &[CacheEntry<'_>]) -> Vec<u8> {
    let mut out = b"glibc-ld.so.cache1.1".to_vec();
    out.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
    out.resize(48, 0);
    let mut strings = Vec::new();
    let table_end = 48 + 24 * entries.len();
    for e in entries {
        let mut add = |s: &str| {
            let at = (table_end + strings.len()) as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let (k, v) = (add(e.key), add(e.value));
        for w in [e.flags, k, v, 0] {
            out.extend_from_slice(&w.to_ne_bytes());
        }
        out.extend_from_slice(&0u64.to_ne_bytes());
    }
    out.extend_from_slice(&strings);
    out
}

fuzz_target!(|data: &[u8]| {
    let live = common::reset_peak();
    let a = libpath::parse_ld_so_cache(data);
    // One 40-byte entry per 24-byte record at most (the table is checked
    // against the input before the Vec is sized), or an error string.
    let peak = common::peak_since(live);
    assert!(
        peak <= 2 * data.len() + 256,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(a, libpath::parse_ld_so_cache(data));
    if let Ok(entries) = a {
        assert!(entries.len() <= data.len() / 24);
        for e in &entries {
            assert!(e.key.len() < data.len() && e.value.len() < data.len());
        }
        let _ = libpath::from_cache(&entries, "c");
        let written = write_cache(&entries);
        assert_eq!(
            libpath::parse_ld_so_cache(&written).as_deref(),
            Ok(entries.as_slice()),
            "written back"
        );
    }
});
