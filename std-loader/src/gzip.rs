//! gzip files (RFC 1952) as `/proc/config.gz` holds them: one member,
//! inflated by `miniz_oxide`, checked against its CRC-32 and length.
//!
//! flate2 did this before; its CRC-32 (crc32fast, with a 16 KiB table)
//! and reader plumbing were 28 KiB of the static CLI for one file read at
//! load, while the inflater (flate2's own backend) and, with the default
//! `btfhub` feature, the `crc` crate (through lzma-rs) are in it anyway.

use core::fmt;

/// Why a gzip file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GzipError {
    /// The file is shorter than a header and trailer, does not start with
    /// the gzip magic and the deflate method, or sets reserved flags.
    NotGzip,
    /// The header's optional fields (extra, name, comment, header CRC)
    /// run past the end of the file.
    Header,
    /// The deflate stream is corrupt or cut short.
    Deflate,
    /// Inflated, the member would exceed the caller's limit (bytes).
    TooLarge(usize),
    /// Bytes follow the deflate stream before the trailer: more than one
    /// member, or junk.
    Trailing,
    /// The trailer's CRC-32 or length disagrees with the inflated data.
    Checksum,
}

impl fmt::Display for GzipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotGzip => f.write_str("not a gzip file"),
            Self::Header => f.write_str("gzip header runs past the end of the file"),
            Self::Deflate => f.write_str("corrupt or truncated deflate data"),
            Self::TooLarge(n) => write!(f, "inflates to more than {n} bytes"),
            Self::Trailing => {
                f.write_str("data after the deflate stream (only one gzip member is read)")
            }
            Self::Checksum => {
                f.write_str("CRC-32 or length in the gzip trailer does not match the data")
            }
        }
    }
}

impl core::error::Error for GzipError {}

/// CRC-32 as gzip (and zip, and xz) define it; const, so its 1 KiB table
/// is built at compile time.
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;

/// Inflates a one-member gzip file, allocating at most `limit` bytes of
/// output (and never more than twice the input before it needs to grow).
///
/// The member's deflate data must end where its 8-byte trailer starts, at
/// the end of the file: a second member is refused, not ignored.
///
/// # Errors
/// [`GzipError`], naming what is wrong.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    let body_start = header_len(data)?;
    let trailer_at = data.len().checked_sub(8).ok_or(GzipError::NotGzip)?;
    let body = data.get(body_start..trailer_at).ok_or(GzipError::Header)?;
    let word = |at: usize| {
        data.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (crc, isize) = (word(trailer_at), word(trailer_at + 4));
    let out = inflate(body, limit)?;
    let sum = CRC32.checksum(&out);
    // ISIZE is the length modulo 2^32.
    if crc != Some(sum) || isize != Some(out.len() as u32) {
        return Err(GzipError::Checksum);
    }
    Ok(out)
}

/// Inflates `body`, which must hold exactly one deflate stream.
fn inflate(body: &[u8], limit: usize) -> Result<Vec<u8>, GzipError> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
    // The whole output stays one buffer, so matches can reach back into it.
    let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut out = vec![0u8; body.len().saturating_mul(2).clamp(1, limit.max(1))];
    let mut state = Box::<DecompressorOxide>::default();
    let (mut input, mut at) = (body, 0usize);
    loop {
        let (status, used, wrote) = decompress(&mut state, input, &mut out, at, flags);
        at = at.saturating_add(wrote);
        input = input.get(used..).ok_or(GzipError::Deflate)?;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::HasMoreOutput if out.len() < limit => {
                // Exact: `resize` alone would round the capacity up to
                // twice the old one, past the limit.
                let grown = out.len().saturating_mul(2).min(limit);
                out.reserve_exact(grown.saturating_sub(out.len()));
                out.resize(grown, 0);
            }
            TINFLStatus::HasMoreOutput => return Err(GzipError::TooLarge(limit)),
            _ => return Err(GzipError::Deflate),
        }
    }
    // At the end of the stream the inflater gives back the bytes it had
    // read ahead, so what is left is what follows the stream.
    if !input.is_empty() {
        return Err(GzipError::Trailing);
    }
    // Only a zero limit gets here with more: the buffer starts at 1 byte.
    if at > limit {
        return Err(GzipError::TooLarge(limit));
    }
    out.truncate(at);
    Ok(out)
}

