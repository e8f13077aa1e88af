//! End-to-end open + load, ember side by side with libbpf in the same
//! run, for two objects: `core_only.bpf-el.o` (CO-RE, a global-data map,
//! no ksyms) and `load.bpf-el.o` (kfuncs, an untyped ksym, kconfig, ring
//! buffer, perf array, hash, global data, two programs); each split into
//! what is ember's and what is the kernel's:
//!
//! - `ember_load`: `EbpfLoader::load`, dropped again (every fd closed).
//! - `libbpf_load`: `bpf_object__open_mem` + `__load` + `__close`.
//! - `ember_prepare`: ember's steps that make no `bpf(2)` call: parse,
//!   find and parse kernel BTF, CO-RE, untyped ksyms (through
//!   `bpf_kallsyms_lookup_name` as the loader does: that one makes bpf(2)
//!   calls), the kernel BTF blob and linking the programs. Not included:
//!   the `.kconfig` value (private to the loader; a gunzip of
//!   /proc/config.gz) and the feature probes (once per process).
//! - `kernel_floor`: only the `bpf(2)` calls a load needs, of artifacts
//!   prepared once: BTF_LOAD, every MAP_CREATE (with BTF), the initial
//!   values and freezes of the internal maps, the PROG_LOADs.
//!
//! So `ember_load − kernel_floor` is what is not the kernel loading the
//! object. Before criterion's runs, one interleaved pass per object prints
//! medians, the paired ember/libbpf ratios and `ember_prepare` split into
//! its stages (README's "where the time goes").
//!
//! Allocator state: [`steady_allocator`] first, so neither peer
//! page-faults in its heap after the first iteration; these are
//! warm-process ratios. benches/whole-process.sh runs each tool in a
//! process of its own.

