//! A panic-free, endian-aware reader over a byte slice.

/// Byte order of a BTF blob, decided by how its magic reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endian {
    /// Little-endian (x86, arm64, bpfel).
    Little,
    /// Big-endian (s390x, bpfeb).
    Big,
}

impl Endian {
    /// The byte order of the machine running this code.
    pub const NATIVE: Endian = if cfg!(target_endian = "big") {
        Endian::Big
    } else {
        Endian::Little
    };

    /// The byte order `scroll` should use for this blob.
    pub(crate) fn scroll(self) -> scroll::Endian {
        match self {
            Endian::Little => scroll::LE,
            Endian::Big => scroll::BE,
        }
    }
}

/// Reads a `u32` at `off`, or `None` when fewer than 4 bytes remain.
#[inline(always)]
pub(crate) fn u32_at(data: &[u8], off: usize, endian: Endian) -> Option<u32> {
    let b = *data.get(off..)?.first_chunk::<4>()?;
    Some(match endian {
        Endian::Little => u32::from_le_bytes(b),
        Endian::Big => u32::from_be_bytes(b),
    })
}

/// Reads a `u16` at `off`, or `None` when fewer than 2 bytes remain.
#[inline(always)]
pub(crate) fn u16_at(data: &[u8], off: usize, endian: Endian) -> Option<u16> {
    let b = *data.get(off..)?.first_chunk::<2>()?;
    Some(match endian {
        Endian::Little => u16::from_le_bytes(b),
        Endian::Big => u16::from_be_bytes(b),
    })
}
