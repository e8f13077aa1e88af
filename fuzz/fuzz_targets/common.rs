// Shared by the BTF fuzz targets: a counting allocator and the work done on
// every successfully opened BTF.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ember_core::btf::{Btf, TypeId, dump};

/// Tracks live and peak heap bytes so targets can assert that allocation
/// stays proportional to the input.
pub struct Counting;

pub static LIVE: AtomicUsize = AtomicUsize::new(0);
pub static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` with the same layout.
        unsafe { System.dealloc(p, l) }
    }
}

/// Resets the peak to the current live size.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// Peak bytes allocated since `reset_peak` returned `base`.
pub fn peak_since(base: usize) -> usize {
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

/// Everything a reader may do with an opened BTF; none of it may panic.
pub fn exercise(btf: &Btf<'_>) {
    let mut s = String::new();
    let _ = dump::raw::dump(btf, &mut s);
    for t in btf.types() {
        let id = t.id();
        let _ = btf.resolve_size(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
        if let Ok(name) = btf.name(&t) {
            if !name.is_empty() {
                let found = btf.find_by_name_kind(name, t.kind());
                assert!(found.is_some_and(|f| f <= id), "index lost {name}");
            }
        }
    }
    let _ = btf.resolve_size(TypeId(u32::MAX));
}
