//! [`Region`]: one owned `mmap(2)` of memory the kernel shares with us
//! (see the parent module's `# Safety` on why every access is atomic).
//! Part of the audited `raw` module, whose unsafe-code allowance covers
//! this file.

use super::*;

/// One owned `mmap(2)` of shared memory, unmapped on drop.
///
/// The kernel, BPF programs and other mappings of the same object may
/// write these bytes at any time, so Rust never holds a plain `&[u8]` or
/// `&mut [u8]` to them: every access below is an atomic load or store of
/// an in-bounds, aligned location, and stores are refused unless the
/// region was mapped writable.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: NonNull<u8>,
    len: usize,
    writable: bool,
}

// SAFETY: a Region owns its mapping outright (nothing else in this process
// holds its address) and every access to it is atomic, so moving it to, or
// sharing it with, another thread cannot create a data race.
unsafe impl Send for Region {}
// SAFETY: see `Send`: all access through `&Region` is atomic.
unsafe impl Sync for Region {}

impl Region {
    /// `mmap(NULL, len, PROT_READ[|PROT_WRITE], MAP_SHARED, fd, offset)`.
    pub(crate) fn map(
        fd: BorrowedFd<'_>,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<Region, Errno> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 || isize::try_from(len).is_err() {
            return Err(Errno::INVAL);
        }
        #[cfg(feature = "fault-inject")]
        crate::fault::check_named("mmap")?;
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: with a null address and no MAP_FIXED the kernel picks a
        // fresh range, so no memory Rust already uses is replaced; the
        // result is owned by the Region built from it.
        let p = unsafe {
            rustix::mm::mmap(
                core::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )
        }?;
        Region::own(p, len, writable)
    }

    /// A private anonymous read-write region (zeroed), for unit tests that
    /// lay out a ring by hand.
    #[cfg(test)]
    pub(crate) fn anonymous(len: usize) -> Result<Region, Errno> {
        use rustix::mm::{MapFlags, ProtFlags};
        if len == 0 || isize::try_from(len).is_err() {
            return Err(Errno::INVAL);
        }
        // SAFETY: as in `map`: a fresh, kernel-chosen range.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                core::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )
        }?;
        Region::own(p, len, true)
    }

    fn own(p: *mut core::ffi::c_void, len: usize, writable: bool) -> Result<Region, Errno> {
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) => Ok(Region { ptr, len, writable }),
            None => {
                // SAFETY: the kernel mapped `len` bytes at address 0 for us
                // (possible only with mmap_min_addr = 0); nothing refers to
                // them yet, so unmapping them is sound.
                let _ = unsafe { rustix::mm::munmap(p, len) };
                Err(Errno::NOMEM)
            }
        }
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether stores are allowed.
    pub(crate) fn writable(&self) -> bool {
        self.writable
    }

    /// The start address, for diagnostics (e.g. finding it in
    /// `/proc/self/maps`).
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr().addr()
    }

    /// Every byte, as atomics. Private: handing this out for a read-only
    /// region would let safe code store into read-only memory.
    fn cells(&self) -> &[AtomicU8] {
        // SAFETY: `ptr..ptr+len` is a live mapping owned by `self` and
        // unmapped only in `Drop`, so it outlives the borrow; `len` fits in
        // isize (checked when mapping); `AtomicU8` has the size and
        // alignment of `u8` (its documented layout), and mapped bytes are
        // always initialized (the kernel backs every page it let us map).
        // `AtomicU8` is an `UnsafeCell`, so concurrent writes by the kernel
        // or BPF programs behind this shared reference are permitted; this
        // module only loads through it unless the region is writable.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU8>(), self.len) }
    }

    /// The region as pointer-sized atomics (the trailing partial word, if
    /// any, left out). Loads only.
    fn words(&self) -> &[AtomicUsize] {
        let n = self.len / size_of::<usize>();
        // SAFETY: as in `cells`; in addition the start is page-aligned (so
        // aligned for `AtomicUsize`, whose alignment equals its size) and
        // `n` whole words fit inside `len` bytes.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicUsize>(), n) }
    }

    /// The aligned, in-bounds location of a `T` at `off`, if there is one.
    fn at<T>(&self, off: usize) -> Option<NonNull<T>> {
        let end = off.checked_add(size_of::<T>())?;
        if end > self.len || !off.is_multiple_of(align_of::<T>()) {
            return None;
        }
        // The base is page-aligned, so `off` aligned means the address is.
        NonNull::new(self.ptr.as_ptr().wrapping_add(off).cast::<T>())
    }

    fn u32_cell(&self, off: usize) -> Option<&AtomicU32> {
        let p = self.at::<AtomicU32>(off)?;
        // SAFETY: `at` checked that `off..off+4` lies inside the live
        // mapping and is 4-aligned; `AtomicU32` has the size and alignment
        // of `u32`; the borrow is tied to `&self` (see `cells`).
        Some(unsafe { p.as_ref() })
    }

    fn u64_cell(&self, off: usize) -> Option<&AtomicU64> {
        let p = self.at::<AtomicU64>(off)?;
        // SAFETY: as in `u32_cell`, with 8 bytes and 8-alignment.
        Some(unsafe { p.as_ref() })
    }

    fn usize_cell(&self, off: usize) -> Option<&AtomicUsize> {
        let p = self.at::<AtomicUsize>(off)?;
        // SAFETY: as in `u32_cell`, for a pointer-sized word.
        Some(unsafe { p.as_ref() })
    }

    /// Whether a load of `size` bytes may touch this region: Rust defines
    /// atomic loads of read-only memory only for `Relaxed` loads no wider
    /// than a register on the architectures `core::sync::atomic` lists
    /// ("Atomic accesses to read-only memory"); elsewhere only writable
    /// regions are loaded from.
    pub(crate) fn loadable(&self, size: usize) -> bool {
        const RO_LOADS: bool = cfg!(any(
            target_arch = "x86",
            target_arch = "arm",
            target_arch = "mips",
            target_arch = "mips32r6",
            target_arch = "powerpc",
            target_arch = "riscv32",
            target_arch = "sparc",
            target_arch = "hexagon",
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "loongarch64",
            target_arch = "mips64",
            target_arch = "mips64r6",
            target_arch = "powerpc64",
            target_arch = "riscv64",
            target_arch = "sparc64",
            target_arch = "s390x",
        ));
        self.writable || (RO_LOADS && size <= size_of::<usize>())
    }

    /// Acquire load of the `u32` at `off` (aligned, in bounds): a relaxed
    /// load and an acquire fence, the form that is also defined on
    /// read-only memory.
    pub(crate) fn load_u32(&self, off: usize) -> Option<u32> {
        if !self.loadable(4) {
            return None;
        }
        let v = self.u32_cell(off)?.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        Some(v)
    }

    /// Acquire load of the `u64` at `off` (as `load_u32`; on 32-bit
    /// targets only from writable regions).
    pub(crate) fn load_u64(&self, off: usize) -> Option<u64> {
        if !self.loadable(8) {
            return None;
        }
        let v = self.u64_cell(off)?.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        Some(v)
    }

    /// Acquire load of the `usize` (`unsigned long`) at `off` (as
    /// `load_u32`).
    pub(crate) fn load_usize(&self, off: usize) -> Option<usize> {
        if !self.loadable(size_of::<usize>()) {
            return None;
        }
        let v = self.usize_cell(off)?.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        Some(v)
    }

    /// Release store of a `u32` at `off`; `None` when read-only, out of
    /// bounds or misaligned.
    pub(crate) fn store_u32(&self, off: usize, v: u32) -> Option<()> {
        if !self.writable {
            return None;
        }
        self.u32_cell(off).map(|c| c.store(v, Ordering::Release))
    }

    /// Release store of a `u64` at `off` (see `store_u32`).
    pub(crate) fn store_u64(&self, off: usize, v: u64) -> Option<()> {
        if !self.writable {
            return None;
        }
        self.u64_cell(off).map(|c| c.store(v, Ordering::Release))
    }

    /// Release store of a `usize` at `off` (see `store_u32`).
    pub(crate) fn store_usize(&self, off: usize, v: usize) -> Option<()> {
        if !self.writable {
            return None;
        }
        self.usize_cell(off).map(|c| c.store(v, Ordering::Release))
    }

    /// Copies `out.len()` bytes from `off` into `out` (relaxed loads, a
    /// word at a time where aligned); `None` when out of bounds.
    pub(crate) fn read(&self, off: usize, out: &mut [u8]) -> Option<()> {
        if !self.loadable(size_of::<usize>()) {
            return None;
        }
        let end = off.checked_add(out.len())?;
        let src = self.cells().get(off..end)?;
        const W: usize = size_of::<usize>();
        let mut i = 0;
        let words = self.words();
        while i < out.len() {
            let at = off.wrapping_add(i);
            let rest = out.len().wrapping_sub(i);
            if at.is_multiple_of(W) && rest >= W {
                let w = words.get(at / W)?.load(Ordering::Relaxed);
                out.get_mut(i..i.wrapping_add(W))?
                    .copy_from_slice(&w.to_ne_bytes());
                i = i.wrapping_add(W);
            } else {
                *out.get_mut(i)? = src.get(i)?.load(Ordering::Relaxed);
                i = i.wrapping_add(1);
            }
        }
        Some(())
    }

    /// Copies `data` to `off` (relaxed byte stores); `None` when read-only
    /// or out of bounds.
    pub(crate) fn write(&self, off: usize, data: &[u8]) -> Option<()> {
        if !self.writable {
            return None;
        }
        let end = off.checked_add(data.len())?;
        let dst = self.cells().get(off..end)?;
        for (d, s) in dst.iter().zip(data) {
            d.store(*s, Ordering::Relaxed);
        }
        Some(())
    }

    /// Every byte as atomics, for writable regions only.
    pub(crate) fn atomic_bytes(&self) -> Option<&[AtomicU8]> {
        self.writable.then(|| self.cells())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe the mapping this Region created and
        // still owns; every reference into it borrows `self`, so none can
        // outlive this call.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
