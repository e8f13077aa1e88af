//! Newtypes for ids and offsets: BTF type ids and string offsets, and the
//! coordinates of instructions, functions, maps and sections in an object.
//! This module depends on nothing else in the crate.

use core::fmt;

/// A BTF type id. Id 0 is `void` and is never stored; ids of a split BTF
/// continue after its base's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct TypeId(pub u32);

impl TypeId {
    /// The implicit `void` type.
    pub const VOID: TypeId = TypeId(0);

    /// The id as a `usize`, for indexing tables.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for TypeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// An offset into a BTF string section (continuing across a split BTF's base).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct StrOffset(pub u32);

impl StrOffset {
    /// Offset 0: the empty string, used for anonymous types.
    pub const EMPTY: StrOffset = StrOffset(0);
}

impl fmt::Display for StrOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
