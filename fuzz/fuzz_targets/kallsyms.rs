//! /proc/kallsyms text from arbitrary bytes: parsing never panics, is
//! deterministic, allocates in proportion to the input, and agrees with
//! `definitions` (the listing kprobe errors use): a name found has one
//! address, the first defined; a name not found has none; an ambiguous
//! name has two or more.
#![no_main]

use ember::kallsyms::{Kallsyms, KsymError, definitions};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let wanted = ["_stext", "bpf_prog_active", "x", "dup"];
    let live = common::reset_peak();
    let a = Kallsyms::parse(text, &wanted);
    // A map of at most the four wanted names, each owned with its module.
    let peak = common::peak_since(live);
    assert!(
        peak <= 2 * data.len() + 4096,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    let b = Kallsyms::parse(text, &wanted);
    let live = common::reset_peak();
    let defs: Vec<_> = wanted.iter().map(|w| definitions(text, w, None)).collect();
    // One Ksym (40 bytes, doubled by growth) per line of at least 6 bytes.
    let peak = common::peak_since(live);
    assert!(
        peak <= 16 * data.len() + 4096,
        "definitions allocated {peak} for {} bytes",
        data.len()
    );
    match (a, b) {
        (Ok(a), Ok(b)) => {
            for (w, d) in wanted.iter().zip(&defs) {
                assert_eq!(a.get(w), b.get(w));
                match a.get(w) {
                    Some(k) => assert_eq!(d.as_slice(), std::slice::from_ref(k), "{w}"),
                    None => assert!(d.is_empty(), "{w} defined but not found"),
                }
            }
        }
        (Err(a), Err(b)) => {
            assert_eq!(a, b);
            if let KsymError::Ambiguous { name, addrs } = &a {
                let d = &defs[wanted
                    .iter()
                    .position(|w| w == name)
                    .expect("a wanted name")];
                assert!(d.len() >= 2 && addrs.0 != addrs.1, "{name}");
            }
        }
        _ => panic!("nondeterministic"),
    }
});