use core::hint::black_box;
use core::time::Duration;
use std::ffi::CString;
use std::os::fd::AsRawFd as _;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use ember::btf_source::module_btfs;
use ember::ember_core::btf::{Btf, essential_name};
use ember::ember_core::insn::{INSN_SIZE, Insn, LD_IMM64, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use ember::ember_core::ksym;
use ember::ember_core::load::{
    BtfFeatures, FUNC_INFO_SIZE, LINE_INFO_SIZE, Linked, kernel_btf, link_program,
};
use ember::ember_core::object::{ExternKind, FuncIndex, MapIndex, Object, object_name};
use ember::ember_core::reloc::{Module, Targets};
use ember::ember_core::{Endian, object::maps::BPF_F_RDONLY_PROG};
use ember::ember_sys::{
    AsFd as _, MapCreate, MapFd, MapInfo, OwnedFd, ProgBtf, ProgLoad, btf_load, map_create,
    map_info, prog_load,
};
use ember::explain::explain;
use ember::ksym_lookup::{self, Source};
use ember::{Ebpf, EbpfLoader, FileBytes};
use ember_benches::{LibbpfObject, libbpf_silence, open_fds, steady_allocator, thread_cpu};

/// An object the bench loads.
#[derive(Clone, Copy)]
struct Case {
    file: &'static str,
    /// A map pinned by name, which libbpf would pin under /sys/fs/bpf
    /// (ember pins only with a pin_dir).
    pinned_map: Option<&'static core::ffi::CStr>,
}

const KSYMS: Case = Case {
    file: "load.bpf-el.o",
    pinned_map: Some(c"runs"),
};
const CORE_ONLY: Case = Case {
    file: "core_only.bpf-el.o",
    pinned_map: None,
};
/// Map references are linked to `PLACEHOLDER + map index` and patched to
/// real fds per iteration; no process has an fd this high.
const PLACEHOLDER: i32 = 0x4000_0000;

/// One full ember load; the `Ebpf` is dropped by the caller.
fn ember_load(case: Case, bytes: &[u8]) -> Ebpf {
    EbpfLoader::new()
        .load(bytes, case.file)
        .expect("ember load")
}

/// One full libbpf load, closed again before returning.
fn libbpf_load(case: Case, bytes: &[u8]) {
    let mut obj = LibbpfObject::open_mem(bytes, c"bench").expect("libbpf open");
    if let Some(m) = case.pinned_map {
        assert!(obj.no_pin(m), "libbpf: no map {m:?}");
    }
    obj.load().expect("libbpf load");
}

/// What ember's preparation produces: the kernel BTF blob and each
/// program linked with placeholder map fds.
struct Prepared {
    blob: Vec<u8>,
    programs: Vec<(String, Linked)>,
}

/// The stages of [`ember_prepare`], in order, as `lap` is told them.
const STAGES: [&str; 8] = [
    "parse object",
    "map + parse vmlinux BTF",
    "module BTFs",
    "CO-RE (explain)",
    "ksym addresses (helper)",
    "ksyms resolve + patch",
    "kernel BTF blob",
    "link programs",
];

/// Every step of `EbpfLoader::load` that makes no `bpf(2)` call, in the
/// loader's order (std-loader/src/load/mod.rs) and through its public
/// pieces. `lap(i)` is called as stage `i` of [`STAGES`] ends.
fn ember_prepare(
    case: Case,
    bytes: &[u8],
    feat: &BtfFeatures,
    lap: &mut dyn FnMut(usize),
) -> Prepared {
    let obj = Object::parse(bytes, object_name(case.file)).expect("object");
    lap(0);
    // As the loader: sysfs mapped and validated once.
    let vmlinux = FileBytes::open(Path::new("/sys/kernel/btf/vmlinux")).expect("vmlinux");
    let main = Btf::parse_any(&vmlinux, None).expect("vmlinux BTF");
    lap(1);
    let mods = module_btfs(None).0;
    let parsed: Vec<(&str, Btf<'_>)> = mods
        .iter()
        .filter_map(|m| Some((m.name.as_str(), m.btf(&main).ok()?)))
        .collect();
    let modules: Vec<Module<'_>> = parsed
        .iter()
        .map(|(name, btf)| Module { name, btf })
        .collect();
    let targets = Targets {
        main: &main,
        modules: &modules,
        is_override: false,
    };
    lap(2);
    let mut code = explain(&obj, &targets, "vmlinux").expect("CO-RE").code;
    lap(3);
    let untyped: Vec<&str> = obj
        .externs
        .iter()
        .filter(|x| x.kind == ExternKind::UntypedVar)
        .map(|x| essential_name(x.name))
        .collect();
    let kallsyms = if untyped.is_empty() {
        ember::kallsyms::Kallsyms::default()
    } else {
        ksym_lookup::resolve(&untyped, Source::Auto)
            .expect("read kallsyms")
            .0
            .expect("kallsyms")
    };
    lap(4);
    let resolved =
        ksym::resolve(&obj, &targets, &|n| kallsyms.get(n).map(|k| k.addr)).expect("ksyms");
    ksym::patch(&obj, &resolved, &mut code, &|_| 0, &|_| 0).expect("ksym patch");
    lap(5);
    let blob = kernel_btf(&obj, feat).expect("kernel BTF blob");
    lap(6);
    let programs = obj
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_program)
        .map(|(i, f)| {
            let m = |m: MapIndex| Some(PLACEHOLDER + m.index() as i32);
            let linked = link_program(&obj, &code, FuncIndex(i), &m).expect("link");
            (f.name.to_owned(), linked)
        })
        .collect();
    lap(7);
    Prepared { blob, programs }
}

/// One map as ember created it, read back from the kernel.
struct FloorMap {
    info: MapInfo,
    name: String,
    /// Initial value of an internal map (global data, `.kconfig`).
    init: Option<Vec<u8>>,
}

/// One program as ember loaded it.
struct FloorProg {
    name: String,
    prog_type: u32,
    expected_attach_type: u32,
    attach_btf_id: u32,
    linked: Linked,
}

/// The artifacts of one ember load, for replaying only its syscalls.
struct Floor {
    blob: Vec<u8>,
    maps: Vec<FloorMap>,
    progs: Vec<FloorProg>,
    license: CString,
}

impl Floor {
    /// Takes maps (attributes and initial values, as the kernel reports
    /// them) and program types from a loaded `ebpf`, and BTF and
    /// instructions from `prep`.
    fn new(case: Case, bytes: &[u8], ebpf: &Ebpf, prep: Prepared) -> Floor {
        let obj = Object::parse(bytes, object_name(case.file)).expect("object");
        assert_eq!(obj.maps.len(), ebpf.maps().len(), "every map created");
        let maps = ebpf
            .maps()
            .iter()
            .map(|m| {
                let info = map_info(m.fd()).expect("map info");
                // Internal maps are single-slot arrays named `<obj>.<sec>`.
                let init = m
                    .name()
                    .contains('.')
                    .then(|| m.lookup(&0u32.to_ne_bytes()).expect("lookup"))
                    .flatten();
                FloorMap {
                    info,
                    name: info.name().to_owned(),
                    init,
                }
            })
            .collect();
        let progs = prep
            .programs
            .into_iter()
            .map(|(name, linked)| {
                let p = ebpf.program(&name).expect("loaded program");
                assert_eq!(p.insn_count(), linked.insns.len() / INSN_SIZE);
                FloorProg {
                    prog_type: p.prog_type().0,
                    expected_attach_type: p.attach_type().map_or(0, |a| a.0),
                    attach_btf_id: p.attach_btf_id(),
                    name,
                    linked,
                }
            })
            .collect();
        Floor {
            blob: prep.blob,
            maps,
            progs,
            license: CString::new(obj.license.unwrap_or("")).expect("license"),
        }
    }

    /// BTF_LOAD, MAP_CREATE (+ UPDATE_ELEM, FREEZE), PROG_LOAD: the
    /// kernel's share of a load. Returns every fd, for the caller to drop.
    fn load(&self) -> (OwnedFd, Vec<MapFd>, Vec<OwnedFd>) {
        let btf = btf_load(&self.blob, None).expect("BTF_LOAD");
        let maps: Vec<MapFd> = self
            .maps
            .iter()
            .map(|m| {
                let i = &m.info;
                let fd = map_create(&MapCreate {
                    map_type: i.map_type,
                    key_size: i.key_size,
                    value_size: i.value_size,
                    max_entries: i.max_entries,
                    map_flags: i.map_flags,
                    name: &m.name,
                    inner_map_fd: None,
                    btf: (i.btf_id.0 != 0)
                        .then(|| (btf.as_fd(), i.btf_key_type_id, i.btf_value_type_id)),
                    map_extra: i.map_extra,
                    numa_node: 0,
                    btf_vmlinux_value_type_id: 0,
                })
                .expect("MAP_CREATE");
                // MapFd::new costs one GET_INFO, as in ember's loader.
                let fd = MapFd::new(fd, i.key_size, i.value_size as usize).expect("map fd");
                if let Some(v) = &m.init {
                    fd.update(&0u32.to_ne_bytes(), v, 0).expect("UPDATE_ELEM");
                    if i.map_flags & BPF_F_RDONLY_PROG != 0 {
                        fd.freeze().expect("FREEZE");
                    }
                }
                fd
            })
            .collect();
        let raw: Vec<i32> = maps.iter().map(|m| m.fd().as_raw_fd()).collect();
        let progs = self
            .progs
            .iter()
            .map(|p| {
                let insns = with_fds(&p.linked.insns, &raw);
                prog_load(&mut ProgLoad {
                    prog_type: p.prog_type,
                    expected_attach_type: p.expected_attach_type,
                    insns: &insns,
                    license: &self.license,
                    name: &p.name,
                    log: None,
                    log_level: 0,
                    prog_flags: 0,
                    btf: Some(ProgBtf {
                        fd: btf.as_fd(),
                        func_info: &p.linked.func_info,
                        func_info_rec_size: FUNC_INFO_SIZE,
                        line_info: &p.linked.line_info,
                        line_info_rec_size: LINE_INFO_SIZE,
                    }),
                    attach_btf_id: p.attach_btf_id,
                    attach_btf_obj_fd: None,
                    kern_version: 0,
                    fd_array: &[],
                    ifindex: 0,
                })
                .expect("PROG_LOAD")
            })
            .collect();
        (btf, maps, progs)
    }
}

/// `insns` with each placeholder map reference replaced by the map's fd.
fn with_fds(insns: &[u8], fds: &[i32]) -> Vec<u8> {
    let mut out = insns.to_vec();
    for w in out.chunks_exact_mut(INSN_SIZE) {
        let mut insn = Insn::decode(w.try_into().expect("8 bytes"), Endian::NATIVE);
        let m = usize::try_from(insn.imm.wrapping_sub(PLACEHOLDER)).ok();
        let is_map = insn.code == LD_IMM64 && matches!(insn.src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE);
        if let (true, Some(&fd)) = (is_map, m.and_then(|m| fds.get(m))) {
            insn.imm = fd;
            w.copy_from_slice(&insn.encode(Endian::NATIVE));
        }
    }
    out
}

/// Medians of `N` interleaved runs of each case, so one pass gives ratios
/// free of drift between criterion's runs, with `ember_prepare` split into
/// its stages, and the paired libbpf/ember ratios (run `i` of each), in
/// wall time and in this thread's CPU time (which a busy machine does not
/// inflate with waiting).
fn summary(case: Case, bytes: &[u8], feat: &BtfFeatures, floor: &Floor) {
    const N: usize = 31;
    // (wall, cpu) per run of each of the four cases.
    let mut t = [const { Vec::new() }; 4];
    let mut stages = [const { Vec::new() }; STAGES.len()];
    let timed = |f: &mut dyn FnMut()| {
        let (w, c) = (Instant::now(), thread_cpu());
        f();
        (w.elapsed(), thread_cpu() - c)
    };
    for _ in 0..N {
        t[0].push(timed(&mut || drop(ember_load(case, bytes))));
        t[1].push(timed(&mut || libbpf_load(case, bytes)));
        t[2].push(timed(&mut || {
            let mut last = thread_cpu();
            drop(ember_prepare(case, bytes, feat, &mut |i| {
                let now = thread_cpu();
                stages[i].push(now - last);
                last = now;
            }));
        }));
        t[3].push(timed(&mut || drop(floor.load())));
    }
    let paired = |pick: fn(&(Duration, Duration)) -> Duration| {
        let mut r: Vec<f64> = t[1]
            .iter()
            .zip(&t[0])
            .map(|(l, e)| pick(l).as_secs_f64() / pick(e).as_secs_f64())
            .collect();
        r.sort_by(f64::total_cmp);
        format!(
            "median {:.2}x, IQR {:.2}-{:.2}, range {:.2}-{:.2}",
            r[N / 2],
            r[N / 4],
            r[3 * N / 4],
            r[0],
            r[N - 1]
        )
    };
    println!("{}: {N} interleaved runs", case.file);
    println!("  libbpf/ember paired, wall: {}", paired(|x| x.0));
    println!("  libbpf/ember paired, CPU:  {}", paired(|x| x.1));
    let ms = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let cpu = |v: &Vec<(Duration, Duration)>| ms(v.iter().map(|x| x.1).collect());
    let [a, b, c, d] = [&t[0], &t[1], &t[2], &t[3]].map(cpu);
    let pct = |x: f64| 100.0 * x / a;
    println!("  median CPU ms (% of ember_load):");
    println!("  ember_load                   {a:8.3}");
    println!("  libbpf_load                  {b:8.3}");
    println!("  ember_prepare                {c:8.3}   {:3.0}%", pct(c));
    for (name, v) in STAGES.iter().zip(stages) {
        let x = ms(v);
        println!("    {name:<26} {x:8.3}   {:3.0}%", pct(x));
    }
    println!("  kernel_floor                 {d:8.3}   {:3.0}%", pct(d));
    println!(
        "  ember_load - kernel_floor    {:8.3}   {:3.0}% is not the kernel loading the object",
        a - d,
        pct(a - d)
    );
}

fn load(c: &mut Criterion) {
    assert!(steady_allocator(), "glibc refused the allocator settings");
    for case in [CORE_ONLY, KSYMS] {
        load_case(c, case);
    }
}

fn load_case(c: &mut Criterion, case: Case) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(case.file);
    let bytes = std::fs::read(&path).expect("fixture");
    // Both loaders must succeed before anything is timed; a kernel that
    // cannot load the object (no root, no BTF) skips the group.
    let first = match EbpfLoader::new().load(&bytes, case.file) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skipping: ember cannot load {} here: {e}", case.file);
            return;
        }
    };
    libbpf_silence();
    libbpf_load(case, &bytes);
    let feat = ember::features::probe().btf_kinds;
    let prep = ember_prepare(case, &bytes, &feat, &mut |_| {});
    let floor = Floor::new(case, &bytes, &first, prep);
    drop(first);
    drop(floor.load());

    let fds = open_fds();
    summary(case, &bytes, &feat, &floor);

    let mut g = c.benchmark_group(format!("load/{}", case.file));
    g.bench_function("ember_load", |b| {
        b.iter(|| ember_load(case, black_box(&bytes)))
    });
    g.bench_function("libbpf_load", |b| {
        b.iter(|| libbpf_load(case, black_box(&bytes)))
    });
    g.bench_function("ember_prepare", |b| {
        b.iter(|| ember_prepare(case, black_box(&bytes), &feat, &mut |_| {}))
    });
    g.bench_function("kernel_floor", |b| b.iter(|| floor.load()));
    g.finish();
    assert_eq!(open_fds(), fds, "an fd leaked across iterations");
}

