//! On-disk BTF records and constants, mirroring `include/uapi/linux/btf.h`.

use scroll::Pread;

/// `BTF_MAGIC`.
pub const BTF_MAGIC: u16 = 0xeb9f;
/// `BTF_MAGIC` read in the other byte order.
pub const BTF_MAGIC_SWAPPED: u16 = 0x9feb;
/// The only BTF version.
pub const BTF_VERSION: u8 = 1;

/// `BTF_KIND_INT`.
pub const BTF_KIND_INT: u8 = 1;
/// `BTF_KIND_PTR`.
pub const BTF_KIND_PTR: u8 = 2;
/// `BTF_KIND_ARRAY`.
pub const BTF_KIND_ARRAY: u8 = 3;
/// `BTF_KIND_STRUCT`.
pub const BTF_KIND_STRUCT: u8 = 4;
/// `BTF_KIND_UNION`.
pub const BTF_KIND_UNION: u8 = 5;
/// `BTF_KIND_ENUM`.
pub const BTF_KIND_ENUM: u8 = 6;
/// `BTF_KIND_FWD`.
pub const BTF_KIND_FWD: u8 = 7;
/// `BTF_KIND_TYPEDEF`.
pub const BTF_KIND_TYPEDEF: u8 = 8;
/// `BTF_KIND_VOLATILE`.
pub const BTF_KIND_VOLATILE: u8 = 9;
/// `BTF_KIND_CONST`.
pub const BTF_KIND_CONST: u8 = 10;
/// `BTF_KIND_RESTRICT`.
pub const BTF_KIND_RESTRICT: u8 = 11;
/// `BTF_KIND_FUNC`.
pub const BTF_KIND_FUNC: u8 = 12;
/// `BTF_KIND_FUNC_PROTO`.
pub const BTF_KIND_FUNC_PROTO: u8 = 13;
/// `BTF_KIND_VAR`.
pub const BTF_KIND_VAR: u8 = 14;
/// `BTF_KIND_DATASEC`.
pub const BTF_KIND_DATASEC: u8 = 15;
/// `BTF_KIND_FLOAT`.
pub const BTF_KIND_FLOAT: u8 = 16;
/// `BTF_KIND_DECL_TAG`.
pub const BTF_KIND_DECL_TAG: u8 = 17;
/// `BTF_KIND_TYPE_TAG`.
pub const BTF_KIND_TYPE_TAG: u8 = 18;
/// `BTF_KIND_ENUM64`.
pub const BTF_KIND_ENUM64: u8 = 19;
/// Highest kind this crate knows.
pub const BTF_KIND_MAX: u8 = BTF_KIND_ENUM64;

/// `BTF_INT_SIGNED`.
pub const BTF_INT_SIGNED: u8 = 1 << 0;
/// `BTF_INT_CHAR`.
pub const BTF_INT_CHAR: u8 = 1 << 1;
/// `BTF_INT_BOOL`.
pub const BTF_INT_BOOL: u8 = 1 << 2;

/// `BTF_FUNC_STATIC` / `BTF_VAR_STATIC`.
pub const LINKAGE_STATIC: u32 = 0;
/// `BTF_FUNC_GLOBAL` / `BTF_VAR_GLOBAL_ALLOCATED`.
pub const LINKAGE_GLOBAL: u32 = 1;
/// `BTF_FUNC_EXTERN` / `BTF_VAR_GLOBAL_EXTERN`.
pub const LINKAGE_EXTERN: u32 = 2;

/// Size of the classic `struct btf_header`.
pub const HEADER_LEN_V1: u32 = 24;
/// Size of the extended header with the kind-layout section.
pub const HEADER_LEN_LAYOUT: u32 = 32;
/// Size of `struct btf_type`.
pub const TYPE_LEN: usize = 12;

/// `struct btf_header` (the classic 24 bytes; the layout fields are read
/// separately when `hdr_len` covers them).
#[derive(Debug, Clone, Copy, Pread)]
pub struct BtfHeader {
    /// Magic, `BTF_MAGIC` in the blob's byte order.
    pub magic: u16,
    /// Version, 1.
    pub version: u8,
    /// Flags, 0.
    pub flags: u8,
    /// Header length in bytes.
    pub hdr_len: u32,
    /// Type section offset, relative to the end of the header.
    pub type_off: u32,
    /// Type section length.
    pub type_len: u32,
    /// String section offset, relative to the end of the header.
    pub str_off: u32,
    /// String section length.
    pub str_len: u32,
}

/// Decodes `btf_type.info`: vlen in bits 0..24, kind in bits 24..31, kflag
/// in bit 31 (the 2026 uapi widened vlen and kind; classic BTF leaves the
/// extra bits zero, and rejecting them is a kernel-load concern).
#[inline(always)]
pub fn info_vlen(info: u32) -> u32 {
    info & 0x00ff_ffff
}

/// The kind bits of `btf_type.info`.
#[inline(always)]
pub fn info_kind(info: u32) -> u8 {
    ((info >> 24) & 0x7f) as u8
}

/// The kind flag of `btf_type.info`.
#[inline(always)]
pub fn info_kflag(info: u32) -> bool {
    info >> 31 != 0
}

/// Size in bytes of one trailing element per kind (member, enumerator, ...).
#[inline(always)]
pub const fn vlen_elem_size(kind: u8) -> usize {
    match kind {
        BTF_KIND_STRUCT | BTF_KIND_UNION | BTF_KIND_DATASEC | BTF_KIND_ENUM64 => 12,
        BTF_KIND_ENUM | BTF_KIND_FUNC_PROTO => 8,
        _ => 0,
    }
}

/// `(fixed tail, vlen element)` sizes of each known raw kind, as one
/// table: a record's length then costs a load instead of the jump table
/// two `match`es compile to (mispredicted on every kind change).
pub const RECORD_SIZES: [(u8, u8); BTF_KIND_MAX as usize + 1] = [
    (0, 0),  // UNKN
    (4, 0),  // INT
    (0, 0),  // PTR
    (12, 0), // ARRAY
    (0, 12), // STRUCT
    (0, 12), // UNION
    (0, 8),  // ENUM
    (0, 0),  // FWD
    (0, 0),  // TYPEDEF
    (0, 0),  // VOLATILE
    (0, 0),  // CONST
    (0, 0),  // RESTRICT
    (0, 0),  // FUNC
    (0, 8),  // FUNC_PROTO
    (4, 0),  // VAR
    (0, 12), // DATASEC
    (0, 0),  // FLOAT
    (4, 0),  // DECL_TAG
    (0, 0),  // TYPE_TAG
    (0, 12), // ENUM64
];

/// Size in bytes of the single fixed tail per kind (after `btf_type`).
#[inline(always)]
pub const fn fixed_tail_size(kind: u8) -> usize {
    match kind {
        BTF_KIND_INT | BTF_KIND_VAR | BTF_KIND_DECL_TAG => 4,
        BTF_KIND_ARRAY => 12,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_sizes_table_matches_the_kind_rules() {
        for (k, &(fixed, elem)) in (0u8..).zip(RECORD_SIZES.iter()) {
            assert_eq!(usize::from(fixed), fixed_tail_size(k), "kind {k}");
            assert_eq!(usize::from(elem), vlen_elem_size(k), "kind {k}");
        }
    }
}
