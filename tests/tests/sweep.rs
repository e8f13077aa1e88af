//! Truncation and bit-flip sweeps (issue 12) over real inputs: this
//! machine's vmlinux BTF, a module's split BTF (Debian 6.1's nf_conntrack
//! over its vmlinux) and every fixture object.
//!
//! For each input, every prefix length (vmlinux's 5.5 M too: a truncated
//! header or section is refused before any type is read, so they are
//! cheap), and `FLIPS` seeded single-bit flips (xorshift; an object's seed
//! is its path's hash, so `EMBER_SWEEP_ONLY=<path part>` replays one). Each
//! must give a typed error or a valid result: never a panic, and never
//! allocation beyond k × the input size plus a constant (a counting global
//! allocator; k as the fuzz targets assert). Valid results are then used:
//! objects go through the whole pipeline short of the kernel (CO-RE
//! against vmlinux, patching, the BTF handed to the kernel for two feature
//! sets, linking each program) and every view of their BTF; BTF gets its
//! per-type views, with the whole-BTF ones that cost milliseconds (name
//! index, C dump) on one flip in `SAMPLE_SLOW`.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use ember_core::btf::{Btf, TypeId, dump};
use ember_core::id::FuncIndex;
use ember_core::insn::INSN_SIZE;
use ember_core::load::{BtfFeatures, FUNC_INFO_SIZE, LINE_INFO_SIZE, kernel_btf, link_program};
use ember_core::object::Object;
use ember_core::reloc::{CandidateSearch, Targets, TypeName, apply, solve_with};
use ember_tests::{fixture, kernel_btf_dir, skip};

/// Counts live and peak heap bytes of the whole process.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed).saturating_add(by);
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every method forwards unchanged to the system allocator; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        // SAFETY: as the caller's contract for `alloc`.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        // SAFETY: as the caller's contract for `alloc_zeroed`.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // Counted as both blocks live at once, as a moving realloc is.
        grew(new);
        // SAFETY: as the caller's contract for `realloc`.
        let q = unsafe { System.realloc(p, l, new) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes it allocated
/// beyond what was live when it started.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    (r, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// The counters are process-wide: one sweep at a time.
fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    ONE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Flips per input.
const FLIPS: usize = 10_000;

/// xorshift64*: a seeded, reproducible sample (no rand crate).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A bit index below `bits`.
    fn below(&mut self, bits: usize) -> usize {
        usize::try_from(self.next() % bits as u64).unwrap_or(0)
    }
}

/// `data` with bit `bit` flipped.
fn flipped(data: &[u8], bit: usize) -> Vec<u8> {
    let mut v = data.to_vec();
    if let Some(b) = v.get_mut(bit / 8) {
        *b ^= 1 << (bit % 8);
    }
    v
}

/// Allocation bound for BTF parsing, as the btf fuzz targets assert: one
/// u32 offset per 12-byte record at most, plus a small constant.
fn btf_bound(len: usize) -> usize {
    len / 2 + 4096
}

/// Allocation bound for object parsing, as the object fuzz target asserts.
fn object_bound(len: usize) -> usize {
    len * 16 + 65536
}

/// What a sweep saw, printed for README.
#[derive(Debug, Default)]
struct Tally {
    runs: usize,
    ok: usize,
    max_peak: usize,
}

impl Tally {
    fn saw(&mut self, ok: bool, peak: usize) {
        self.runs += 1;
        self.ok += usize::from(ok);
        self.max_peak = self.max_peak.max(peak);
    }
}

/// How much of a parsed BTF's views a sweep exercises.
#[derive(Debug, Clone, Copy)]
struct Views {
    /// The whole-BTF dumps, raw and C.
    dumps: bool,
    /// Name lookups, which build the name index.
    lookups: bool,
}

