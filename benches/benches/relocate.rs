//! Opening a realistic CO-RE object (about 100 relocations over two dozen
//! kernel types) and solving all of its relocations against vmlinux BTF,
//! target parse included: ember (one scan for all root types, or a cold or
//! warm name index) side by side with aya-obj and with libbpf's floor
//! (btf__new plus one btf__find_by_name_kind per root type).

use core::hint::black_box;
use std::ffi::CString;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ember::ember_core::btf::{Btf, Kind};
use ember::ember_core::object::Object;
use ember::ember_core::reloc::{CandidateSearch, Targets, apply, solve_with};
use ember_benches::{LibbpfBtf, steady_allocator};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn run_ember(obj_bytes: &[u8], target: &Btf<'_>, search: CandidateSearch) -> usize {
    let obj = Object::parse(obj_bytes, "core_bench").expect("object");
    let targets = Targets::single(target);
    let plan = solve_with(&obj, &targets, search).expect("solve");
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    apply(&obj, &plan, &mut code).expect("apply").len()
}

fn relocate(c: &mut Criterion) {
    // Both peers in one allocator state: see `steady_allocator`.
    assert!(steady_allocator(), "glibc refused the allocator settings");
    if !Path::new(VMLINUX).exists() {
        eprintln!("skipping: {VMLINUX} is absent");
        return;
    }
    let vmlinux = std::fs::read(VMLINUX).expect("vmlinux");
    let obj_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/core_bench.bpf-el.o");
    let obj_bytes = std::fs::read(&obj_path).expect("core_bench object");

    // Root types of the object, as libbpf's floor looks them up.
    let roots: Vec<(CString, u32)> = {
        let obj = Object::parse(&obj_bytes, "core_bench").expect("object");
        let btf = obj.btf.as_ref().expect("btf");
        let ext = obj.btf_ext.expect("ext");
        let mut r: Vec<(String, u32)> = ext
            .core_relos()
            .flat_map(|b| b.records().collect::<Vec<_>>())
            .filter_map(|rel| {
                let t = btf.get(rel.type_id)?;
                let kind = match t.kind() {
                    Kind::Struct => 4,
                    Kind::Union => 5,
                    Kind::Typedef => 8,
                    _ => return None,
                };
                Some((btf.name(&t).ok()?.to_owned(), kind))
            })
            .collect();
        r.sort();
        r.dedup();
        r.into_iter()
            .map(|(n, k)| (CString::new(n).expect("name"), k))
            .collect()
    };
    println!("object: {} root types", roots.len());

    let mut g = c.benchmark_group("relocate_vmlinux");
    g.bench_function("ember_scan_parse_included", |b| {
        b.iter(|| {
            let t = Btf::parse(black_box(&vmlinux)).expect("btf");
            run_ember(&obj_bytes, &t, CandidateSearch::Scan)
        })
    });
    g.bench_function("ember_index_cold_parse_included", |b| {
        b.iter(|| {
            let t = Btf::parse(black_box(&vmlinux)).expect("btf");
            run_ember(&obj_bytes, &t, CandidateSearch::Index)
        })
    });
    let warm = Btf::parse(&vmlinux).expect("btf");
    warm.index();
    g.bench_function("ember_index_warm_btf_shared", |b| {
        b.iter(|| run_ember(black_box(&obj_bytes), &warm, CandidateSearch::Index))
    });
    g.bench_function("aya_obj_parse_relocate", |b| {
        b.iter(|| {
            let mut obj = aya_obj::Object::parse(black_box(&obj_bytes)).expect("aya object");
            let target = aya_obj::btf::Btf::parse(&vmlinux, Default::default()).expect("aya btf");
            obj.relocate_btf(&target).expect("aya relocate");
        })
    });
    g.bench_function("ember_scan_read_parse_included", |b| {
        b.iter(|| {
            let f = ember::FileBytes::open(Path::new(VMLINUX)).expect("open");
            let t = Btf::parse(&f).expect("btf");
            run_ember(&obj_bytes, &t, CandidateSearch::Scan)
        })
    });
    g.bench_function("libbpf_floor_parse_plus_find", |b| {
        b.iter(|| {
            let t = LibbpfBtf::parse(VMLINUX).expect("libbpf");
            roots
                .iter()
                .map(|(n, k)| t.find_by_name_kind(n, *k))
                .sum::<i32>()
        })
    });
    g.bench_function("libbpf_floor_new_plus_find", |b| {
        b.iter(|| {
            let t = LibbpfBtf::from_bytes(black_box(&vmlinux)).expect("libbpf");
            roots
                .iter()
                .map(|(n, k)| t.find_by_name_kind(n, *k))
                .sum::<i32>()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(core::time::Duration::from_secs(4));
    targets = relocate
}
criterion_main!(benches);
