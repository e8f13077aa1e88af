//! Opening vmlinux BTF and looking names up: ember vs libbpf vs a bare walk,
//! in the same run so only ratios matter.

use core::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ember::FileBytes;
use ember::ember_core::btf::{Btf, Kind, NameIndex, sort_by_name};
use ember_benches::{
    BTF_KIND_STRUCT, FloorIndex, LibbpfBtf, bare_walk, malloc_in_use, steady_allocator,
    thread_cpu_ns,
};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn open(c: &mut Criterion) {
    // Both peers in one allocator state: see `steady_allocator`.
    assert!(steady_allocator(), "glibc refused the allocator settings");
    if !Path::new(VMLINUX).exists() {
        eprintln!("skipping: {VMLINUX} is absent");
        return;
    }
    let path = Path::new(VMLINUX);
    let bytes = FileBytes::read(path).expect("read vmlinux BTF");
    // The paired ratios first: what ran before in the process (and left in
    // malloc's state: glibc raises its mmap threshold after freeing a large
    // block) changes how the validation's tables are allocated.
    let mmap_parse = || {
        let f = FileBytes::map_sysfs(path).expect("mmap");
        Btf::parse(&f).expect("parse").type_count() as usize
    };
    let mmap_walk = || bare_walk(&FileBytes::map_sysfs(path).expect("mmap")).len();
    paired(
        "open+validate via mmap / bare walk via mmap",
        mmap_parse,
        mmap_walk,
    );
    paired(
        "validate from bytes / bare walk from bytes",
        || Btf::parse(black_box(&bytes)).expect("parse").type_count() as usize,
        || bare_walk(black_box(&bytes)).len(),
    );
    report_memory(&bytes);
    let mut g = c.benchmark_group("open_vmlinux");
    g.bench_function("ember_parse_bytes", |b| {
        b.iter(|| Btf::parse(black_box(&bytes)).expect("parse").type_count())
    });
    g.bench_function("ember_read_parse", |b| {
        b.iter(|| {
            let f = FileBytes::read(path).expect("read");
            Btf::parse(&f).expect("parse").type_count()
        })
    });
    g.bench_function("ember_mmap_parse", |b| {
        b.iter(|| {
            let f = FileBytes::map_sysfs(path).expect("mmap");
            Btf::parse(&f).expect("parse").type_count()
        })
    });
    g.bench_function("bare_walk_mmap", |b| {
        b.iter(|| {
            let f = FileBytes::map_sysfs(path).expect("mmap");
            bare_walk(&f).len()
        })
    });
    g.bench_function("libbpf_btf__parse", |b| {
        b.iter(|| LibbpfBtf::parse(VMLINUX).expect("libbpf parse").type_cnt())
    });
    g.bench_function("libbpf_btf__new_bytes", |b| {
        b.iter(|| {
            LibbpfBtf::from_bytes(black_box(&bytes))
                .expect("libbpf new")
                .type_cnt()
        })
    });
    g.finish();

    let btf = Btf::parse(&bytes).expect("parse");
    // Both sides allocate their table once per build from the same malloc
    // and free it at the end of the iteration: equal allocator state.
    let floor = || {
        FloorIndex::build(btf.data(), btf.record_offsets(), 1, btf.strings())
            .expect("C index")
            .len()
    };
    assert_eq!(floor(), NameIndex::build(&btf).len(), "same work");
    paired(
        "name index: ember / C floor",
        || NameIndex::build(&btf).len(),
        floor,
    );
    let mut g = c.benchmark_group("name_index");
    g.bench_function("ember_build_index", |b| {
        b.iter(|| NameIndex::build(&btf).len())
    });
    g.bench_function("c_floor_build_index", |b| b.iter(floor));
    g.finish();

    // A load's handful of names: one targeted pass vs building the index.
    let funcs: Vec<String> = btf
        .types()
        .filter(|t| t.kind() == Kind::Func)
        .map(|t| btf.str_at(t.name_off()).expect("name").to_owned())
        .collect();
    let eight: Vec<(&str, Kind)> = (0..8)
        .map(|i| (funcs[(i + 1) * (funcs.len() - 1) / 8].as_str(), Kind::Func))
        .collect();
    paired(
        "8 names: one targeted pass / index build + lookups",
        || btf.find_many(&eight).expect("find_many").len(),
        || {
            let ix = NameIndex::build(&btf);
            eight
                .iter()
                .filter(|(n, k)| ix.find(&btf, n, *k).next().is_some())
                .count()
        },
    );
    let mut g = c.benchmark_group("targeted");
    for n in [1usize, 8, 64] {
        // Spread over the file, so the pass cannot stop early.
        let names: Vec<(&str, Kind)> = (0..n)
            .map(|i| (funcs[(i + 1) * (funcs.len() - 1) / n].as_str(), Kind::Func))
            .collect();
        g.bench_function(format!("find_many_{n}"), |b| {
            b.iter(|| btf.find_many(black_box(&names)).expect("find_many").len())
        });
        g.bench_function(format!("index_then_lookups_{n}"), |b| {
            b.iter(|| {
                let ix = NameIndex::build(&btf);
                names
                    .iter()
                    .filter(|(n, k)| ix.find(&btf, n, *k).next().is_some())
                    .count()
            })
        });
    }
    g.finish();

    // A late type: the last named struct in the file.
    let late = btf
        .types()
        .filter(|t| t.kind() == Kind::Struct && t.name_off().0 != 0)
        .last()
        .map(|t| btf.str_at(t.name_off()).expect("name").to_owned())
        .expect("a named struct");
    let late_c = std::ffi::CString::new(late.clone()).expect("cstr");
    let lb = LibbpfBtf::parse(VMLINUX).expect("libbpf parse");
    btf.index();
    let mut g = c.benchmark_group("lookup");
    g.bench_function("ember_task_struct", |b| {
        b.iter(|| btf.find_by_name_kind(black_box("task_struct"), Kind::Struct))
    });
    g.bench_function("libbpf_task_struct", |b| {
        b.iter(|| lb.find_by_name_kind(black_box(c"task_struct"), BTF_KIND_STRUCT))
    });
    // The same vmlinux sorted by name, as a sorting resolve_btfids lays it
    // out: binary search, no index.
    let sorted_bytes = sort_by_name(&btf).expect("sort");
    let sorted = Btf::parse(&sorted_bytes).expect("parse sorted");
    assert!(sorted.is_sorted_by_name());
    g.bench_function("ember_sorted_task_struct", |b| {
        b.iter(|| sorted.find_by_name_kind(black_box("task_struct"), Kind::Struct))
    });
    g.bench_function("ember_late_struct", |b| {
        b.iter(|| btf.find_by_name_kind(black_box(&late), Kind::Struct))
    });
    g.bench_function("libbpf_late_struct", |b| {
        b.iter(|| lb.find_by_name_kind(black_box(&late_c), BTF_KIND_STRUCT))
    });
    g.finish();
}

