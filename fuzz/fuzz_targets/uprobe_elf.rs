//! Uprobe symbol resolution over arbitrary bytes: reading an ELF's
//! function and data symbols as file offsets never panics and is
//! deterministic, and every offset found is one `find` returns or calls
//! ambiguous.
#![no_main]

use ember::attach::elf_sym::{self, Lookup};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = elf_sym::functions(data);
    assert_eq!(a, elf_sym::functions(data));
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
});
