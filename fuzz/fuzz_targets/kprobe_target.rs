//! Kprobe targets and globs from arbitrary text: `KprobeTarget::parse`
//! never panics, gives the same answer twice, and what it accepts prints
//! back to a spec that parses to the same place; `glob_match` never
//! panics and agrees with a table-driven matcher; kallsyms `definitions`
//! lists each address once. Allocation stays in proportion to the input.
#![no_main]

use ember::attach::KprobeTarget;
use ember::attach::kprobe_multi::{glob_match, matching_functions};
use ember::kallsyms::{definitions, function_names};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// `*` any run, `?` any one byte: `m[i][j]` says whether `pat[i..]`
/// matches `name[j..]`. Quadratic, so only for short inputs.
fn table_match(pat: &[u8], name: &[u8]) -> bool {
    let (p, n) = (pat.len(), name.len());
    let mut m = vec![vec![false; n + 1]; p + 1];
    m[p][n] = true;
    for i in (0..p).rev() {
        for j in (0..=n).rev() {
            m[i][j] = match pat[i] {
                b'*' => m[i + 1][j] || (j < n && m[i][j + 1]),
                c => j < n && (c == b'?' || c == name[j]) && m[i + 1][j + 1],
            };
        }
    }
    m[0][0]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let live = common::reset_peak();
    let parsed = KprobeTarget::parse(text);
    // The target owns its name; an error quotes the spec (a String grown
    // by doubling, old and new buffer at once while it moves).
    let peak = common::peak_since(live);
    assert!(
        peak <= 4 * data.len() + 256,
        "parse allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(parsed, KprobeTarget::parse(text), "the same answer twice");
    if let Ok(t) = parsed {
        let shown = t.to_string();
        let spec = shown
            .strip_prefix("kprobe '")
            .and_then(|s| s.strip_suffix('\''))
            .expect("kprobe 'SPEC'");
        let again = KprobeTarget::parse(spec).expect("the printed spec parses");
        assert_eq!(again.location, t.location);
    }
    let (pat, name) = text.split_once('\n').unwrap_or((text, ""));
    let live = common::reset_peak();
    let hit = glob_match(pat, name);
    assert_eq!(common::peak_since(live), 0, "glob_match allocates nothing");
    if pat.len() <= 64 && name.len() <= 256 {
        assert_eq!(
            hit,
            table_match(pat.as_bytes(), name.as_bytes()),
            "{pat:?} {name:?}"
        );
    }
    assert!(glob_match("*", name));
    if !name.contains(['*', '?']) {
        assert!(glob_match(name, name));
    }
    let defs = definitions(text, pat, None);
    assert_eq!(defs, definitions(text, pat, None));
    for (i, d) in defs.iter().enumerate() {
        assert!(defs[..i].iter().all(|e| e.addr != d.addr));
    }
    let _ = function_names(text).count();
    // The text as tracefs `available_filter_functions`: sorted, distinct
    // names, each the first word of a line and matching the pattern.
    let live = common::reset_peak();
    let names = matching_functions(text.lines(), pat);
    let peak = common::peak_since(live);
    // Per name (at least 2 bytes of text): a B-tree slot and node share,
    // the owned name, and a slot of the Vec it is collected into.
    assert!(peak <= 64 * data.len() + 4096, "matching allocated {peak}");
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    for n in &names {
        assert!(glob_match(pat, n), "{n} does not match {pat:?}");
        assert!(
            text.lines()
                .any(|l| l.split_ascii_whitespace().next() == Some(n.as_str())),
            "{n} is no line's first word"
        );
    }
});
