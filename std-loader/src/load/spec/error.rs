//! Why a spec setting was refused.

use core::fmt;

/// Why a setting was refused. Each names what was asked for; unknown
/// names list the names that exist.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpecError {
    /// No map of that name.
    UnknownMap {
        /// The name asked for.
        name: String,
        /// The object's maps.
        known: Vec<String>,
    },
    /// No program of that name.
    UnknownProgram {
        /// The name asked for.
        name: String,
        /// The object's programs.
        known: Vec<String>,
    },
    /// No global variable of that name in `.data`, `.rodata`, `.bss` or
    /// their `.data.*`-style siblings.
    UnknownGlobal {
        /// The name asked for.
        name: String,
        /// The object's global variables.
        known: Vec<String>,
    },
    /// No global-data section of that name.
    UnknownSection {
        /// The name asked for.
        name: String,
        /// The object's global-data sections.
        known: Vec<String>,
    },
    /// A value of the wrong size for a variable.
    GlobalSize {
        /// The variable.
        name: String,
        /// Its size from BTF (or, without BTF, the room left in its
        /// section).
        size: usize,
        /// The value's size.
        given: usize,
    },
    /// A map setting the kernel cannot take for this map.
    Map {
        /// The map.
        map: String,
        /// What is wrong.
        reason: String,
    },
}

fn list(known: &[String]) -> String {
    if known.is_empty() {
        "none".into()
    } else {
        known.join(", ")
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::UnknownMap { name, known } => {
                write!(f, "no map '{name}' (maps: {})", list(known))
            }
            SpecError::UnknownProgram { name, known } => {
                write!(f, "no program '{name}' (programs: {})", list(known))
            }
            SpecError::UnknownGlobal { name, known } => {
                write!(f, "no global variable '{name}' (globals: {})", list(known))
            }
            SpecError::UnknownSection { name, known } => {
                write!(
                    f,
                    "no global-data section '{name}' (sections: {})",
                    list(known)
                )
            }
            SpecError::GlobalSize { name, size, given } => {
                write!(f, "global '{name}' is {size} bytes, the value is {given}")
            }
            SpecError::Map { map, reason } => write!(f, "map '{map}': {reason}"),
        }
    }
}

impl core::error::Error for SpecError {}