/// Runs `a` and `b` alternately, 301 rounds after 20 of warm-up, and
/// prints the median and quartiles of the per-round ratio of thread CPU
/// time a/b: both sides see the same machine state, and time other
/// processes hold the CPU (a shared machine) is not counted.
fn paired(what: &str, a: impl Fn() -> usize, b: impl Fn() -> usize) {
    let mut ratios = Vec::with_capacity(301);
    for round in 0..321 {
        let t0 = thread_cpu_ns();
        black_box(a());
        let t1 = thread_cpu_ns();
        black_box(b());
        let t2 = thread_cpu_ns();
        if round >= 20 {
            ratios.push((t1 - t0) as f64 / (t2 - t1).max(1) as f64);
        }
    }
    ratios.sort_by(f64::total_cmp);
    let q = |f: f64| ratios[((ratios.len() - 1) as f64 * f) as usize];
    println!(
        "paired {what}: median {:.2}x (quartiles {:.2}x..{:.2}x, {} rounds)",
        q(0.5),
        q(0.25),
        q(0.75),
        ratios.len()
    );
}

/// Heap held after opening vmlinux BTF, beyond the file's bytes, measured
/// the same way (malloc in use) for both.
fn report_memory(bytes: &[u8]) {
    let before = malloc_in_use();
    let btf = Btf::parse(bytes).expect("parse");
    let parsed = malloc_in_use() - before;
    btf.index();
    let indexed = malloc_in_use() - before;
    drop(btf);
    let before = malloc_in_use();
    let lb = LibbpfBtf::from_bytes(bytes).expect("libbpf");
    let libbpf = malloc_in_use() - before;
    drop(lb);
    println!(
        "memory: ember {} KiB after open, {} KiB with name index; libbpf btf__new {} KiB (file {} KiB)",
        parsed / 1024,
        indexed / 1024,
        libbpf / 1024,
        bytes.len() / 1024
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(core::time::Duration::from_secs(3));
    targets = open
}
criterion_main!(benches);
