//! CO-RE relocation kinds (`enum bpf_core_relo_kind`).

use core::fmt;

/// What a CO-RE relocation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RelocKind {
    /// Byte offset of a field.
    FieldByteOffset = 0,
    /// Byte size of a field.
    FieldByteSize = 1,
    /// Whether a field exists.
    FieldExists = 2,
    /// Whether a field is signed.
    FieldSigned = 3,
    /// Left shift to extract a bitfield from a u64.
    FieldLShiftU64 = 4,
    /// Right shift to extract a bitfield from a u64.
    FieldRShiftU64 = 5,
    /// The local type's id.
    TypeIdLocal = 6,
    /// The target type's id.
    TypeIdTarget = 7,
    /// Whether a compatible type exists.
    TypeExists = 8,
    /// The target type's size.
    TypeSize = 9,
    /// Whether an enumerator exists.
    EnumvalExists = 10,
    /// An enumerator's value.
    EnumvalValue = 11,
    /// Whether a type matches strictly.
    TypeMatches = 12,
}

impl RelocKind {
    /// The kind for a raw value.
    pub fn from_u32(v: u32) -> Option<RelocKind> {
        use RelocKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLShiftU64,
            5 => FieldRShiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// snake_case of libbpf's name (`field_byte_offset`, `type_matches`).
    pub fn name(self) -> &'static str {
        use RelocKind::*;
        match self {
            FieldByteOffset => "field_byte_offset",
            FieldByteSize => "field_byte_size",
            FieldExists => "field_exists",
            FieldSigned => "field_signed",
            FieldLShiftU64 => "field_lshift_u64",
            FieldRShiftU64 => "field_rshift_u64",
            TypeIdLocal => "type_id_local",
            TypeIdTarget => "type_id_target",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    /// The phrase used in explanations ("field offset", "type size").
    pub fn phrase(self) -> &'static str {
        use RelocKind::*;
        match self {
            FieldByteOffset => "field offset",
            FieldByteSize => "field size",
            FieldExists => "field exists",
            FieldSigned => "field signedness",
            FieldLShiftU64 => "bitfield lshift",
            FieldRShiftU64 => "bitfield rshift",
            TypeIdLocal => "local type id",
            TypeIdTarget => "target type id",
            TypeExists => "type exists",
            TypeSize => "type size",
            EnumvalExists => "enum value exists",
            EnumvalValue => "enum value",
            TypeMatches => "type matches",
        }
    }

    /// Field-based kinds (0..=5).
    pub fn is_field(self) -> bool {
        (self as u32) <= 5
    }

    /// Type-based kinds (6..=9 and 12).
    pub fn is_type(self) -> bool {
        matches!(
            self,
            RelocKind::TypeIdLocal
                | RelocKind::TypeIdTarget
                | RelocKind::TypeExists
                | RelocKind::TypeSize
                | RelocKind::TypeMatches
        )
    }

    /// Enum-value kinds (10, 11).
    pub fn is_enumval(self) -> bool {
        matches!(self, RelocKind::EnumvalExists | RelocKind::EnumvalValue)
    }
}

impl fmt::Display for RelocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
