//! Opening vmlinux BTF and looking names up: ember vs libbpf vs a bare walk,
//! in the same run so only ratios matter.

use core::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ember::FileBytes;
use ember::ember_core::btf::{Btf, Kind, NameIndex};
use ember_benches::{BTF_KIND_STRUCT, LibbpfBtf, bare_walk, malloc_in_use, steady_allocator};

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
    let mut g = c.benchmark_group("name_index");
    g.bench_function("ember_build_index", |b| {
        b.iter(|| NameIndex::build(&btf).len())
    });
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
    g.bench_function("ember_late_struct", |b| {
        b.iter(|| btf.find_by_name_kind(black_box(&late), Kind::Struct))
    });
    g.bench_function("libbpf_late_struct", |b| {
        b.iter(|| lb.find_by_name_kind(black_box(&late_c), BTF_KIND_STRUCT))
    });
    g.finish();
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
