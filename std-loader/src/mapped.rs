//! Input files as bytes: read into memory, or mapped when the file is
//! kernel-owned and immutable (`/sys/kernel/btf/*`).
//!
//! This is ember's only unsafe block until the syscall crate (ember-sys)
//! arrives and takes the mapping over.

use core::ops::Deref;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The bytes of a file, owned or mapped.
#[derive(Debug)]
pub enum FileBytes {
    /// Read into memory.
    Owned(Vec<u8>),
    /// Mapped read-only.
    Mapped(memmap2::Mmap),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Owned(v) => v,
            FileBytes::Mapped(m) => m,
        }
    }
}

impl FileBytes {
    /// Reads `path` into memory, or maps it when it lives under
    /// `/sys/kernel/btf` (mapping falls back to reading on kernels that do
    /// not allow it).
    ///
    /// # Errors
    /// The I/O error of opening or reading the file.
    pub fn open(path: &Path) -> std::io::Result<FileBytes> {
        if path.starts_with("/sys/kernel/btf") {
            if let Ok(m) = Self::map(path) {
                return Ok(m);
            }
        }
        Self::read(path)
    }

    /// Reads the whole file.
    ///
    /// # Errors
    /// The I/O error of opening or reading the file.
    pub fn read(path: &Path) -> std::io::Result<FileBytes> {
        let mut f = File::open(path)?;
        let mut v = Vec::new();
        f.read_to_end(&mut v)?;
        Ok(FileBytes::Owned(v))
    }

    /// Maps the whole file read-only and private (sysfs BTF refuses
    /// shared mappings).
    ///
    /// # Errors
    /// The I/O error of opening or mapping the file.
    pub fn map(path: &Path) -> std::io::Result<FileBytes> {
        let f = File::open(path)?;
        #[expect(unsafe_code, reason = "memory mapping needs unsafe; see SAFETY")]
        // SAFETY: mapping is unsafe because another process could change
        // or truncate the file under the mapping. Callers of `open` only map
        // `/sys/kernel/btf/*`, which the kernel serves read-only from memory
        // that lives as long as the kernel (or the module) does; `map` is
        // public for benchmarks and documented to need an immutable file.
        let m = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&f)? };
        Ok(FileBytes::Mapped(m))
    }
}
