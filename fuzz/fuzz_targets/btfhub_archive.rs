//! btfhub `.btf.tar.xz` archives from arbitrary bytes, through the
//! loader's extractor (`btf_source::extract_archive`) with a small cap:
//! no panic, allocation bounded by the cap (not by what the archive
//! claims), the same verdict twice, and BTF taken out of an archive comes
//! out again unchanged once re-packed.
//!
//! The first byte picks the mode: bit 0 set, the rest is a tar stream that
//! is xz-compressed here first (so mutations reach the tar walk past the
//! xz checksums); bit 1 set, the entry is asked for by name.
#![no_main]

use ember::btf_source::{Why, extract_archive};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// The tar stream may expand to this much here (the loader allows 512 MiB).
const CAP: u64 = 1 << 20;

const WANT: &str = "5.4.0-1.btf";

fn xz(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut &raw[..], &mut out).expect("compressing into memory");
    out
}

/// A verdict that can be compared: the bytes, or the error's kind and
/// message.
fn verdict(r: &Result<Vec<u8>, Why>) -> Result<&[u8], (u8, String)> {
    match r {
        Ok(v) => Ok(v),
        Err(e) => Err((
            match e {
                Why::Io(_) => 0,
                Why::NotBtf(_) => 1,
                Why::NotInArchive => 2,
                _ => 3,
            },
            e.to_string(),
        )),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let packed = if mode & 1 != 0 {
        xz(rest)
    } else {
        rest.to_vec()
    };
    let want = (mode & 2 != 0).then_some(WANT);
    let live = common::reset_peak();
    let first = extract_archive(&packed, want, CAP);
    // The tar buffer and the LZMA dictionary each grow to at most twice
    // the cap; the entry, names and headers are bounded by the tar stream.
    let peak = common::peak_since(live);
    let bound = 8 * CAP as usize + 64 * packed.len() + (1 << 20);
    assert!(
        peak <= bound,
        "extract allocated {peak} (bound {bound}) for {} bytes",
        packed.len()
    );
    let again = extract_archive(&packed, want, CAP);
    assert_eq!(verdict(&first), verdict(&again), "nondeterministic");
    let Ok(btf) = first else { return };
    assert!(btf.len() as u64 <= CAP);
    ember_core::btf::Btf::parse_any(&btf, None).expect("extracted BTF parses");
    // Round trip: the entry alone in a fresh archive, under the name asked.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(btf.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, WANT, &btf[..])
        .expect("tar into memory");
    let tar = b.into_inner().expect("tar into memory");
    let back =
        extract_archive(&xz(&tar), Some(WANT), 2 * CAP).expect("a re-packed archive extracts");
    assert_eq!(back, btf, "re-packed BTF differs");
});
