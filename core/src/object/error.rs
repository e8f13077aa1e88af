//! Why [`Object::parse`](super::Object::parse) rejected an object, naming
//! the section and the symbol, function or map at fault.
//!
//! [`ObjectError`] borrows those names from the object's bytes (the ELF
//! and BTF string tables), so it stays `Copy` and allocation-free like the
//! crate's [`Error`]; a caller that outlives the bytes renders it with
//! `Display` first.

use core::fmt;

use crate::error::{Error, ErrorKind};
use crate::id::SectionInsn;
use crate::kind::Kind;

/// An object [`Object::parse`](super::Object::parse) cannot use: which
/// section, and what is wrong there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObjectError<'a> {
    /// The ELF section at fault, when the error belongs to one.
    pub section: Option<&'a str>,
    /// The function holding the instruction at fault, when there is one.
    pub function: Option<&'a str>,
    /// What is wrong.
    pub kind: ObjectErrorKind<'a>,
}

/// What is wrong with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectErrorKind<'a> {
    /// Malformed bytes (the ELF structure, `.BTF`, `.BTF.ext`): the rule
    /// broken and the byte offset in the file (shown when not 0).
    Malformed(Error),
    /// The object has no `.BTF`, and `needed_by` needs it.
    MissingBtf {
        /// What needs it (`BTF-defined maps`, `extern 'x'`).
        needed_by: &'static str,
        /// The extern or map, when one thing needs it.
        name: &'a str,
    },
    /// A code section whose size is not a whole number of 8-byte
    /// instructions.
    CodeSize {
        /// The section's size in bytes.
        size: u64,
    },
    /// A value does not fit the 32 bits the kernel's records give it.
    TooLarge {
        /// What (`section size`, `instruction count`, `symbol offset`).
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A function symbol that does not start and end on instruction
    /// boundaries inside its section.
    BadFunction {
        /// The symbol's name.
        name: &'a str,
        /// Its value (byte offset in the section).
        offset: u64,
        /// Its size in bytes.
        size: u64,
    },
    /// A program (a function outside `.text`) with static binding: libbpf
    /// refuses it too.
    StaticProgram {
        /// The function's name.
        name: &'a str,
    },
    /// A BTF-defined map whose definition libbpf would not accept.
    BadMapDef {
        /// The map's name.
        map: &'a str,
        /// The attribute at fault (empty for the definition itself).
        attr: &'a str,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: Found<'a>,
    },
    /// An undefined symbol that `.ksyms`/`.kconfig` BTF does not declare:
    /// not an extern libbpf knows how to resolve (often a libc call clang
    /// emitted, such as `memcmp` for `__builtin_memcmp`).
    BadExtern {
        /// The symbol's name.
        name: &'a str,
        /// The first instruction that refers to it, when one does.
        insn: Option<SectionInsn>,
    },
    /// An instruction refers to a map through its section's symbol plus an
    /// offset, and no map definition starts at that offset.
    MapRefWithoutSymbol {
        /// The section holding the maps.
        map_section: &'a str,
        /// The offset in it.
        offset: u64,
        /// The referring instruction.
        insn: SectionInsn,
    },
    /// A relocation of a type or against a symbol this loader does not
    /// handle.
    UnsupportedReloc {
        /// The ELF `r_type`.
        r_type: u32,
        /// The symbol it refers to (empty when none).
        symbol: &'a str,
        /// The relocated instruction.
        insn: SectionInsn,
    },
    /// A relocation at a byte offset that is not a whole instruction of
    /// its section.
    BadRelocOffset {
        /// The offset.
        offset: u64,
    },
    /// A call or function address that lands on no function.
    BadCallTarget {
        /// The symbol it refers to.
        symbol: &'a str,
        /// The calling instruction.
        insn: SectionInsn,
    },
    /// A relocation in a map section (a map-in-map or prog-array
    /// initializer) that does not fit a map's `values` slots.
    BadInitializer {
        /// The map, when the relocation falls in one.
        map: &'a str,
        /// The symbol it refers to.
        symbol: &'a str,
        /// What was expected.
        expected: &'static str,
    },
    /// Something libbpf accepts that this loader does not implement
    /// (arena global data in `.addr_space.1`).
    Unsupported {
        /// What it is.
        what: &'static str,
    },
    /// A struct_ops variable or one of its members that libbpf would not
    /// accept.
    BadStructOps {
        /// The struct_ops map (variable), empty when none is known.
        map: &'a str,
        /// The member, empty when the fault is not in one.
        member: &'a str,
        /// What was expected.
        expected: &'static str,
    },
    /// No memory for a table sized from the input.
    OutOfMemory,
}

/// What a malformed map definition holds instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found<'a> {
    /// A type of this kind.
    Kind(Kind),
    /// This value.
    Value(u64),
    /// An attribute of this name.
    Name(&'a str),
    /// Nothing worth naming.
    Nothing,
}