/// One vmlinux parse for many loads (`EbpfLoader::kernel_btf`) against
/// each load finding and parsing it, on a CO-RE object with no ksyms (so
/// kallsyms does not dominate): what sharing the parse saves per load.
fn shared_btf(c: &mut Criterion) {
    assert!(steady_allocator(), "glibc refused the allocator settings");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/core_only.bpf-el.o");
    let bytes = std::fs::read(&path).expect("core_only.bpf-el.o");
    if let Err(e) = EbpfLoader::new().load(&bytes, "core_only.bpf-el.o") {
        eprintln!("skipping: ember cannot load core_only.bpf-el.o here: {e}");
        return;
    }
    let vmlinux = ember::FileBytes::open(Path::new("/sys/kernel/btf/vmlinux")).expect("vmlinux");
    let btf = ember::ember_core::btf::Btf::parse(&vmlinux).expect("parse vmlinux");
    let fds = open_fds();
    let mut g = c.benchmark_group("shared_btf");
    g.bench_function("ember_load_own_parse", |b| {
        b.iter(|| {
            EbpfLoader::new()
                .load(black_box(&bytes), "core_only.bpf-el.o")
                .expect("load")
        })
    });
    let shared = EbpfLoader::new().kernel_btf(&btf);
    g.bench_function("ember_load_shared_parse", |b| {
        b.iter(|| {
            shared
                .load(black_box(&bytes), "core_only.bpf-el.o")
                .expect("load")
        })
    });
    g.finish();
    assert_eq!(open_fds(), fds, "an fd leaked across iterations");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = load, shared_btf
}
criterion_main!(benches);
