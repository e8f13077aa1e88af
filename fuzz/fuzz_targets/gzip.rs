//! gzip files (kconfig's `/proc/config.gz`) from arbitrary bytes: no
//! panic, the same answer twice, allocation bounded by the output limit
//! and the input, and whatever inflates is the CRC-checked member. Then the
//! other way round: the input as the payload of a gzip member this target
//! writes (deflated at a level from the first byte, with optional header
//! fields) inflates back to itself, and with a second member appended is
//! refused.
#![no_main]

use ember::gzip::{GzipError, decompress};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// Output limit: small, so the limit path is reached by short inputs.
const LIMIT: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let live = common::reset_peak();
    let got = decompress(data, LIMIT);
    // The output buffer (at most the limit, or twice the input to start
    // with), counted twice for the moment it grows, and the inflater's
    // state (about 11 KiB).
    let peak = common::peak_since(live);
    assert!(
        peak <= 2 * LIMIT.max(2 * data.len()) + (32 << 10),
        "decompress allocated {peak} for {} bytes of input",
        data.len()
    );
    assert_eq!(got, decompress(data, LIMIT), "nondeterministic");
    if let Ok(out) = &got {
        assert!(out.len() <= LIMIT);
        let n = data.len();
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(out);
        assert_eq!(data[n - 8..n - 4], crc.to_le_bytes());
    }

    let Some((&opts, payload)) = data.split_first() else {
        return;
    };
    let gz = wrap(payload, opts);
    assert_eq!(
        decompress(&gz, LIMIT.max(payload.len())).as_deref(),
        Ok(payload)
    );
    if payload.len() > LIMIT {
        return;
    }
    let twice = [gz.as_slice(), gz.as_slice()].concat();
    assert_eq!(decompress(&twice, LIMIT), Err(GzipError::Trailing));
});

/// A one-member gzip file of `payload`: deflate level `opts & 15` (10 is
/// miniz's best), and the extra field, name, comment and header CRC that
/// bits 4..8 of `opts` ask for.
fn wrap(payload: &[u8], opts: u8) -> Vec<u8> {
    let flags = (opts >> 4) << 1;
    let mut gz = vec![0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 255];
    if flags & 4 != 0 {
        gz.extend_from_slice(&3u16.to_le_bytes());
        gz.extend_from_slice(b"abc");
    }
    if flags & 8 != 0 {
        gz.extend_from_slice(b"config\0");
    }
    if flags & 16 != 0 {
        gz.extend_from_slice(b"a comment\0");
    }
    if flags & 2 != 0 {
        gz.extend_from_slice(&[0, 0]);
    }
    gz.extend(miniz_oxide::deflate::compress_to_vec(
        payload,
        (opts & 15).min(10),
    ));
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(payload);
    gz.extend_from_slice(&crc.to_le_bytes());
    gz.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    gz
}
