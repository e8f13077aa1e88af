//! Why an attachment failed, naming the program and the target.

use core::fmt;
use std::path::PathBuf;

use ember_sys::SysError;

/// An attachment that failed: which program, to what, and why.
#[derive(Debug)]
pub struct AttachError {
    /// The program's name.
    pub program: String,
    /// The target as the user would write it (`tracepoint
    /// 'syscalls/sys_enter_openat'`, `interface 'veth0'`, ...).
    pub target: String,
    /// What went wrong.
    pub kind: AttachErrorKind,
}

/// What went wrong in an attachment.
#[derive(Debug)]
#[non_exhaustive]
pub enum AttachErrorKind {
    /// The target does not exist (no such tracepoint, function, symbol,
    /// interface or cgroup).
    NotFound(String),
    /// The section names no target and none was given (a bare
    /// `SEC("uprobe")`); libbpf's auto-attach skips these too.
    NoTarget,
    /// The program's type cannot attach this way.
    WrongType(String),
    /// The kernel (or this machine) offers no interface for it, with the
    /// reason (`neither the kprobe PMU nor tracefs kprobe_events exists`).
    Unsupported(String),
    /// More than one match; the candidates, for the user to pick from.
    Ambiguous(Vec<String>),
    /// A text the user gave (a section target, an `--attach` value) is
    /// malformed.
    BadTarget(String),
    /// A system call failed.
    Sys(SysError),
    /// A file could not be read or written.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl AttachError {
    /// An error for `program` attaching to `target`.
    pub fn new(program: &str, target: impl Into<String>, kind: AttachErrorKind) -> AttachError {
        AttachError {
            program: program.to_owned(),
            target: target.into(),
            kind,
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "program '{}': attach to {}: ", self.program, self.target)?;
        match &self.kind {
            AttachErrorKind::NotFound(what) => write!(f, "{what} not found"),
            AttachErrorKind::NoTarget => {
                f.write_str("the section names no target and none was given")
            }
            AttachErrorKind::WrongType(why) => f.write_str(why),
            AttachErrorKind::Unsupported(why) => f.write_str(why),
            AttachErrorKind::Ambiguous(c) => {
                write!(f, "{} candidates, pick one: {}", c.len(), c.join(", "))
            }
            AttachErrorKind::BadTarget(why) => f.write_str(why),
            AttachErrorKind::Sys(e) => write!(f, "{e}"),
            AttachErrorKind::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl core::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.kind {
            AttachErrorKind::Sys(e) => Some(e),
            AttachErrorKind::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
