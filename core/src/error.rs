//! The one error type of ember-core.

use core::fmt;

use crate::id::{CodeIndex, ExternIndex, SectionByteOffset, SectionInsn, TypeId};
use crate::kind::Kind;

/// `Result` with ember-core's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Which section of a BTF blob a section-level rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The type section.
    Types,
    /// The string section.
    Strings,
    /// The optional kind-layout section.
    Layout,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Types => "type section",
            Section::Strings => "string section",
            Section::Layout => "layout section",
        })
    }
}

/// The rule a malformed input broke, or the operation that could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The data ends before a record or header that must be there.
    Truncated,
    /// The magic is neither `0xeb9f` nor its byte swap.
    BadMagic(u16),
    /// Unsupported BTF version.
    BadVersion(u8),
    /// Header flags must be zero.
    BadFlags(u8),
    /// `hdr_len` is below 24 or beyond the data.
    BadHeaderLen(u32),
    /// Header bytes beyond the fields this crate knows are not zero.
    NonZeroHeaderTail,
    /// A section offset is not 4-byte aligned.
    Misaligned(Section),
    /// A section does not lie inside the data.
    SectionOutOfBounds(Section),
    /// The type section runs into the string section, or the layout
    /// section is not between them.
    SectionsOverlap,
    /// The layout section's length is not a multiple of 4, or an entry
    /// describes a record size that is not a multiple of 4.
    BadLayout,
    /// The string section of a base BTF is empty or does not start with NUL.
    StringsNoLeadingNul,
    /// The string section does not end with NUL.
    StringsNotTerminated,
    /// The string section is larger than 2^31 - 1 bytes.
    StringsTooLarge(u32),
    /// A string offset points outside the string section.
    BadStrOffset(u32),
    /// A string is not valid UTF-8.
    InvalidUtf8(u32),
    /// More types than `BTF_MAX_TYPE`.
    TooManyTypes,
    /// A kind this crate does not know and the layout section does not describe.
    UnknownKind(u8),
    /// The record does not fit in the type section.
    RecordOutOfBounds(TypeId),
    /// A type id refers past the last type.
    BadTypeId(TypeId),
    /// This kind must have a name.
    NameRequired(Kind),
    /// This kind must have vlen 0.
    NonZeroVlen(Kind),
    /// This kind must have kind_flag 0.
    KindFlagSet(Kind),
    /// An INT with an invalid encoding word.
    BadInt(u32),
    /// A size not allowed for this kind.
    BadSize(Kind, u32),
    /// A FUNC or VAR linkage outside 0..=2.
    BadLinkage(u32),
    /// A union member with a non-zero bit offset.
    UnionMemberOffset,
    /// A bitfield wider than 255 bits or than its INT, or a member that
    /// ends outside its struct.
    BadMember(u32),
    /// An ARRAY's element or index type is void, or its index is not an INT.
    BadArray,
    /// A FUNC whose type is not a FUNC_PROTO.
    FuncNotProto(TypeId),
    /// A FUNC_PROTO with `...` anywhere but last.
    BadVarargs,
    /// A DATASEC entry whose type is not a VAR or FUNC.
    BadDatasecEntry(TypeId),
    /// A DECL_TAG component index below -1.
    BadComponentIdx(i32),
    /// A type chain is longer than the resolution limit or loops.
    TypeChainTooDeep(TypeId),
    /// The type has no size (void, FWD, FUNC, FUNC_PROTO).
    NoSize(TypeId),
    /// A computed size overflows `u32`.
    SizeOverflow(TypeId),
    /// The input is not an ELF file.
    NotElf,
    /// The ELF file could not be read (the reader's message).
    Elf(&'static str),
    /// The ELF file has no section with this name.
    MissingSection(&'static str),
    /// A split BTF was given a base of the other byte order.
    BaseEndianMismatch,
    /// A string offset of a split BTF does not line up with its base.
    BadSplitBase,
    /// No memory could be reserved for a table sized from the input.
    OutOfMemory,
    /// A `.BTF.ext` record size below the minimum, not a multiple of 4, or
    /// (foreign byte order) not exactly the minimum.
    BadExtRecordSize(u32),
    /// A `.BTF.ext` block with zero records.
    EmptyExtBlock,
    /// A function's instructions lie outside its code section (the code
    /// given to the linker does not match the object).
    BadCodeLayout(CodeIndex),
    /// The object needs `.BTF` (BTF-defined maps, externs) but has none.
    MissingBtf,
    /// A `.BTF.ext` record points at an instruction offset that is not a
    /// multiple of 8 or outside its section.
    BadInsnOffset(SectionByteOffset),
    /// Too many entries of one kind in the object (sections, symbols, maps).
    TooMany(&'static str),
    /// A CO-RE access string that does not parse or walks out of its type.
    CoreBadAccess,
    /// A CO-RE access spec deeper than 64 steps.
    CoreSpecTooLong,
    /// CO-RE candidate search on an anonymous local type.
    CoreAnonymousType,
    /// An unknown CO-RE relocation kind.
    CoreUnknownKind(u32),
    /// Candidates resolve a field at different bit offsets.
    CoreOffsetAmbiguity(u32, u32),
    /// Candidates disagree on the relocated value or on poisoning.
    CoreDecisionAmbiguity(u64, u64),
    /// A bitfield that one 64-bit load cannot hold.
    CoreBitfieldTooBig,
    /// A relocation kind that cannot apply to an array access.
    CoreArrayAccess,
    /// The instruction cannot carry this relocation.
    CoreBadInsn(u8),
    /// The instruction does not hold the value the local BTF predicts
    /// (what it holds, what was expected).
    CoreValueMismatch(u64, u64),
    /// A relocated memory offset past 32767.
    CoreOffsetRange(u64),
    /// A load/store whose size cannot be changed to the new field size.
    CoreMemSize(u32),
    /// A strong extern the kernel lacks.
    ExternUnresolved(ExternIndex),
    /// An extern whose local type does not match the kernel's.
    ExternTypeMismatch(ExternIndex),
    /// The object's byte order is not this machine's: it cannot be loaded
    /// here.
    ForeignEndian,
    /// A BTF kind (raw value) the kernel BTF rewriter does not know.
    UnsanitizableKind(u8),
    /// A BPF-to-BPF call at this instruction of its section lands on no
    /// function.
    BadCallTarget(SectionInsn),
    /// A DATASEC variable with no ELF symbol (or `.kconfig` extern) to
    /// place it.
    VarWithoutSymbol(TypeId),
    /// A DATASEC variable placed past the end of its section.
    VarOutOfSection(TypeId),
    /// Two DATASEC variables overlap (this one starts inside another).
    VarsOverlap(TypeId),
}

/// An error from ember-core: what rule was broken, and at which byte offset
/// of the input (the start of the header, section or record at fault).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Error {
    offset: usize,
    kind: ErrorKind,
}

const _: () = assert!(core::mem::size_of::<Error>() <= 32);

impl Error {
    /// Makes an error of `kind` at byte `offset`.
    #[cold]
    pub fn new(kind: ErrorKind, offset: usize) -> Error {
        Error { offset, kind }
    }

    /// The same error with its offset moved by `base`: for errors found
    /// inside a section, the section's offset in the file.
    pub fn with_base(self, base: usize) -> Error {
        Error {
            offset: self.offset.saturating_add(base),
            kind: self.kind,
        }
    }

    /// The rule broken.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Byte offset in the input of the header, section or record at fault.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ErrorKind::*;
        match *self {
            Truncated => f.write_str("data ends before the record"),
            BadMagic(m) => write!(f, "bad magic {m:#06x} (expected 0xeb9f)"),
            BadVersion(v) => write!(f, "unsupported version {v} (expected 1)"),
            BadFlags(v) => write!(f, "header flags {v:#x} must be 0"),
            BadHeaderLen(l) => write!(f, "header length {l} is below 24 or past the end"),
            NonZeroHeaderTail => f.write_str("unknown header bytes are not zero"),
            Misaligned(s) => write!(f, "{s} is not 4-byte aligned"),
            SectionOutOfBounds(s) => write!(f, "{s} lies outside the data"),
            SectionsOverlap => f.write_str("sections overlap or are out of order"),
            BadLayout => f.write_str("malformed kind-layout section"),
            StringsNoLeadingNul => f.write_str("string section must start with NUL"),
            StringsNotTerminated => f.write_str("string section must end with NUL"),
            StringsTooLarge(l) => write!(f, "string section of {l} bytes is too large"),
            BadStrOffset(o) => write!(f, "string offset {o} is out of range"),
            InvalidUtf8(o) => write!(f, "string at offset {o} is not UTF-8"),
            TooManyTypes => f.write_str("more than 1048575 types"),
            UnknownKind(k) => write!(f, "unknown kind {k}"),
            RecordOutOfBounds(id) => write!(f, "type [{id}] runs past the type section"),
            BadTypeId(id) => write!(f, "reference to type [{id}], past the last type"),
            NameRequired(k) => write!(f, "{k} must have a name"),
            NonZeroVlen(k) => write!(f, "{k} must have vlen 0"),
            KindFlagSet(k) => write!(f, "{k} must have kind_flag 0"),
            BadInt(v) => write!(f, "invalid INT encoding word {v:#010x}"),
            BadSize(k, s) => write!(f, "{k} cannot have size {s}"),
            BadLinkage(l) => write!(f, "invalid linkage {l}"),
            UnionMemberOffset => f.write_str("union member with non-zero offset"),
            BadMember(i) => write!(f, "member #{i} has an invalid offset or bitfield size"),
            BadArray => f.write_str("array element or index type is invalid"),
            FuncNotProto(id) => write!(f, "FUNC type [{id}] is not a FUNC_PROTO"),
            BadVarargs => f.write_str("varargs marker is not the last parameter"),
            BadDatasecEntry(id) => write!(f, "DATASEC entry [{id}] is not a VAR or FUNC"),
            BadComponentIdx(i) => write!(f, "DECL_TAG component_idx {i} is below -1"),
            TypeChainTooDeep(id) => write!(f, "type chain from [{id}] is too deep or loops"),
            NoSize(id) => write!(f, "type [{id}] has no size"),
            SizeOverflow(id) => write!(f, "size of type [{id}] overflows 32 bits"),
            NotElf => f.write_str("not an ELF file"),
            Elf(m) => write!(f, "ELF: {m}"),
            MissingSection(s) => write!(f, "no {s} section"),
            BaseEndianMismatch => f.write_str("split BTF and its base differ in byte order"),
            BadSplitBase => f.write_str("split BTF string offsets do not continue its base"),
            OutOfMemory => f.write_str("out of memory for a table sized from the input"),
            BadExtRecordSize(s) => write!(f, ".BTF.ext record size {s} is invalid"),
            EmptyExtBlock => f.write_str(".BTF.ext block with no records"),
            BadCodeLayout(s) => {
                write!(f, "a function lies outside code section #{s} of the object")
            }
            MissingBtf => f.write_str(
                "the object has no .BTF section; rebuild it with 'clang -g -O2 -target bpf'",
            ),
            BadInsnOffset(o) => write!(
                f,
                "instruction offset {o} is not a whole instruction in its section"
            ),
            TooMany(what) => write!(f, "too many {what}"),
            CoreBadAccess => f.write_str("CO-RE access string does not fit its type"),
            CoreSpecTooLong => f.write_str("CO-RE access spec is deeper than 64"),
            CoreAnonymousType => f.write_str("CO-RE relocation on an anonymous type"),
            CoreUnknownKind(k) => write!(f, "unknown CO-RE relocation kind {k}"),
            CoreOffsetAmbiguity(a, b) => {
                write!(
                    f,
                    "field offset ambiguity: candidates at bit {a} and bit {b}"
                )
            }
            CoreDecisionAmbiguity(a, b) => {
                write!(
                    f,
                    "relocation decision ambiguity: candidates give {a} and {b}"
                )
            }
            CoreBitfieldTooBig => f.write_str("bitfield cannot be read with one 64-bit load"),
            CoreArrayAccess => f.write_str("relocation kind cannot apply to an array access"),
            CoreBadInsn(c) => write!(
                f,
                "instruction (opcode {c:#04x}) cannot take this relocation"
            ),
            CoreValueMismatch(got, want) => {
                write!(f, "instruction holds {got}, local BTF predicts {want}")
            }
            CoreOffsetRange(v) => write!(f, "relocated offset {v} does not fit 16 bits"),
            CoreMemSize(s) => write!(f, "cannot turn a load/store into a {s}-byte access"),
            ExternUnresolved(i) => write!(f, "extern #{i} is not in the kernel and is not __weak"),
            ExternTypeMismatch(i) => {
                write!(f, "extern #{i}: local type does not match the kernel's")
            }
            ForeignEndian => f.write_str("object byte order differs from this machine's"),
            UnsanitizableKind(k) => write!(f, "BTF kind {k} cannot be rewritten for the kernel"),
            BadCallTarget(i) => write!(f, "call at instruction {i} lands on no function"),
            VarsOverlap(id) => write!(f, "variable (type {id}) overlaps another in its section"),
            VarOutOfSection(id) => {
                write!(f, "variable (type {id}) lies past the end of its section")
            }
            VarWithoutSymbol(id) => {
                write!(f, "DATASEC variable (type {id}) has no symbol to place it")
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {:#x}: {}", self.offset, self.kind)
    }
}

impl core::error::Error for Error {}

impl core::error::Error for ErrorKind {}