/// Views a reader of parsed BTF uses; none may panic. `ids` get the
/// per-type views (size, alignment, modifiers, C name).
fn exercise(btf: &Btf<'_>, ids: impl Iterator<Item = TypeId>, v: Views) {
    if v.dumps {
        let mut s = String::new();
        let _ = dump::raw::dump(btf, &mut s);
        let mut c = String::new();
        let _ = dump::c::dump(btf, &mut c);
    }
    for id in ids {
        let _ = btf.resolve_size(id);
        let _ = btf.align_of(id);
        let _ = btf.skip_mods_and_typedefs(id);
        let _ = TypeName { btf, id }.to_string();
        let Some(t) = btf.get(id) else { continue };
        let Ok(name) = btf.name(&t) else { continue };
        if v.lookups && !name.is_empty() {
            let found = btf.find_by_name_kind(name, t.kind());
            assert!(found.is_some_and(|f| f <= id), "index lost {name}");
        }
    }
}

/// Whole-BTF views on one flip in this many where they cost milliseconds
/// (vmlinux's name index, a module's C dump with its base): enough
/// samples to meet every kind of damage, within CI time.
const SAMPLE_SLOW: usize = 100;

/// Absolute offsets in `btf.data()` where each own type record starts (and
/// where the last ends).
fn record_boundaries(btf: &Btf<'_>) -> Vec<usize> {
    let (mut at, _) = btf.type_section();
    let mut out = vec![at];
    for t in btf.types() {
        at += t.record_len();
        out.push(at);
    }
    out
}

/// Every prefix of `data` (strictly shorter than it) must be refused, in
/// bounded allocation.
fn btf_prefixes(what: &str, data: &[u8], parse: &dyn Fn(&[u8]) -> bool) {
    let mut t = Tally::default();
    let start = Instant::now();
    for n in 0..data.len() {
        let (ok, peak) = peak_of(|| parse(&data[..n]));
        assert!(!ok, "{what}: the {n}-byte prefix parsed");
        assert!(peak <= btf_bound(n), "{what}: prefix {n} allocated {peak}");
        t.saw(ok, peak);
    }
    eprintln!(
        "{what}: {} prefixes, max peak {} B, {:?}",
        t.runs,
        t.max_peak,
        start.elapsed()
    );
}

/// BTF from this kernel's sysfs.
fn vmlinux_bytes() -> Option<Vec<u8>> {
    let b = std::fs::read("/sys/kernel/btf/vmlinux").ok();
    if b.is_none() {
        skip("/sys/kernel/btf/vmlinux is absent");
    }
    b
}

#[test]
fn vmlinux_btf_prefixes_and_flips() {
    let _one = exclusive();
    let Some(data) = vmlinux_bytes() else { return };
    let clean = Btf::parse(&data).expect("vmlinux parses");
    let bounds = record_boundaries(&clean);
    // Every prefix: a truncated header or section is refused before any
    // type is read, so all 5 M lengths are cheap.
    btf_prefixes("vmlinux", &data, &|d| Btf::parse(d).is_ok());
    let (_, peak) = peak_of(|| Btf::parse(&data).map(|b| b.type_count()));
    assert!(
        peak <= btf_bound(data.len()),
        "vmlinux: parse allocated {peak}"
    );

    // Flips: a full parse each (no whole-BTF dumps: the record's own views,
    // and its neighbours', are exercised instead).
    let mut rng = Rng(0x5eed_0001);
    let mut t = Tally::default();
    let start = Instant::now();
    for i in 0..FLIPS {
        let bit = rng.below(data.len() * 8);
        let d = flipped(&data, bit);
        let (r, peak) = peak_of(|| Btf::parse(&d));
        assert!(
            peak <= btf_bound(d.len()),
            "vmlinux bit {bit}: parse allocated {peak}"
        );
        t.saw(r.is_ok(), peak);
        let Ok(btf) = r else { continue };
        // The type whose record holds the flipped byte, and its neighbours.
        let at = bounds.partition_point(|&b| b <= bit / 8);
        let id = u32::try_from(at).unwrap_or(0);
        let views = Views {
            dumps: false,
            lookups: i % SAMPLE_SLOW == 0,
        };
        exercise(
            &btf,
            (id.saturating_sub(2)..id.saturating_add(2)).map(TypeId),
            views,
        );
    }
    eprintln!(
        "vmlinux: {} flips, {} parsed, max peak {} B for {} B, {:?}",
        t.runs,
        t.ok,
        t.max_peak,
        data.len(),
        start.elapsed()
    );
}

