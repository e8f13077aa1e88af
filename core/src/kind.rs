//! [`Kind`]: the kind of a BTF type, below both [`crate::btf`] and
//! [`crate::error`] so that errors can name kinds without a module cycle.
//! Re-exported as [`crate::btf::Kind`]; the raw-value conversion
//! ([`Kind::from_raw`]) lives with the raw records in `btf`.

use core::fmt;

/// A BTF type kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Integer (incl. `char` and `_Bool`).
    Int,
    /// Pointer.
    Ptr,
    /// Array.
    Array,
    /// Struct.
    Struct,
    /// Union.
    Union,
    /// 32-bit (or smaller) enum.
    Enum,
    /// Forward declaration of a struct or union.
    Fwd,
    /// Typedef.
    Typedef,
    /// `volatile`.
    Volatile,
    /// `const`.
    Const,
    /// `restrict`.
    Restrict,
    /// Function (name + prototype).
    Func,
    /// Function prototype.
    FuncProto,
    /// Variable.
    Var,
    /// Data section.
    Datasec,
    /// Floating point.
    Float,
    /// Declaration tag.
    DeclTag,
    /// Type tag.
    TypeTag,
    /// 64-bit enum.
    Enum64,
    /// A kind newer than this crate, described by the layout section.
    Unknown,
}

impl Kind {
    /// The name bpftool and libbpf print for this kind (`STRUCT`, `FUNC_PROTO`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
            Kind::Unknown => "UNKNOWN",
        }
    }

    /// Every known kind, in `BTF_KIND_*` order.
    pub const ALL: [Kind; 19] = [
        Kind::Int,
        Kind::Ptr,
        Kind::Array,
        Kind::Struct,
        Kind::Union,
        Kind::Enum,
        Kind::Fwd,
        Kind::Typedef,
        Kind::Volatile,
        Kind::Const,
        Kind::Restrict,
        Kind::Func,
        Kind::FuncProto,
        Kind::Var,
        Kind::Datasec,
        Kind::Float,
        Kind::DeclTag,
        Kind::TypeTag,
        Kind::Enum64,
    ];

    /// CONST, VOLATILE, RESTRICT or TYPE_TAG: kinds skipped as modifiers.
    pub fn is_modifier(self) -> bool {
        matches!(
            self,
            Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag
        )
    }

    /// STRUCT or UNION.
    pub fn is_composite(self) -> bool {
        matches!(self, Kind::Struct | Kind::Union)
    }

    /// ENUM or ENUM64.
    pub fn is_any_enum(self) -> bool {
        matches!(self, Kind::Enum | Kind::Enum64)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