/// The length of the member header: the fixed 10 bytes and the optional
/// fields its flags announce.
fn header_len(data: &[u8]) -> Result<usize, GzipError> {
    match data {
        [0x1f, 0x8b, 8, ..] if data.len() >= 18 => {}
        _ => return Err(GzipError::NotGzip),
    }
    let flags = data.get(3).copied().unwrap_or(0);
    // Bits 5-7 are reserved: RFC 1952 (and gzip itself) refuses them.
    if flags & 0xe0 != 0 {
        return Err(GzipError::NotGzip);
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let n = data
            .get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 2]| usize::from(u16::from_le_bytes(b)))
            .ok_or(GzipError::Header)?;
        at = at + 2 + n;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let rest = data.get(at..).ok_or(GzipError::Header)?;
            let nul = rest.iter().position(|&b| b == 0).ok_or(GzipError::Header)?;
            at += nul + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > data.len() {
        return Err(GzipError::Header);
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `printf 'CONFIG_BPF=y\n' | gzip -n` (gzip 1.12).
    const PLAIN: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x73, 0xf6, 0xf7, 0x73, 0xf3,
        0x74, 0x8f, 0x77, 0x0a, 0x70, 0xb3, 0xad, 0xe4, 0x02, 0x00, 0xb1, 0x0f, 0xcd, 0x28, 0x0d,
        0x00, 0x00, 0x00,
    ];

    #[test]
    fn inflates_and_checks_the_trailer() {
        assert_eq!(decompress(PLAIN, 1 << 20).unwrap(), b"CONFIG_BPF=y\n");
        assert_eq!(decompress(PLAIN, 4), Err(GzipError::TooLarge(4)));
        let mut bad = PLAIN.to_vec();
        let n = bad.len();
        bad[n - 8] ^= 1;
        assert_eq!(decompress(&bad, 1 << 20), Err(GzipError::Checksum));
        assert_eq!(
            decompress(&PLAIN[..n - 1], 1 << 20),
            Err(GzipError::Deflate)
        );
        assert_eq!(decompress(b"hello", 1 << 20), Err(GzipError::NotGzip));
        let mut reserved = PLAIN.to_vec();
        reserved[3] = 0x20;
        assert_eq!(decompress(&reserved, 1 << 20), Err(GzipError::NotGzip));
        assert_eq!(decompress(PLAIN, 0), Err(GzipError::TooLarge(0)));
        // A second member: its trailer ends the file, and is refused.
        let twice = [PLAIN, PLAIN].concat();
        assert_eq!(decompress(&twice, 1 << 20), Err(GzipError::Trailing));
    }

    #[test]
    fn never_grows_past_the_limit() {
        // 3,000 bytes from a few dozen: the buffer doubles from twice the
        // input and must stop at the limit, not at the next doubling
        // (the fuzz target's first finding).
        let payload: Vec<u8> = b"CONFIG_A=y\n".iter().copied().cycle().take(3000).collect();
        let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        gz.extend(miniz_oxide::deflate::compress_to_vec(&payload, 6));
        gz.extend(
            crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC)
                .checksum(&payload)
                .to_le_bytes(),
        );
        gz.extend(3000u32.to_le_bytes());
        let out = decompress(&gz, 3000).unwrap();
        assert_eq!(out, payload);
        assert!(out.capacity() <= 3000, "capacity {}", out.capacity());
        assert_eq!(decompress(&gz, 2999), Err(GzipError::TooLarge(2999)));
    }

    #[test]
    fn skips_the_optional_header_fields() {
        // FNAME and FCOMMENT, each a NUL-terminated string, before the data.
        let mut named = PLAIN[..10].to_vec();
        named[3] = FNAME | FCOMMENT;
        named.extend_from_slice(b"c\0comment\0");
        named.extend_from_slice(&PLAIN[10..]);
        assert_eq!(decompress(&named, 1 << 20).unwrap(), b"CONFIG_BPF=y\n");
        // A name with no NUL runs off the end.
        let mut cut = PLAIN[..10].to_vec();
        cut[3] = FNAME;
        cut.extend_from_slice(&[b'x'; 20]);
        assert_eq!(decompress(&cut, 1 << 20), Err(GzipError::Header));
    }
}
