//! Input files as bytes: read into memory, or mapped when the file is
//! kernel-owned and immutable (BTF served by sysfs).
//!
//! A mapping of an ordinary file is unsound behind `&[u8]`: another
//! process may write or truncate the file, changing the bytes under a
//! shared reference or raising SIGBUS; some sysfs files (device
//! registers) change too. So the safe entry points map only kernel BTF:
//! a file `fstatfs` places on sysfs whose path, as the kernel reports it
//! for the open file, is under `/sys/kernel/btf/`, served read-only from
//! the kernel's own memory. Everything else is read. Mapping any
//! other file is [`FileBytes::map`], an `unsafe fn` whose caller promises
//! the file does not change. With ember-sys's shared-memory regions this
//! module holds ember's only audited unsafe code outside `ember-sys`.
#![allow(
    unsafe_code,
    reason = "file mappings need unsafe; each block argues why it is sound"
)]

use core::ops::Deref;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// `SYSFS_MAGIC` from `uapi/linux/magic.h`.
const SYSFS_MAGIC: u64 = 0x6265_6572;

/// The bytes of a file, owned or mapped.
#[derive(Debug)]
pub enum FileBytes {
    /// Read into memory.
    Owned(Vec<u8>),
    /// Mapped read-only from a file that cannot change under us.
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
    /// Maps `path` when it is kernel BTF in sysfs (`/sys/kernel/btf/*`),
    /// reads it otherwise (or when the kernel refuses the mapping).
    ///
    /// # Errors
    /// The I/O error of opening or reading the file.
    pub fn open(path: &Path) -> std::io::Result<FileBytes> {
        let f = File::open(path)?;
        if kernel_btf_file(&f) {
            if let Ok(m) = map_file(&f) {
                return Ok(m);
            }
        }
        read_file(f)
    }

    /// Reads the whole file.
    ///
    /// # Errors
    /// The I/O error of opening or reading the file.
    pub fn read(path: &Path) -> std::io::Result<FileBytes> {
        read_file(File::open(path)?)
    }

    /// Maps kernel BTF in sysfs; any other file is refused with
    /// `InvalidInput`, so benchmarks can insist on a mapping.
    ///
    /// # Errors
    /// `InvalidInput` for a file not on sysfs; the I/O error of opening or
    /// mapping the file.
    pub fn map_sysfs(path: &Path) -> std::io::Result<FileBytes> {
        let f = File::open(path)?;
        if !kernel_btf_file(&f) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} is not kernel BTF in sysfs", path.display()),
            ));
        }
        map_file(&f)
    }

    /// Maps any file read-only and private.
    ///
    /// # Safety
    /// For as long as the result lives, nothing may write to or truncate
    /// the file (another process, or this one through another handle):
    /// the bytes behind the returned `&[u8]` would change, or reading them
    /// would raise SIGBUS. Files on a read-only mount, or kernel-served
    /// files such as sysfs BTF ([`FileBytes::open`] maps those safely),
    /// meet this.
    ///
    /// # Errors
    /// The I/O error of opening or mapping the file.
    pub unsafe fn map(path: &Path) -> std::io::Result<FileBytes> {
        let f = File::open(path)?;
        // SAFETY: the caller promises the file does not change while the
        // mapping lives (this function's contract).
        let m = unsafe { memmap2::MmapOptions::new().map_copy_read_only(&f)? };
        Ok(FileBytes::Mapped(m))
    }
}

/// Whether `f` is kernel BTF served by sysfs: on sysfs (checked on the
/// open file) and, by the path the kernel reports for it, under
/// `/sys/kernel/btf/`. Other sysfs files can change (device registers,
/// PCI BARs), so being on sysfs alone is not enough.
fn kernel_btf_file(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    on_sysfs(f)
        && std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
            .is_ok_and(|p| p.starts_with("/sys/kernel/btf/"))
}

/// Whether `f` lives on sysfs.
fn on_sysfs(f: &File) -> bool {
    rustix::fs::fstatfs(f).is_ok_and(|s| u64::try_from(s.f_type).is_ok_and(|t| t == SYSFS_MAGIC))
}

/// Maps `f`, which the caller checked is kernel BTF in sysfs.
fn map_file(f: &File) -> std::io::Result<FileBytes> {
    #[expect(unsafe_code, reason = "memory mapping needs unsafe; see SAFETY")]
    // SAFETY: mapping is unsafe because the file could change under the
    // mapping. `f` is kernel BTF in sysfs (`kernel_btf_file`, checked on
    // this very open file, so no path swap can intervene): it is generated
    // by the kernel from memory that lives as long as the kernel or
    // module, and no user space can write it. The mapping is private
    // (sysfs BTF refuses shared ones).
    let m = unsafe { memmap2::MmapOptions::new().map_copy_read_only(f)? };
    Ok(FileBytes::Mapped(m))
}

fn read_file(mut f: File) -> std::io::Result<FileBytes> {
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(FileBytes::Owned(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_files_are_read_not_mapped() {
        let p = std::env::temp_dir().join(format!("ember-mapped-{}", std::process::id()));
        std::fs::write(&p, b"abc").unwrap();
        let b = FileBytes::open(&p).unwrap();
        assert!(matches!(b, FileBytes::Owned(_)));
        assert_eq!(&*b, b"abc");
        let e = FileBytes::map_sysfs(&p).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        // On sysfs but not kernel BTF: read, never mapped.
        let other = Path::new("/sys/kernel/mm/transparent_hugepage/enabled");
        if other.exists() {
            assert!(matches!(
                FileBytes::open(other).unwrap(),
                FileBytes::Owned(_)
            ));
            assert!(FileBytes::map_sysfs(other).is_err());
        }
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn sysfs_btf_is_mapped() {
        let p = Path::new("/sys/kernel/btf/vmlinux");
        if !p.exists() {
            eprintln!("skipped: no {}", p.display());
            return;
        }
        let b = FileBytes::open(p).unwrap();
        assert!(matches!(b, FileBytes::Mapped(_)));
        assert_eq!(b.get(..2), Some(&0xeb9fu16.to_ne_bytes()[..]));
    }
}
