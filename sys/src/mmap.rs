//! Owned shared mappings of BPF maps and perf buffers.
//!
//! An [`Mmap`] is one `mmap(2)` of an fd region, read-only or read-write,
//! unmapped when dropped. The kernel and BPF programs write that memory
//! while we read it, so it is never lent out as `&[u8]`: bytes are copied
//! in and out ([`Mmap::read`], [`Mmap::write`]), counters are loaded with
//! acquire and stored with release ordering at aligned offsets
//! ([`Mmap::load_u64`], [`Mmap::store_u64`], ...), and a writable mapping
//! can be viewed as `&[AtomicU8]` ([`Mmap::atomic_bytes`]). Every access
//! is bounds-checked and returns an error rather than panicking.
//!
//! [`Mmap::array`] maps the values of a `BPF_F_MMAPABLE` array map, which
//! is how global data (`.data`, `.bss`, `.rodata`) is shared with user
//! space.
//!
//! The unsafe parts (the `mmap`/`munmap` calls and the atomic views) live
//! in the crate's one unsafe module; this one is safe code.

use core::fmt;
use core::sync::atomic::AtomicU8;

use rustix::fd::BorrowedFd;

use crate::error::{Result, SysError};
use crate::raw::Region;

/// Whether a mapping may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `PROT_READ`.
    ReadOnly,
    /// `PROT_READ | PROT_WRITE`.
    ReadWrite,
}

/// An access outside what a mapping allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessError {
    /// The range is not inside the mapping.
    OutOfBounds,
    /// The offset is not aligned for the access size.
    Misaligned,
    /// A store into a read-only mapping.
    ReadOnly,
    /// A load this target cannot make from read-only memory without
    /// undefined behaviour (a `u64` on a 32-bit target, or any load on an
    /// architecture `core::sync::atomic` does not list).
    Unsupported,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AccessError::OutOfBounds => "access outside the mapping",
            AccessError::Misaligned => "misaligned access to the mapping",
            AccessError::ReadOnly => "store into a read-only mapping",
            AccessError::Unsupported => "load not supported on read-only memory on this target",
        })
    }
}

impl core::error::Error for AccessError {}

/// An owned shared mapping of an fd region, unmapped on drop.
///
/// Loads are relaxed loads followed by an acquire fence (the form Rust
/// defines on read-only pages), stores are release stores; a store into
/// a read-only mapping is refused rather than faulting.
///
/// # References
/// mmap(2), `Documentation/bpf/map_array.rst` (`BPF_F_MMAPABLE`).
#[derive(Debug)]
pub struct Mmap {
    region: Region,
}

/// `BPF_MAP_TYPE_ARENA`.
const MAP_TYPE_ARENA: u32 = 33;
/// `BPF_F_SEGV_ON_FAULT`.
const F_SEGV_ON_FAULT: u32 = 1 << 17;

/// The system page size.
pub fn page_size() -> usize {
    rustix::param::page_size()
}

/// An arena's address range, mapped so the kernel fixes the arena's user
/// address, with no access to its bytes: for arenas made with
/// `BPF_F_SEGV_ON_FAULT`, where touching a page the program has not
/// allocated raises SIGSEGV. Unmapped on drop.
#[derive(Debug)]
pub struct ArenaReservation {
    region: Region,
}

