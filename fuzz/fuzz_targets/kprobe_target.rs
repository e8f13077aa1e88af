//! Kprobe targets and globs from arbitrary text: `KprobeTarget::parse`
//! never panics, and what it accepts prints back to a spec that parses to
//! the same place; `glob_match` never panics and matches what it must;
//! kallsyms `definitions` lists each address once.
#![no_main]

use ember::attach::KprobeTarget;
use ember::attach::kprobe_multi::glob_match;
use ember::kallsyms::{definitions, function_names};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    if let Ok(t) = KprobeTarget::parse(text) {
        let shown = t.to_string();
        let spec = shown
            .strip_prefix("kprobe '")
            .and_then(|s| s.strip_suffix('\''))
            .expect("kprobe 'SPEC'");
        let again = KprobeTarget::parse(spec).expect("the printed spec parses");
        assert_eq!(again.location, t.location);
    }
    let (pat, name) = text.split_once('\n').unwrap_or((text, ""));
    let _ = glob_match(pat, name);
    assert!(glob_match("*", name));
    if !name.contains(['*', '?']) {
        assert!(glob_match(name, name));
    }
    let defs = definitions(text, pat, None);
    for (i, d) in defs.iter().enumerate() {
        assert!(defs[..i].iter().all(|e| e.addr != d.addr));
    }
    let _ = function_names(text).count();
});
