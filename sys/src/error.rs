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

/// Runs `read` on every item and sums what it returns; an error does not
/// stop the others (one corrupt ring must not starve the rest of a
/// poller), and the first one is returned once all have run.
pub(crate) fn read_every<I: IntoIterator>(
    items: I,
    mut read: impl FnMut(I::Item) -> Result<usize>,
) -> Result<usize> {
    let mut n = 0usize;
    let mut first_err = None;
    for item in items {
        match read(item) {
            Ok(k) => n = n.saturating_add(k),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(n), Err)
}
