//! `/etc/ld.so.cache` from arbitrary bytes: parsing never panics, is
//! deterministic, and every entry's strings lie inside the input.
#![no_main]

use ember::attach::libpath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = libpath::parse_ld_so_cache(data);
    assert_eq!(a, libpath::parse_ld_so_cache(data));
    if let Ok(entries) = a {
        assert!(entries.len() <= data.len() / 24);
        for e in &entries {
            assert!(e.key.len() < data.len() && e.value.len() < data.len());
        }
        let _ = libpath::from_cache(&entries, "c");
    }
});
