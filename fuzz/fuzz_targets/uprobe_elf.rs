//! Uprobe and USDT resolution over arbitrary bytes: reading an ELF's
//! function and data symbols as file offsets, its SDT notes and their
//! argument strings never panics and is deterministic, and every function
//! listed is one `find` returns or calls ambiguous. Reading allocates in
//! proportion to the input.
#![no_main]

use ember::attach::elf_sym::{self, Lookup};
use ember::attach::usdt;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let live = common::reset_peak();
    let a = elf_sym::functions(data);
    let sites = usdt::sites(data, "p", "n");
    let peak = common::peak_since(live);
    // Symbols and sites own their names, each at most the input; errors
    // are short strings.
    assert!(
        peak <= 4 * data.len() + 4096,
        "allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(a, elf_sym::functions(data));
    assert_eq!(sites, usdt::sites(data, "p", "n"));
    if let Ok(syms) = a {
        for s in syms.iter().take(64) {
            match elf_sym::find(&syms, &s.name) {
                Ok(_) | Err(Lookup::Ambiguous(_)) => {}
                Err(e) => panic!("{} listed but not found: {e:?}", s.name),
            }
            let _ = elf_sym::matching(&syms, "*a?");
        }
    }
    let _ = elf_sym::data_offset(data, "sem");
    // The bytes as an ELF with SDT notes, as a bare note section, and as
    // an argument string.
    for (is_64, little) in [(true, true), (false, false)] {
        let notes = usdt::parse_notes(data, is_64, little);
        assert_eq!(notes, usdt::parse_notes(data, is_64, little));
        if let Ok(notes) = notes {
            for n in notes {
                let _ = usdt::parse_args(n.args);
            }
        }
    }
    if let Ok(s) = core::str::from_utf8(data)
        && let Ok(args) = usdt::parse_args(s)
    {
        assert!(args.len() <= usdt::MAX_ARGS);
        let _ = usdt::encode_spec(&args, 1);
    }
});
