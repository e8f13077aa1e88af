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

/// Defines a `#[repr(transparent)]` index or offset newtype with
/// `Display` showing the bare number.
macro_rules! newtype {
    ($(#[$m:meta])* $name:ident($t:ty)) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub $t);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

/// Size of one instruction slot in bytes (`struct bpf_insn`).
const INSN_BYTES: u32 = 8;
/// The same, in the width of ELF offsets.
const INSN_BYTES_U64: u64 = 8;

newtype!(
    /// An ELF section index (`st_shndx`, `sh_link`), as in the ELF file.
    ///
    /// Not an index into [`Object::code`](crate::object::Object::code):
    /// that is a [`CodeIndex`].
    SectionIndex(usize)
);

newtype!(
    /// An index into [`Object::code`](crate::object::Object::code): one of
    /// the object's executable sections.
    CodeIndex(usize)
);

newtype!(
    /// An index into [`Object::functions`](crate::object::Object::functions).
    FuncIndex(usize)
);

newtype!(
    /// An index into [`Object::maps`](crate::object::Object::maps).
    MapIndex(usize)
);

newtype!(
    /// An index into [`Object::externs`](crate::object::Object::externs).
    ExternIndex(usize)
);

newtype!(
    /// A byte offset of an instruction in its ELF section, as `.BTF.ext`
    /// records and ELF relocations spell it. Turn it into an instruction
    /// index with [`SectionInsn::from_byte_offset`], which checks that it
    /// is a whole instruction.
    SectionByteOffset(u32)
);

newtype!(
    /// An instruction index within its code section (byte offset / 8).
    SectionInsn(u32)
);

newtype!(
    /// An instruction index within one function: 0 is the function's first
    /// instruction. [`Function::section_insn`](crate::object::Function::section_insn)
    /// turns it into a [`SectionInsn`].
    FuncInsn(u32)
);

newtype!(
    /// An instruction index in a linked program, as the kernel and the
    /// verifier count them (`insn_off` of kernel func/line info).
    Pc(u32)
);

macro_rules! index_fns {
    ($($name:ident),*) => {$(
        impl $name {
            /// The index as a `usize`, for indexing tables.
            #[inline]
            pub fn index(self) -> usize {
                self.0
            }
        }
    )*};
}
index_fns!(SectionIndex, CodeIndex, FuncIndex, MapIndex, ExternIndex);

macro_rules! insn_fns {
    ($($name:ident),*) => {$(
        impl $name {
            /// The instruction index as a `usize`, for indexing
            /// instruction tables.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// Byte offset of this instruction (index × 8), saturating.
            #[inline]
            pub fn byte_offset(self) -> usize {
                (self.0 as usize).saturating_mul(INSN_BYTES as usize)
            }

            /// The instruction `n` slots further on (saturating).
            #[inline]
            #[must_use]
            pub fn plus(self, n: u32) -> $name {
                $name(self.0.saturating_add(n))
            }
        }
    )*};
}
insn_fns!(SectionInsn, FuncInsn, Pc);

impl SectionInsn {
    /// The instruction at byte offset `off` of its section, or `None` when
    /// `off` is not a multiple of the instruction size.
    #[inline]
    pub fn from_byte_offset(off: SectionByteOffset) -> Option<SectionInsn> {
        off.0
            .is_multiple_of(INSN_BYTES)
            .then_some(SectionInsn(off.0 / INSN_BYTES))
    }

    /// The instruction at byte offset `off` (a 64-bit ELF offset), or
    /// `None` when it is not a whole instruction or its index does not
    /// fit 32 bits.
    #[inline]
    pub fn from_elf_offset(off: u64) -> Option<SectionInsn> {
        if !off.is_multiple_of(INSN_BYTES_U64) {
            return None;
        }
        u32::try_from(off / INSN_BYTES_U64).ok().map(SectionInsn)
    }

    /// The index relative to `start` (a function's first instruction), or
    /// `None` when this instruction lies before it.
    #[inline]
    pub fn since(self, start: SectionInsn) -> Option<FuncInsn> {
        self.0.checked_sub(start.0).map(FuncInsn)
    }
}

impl SectionByteOffset {
    /// The byte offset of instruction `insn`, or `None` when it does not
    /// fit 32 bits.
    #[inline]
    pub fn of(insn: SectionInsn) -> Option<SectionByteOffset> {
        insn.0.checked_mul(INSN_BYTES).map(SectionByteOffset)
    }
}

impl Pc {
    /// The pc `n` instructions past `start`, for a function copied to
    /// `start` (saturating).
    #[inline]
    pub fn at(start: Pc, insn: FuncInsn) -> Pc {
        Pc(start.0.saturating_add(insn.0))
    }

    /// The instruction index relative to `start` (a function's first pc),
    /// or `None` when this pc lies before it.
    #[inline]
    pub fn since(self, start: Pc) -> Option<FuncInsn> {
        self.0.checked_sub(start.0).map(FuncInsn)
    }
}
