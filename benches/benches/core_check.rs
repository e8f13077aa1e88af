//! `ember core check` throughput, in kernel BTFs per second: one BTF
//! (parse included) checked for three objects (about 140 CO-RE
//! relocations, a tp_btf attach target, two kfuncs), then eight BTFs on
//! one thread and on every core (the CLI's `par_map`). Peer: libbpf's
//! floor for the same BTF — `btf__new` plus one `btf__find_by_name_kind`
//! per root type, less than libbpf does to relocate against a BTF.

use core::hint::black_box;
use std::ffi::CString;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember::btf_tree::{default_jobs, par_map};
use ember::check::{CheckObject, check_btf};
use ember::ember_core::btf::{Btf, Kind};
use ember::ember_core::object::Object;
use ember_benches::LibbpfBtf;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";
const OBJECTS: [&str; 3] = ["kernel_ids", "core_kernel", "core_bench"];

fn one(vmlinux: &[u8], objs: &[CheckObject<'_, '_>]) -> usize {
    let btf = Btf::parse(black_box(vmlinux)).expect("btf");
    check_btf(objs, &btf, "vmlinux").len()
}

/// Root types of the objects' CO-RE relocations, as libbpf looks them up.
fn roots(objs: &[Object<'_>]) -> Vec<(CString, u32)> {
    let mut r = Vec::new();
    for obj in objs {
        let (Some(btf), Some(ext)) = (obj.btf.as_ref(), obj.btf_ext) else {
            continue;
        };
        for rel in ext
            .core_relos()
            .flat_map(|b| b.records().collect::<Vec<_>>())
        {
            let Some(t) = btf.get(rel.type_id) else {
                continue;
            };
            let kind = match t.kind() {
                Kind::Struct => 4,
                Kind::Union => 5,
                Kind::Enum => 6,
                Kind::Typedef => 8,
                _ => continue,
            };
            if let Ok(n) = btf.name(&t) {
                r.push((n.to_owned(), kind));
            }
        }
    }
    r.sort();
    r.dedup();
    r.into_iter()
        .map(|(n, k)| (CString::new(n).expect("name"), k))
        .collect()
}

fn core_check(c: &mut Criterion) {
    if !Path::new(VMLINUX).exists() {
        eprintln!("skipping: {VMLINUX} is absent");
        return;
    }
    let vmlinux = std::fs::read(VMLINUX).expect("vmlinux");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
    let bytes: Vec<Vec<u8>> = OBJECTS
        .iter()
        .map(|n| std::fs::read(fixtures.join(format!("{n}.bpf-el.o"))).expect("object"))
        .collect();
    let objs: Vec<Object<'_>> = bytes
        .iter()
        .zip(OBJECTS)
        .map(|(b, n)| Object::parse(b, n).expect("object"))
        .collect();
    let checked: Vec<CheckObject<'_, '_>> = objs
        .iter()
        .zip(OBJECTS)
        .map(|(o, n)| CheckObject::new(n, o))
        .collect();
    let roots = roots(&objs);
    println!("{} root types; {} threads", roots.len(), default_jobs());

    let mut g = c.benchmark_group("core_check");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ember_one_btf_parse_included", |b| {
        b.iter(|| one(&vmlinux, &checked))
    });
    // check_btf indexes a BTF when several objects share it; this row
    // shows what one object at a time (a scan per solve) would cost.
    g.bench_function("ember_one_btf_objects_one_by_one", |b| {
        b.iter(|| {
            let btf = Btf::parse(black_box(&vmlinux)).expect("btf");
            checked
                .chunks(1)
                .map(|c| check_btf(c, &btf, "vmlinux").len())
                .sum::<usize>()
        })
    });
    g.bench_function("ember_one_btf_parse_only", |b| {
        b.iter(|| Btf::parse(black_box(&vmlinux)).expect("btf").type_count())
    });
    g.bench_function("libbpf_floor_one_btf_new_plus_find", |b| {
        b.iter(|| {
            let t = LibbpfBtf::from_bytes(black_box(&vmlinux)).expect("libbpf");
            roots
                .iter()
                .map(|(n, k)| t.find_by_name_kind(n, *k))
                .sum::<i32>()
        })
    });
    const N: usize = 8;
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("ember_8_btfs_1_thread", |b| {
        b.iter(|| par_map(N, 1, |_| one(&vmlinux, &checked)))
    });
    g.bench_function("ember_8_btfs_all_threads", |b| {
        b.iter(|| par_map(N, default_jobs(), |_| one(&vmlinux, &checked)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(core::time::Duration::from_secs(4));
    targets = core_check
}
criterion_main!(benches);
