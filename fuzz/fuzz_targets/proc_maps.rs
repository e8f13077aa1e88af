//! `/proc/PID/maps` text from arbitrary bytes, searched for a library the
//! way uprobe attach resolves a short name (`attach::libpath::from_maps`):
//! no panic, allocation bounded by the input, the same answer twice, an
//! answer that is a path taken from the text and names that library, and
//! that path written back as a maps line is found again.
//!
//! Input: the library name up to the first NUL (at most 64 bytes), then
//! the maps text.
#![no_main]

use std::path::Path;

use ember::attach::libpath::{from_maps, lib_matches};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().take(64).position(|&b| b == 0) else {
        return;
    };
    let (Ok(name), Ok(maps)) = (
        core::str::from_utf8(&data[..nul]),
        core::str::from_utf8(&data[nul + 1..]),
    ) else {
        return;
    };
    let live = common::reset_peak();
    let found = from_maps(maps, name);
    // Lines are borrowed while searching; the answer is owned, and each
    // line's check builds `lib{name}.so` (freed before the next).
    let peak = common::peak_since(live);
    let owned = found.as_ref().map_or(0, |p| p.as_os_str().len());
    assert!(
        peak <= 2 * owned + 8 * name.len() + 512,
        "from_maps allocated {peak} for a {owned}-byte answer"
    );
    assert_eq!(found, from_maps(maps, name), "nondeterministic");
    let Some(path) = found else { return };
    let p = path.to_str().expect("a path taken from UTF-8 text");
    assert!(p.starts_with('/'), "{p:?} is not absolute");
    assert!(
        maps.lines().any(|l| l.contains(p)),
        "{p:?} is not from the text"
    );
    let base = Path::new(p)
        .file_name()
        .and_then(|b| b.to_str())
        .expect("a file name");
    assert!(lib_matches(base, name), "{base:?} is not {name:?}");
    // Round trip: the kernel's line for that mapping (deleted, so that a
    // path ending in " (deleted)" itself survives).
    let line = format!("7f1c2a400000-7f1c2a428000 r--p 00000000 08:01 1835021  {p} (deleted)\n");
    assert_eq!(
        from_maps(&line, name).as_deref(),
        Some(Path::new(p)),
        "{line:?}"
    );
});
