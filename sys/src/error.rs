//! The syscall layer's error: which command failed, with which errno.

use core::fmt;

use rustix::io::Errno;

/// A failed bpf(2) command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysError {
    /// The command (`BPF_MAP_CREATE`, ...).
    pub cmd: &'static str,
    /// The errno.
    pub errno: Errno,
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.cmd, self.errno)
    }
}

impl core::error::Error for SysError {}

/// `Result` with [`SysError`].
pub type Result<T, E = SysError> = core::result::Result<T, E>;
