//! The C header writer (`ember btf dump --format c`) on arbitrary BTF that
//! parses: no panic, allocation proportional to the input (output
//! aside), the same header and verdict twice, and a writer that fails
//! half way gives `DumpError::Fmt` after a prefix of the same header.
#![no_main]

use core::fmt;
use std::hash::{DefaultHasher, Hasher};

use ember_core::btf::Btf;
use ember_core::btf::dump::c::{DumpError, dump};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Hashes what is written without keeping it, so the allocation measured
/// is the dumper's own.
#[derive(Default)]
struct Hashing {
    h: DefaultHasher,
    len: usize,
}

impl fmt::Write for Hashing {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.h.write(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Keeps what is written, failing every write that would pass `limit`.
struct Capped {
    out: String,
    limit: usize,
}

impl fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.out.len() + s.len() > self.limit {
            return Err(fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data) else { return };
    let live = common::reset_peak();
    let mut a = Hashing::default();
    let ra = dump(&btf, &mut a);
    // Three per-type tables, name tables and the walk's stacks: a few
    // words per type or member, which take 4 to 16 bytes of input each.
    let peak = common::peak_since(live);
    assert!(
        peak <= data.len() * 32 + (256 << 10),
        "dump allocated {peak} for {} bytes",
        data.len()
    );
    let mut whole = Capped {
        out: String::new(),
        limit: usize::MAX,
    };
    let rb = dump(&btf, &mut whole);
    assert_eq!(ra, rb, "nondeterministic verdict");
    let mut h = DefaultHasher::new();
    h.write(whole.out.as_bytes());
    assert_eq!(
        (a.len, a.h.finish()),
        (whole.out.len(), h.finish()),
        "nondeterministic header"
    );
    if let Err(DumpError::Btf(e)) = &ra {
        // Errors name a record of this BTF (or none).
        assert!(e.offset() <= data.len(), "{e:?} points past the input");
    }
    if whole.out.is_empty() {
        return;
    }
    let mut cut = Capped {
        out: String::new(),
        limit: whole.out.len() / 2,
    };
    assert_eq!(dump(&btf, &mut cut), Err(DumpError::Fmt));
    assert!(
        whole.out.starts_with(&cut.out),
        "a failed write changed the output"
    );
});