impl ArenaReservation {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, arena_fd, 0)`,
    /// for a BPF arena map only.
    ///
    /// # Errors
    /// `EBADF` when `fd` is not a BPF arena; the kernel's errno.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> Result<ArenaReservation> {
        let refused = |errno| SysError { cmd: "mmap", errno };
        let info = crate::cmd::map_info(fd).map_err(|_| refused(rustix::io::Errno::BADF))?;
        if info.map_type != MAP_TYPE_ARENA {
            return Err(refused(rustix::io::Errno::BADF));
        }
        Region::map(fd, 0, len, true)
            .map(|region| ArenaReservation { region })
            .map_err(refused)
    }

    /// The start address (the arena's user address).
    pub fn addr(&self) -> usize {
        self.region.addr()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether the reservation is empty (never: mapping zero bytes fails).
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }
}

impl Mmap {
    /// `mmap(NULL, len, prot, MAP_SHARED, fd, offset)`—Maps `len` bytes of
    /// `fd` from `offset` (a multiple of the page size).
    ///
    /// # Errors
    /// `EINVAL` for an empty or oversized length, or the kernel's errno
    /// (as `SysError { cmd: "mmap", .. }`); BPF objects refuse lengths
    /// beyond the object with `EINVAL` and writable maps of frozen or
    /// read-only maps with `EPERM`.
    ///
    /// `fd` must be a BPF map (an mmapable array, a ring buffer or an
    /// arena): the kernel backs every page of those it lets us map. Any
    /// other fd is refused with `EBADF`, because a file can be truncated
    /// under a mapping (then a read raises SIGBUS), and so is an arena
    /// made with `BPF_F_SEGV_ON_FAULT` (reading a page the program has not
    /// allocated raises SIGSEGV).
    #[doc(alias = "mmap")]
    pub fn map(fd: BorrowedFd<'_>, offset: u64, len: usize, access: Access) -> Result<Mmap> {
        let refused = |errno| SysError { cmd: "mmap", errno };
        let info = crate::cmd::map_info(fd).map_err(|_| refused(rustix::io::Errno::BADF))?;
        if info.map_type == MAP_TYPE_ARENA && info.map_flags & F_SEGV_ON_FAULT != 0 {
            return Err(refused(rustix::io::Errno::INVAL));
        }
        Mmap::map_fd(fd, offset, len, access)
    }

    /// [`Mmap::map`] without the check, for fds this crate made itself
    /// (perf events, ring buffers it checked).
    pub(crate) fn map_fd(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        access: Access,
    ) -> Result<Mmap> {
        Region::map(fd, offset, len, access == Access::ReadWrite)
            .map(|region| Mmap { region })
            .map_err(|errno| SysError { cmd: "mmap", errno })
    }

    /// Maps the value area of a `BPF_F_MMAPABLE` array map: `max_entries`
    /// values of `value_size` bytes, each starting at a multiple of 8 (the
    /// kernel's element stride). The mapping is exactly that many bytes
    /// long, so element `i` is at `i * round_up(value_size, 8)`.
    ///
    /// # Errors
    /// `EINVAL` when the sizes overflow or are zero; the kernel's errno
    /// (e.g. `EINVAL` for a map without `BPF_F_MMAPABLE`, `EPERM` for a
    /// writable mapping of a frozen map).
    pub fn array(
        map_fd: BorrowedFd<'_>,
        value_size: u32,
        max_entries: u32,
        access: Access,
    ) -> Result<Mmap> {
        let inval = SysError {
            cmd: "mmap",
            errno: rustix::io::Errno::INVAL,
        };
        let stride = usize::try_from(value_size)
            .ok()
            .and_then(|v| v.checked_next_multiple_of(8))
            .ok_or(inval)?;
        let len = usize::try_from(max_entries)
            .ok()
            .and_then(|n| n.checked_mul(stride))
            .ok_or(inval)?;
        Mmap::map(map_fd, 0, len, access)
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether the mapping is empty (never: empty mappings are refused).
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// Whether the mapping is writable.
    pub fn access(&self) -> Access {
        if self.region.writable() {
            Access::ReadWrite
        } else {
            Access::ReadOnly
        }
    }

    /// The start address (page-aligned), for diagnostics such as finding
    /// the mapping in `/proc/self/maps`.
    pub fn addr(&self) -> usize {
        self.region.addr()
    }

    fn why<T>(&self, off: usize, store: bool) -> AccessError {
        if store && !self.region.writable() {
            AccessError::ReadOnly
        } else if !store && !self.region.loadable(size_of::<T>()) {
            AccessError::Unsupported
        } else if off
            .checked_add(size_of::<T>())
            .is_none_or(|e| e > self.len())
        {
            AccessError::OutOfBounds
        } else {
            AccessError::Misaligned
        }
    }

    /// Copies `out.len()` bytes at `off` into `out`.
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`].
    pub fn read(&self, off: usize, out: &mut [u8]) -> Result<(), AccessError> {
        self.region.read(off, out).ok_or(AccessError::OutOfBounds)
    }

    /// Copies `data` to `off`.
    ///
    /// # Errors
    /// [`AccessError::ReadOnly`] or [`AccessError::OutOfBounds`].
    pub fn write(&self, off: usize, data: &[u8]) -> Result<(), AccessError> {
        if !self.region.writable() {
            return Err(AccessError::ReadOnly);
        }
        self.region.write(off, data).ok_or(AccessError::OutOfBounds)
    }

    /// Copies the whole mapping into a new vector.
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec![0u8; self.len()];
        // Cannot fail: the range is the whole mapping.
        let _ = self.region.read(0, &mut v);
        v
    }

    /// The mapping as atomic bytes, for writable mappings (`None` for
    /// read-only ones: an atomic store to read-only memory is undefined
    /// behaviour, so no `&AtomicU8` of one is handed out).
    pub fn atomic_bytes(&self) -> Option<&[AtomicU8]> {
        self.region.atomic_bytes()
    }

    /// Acquire load of the `u32` at `off` (4-aligned).
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] or [`AccessError::Misaligned`]
    /// (or [`AccessError::Unsupported`], see there).
    pub fn load_u32(&self, off: usize) -> Result<u32, AccessError> {
        self.region
            .load_u32(off)
            .ok_or_else(|| self.why::<u32>(off, false))
    }

    /// Acquire load of the `u64` at `off` (8-aligned).
    ///
    /// # Errors
    /// [`AccessError::OutOfBounds`] or [`AccessError::Misaligned`]
    /// (or [`AccessError::Unsupported`], see there).
    pub fn load_u64(&self, off: usize) -> Result<u64, AccessError> {
        self.region
            .load_u64(off)
            .ok_or_else(|| self.why::<u64>(off, false))
    }

    /// Release store of a `u32` at `off` (4-aligned).
    ///
    /// # Errors
    /// [`AccessError::ReadOnly`], [`AccessError::OutOfBounds`] or
    /// [`AccessError::Misaligned`].
    pub fn store_u32(&self, off: usize, v: u32) -> Result<(), AccessError> {
        self.region
            .store_u32(off, v)
            .ok_or_else(|| self.why::<u32>(off, true))
    }

    /// Release store of a `u64` at `off` (8-aligned).
    ///
    /// # Errors
    /// [`AccessError::ReadOnly`], [`AccessError::OutOfBounds`] or
    /// [`AccessError::Misaligned`].
    pub fn store_u64(&self, off: usize, v: u64) -> Result<(), AccessError> {
        self.region
            .store_u64(off, v)
            .ok_or_else(|| self.why::<u64>(off, true))
    }

    /// Acquire load of the `unsigned long` at `off` (the ring buffer's
    /// positions).
    pub(crate) fn load_usize(&self, off: usize) -> Option<usize> {
        self.region.load_usize(off)
    }

    /// Release store of an `unsigned long` at `off`.
    pub(crate) fn store_usize(&self, off: usize, v: usize) -> Option<()> {
        self.region.store_usize(off, v)
    }

    /// A private zeroed read-write mapping, for unit tests.
    #[cfg(test)]
    pub(crate) fn anonymous(len: usize) -> Mmap {
        match Region::anonymous(len) {
            Ok(region) => Mmap { region },
            Err(e) => panic!("anonymous mmap: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_alignment_and_copies() {
        let m = Mmap::anonymous(64);
        assert_eq!(m.len(), 64);
        assert_eq!(m.access(), Access::ReadWrite);
        m.store_u64(8, 0x1122_3344_5566_7788).unwrap();
        assert_eq!(m.load_u64(8), Ok(0x1122_3344_5566_7788));
        assert_eq!(m.load_u64(4), Err(AccessError::Misaligned));
        assert_eq!(m.load_u64(64), Err(AccessError::OutOfBounds));
        assert_eq!(m.load_u64(usize::MAX), Err(AccessError::OutOfBounds));
        assert_eq!(m.store_u32(62, 1), Err(AccessError::OutOfBounds));
        assert_eq!(m.store_u32(2, 1), Err(AccessError::Misaligned));
        m.store_u32(60, 7).unwrap();
        assert_eq!(m.load_u32(60), Ok(7));
        // Byte copies at every alignment, across word boundaries.
        let data: alloc::vec::Vec<u8> = (1..=23).collect();
        for off in 0..8 {
            m.write(off + 16, &data).unwrap();
            let mut out = [0u8; 23];
            m.read(off + 16, &mut out).unwrap();
            assert_eq!(&out[..], &data[..]);
        }
        assert_eq!(m.write(60, &[0; 5]), Err(AccessError::OutOfBounds));
        assert_eq!(m.read(0, &mut [0; 65]), Err(AccessError::OutOfBounds));
        assert_eq!(m.to_vec().len(), 64);
        assert_eq!(m.atomic_bytes().map(<[AtomicU8]>::len), Some(64));
        assert!(m.addr().is_multiple_of(page_size()));
    }
}