#[test]
fn module_split_btf_prefixes_and_flips() {
    let _one = exclusive();
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let base = Btf::parse_any(&vb, None).expect("Debian vmlinux BTF");
    let ko = std::fs::read(dir.join("modules/nf_conntrack.ko")).expect("module");
    // The module's .BTF section: split BTF continuing the base's ids.
    let data = Btf::parse_any(&ko, Some(&base))
        .expect("module BTF")
        .data()
        .to_vec();
    let clean = Btf::parse_split(&data, &base).expect("split BTF parses");
    assert!(clean.start_id() > TypeId(1));
    btf_prefixes("nf_conntrack split BTF", &data, &|d| {
        Btf::parse_split(d, &base).is_ok()
    });
    let mut rng = Rng(0x5eed_0002);
    let mut t = Tally::default();
    let start = Instant::now();
    for i in 0..FLIPS {
        let bit = rng.below(data.len() * 8);
        let d = flipped(&data, bit);
        let (r, peak) = peak_of(|| Btf::parse_split(&d, &base));
        assert!(
            peak <= btf_bound(d.len()),
            "module bit {bit}: parse allocated {peak}"
        );
        t.saw(r.is_ok(), peak);
        if let Ok(btf) = r {
            assert_eq!(btf.start_id(), clean.start_id(), "bit {bit}");
            let slow = i % SAMPLE_SLOW == 0;
            if !slow {
                let mut raw = String::new();
                let _ = dump::raw::dump(&btf, &mut raw);
            }
            let views = Views {
                dumps: slow,
                lookups: slow,
            };
            exercise(&btf, btf.types().map(|t| t.id()), views);
        }
    }
    eprintln!(
        "nf_conntrack: {} flips, {} parsed, max peak {} B for {} B, {:?}",
        t.runs,
        t.ok,
        t.max_peak,
        data.len(),
        start.elapsed()
    );
}

/// Every `.o` under `dir`, recursively.
fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("fixture dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            objects(&p, out);
        } else if p.extension().is_some_and(|x| x == "o") {
            out.push(p);
        }
    }
}

/// Everything a load does with an object before its first system call,
/// with the same checks as the load_prep fuzz target.
fn pipeline(what: &str, obj: &Object<'_>, targets: &Targets<'_>) {
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    if let Ok(plan) = solve_with(obj, targets, CandidateSearch::Index) {
        let _ = apply(obj, &plan, &mut code);
    }
    for feat in [BtfFeatures::default(), BtfFeatures::NONE] {
        let Ok(blob) = kernel_btf(obj, &feat) else {
            continue;
        };
        let out = Btf::parse(&blob)
            .unwrap_or_else(|e| panic!("{what}: kernel_btf({feat:?}) output does not parse: {e}"));
        let local = obj.btf.as_ref().map_or(0, Btf::type_count);
        assert!(
            out.type_count() >= local,
            "{what}: kernel_btf({feat:?}) dropped types"
        );
    }
    for (i, f) in obj.functions.iter().enumerate() {
        if !f.is_program {
            continue;
        }
        let fds = |m: ember_core::id::MapIndex| i32::try_from(m.index()).ok().map(|x| x + 3);
        let Ok(l) = link_program(obj, &code, FuncIndex(i), &fds) else {
            continue;
        };
        assert_eq!(l.insns.len() % INSN_SIZE, 0, "{what}: partial instruction");
        assert_eq!(l.func_info.len() % FUNC_INFO_SIZE as usize, 0, "{what}");
        assert_eq!(l.line_info.len() % LINE_INFO_SIZE as usize, 0, "{what}");
    }
}

/// Allocation bound for the pipeline after parsing (CO-RE plans, patched
/// code, the rewritten BTF twice, linked programs): each is a copy or a
/// few words per instruction, relocation or type of the input, so a fixed
/// multiple of it; the target's name index is built before.
fn pipeline_bound(len: usize) -> usize {
    len * 32 + 128 * 1024
}

/// What one object run allocated at its peak.
#[derive(Debug, Default, Clone, Copy)]
struct Peaks {
    parse: usize,
    pipeline: usize,
}