impl<'a> ObjectError<'a> {
    /// An error of `kind` in `section`.
    #[cold]
    pub fn new(section: Option<&'a str>, kind: ObjectErrorKind<'a>) -> ObjectError<'a> {
        ObjectError {
            section,
            function: None,
            kind,
        }
    }

    /// The crate-level error (rule broken, file offset) behind an
    /// [`ObjectErrorKind::Malformed`] error.
    pub fn malformed(&self) -> Option<Error> {
        match self.kind {
            ObjectErrorKind::Malformed(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the object lacks the `.BTF` it needs
    /// ([`ObjectErrorKind::MissingBtf`]).
    pub fn is_missing_btf(&self) -> bool {
        matches!(self.kind, ObjectErrorKind::MissingBtf { .. })
    }
}

impl From<Error> for ObjectErrorKind<'_> {
    fn from(e: Error) -> Self {
        if e.kind() == ErrorKind::OutOfMemory {
            ObjectErrorKind::OutOfMemory
        } else {
            ObjectErrorKind::Malformed(e)
        }
    }
}

impl From<Error> for ObjectError<'_> {
    fn from(e: Error) -> Self {
        ObjectError::new(None, e.into())
    }
}

impl fmt::Display for Found<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Kind(k) => write!(f, "{k}"),
            Found::Value(v) => write!(f, "{v}"),
            Found::Name(n) => write!(f, "'{n}'"),
            Found::Nothing => f.write_str("something else"),
        }
    }
}

impl fmt::Display for ObjectErrorKind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ObjectErrorKind::*;
        match *self {
            // Offset 0 is the start of the file: it tells the user nothing.
            Malformed(e) if e.offset() == 0 => write!(f, "{}", e.kind()),
            Malformed(e) => write!(f, "{e}"),
            MissingBtf { needed_by, name } => {
                f.write_str("the object has no .BTF section, which ")?;
                f.write_str(needed_by)?;
                if !name.is_empty() {
                    write!(f, " '{name}'")?;
                }
                f.write_str(" needs; rebuild it with 'clang -g -O2 -target bpf'")
            }
            CodeSize { size } => write!(
                f,
                "code section of {size} bytes is not a whole number of 8-byte instructions"
            ),
            TooLarge { what, value } => write!(f, "{what} {value} does not fit 32 bits"),
            BadFunction { name, offset, size } => write!(
                f,
                "function '{name}' (offset {offset}, size {size}) is not whole instructions inside its section"
            ),
            StaticProgram { name } => write!(
                f,
                "program '{name}' is static; programs must be global (drop 'static')"
            ),
            BadMapDef {
                map,
                attr,
                expected,
                found,
            } => {
                write!(f, "map '{map}': ")?;
                if attr.is_empty() {
                    write!(f, "definition must be {expected}, found {found}")
                } else {
                    write!(f, "attribute '{attr}' must be {expected}, found {found}")
                }
            }
            BadExtern { name, insn } => {
                if let Some(i) = insn {
                    write!(f, "instruction {i}: ")?;
                }
                write!(
                    f,
                    "undefined symbol '{name}' is not an extern declared in .ksyms or .kconfig \
                     BTF (expected a __ksym or __kconfig variable or a __ksym kfunc; a libc \
                     call such as memcmp or memcpy cannot be linked into a BPF program)"
                )
            }
            MapRefWithoutSymbol {
                map_section,
                offset,
                insn,
            } => write!(
                f,
                "instruction {insn} refers to offset {offset} of section '{map_section}', \
                 where no map definition starts (a map without a symbol?)"
            ),
            UnsupportedReloc {
                r_type,
                symbol,
                insn,
            } => {
                write!(f, "instruction {insn}: relocation type {r_type}")?;
                if !symbol.is_empty() {
                    write!(f, " against '{symbol}'")?;
                }
                f.write_str(" refers to no map, function, global data or extern")
            }
            BadRelocOffset { offset } => write!(
                f,
                "relocation at byte {offset} is not a whole instruction of the section"
            ),
            BadCallTarget { symbol, insn } => write!(
                f,
                "instruction {insn}: call or function address through '{symbol}' lands on no function"
            ),
            BadInitializer {
                map,
                symbol,
                expected,
            } => {
                if map.is_empty() {
                    write!(
                        f,
                        "initializer '{symbol}' lies in no map: expected {expected}"
                    )
                } else {
                    write!(
                        f,
                        "map '{map}': initializer '{symbol}' does not fit: expected {expected}"
                    )
                }
            }
            Unsupported { what } => write!(f, "{what} is not supported"),
            BadStructOps {
                map,
                member,
                expected,
            } => {
                f.write_str("struct_ops")?;
                if !map.is_empty() {
                    write!(f, " map '{map}'")?;
                }
                if !member.is_empty() {
                    write!(f, " member '{member}'")?;
                }
                write!(f, ": expected {expected}")
            }
            OutOfMemory => f.write_str("out of memory for a table sized from the input"),
        }
    }
}

impl fmt::Display for ObjectError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.section {
            write!(f, "section '{s}': ")?;
        }
        if let Some(func) = self.function {
            write!(f, "function '{func}': ")?;
        }
        write!(f, "{}", self.kind)
    }
}

impl core::error::Error for ObjectError<'_> {}
