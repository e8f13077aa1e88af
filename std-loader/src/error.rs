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
        /// The rule it broke and where.
        source: ember_core::Error,
    },
}

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
            Error::Btf { source, .. } | Error::Object { source, .. } => Some(source),
        }
    }
}

/// `Result` with ember's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