/// Parses `data` as an object in bounded allocation and, when it parses,
/// runs the pipeline (bounded too) and the BTF views. Returns whether it
/// parsed.
fn one_object(what: &str, data: &[u8], targets: &Targets<'_>) -> (bool, Peaks) {
    let (r, parse) = peak_of(|| Object::parse(data, "sweep"));
    assert!(
        parse <= object_bound(data.len()),
        "{what}: parse allocated {parse}"
    );
    let mut peaks = Peaks { parse, pipeline: 0 };
    let Ok(obj) = r else { return (false, peaks) };
    assert!(
        obj.check_invariants(),
        "{what}: parsed object breaks its invariants"
    );
    let ((), pipe) = peak_of(|| pipeline(what, &obj, targets));
    assert!(
        pipe <= pipeline_bound(data.len()),
        "{what}: the pipeline allocated {pipe}"
    );
    peaks.pipeline = pipe;
    if let Some(btf) = &obj.btf {
        let views = Views {
            dumps: true,
            lookups: true,
        };
        exercise(btf, btf.types().map(|t| t.id()), views);
    }
    (true, peaks)
}

/// Objects up to this size get every prefix; larger ones a stride.
const ALL_PREFIXES: usize = 100 * 1024;

#[test]
fn every_fixture_object_prefixes_and_flips() {
    let _one = exclusive();
    let Some(vb) = vmlinux_bytes() else { return };
    let vmlinux = Btf::parse(&vb).expect("vmlinux parses");
    let _ = vmlinux.index();
    let targets = Targets::single(&vmlinux);
    let mut files = Vec::new();
    objects(&fixture(""), &mut files);
    files.sort();
    assert!(files.len() > 100, "fixtures found: {}", files.len());
    // EMBER_SWEEP_ONLY=<part of a path> replays one object's sweep.
    let only = std::env::var("EMBER_SWEEP_ONLY").unwrap_or_default();
    let (mut prefixes, mut flips) = (Tally::default(), Tally::default());
    // The largest pipeline peak, with its input's size.
    let mut pipe_max = (0, 0);
    let start = Instant::now();
    for f in &files {
        let data = std::fs::read(f).expect("read object");
        let name = f
            .strip_prefix(fixture(""))
            .unwrap_or(f)
            .display()
            .to_string();
        if !name.contains(&only) {
            continue;
        }
        // Each object's flips depend on its name only, so one replays alone.
        let mut rng = Rng(name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        }));
        let step = if data.len() <= ALL_PREFIXES { 1 } else { 61 };
        for n in (0..data.len()).step_by(step) {
            let (ok, peak) = one_object(&format!("{name}[..{n}]"), &data[..n], &targets);
            prefixes.saw(ok, peak.parse);
            pipe_max = pipe_max.max((peak.pipeline, n));
        }
        for _ in 0..FLIPS {
            let bit = rng.below(data.len() * 8);
            let d = flipped(&data, bit);
            let (ok, peak) = one_object(&format!("{name} bit {bit}"), &d, &targets);
            flips.saw(ok, peak.parse);
            pipe_max = pipe_max.max((peak.pipeline, d.len()));
        }
    }
    eprintln!(
        "{} objects: {} prefixes ({} parsed), {} flips ({} parsed), max parse peak {} B, \
         max pipeline peak {} B (for {} B), {:?}",
        files.len(),
        prefixes.runs,
        prefixes.ok,
        flips.runs,
        flips.ok,
        flips.max_peak.max(prefixes.max_peak),
        pipe_max.0,
        pipe_max.1,
        start.elapsed()
    );
}

/// Inputs that once failed a sweep or a fuzz target of the load
/// preparation (`fuzz/regressions/load_prep`), through the same pipeline.
#[test]
fn load_prep_regressions_replay() {
    let _one = exclusive();
    let Some(vb) = vmlinux_bytes() else { return };
    let vmlinux = Btf::parse(&vb).expect("vmlinux parses");
    // Built before, as in the sweep: it is the target's, not the input's.
    let _ = vmlinux.index();
    let targets = Targets::single(&vmlinux);
    let dir = ember_tests::root().join("fuzz/regressions/load_prep");
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("regressions") {
        let p = e.expect("entry").path();
        let data = std::fs::read(&p).expect("read");
        let _ = one_object(&p.display().to_string(), &data, &targets);
        n += 1;
    }
    assert!(n >= 2, "regressions found: {n}");
}
