//! The loader's error: core and I/O errors with the file they came from.

use core::fmt;
use std::path::PathBuf;

/// An ember error.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A BTF blob is malformed.
    Btf {
        /// The file it came from.
        path: PathBuf,
        /// The rule it broke and where.
        source: ember_core::Error,
    },
    /// A BPF object is malformed.
    Object {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the section and symbol.
        source: ObjectError,
    },
}

/// An object ember-core rejected, rendered while its bytes were at hand:
/// [`ember_core::object::ObjectError`] borrows the section, symbol and
/// map names it gives from the object's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectError {
    message: String,
    malformed: Option<ember_core::Error>,
    missing_btf: bool,
}

impl ObjectError {
    /// The crate-level error (rule broken, byte offset) when the object's
    /// bytes are malformed.
    pub fn malformed(&self) -> Option<ember_core::Error> {
        self.malformed
    }

    /// Whether the object lacks the `.BTF` section it needs.
    pub fn is_missing_btf(&self) -> bool {
        self.missing_btf
    }
}

impl From<ember_core::object::ObjectError<'_>> for ObjectError {
    fn from(e: ember_core::object::ObjectError<'_>) -> Self {
        ObjectError {
            message: e.to_string(),
            malformed: e.malformed(),
            missing_btf: e.is_missing_btf(),
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl core::error::Error for ObjectError {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, .. } => write!(f, "cannot read {}", path.display()),
            Error::Btf { path, .. } => write!(f, "{}: malformed BTF", path.display()),
            Error::Object { path, .. } => write!(f, "{}: malformed object", path.display()),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Btf { source, .. } => Some(source),
            Error::Object { source, .. } => Some(source),
        }
    }
}

/// `Result` with ember's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
