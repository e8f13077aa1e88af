//! Bridging `core::fmt::Write` dumps to `std::io::Write` sinks.

use core::fmt;
use std::io;

/// A `fmt::Write` over an `io::Write` that keeps the first I/O error.
#[derive(Debug)]
pub struct IoFmt<W: io::Write> {
    inner: W,
    /// The first I/O error, if writing failed.
    pub error: Option<io::Error>,
}

impl<W: io::Write> IoFmt<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        IoFmt { inner, error: None }
    }

    /// Flushes and returns the first error seen.
    ///
    /// # Errors
    /// The first write or flush error.
    pub fn finish(mut self) -> io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: io::Write> fmt::Write for IoFmt<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.inner.write_all(s.as_bytes()).map_err(|e| {
            self.error.get_or_insert(e);
            fmt::Error
        })
    }
}
