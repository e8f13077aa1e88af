// Shared by the BTF fuzz targets: a counting allocator and the work done on
// every successfully opened BTF.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ember_core::btf::{Btf, Kind, TypeId, dump, essential_name, sort_by_name};

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

/// Up to 64 (name, kind) pairs of `btf`, plus one absent name.
fn some_names<'a>(btf: &Btf<'a>) -> Vec<(&'a str, Kind)> {
    let mut v: Vec<(&'a str, Kind)> = btf
        .types()
        .filter_map(|t| Some((btf.name(&t).ok().filter(|n| !n.is_empty())?, t.kind())))
        .take(64)
        .collect();
    v.push(("\u{1}absent", Kind::Struct));
    v
}

/// The same BTF sorted by name: binary search finds what the index does.
fn sorted_agrees(btf: &Btf<'_>) {
    if btf.base().is_some() {
        return;
    }
    // Kinds only a layout section describes cannot be renumbered.
    let Ok(bytes) = sort_by_name(btf) else { return };
    let sorted = Btf::parse(&bytes).expect("sorting valid BTF keeps it valid");
    // Sorted unless no type has a non-empty name (then there is nothing to
    // search, and lookups take the index path).
    let unnamed = btf
        .types()
        .all(|t| btf.bytes_at(t.name_off()).is_none_or(<[u8]>::is_empty));
    assert!(sorted.is_sorted_by_name() || unnamed);
    for t in btf.types() {
        let Ok(name) = btf.name(&t) else { continue };
        if name.is_empty() {
            continue;
        }
        let (a, b) = (
            btf.find_by_name_kind(name, t.kind()),
            sorted.find_by_name_kind(name, t.kind()),
        );
        let key = |x: &Btf<'_>, id: Option<TypeId>| {
            id.and_then(|i| x.get(i))
                .map(|t| (x.bytes_at(t.name_off()).map(<[u8]>::to_vec), t.kind()))
        };
        assert_eq!(
            key(btf, a),
            key(&sorted, b),
            "sorted lookup differs for {name}"
        );
        let ess = essential_name(name);
        let (ea, eb) = (
            btf.find_essential(ess, t.kind()),
            sorted.find_essential(ess, t.kind()),
        );
        assert_eq!(
            ea.map(|v| v.len()).ok(),
            eb.map(|v| v.len()).ok(),
            "flavors of {ess}"
        );
    }
}

/// Everything a reader may do with an opened BTF; none of it may panic.
pub fn exercise(btf: &Btf<'_>) {
    // Before anything builds the index: the one-pass lookup.
    let wants = some_names(btf);
    let many = btf.find_many(&wants).ok();
    let mut s = String::new();
    let _ = dump::raw::dump(btf, &mut s);
    for t in btf.types() {
        let id = t.id();
        let _ = btf.resolve_size(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
        if let Ok(name) = btf.name(&t)
            && !name.is_empty()
        {
            let found = btf.find_by_name_kind(name, t.kind());
            assert!(found.is_some_and(|f| f <= id), "index lost {name}");
        }
    }
    let _ = btf.resolve_size(TypeId(u32::MAX));
    if let Some(many) = many {
        for (&(n, k), id) in wants.iter().zip(many) {
            assert_eq!(id, btf.find_by_name_kind(n, k), "find_many differs for {n}");
        }
    }
    sorted_agrees(btf);
}
