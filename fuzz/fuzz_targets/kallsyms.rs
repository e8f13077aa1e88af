//! /proc/kallsyms text from arbitrary bytes: parsing never panics and is
//! deterministic.
#![no_main]

use ember::kallsyms::Kallsyms;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    let wanted = ["_stext", "bpf_prog_active", "x", "dup"];
    let a = Kallsyms::parse(text, &wanted);
    let b = Kallsyms::parse(text, &wanted);
    match (a, b) {
        (Ok(a), Ok(b)) => {
            for w in wanted {
                assert_eq!(a.get(w), b.get(w));
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("nondeterministic"),
    }
});
