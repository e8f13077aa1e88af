//! Text dumps of BTF: bpftool's raw listing and a C header (`vmlinux.h`).

pub mod c;
pub mod raw;

/// Writes `bytes` to `out`, replacing invalid UTF-8 with U+FFFD (BTF
/// names are ASCII in practice).
pub(crate) fn write_bytes(out: &mut dyn core::fmt::Write, bytes: &[u8]) -> core::fmt::Result {
    for chunk in bytes.utf8_chunks() {
        out.write_str(chunk.valid())?;
        if !chunk.invalid().is_empty() {
            out.write_char(char::REPLACEMENT_CHARACTER)?;
        }
    }
    Ok(())
}
