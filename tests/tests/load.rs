//! The loader on this kernel, as root: every fixture against libbpf, a
//! full round trip through load.bpf.c (kfuncs, ksyms, kconfig, globals,
//! ring and perf buffers, maps), every map type of maps.bpf.c, pinning,
//! verifier rejections with their logs and poisoned relocations, the
//! "no kernel BTF" case in a private mount namespace, an external BTF as a
//! CO-RE target only (against libbpf's `btf_custom_path`), sanitized BTF,
//! and no fd left open after success or failure.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use ember::ember_core::btf::{Btf, Kind};
use ember::ember_core::load::{BtfFeatures, kernel_btf};
use ember::ember_core::object::{MapType, Object};
use ember::ember_sys::{self, Errno, TestRun, get_next_id, prog_info, prog_test_run};
use ember::maps::{
    Array, BloomFilter, HashMap, LpmKey, LpmTrie, MapOfMaps, PerCpuArray, PerCpuHashMap, ProgArray,
    Queue, Stack,
};
use ember::{EbpfLoader, LoadError};
use ember_tests::{
    bpffs_dir, build_oracle, ember_bin, fixture, kernel_ready, open_fds, root, serial, skip, tool,
};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ember-load-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

fn objects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf-el.o"))
        // libbpf 1.1 (Debian 12's) predates `.struct_ops.link` and loads
        // struct_ops programs no map uses (which the kernel refuses);
        // struct_ops_map.bpf.c is the struct_ops object both load.
        .filter(|p| !p.ends_with("struct_ops.bpf-el.o"))
        .collect();
    v.sort();
    v
}

/// (programs name→insn count, maps name→(type, key, value, max_entries))
type Created = (Vec<(String, usize)>, Vec<(String, String, u32, u32, u32)>);

fn parse_oracle(out: &str) -> Created {
    let mut progs = vec![];
    let mut maps = vec![];
    for l in out.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        match f.as_slice() {
            ["P", name, _, n] => progs.push((name.to_string(), n.parse().unwrap())),
            ["M", name, t, k, v, m] => maps.push((
                name.to_string(),
                t.to_string(),
                k.parse().unwrap(),
                v.parse().unwrap(),
                m.parse().unwrap(),
            )),
            _ => {}
        }
    }
    (progs, maps)
}

#[test]
fn every_fixture_loads_or_fails_as_with_libbpf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = tmp("oracle");
    let Some(oracle) = build_oracle("libbpf_load", &dir) else {
        return;
    };
    let both_loaded = compare_with_libbpf(&oracle, &objects(), None);
    assert!(both_loaded >= 2, "too few fixtures load on this kernel");
}

/// Loads each object with ember and with libbpf (given `btf` as
/// `btf_custom_path` and `EbpfLoader::btf_file`): both load, with the same
/// programs, instruction counts and maps, or both refuse. Returns how many
/// both loaded.
fn compare_with_libbpf(oracle: &Path, objects: &[PathBuf], btf: Option<&Path>) -> usize {
    let mut both_loaded = 0;
    for obj in objects {
        let out = Command::new(oracle)
            .arg(obj)
            .args(btf)
            .output()
            .expect("oracle");
        let libbpf = out.status.code();
        let before = open_fds();
        let loader = match btf {
            Some(b) => EbpfLoader::new().btf_file(b),
            None => EbpfLoader::new(),
        };
        let ember = loader.load_file(obj);
        let name = obj.file_name().unwrap().to_string_lossy().into_owned();
        match (libbpf, &ember) {
            (Some(0), Ok(e)) => {
                let (progs, maps) = parse_oracle(&String::from_utf8_lossy(&out.stdout));
                let ours: Vec<(String, usize)> = e
                    .programs()
                    .iter()
                    .map(|p| (p.name().to_owned(), p.insn_count()))
                    .collect();
                assert_eq!(ours, progs, "{name}: programs or instruction counts differ");
                let ours: Vec<_> = e
                    .maps()
                    .iter()
                    .map(|m| {
                        (
                            m.name().to_owned(),
                            m.map_type().to_string(),
                            m.key_size(),
                            m.value_size(),
                            m.max_entries(),
                        )
                    })
                    // libbpf lists struct_ops maps last.
                    .chain(e.struct_ops_maps().iter().map(|m| {
                        (
                            m.name().to_owned(),
                            "struct_ops".into(),
                            4,
                            m.value_size(),
                            1,
                        )
                    }))
                    .collect();
                assert_eq!(ours, maps, "{name}: maps differ");
                // The kernel took the object's BTF (no silent fallback).
                assert!(
                    e.btf_fd().is_some(),
                    "{name}: object BTF dropped: {:?}",
                    e.notes
                );
                both_loaded += 1;
            }
            (Some(3), Err(e)) => {
                let msg = e.to_string();
                assert!(msg.len() > 20, "{name}: unclear error: {msg}");
                eprintln!(
                    "{name}: both reject; ember: {}",
                    msg.lines().next().unwrap_or("")
                );
            }
            // libbpf >= 1.0 refuses legacy `maps` by design; ember loads them.
            (Some(2), Ok(_)) if name.starts_with("legacy_maps") => {}
            (code, r) => panic!(
                "{name}{}: libbpf exit {code:?} ({}) but ember {:?}",
                btf.map(|b| format!(" with BTF {}", b.display()))
                    .unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or(""),
                r.as_ref().map(|_| "loaded").map_err(ToString::to_string)
            ),
        }
        drop(ember);
        assert_eq!(open_fds(), before, "{name}: fds leaked");
    }
    both_loaded
}

/// An external BTF (Debian 6.1's, on this newer kernel) is the CO-RE target
/// only, as libbpf's `btf_custom_path`: tp_btf attach ids and kfuncs still
/// come from the running kernel. Every fixture loads with it exactly where
/// libbpf loads it, and the CO-RE offsets are the file's, not the kernel's.
#[test]
fn external_btf_is_a_core_target_only_as_with_libbpf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(kdir) = ember_tests::kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let debian = kdir.join("vmlinux");
    let dir = tmp("oracle-btf");
    let Some(oracle) = build_oracle("libbpf_load", &dir) else {
        return;
    };
    // tp_btf + kfuncs + CO-RE, tp_btf + kfuncs + ksyms, CO-RE only: libbpf
    // loads all three with the foreign BTF.
    let must_load = ["kernel_ids.bpf-el.o", "load.bpf-el.o", "core_only.bpf-el.o"];
    let must_load: Vec<PathBuf> = must_load.iter().map(|n| fixture(n)).collect();
    assert_eq!(
        compare_with_libbpf(&oracle, &must_load, Some(&debian)),
        must_load.len(),
        "not every object loaded with both"
    );
    compare_with_libbpf(&oracle, &objects(), Some(&debian));

    // The relocations used the file: task_struct.pid is elsewhere in this
    // kernel's task_struct than in 6.1's.
    let offsets = |loader: EbpfLoader| -> Vec<String> {
        let e = loader.load_file(fixture("kernel_ids.bpf-el.o")).unwrap();
        assert_eq!(e.relocations.len(), 2, "{:?}", e.relocations);
        e.relocations
            .iter()
            .map(|r| format!("{:?}", r.outcome))
            .collect()
    };
    let external = offsets(EbpfLoader::new().btf_file(&debian));
    let running = offsets(EbpfLoader::new());
    assert_ne!(external, running, "CO-RE did not use the external BTF");
    let e = EbpfLoader::new()
        .btf_file(&debian)
        .load_file(fixture("kernel_ids.bpf-el.o"))
        .unwrap();
    assert!(
        e.notes.iter().any(|n| n.contains("CO-RE target:")),
        "{:?}",
        e.notes
    );
    let p = e.program("on_newtask_ids").unwrap();
    let want = Btf::parse(&std::fs::read("/sys/kernel/btf/vmlinux").unwrap())
        .unwrap()
        .find_by_name_kind("btf_trace_task_newtask", Kind::Typedef)
        .unwrap();
    assert_eq!(
        p.attach_btf_id(),
        want.0,
        "attach id is not the running kernel's"
    );
}

/// The bytes of global `name` of fixture `file`, read from its map.
fn global_of(e: &ember::Ebpf, file: &str, name: &str, len: usize) -> Vec<u8> {
    let data = std::fs::read(fixture(file)).unwrap();
    let obj = Object::parse(&data, "x").unwrap();
    let sym = obj.data_symbols.iter().find(|s| s.name == name).unwrap();
    let prefix = file.split('.').next().unwrap();
    let map = format!("{prefix}{}", sym.section);
    let v = e
        .map(&map)
        .unwrap()
        .lookup(&0u32.to_ne_bytes())
        .unwrap()
        .unwrap();
    v[sym.offset as usize..sym.offset as usize + len].to_vec()
}

fn global_u64(e: &ember::Ebpf, name: &str) -> u64 {
    u64::from_ne_bytes(global_of(e, "load.bpf-el.o", name, 8).try_into().unwrap())
}

fn global_u32(e: &ember::Ebpf, name: &str) -> u32 {
    u32::from_ne_bytes(global_of(e, "load.bpf-el.o", name, 4).try_into().unwrap())
}

fn kallsyms_addr(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(2) == Some(name))
        .unwrap_or_else(|| panic!("{name} not in kallsyms"));
    u64::from_str_radix(line.split_whitespace().next().unwrap(), 16).unwrap()
}

fn kernel_config(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args([
            "-c",
            "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)",
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// gzip(1) decompressing `gz`, which must succeed.
fn zcat(gz: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-dc"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(gz).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    out.stdout
}

/// ember's gzip reader on this kernel's `/proc/config.gz` (what kconfig
/// externs read), against gzip(1).
#[test]
fn gzip_reads_this_kernels_config_like_zcat() {
    match std::fs::read("/proc/config.gz") {
        Ok(gz) => assert_eq!(ember::gzip::decompress(&gz, 16 << 20).unwrap(), zcat(&gz)),
        Err(e) => ember_tests::skip(&format!("/proc/config.gz: {e}")),
    }
}

/// ember's gzip reader on files gzip 1.12 writes at levels 1 and 9, with
/// the original name stored (FNAME) and without; two members are refused.
#[test]
fn gzip_reads_what_gzip_writes() {
    let dir = std::env::temp_dir().join(format!("ember-gzip-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("config");
    let text: String = (0..5000)
        .map(|i| format!("CONFIG_OPTION_{i}={}\n", i % 7))
        .collect();
    std::fs::write(&plain, &text).unwrap();
    for args in [["-1", "-n"], ["-9", "-N"]] {
        let out = Command::new("gzip")
            .args(args)
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap();
        assert!(out.status.success());
        let gz = out.stdout;
        assert_eq!(
            ember::gzip::decompress(&gz, 1 << 20).unwrap(),
            text.as_bytes(),
            "{args:?}"
        );
        // Two members: the trailer at the end belongs to the second.
        let twice = [gz.as_slice(), gz.as_slice()].concat();
        assert_eq!(
            ember::gzip::decompress(&twice, 1 << 20),
            Err(ember::gzip::GzipError::Trailing)
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_fixture_round_trip() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let e = EbpfLoader::new()
            .set_global("record_count", &5u32.to_ne_bytes())
            .load_file(fixture("load.bpf-el.o"))
            .unwrap_or_else(|e| panic!("{e}"));
        // The kfunc program loaded: bpf_task_acquire resolved from BTF.
        let tp = e.program("on_newtask").expect("tp_btf program");
        assert_ne!(tp.attach_btf_id(), 0);
        // Attached, it runs on every new task: the kfuncs really execute.
        let link = ember_sys::raw_tracepoint_open(tp.fd(), None).expect("attach tp_btf");
        for _ in 0..3 {
            Command::new("true").status().expect("spawn");
        }
        drop(link);
        assert!(
            global_u32(&e, "acquired") >= 3,
            "bpf_task_acquire did not run"
        );
        let emit = e.program("emit").expect("socket program");

        let records = e.map("records").unwrap();
        // The map views over ember-sys's consumers.
        let mut ring = ember::maps::RingBuffer::new(records).expect("ring");
        let mut perf = ember::maps::PerfEventArray::open(e.map("perf").unwrap(), 2).expect("perf");
        assert!(ember::maps::RingBuffer::new(e.map("perf").unwrap()).is_err());

        assert_eq!(run(emit, 1), 0);

        // .rodata knob set before load: 5 records, in order, then the
        // discarded one skipped.
        let mut got = vec![];
        ring.consume(|d| {
            got.push((
                u32::from_ne_bytes(d[0..4].try_into().unwrap()),
                u32::from_ne_bytes(d[4..8].try_into().unwrap()),
            ))
        })
        .expect("consume");
        assert_eq!(got, (0..5).map(|i| (i, 0xe111b0)).collect::<Vec<_>>());

        let mut samples = vec![];
        perf.consume(|rec| {
            if let ember_sys::PerfRecord::Sample { data, .. } = rec {
                samples.push(data[..8].to_vec());
            }
        })
        .expect("perf consume");
        let want: Vec<u8> = [7u32.to_ne_bytes(), 0xfe7fu32.to_ne_bytes()].concat();
        assert_eq!(samples, vec![want]);

        // Globals written by the program.
        assert_eq!(
            global_u64(&e, "ksym_addr"),
            kallsyms_addr("bpf_prog_put"),
            "untyped ksym"
        );
        assert_eq!(global_u64(&e, "weak_addr"), 0, "weak ksym not 0");
        assert_eq!(global_u32(&e, "weak_kfunc_present"), 0, "weak kfunc seen");
        let hz = global_u32(&e, "kconfig_hz");
        let want = kernel_config("CONFIG_HZ").expect("CONFIG_HZ in the kernel config");
        assert_eq!(hz.to_string(), want);
        // The kernel's own LINUX_VERSION_CODE, from its vDSO, not from
        // parsing the release string as the loader does.
        let kv = global_u32(&e, "kernel_version");
        assert_eq!(kv, vdso_version_code(), "LINUX_KERNEL_VERSION");

        let runs = HashMap::<u32, u64>::new(e.map("runs").unwrap()).unwrap();
        assert_eq!(runs.get(&1).unwrap(), Some(1));

        // .rodata is frozen: user space cannot change it after load.
        let ro = e.map("load.rodata").unwrap();
        assert_eq!(
            ro.lookup(&0u32.to_ne_bytes()).unwrap().unwrap(),
            5u32.to_ne_bytes()
        );
        let err = ro
            .update(&0u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0)
            .unwrap_err();
        assert_eq!(err.errno(), Some(Errno::PERM));
        assert!(err.to_string().contains("load.rodata"), "{err}");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn set_global_of_the_wrong_size_is_an_error() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    let e = EbpfLoader::new()
        .set_global("record_count", &5u64.to_ne_bytes())
        .load_file(fixture("load.bpf-el.o"))
        .unwrap_err();
    let LoadError::Spec(why) = &e else {
        panic!("{e}")
    };
    assert_eq!(
        *why,
        ember::SpecError::GlobalSize {
            name: "record_count".into(),
            size: 4,
            given: 8
        }
    );
    assert_eq!(
        why.to_string(),
        "global 'record_count' is 4 bytes, the value is 8"
    );
    assert_eq!(open_fds(), before, "fds leaked after a failed load");
}

#[test]
fn every_map_type() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let e = EbpfLoader::new()
            .autoload("use_maps", false)
            .load_file(fixture("maps.bpf-el.o"))
            .unwrap_or_else(|e| panic!("{e}"));
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C)]
        struct Val16 {
            x: u64,
            y: u64,
        }
        let h = HashMap::<u32, Val16>::new(e.map("hash_map").unwrap()).unwrap();
        h.insert(&1, &Val16 { x: 2, y: 3 }, 0).unwrap();
        h.insert(&4, &Val16 { x: 5, y: 6 }, 0).unwrap();
        let mut all: Vec<_> = h.iter().map(Result::unwrap).collect();
        all.sort_by_key(|(k, _)| *k);
        assert_eq!(all, [(1, Val16 { x: 2, y: 3 }), (4, Val16 { x: 5, y: 6 })]);
        assert!(h.remove(&1).unwrap());
        assert!(!h.remove(&1).unwrap());
        assert_eq!(h.get(&1).unwrap(), None);
        // A view of the wrong shape is refused before any syscall.
        assert!(HashMap::<u64, u64>::new(e.map("hash_map").unwrap()).is_err());

        let a = Array::<u64>::new(e.map("array_map").unwrap()).unwrap();
        a.set(3, &77).unwrap();
        assert_eq!(a.get(3).unwrap(), 77);
        let past = a.set(4, &1).unwrap_err();
        assert_eq!(past.errno(), Some(Errno::TOOBIG));
        assert_eq!(past.to_string(), "map 'array_map': update failed");

        let ncpu = ember_sys::cpu::possible_cpus().unwrap() as usize;
        let pa = PerCpuArray::<Val16>::new(e.map("percpu_array").unwrap()).unwrap();
        let vals = ember::maps::PerCpuValues::from_fn(|i| Val16 {
            x: i as u64,
            y: i as u64 * 10,
        })
        .unwrap();
        assert_eq!(vals.len(), ncpu);
        pa.set(0, &vals).unwrap();
        let got = pa.get(0).unwrap();
        assert_eq!(got, vals);
        assert_eq!(got.cpu(ncpu - 1), Some(&vals[ncpu - 1]));
        let short = pa.set(0, &vals[..0]).unwrap_err();
        assert_eq!(
            short.kind,
            ember::MapErrorKind::CpuCount {
                expected: ncpu as u32,
                given: 0
            }
        );
        assert!(
            short
                .to_string()
                .starts_with("map 'percpu_array': update: 0 values")
        );

        let ph = PerCpuHashMap::<u64, u64>::new(e.map("percpu_hash").unwrap()).unwrap();
        let v: Vec<u64> = (0..ncpu as u64).map(|i| i + 100).collect();
        ph.insert(&9, &v, 0).unwrap();
        assert_eq!(ph.get(&9).unwrap().map(|p| p.into_vec()), Some(v.clone()));
        let lp = PerCpuHashMap::<u64, u32>::new(e.map("lru_percpu").unwrap()).unwrap();
        let v32: Vec<u32> = (0..ncpu as u32).collect();
        lp.insert(&1, &v32, 0).unwrap();
        assert_eq!(lp.get(&1).unwrap().as_deref(), Some(&v32[..]));

        let lru = HashMap::<u64, u32>::new(e.map("lru_hash").unwrap()).unwrap();
        for k in 0..200u64 {
            lru.insert(&k, &(k as u32), 0).unwrap();
        }
        // An LRU map evicts instead of failing when full.
        let n = lru.iter().count();
        assert!(n > 0 && n <= 200, "{n}");
        assert_eq!(lru.get(&199).unwrap(), Some(199));

        let lpm = LpmTrie::<[u8; 4], u32>::new(e.map("lpm").unwrap()).unwrap();
        lpm.insert(
            &LpmKey {
                prefix_len: 8,
                data: [10, 0, 0, 0],
            },
            &1,
        )
        .unwrap();
        lpm.insert(
            &LpmKey {
                prefix_len: 24,
                data: [10, 1, 2, 0],
            },
            &2,
        )
        .unwrap();
        let look = |a: [u8; 4]| {
            lpm.get(&LpmKey {
                prefix_len: 32,
                data: a,
            })
            .unwrap()
        };
        assert_eq!(look([10, 1, 2, 3]), Some(2));
        assert_eq!(look([10, 9, 9, 9]), Some(1));
        assert_eq!(look([11, 0, 0, 0]), None);

        let q = Queue::<u32>::new(e.map("queue").unwrap()).unwrap();
        for i in 1..=3 {
            q.push(&i, 0).unwrap();
        }
        assert_eq!(q.peek().unwrap(), Some(1));
        assert_eq!(
            (
                q.pop().unwrap(),
                q.pop().unwrap(),
                q.pop().unwrap(),
                q.pop().unwrap()
            ),
            (Some(1), Some(2), Some(3), None)
        );
        let s = Stack::<u64>::new(e.map("stack").unwrap()).unwrap();
        for i in 1..=3 {
            s.push(&i, 0).unwrap();
        }
        assert_eq!((s.pop().unwrap(), s.pop().unwrap()), (Some(3), Some(2)));

        let bloom = BloomFilter::<u32>::new(e.map("bloom").unwrap()).unwrap();
        bloom.insert(&42).unwrap();
        assert!(bloom.contains(&42).unwrap());

        // Map-in-map slots were filled from the object's initializers.
        let outer = MapOfMaps::new(e.map("outer_array").unwrap()).unwrap();
        let inner_ids: Vec<u32> = (0..3)
            .filter_map(|i| outer.get_id(&(i as u32).to_ne_bytes()).unwrap())
            .collect();
        assert_eq!(inner_ids.len(), 2, "outer_array slots");
        let inner_b = e.map("inner_b").unwrap();
        let ib = ember_sys::map_info(inner_b.fd()).unwrap().id.0;
        assert!(inner_ids.contains(&ib));
        let oh = MapOfMaps::new(e.map("outer_hash").unwrap()).unwrap();
        // Its template is a u32 -> u64 hash: an array does not fit.
        assert_eq!(
            oh.set(&7u32.to_ne_bytes(), inner_b.fd())
                .unwrap_err()
                .errno(),
            Some(Errno::INVAL)
        );
        let fit = ember_sys::map_create(&ember_sys::MapCreate {
            map_type: 1,
            key_size: 4,
            value_size: 8,
            max_entries: 2,
            name: "ember_inner",
            ..Default::default()
        })
        .unwrap();
        let fit_id = ember_sys::map_info(ember_sys::AsFd::as_fd(&fit))
            .unwrap()
            .id
            .0;
        oh.set(&7u32.to_ne_bytes(), ember_sys::AsFd::as_fd(&fit))
            .unwrap();
        assert_eq!(oh.get_id(&7u32.to_ne_bytes()).unwrap(), Some(fit_id));

        // The prog array slot holds the loaded tail_target.
        let jt = ProgArray::new(e.map("jump_table").unwrap()).unwrap();
        let tid = prog_info(e.program("tail_target").unwrap().fd())
            .unwrap()
            .id
            .0;
        assert_eq!(jt.get_id(1).unwrap(), Some(tid));
        assert!(jt.clear(1).unwrap());
        assert_eq!(jt.get_id(1).unwrap(), None);

        // Ring buffer and perf array exist with the kernel's shapes.
        assert_eq!(e.map("events").unwrap().map_type(), MapType(27));
        assert_eq!(e.map("perf_events").unwrap().max_entries() as usize, ncpu);
        // The kernel knows each map under its name.
        let mut names = vec![];
        let mut id = ember_sys::MapId(0);
        while let Ok(Some(next)) = get_next_id(id) {
            id = next;
            if let Ok(fd) = ember_sys::get_fd_by_id(id, 0) {
                if let Ok(i) = ember_sys::map_info(ember_sys::AsFd::as_fd(&fd)) {
                    names.push(i.name().to_owned());
                }
            }
        }
        for m in e.maps() {
            assert!(
                names.iter().any(|n| n == m.name()),
                "{} not in the kernel",
                m.name()
            );
        }
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn pinned_maps_are_reused() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("pin") else { return };
    let before = open_fds();
    {
        let first = EbpfLoader::new()
            .pin_dir(dir.to_path_buf())
            .load_file(fixture("load.bpf-el.o"))
            .unwrap();
        assert_eq!(first.pinned, vec![dir.join("runs")]);
        let runs = HashMap::<u32, u64>::new(first.map("runs").unwrap()).unwrap();
        runs.insert(&5, &55, 0).unwrap();
        drop(first);
        let second = EbpfLoader::new()
            .pin_dir(dir.to_path_buf())
            .load_file(fixture("load.bpf-el.o"))
            .unwrap();
        let m = second.map("runs").unwrap();
        assert!(m.reused());
        assert!(second.pinned.is_empty());
        assert_eq!(
            HashMap::<u32, u64>::new(m).unwrap().get(&5).unwrap(),
            Some(55)
        );
        let opened = ember::Map::from_pin(dir.join("runs")).unwrap();
        assert_eq!(
            opened.lookup(&5u32.to_ne_bytes()).unwrap(),
            Some(55u64.to_ne_bytes().to_vec())
        );
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn verifier_rejection_carries_the_log() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    let e = EbpfLoader::new()
        .autoload("poisoned", false)
        .load_file(fixture("reject.bpf-el.o"))
        .unwrap_err();
    let LoadError::ProgLoad {
        program,
        source,
        log,
        cause,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(program, "oob");
    assert!(
        matches!(source.errno, Errno::ACCESS | Errno::INVAL),
        "{source}"
    );
    assert!(
        log.contains("invalid") && log.contains("processed"),
        "log: {log}"
    );
    assert!(
        log.contains("reject.bpf.c"),
        "the log shows source lines: {log}"
    );
    assert!(cause.is_none());
    assert_eq!(open_fds(), before, "fds leaked after a rejected program");
}

#[test]
fn poisoned_relocation_is_traced_to_its_source() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let e = EbpfLoader::new()
        .autoload("oob", false)
        .load_file(fixture("reject.bpf-el.o"))
        .unwrap_err();
    let LoadError::ProgLoad {
        program,
        cause,
        log,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(program, "poisoned");
    assert!(log.contains("195896080"), "{log}");
    let cause = cause.as_deref().expect("a cause");
    assert!(cause.contains("ember_field_that_does_not_exist"), "{cause}");
    assert!(cause.contains("POISONED"), "{cause}");
    assert!(cause.contains("reject.bpf.c:"), "{cause}");
}

#[test]
fn no_kernel_btf_in_a_private_mount_namespace() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(unshare) = tool("unshare") else {
        skip("no unshare(1)");
        return;
    };
    let dir = tmp("nobtf");
    let copy = dir.join("vmlinux.btf");
    std::fs::copy("/sys/kernel/btf/vmlinux", &copy).unwrap();
    let run = |fixture_name: &str, extra: &str| {
        let script = format!(
            "mount -t tmpfs none /sys/kernel/btf && {} load {} {extra}",
            ember_bin().display(),
            fixture(fixture_name).display()
        );
        Command::new(&unshare)
            .args(["-m", "sh", "-c", &script])
            .output()
            .unwrap()
    };
    let with_btf = format!("--btf {}", copy.display());
    // Kernel ids (tp_btf, kfuncs) cannot come from any file, with or
    // without --btf: the error says so, and lists where it looked.
    for extra in ["", with_btf.as_str()] {
        let out = run("load.bpf-el.o", extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "loaded without kernel BTF ({extra})?"
        );
        for want in [
            "load.bpf-el.o needs the running kernel's own BTF for kfunc 'bpf_task_acquire'",
            "program 'on_newtask' (tp_btf/task_newtask)",
            "an external BTF (--btf) can stand in for CO-RE relocations \
             but not for the kernel's own type ids",
            "/sys/kernel/btf/vmlinux: absent",
            "/boot/vmlinux-",
        ] {
            assert!(err.contains(want), "{extra}: missing '{want}' in:\n{err}");
        }
        assert!(
            !err.contains("supply one with --btf"),
            "{extra}: offers --btf for kernel ids:\n{err}"
        );
    }
    // CO-RE and kernel ids: the file serves CO-RE, the ids still fail.
    let out = run("kernel_ids.bpf-el.o", &with_btf);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "kernel_ids loaded without kernel BTF?"
    );
    for want in [
        "kfunc 'bpf_task_acquire', kfunc 'bpf_task_release', \
         program 'on_newtask_ids' (tp_btf/task_newtask)",
        "not for the kernel's own type ids",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
    // CO-RE only: without --btf, told to supply one; with it, it loads.
    let out = run("core_only.bpf-el.o", "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "CO-RE without any BTF?");
    for want in [
        "core_only.bpf-el.o needs kernel BTF for 2 CO-RE relocations",
        "/sys/kernel/btf/vmlinux: absent",
        "supply one with --btf FILE",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
    let out = run("core_only.bpf-el.o", &with_btf);
    assert!(
        out.status.success(),
        "with --btf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("prog on_newtask_core type raw_tracepoint")
    );
}

#[test]
fn cli_load_prints_and_pins() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("cli") else { return };
    let out = Command::new(ember_bin())
        .args(["load", "--verbose", "--pin"])
        .arg(&*dir)
        .arg(fixture("load.bpf-el.o"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "map records type ringbuf key 0 value 0 max_entries 4096",
        "map load.rodata type array key 4 value 4 max_entries 1",
        "prog emit type socket_filter section socket insns 102",
        "note: weak extern 'ember_no_such_kfunc' is absent",
        "processed ",
    ] {
        assert!(text.contains(want), "missing '{want}' in:\n{text}");
    }
    for pinned in ["runs", "records", "emit", "on_newtask"] {
        assert!(dir.join(pinned).exists(), "{pinned} not pinned");
    }
}

#[test]
fn sanitized_btf_loads_into_this_kernel() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    /// (feature, switch it off, kinds that must be gone)
    type Case = (&'static str, fn(&mut BtfFeatures), &'static [Kind]);
    let cases: [Case; 7] = [
        (
            "datasec",
            |f| f.datasec = false,
            &[Kind::Var, Kind::Datasec],
        ),
        ("func", |f| f.func = false, &[Kind::Func, Kind::FuncProto]),
        ("float", |f| f.float = false, &[Kind::Float]),
        ("decl_tag", |f| f.decl_tag = false, &[Kind::DeclTag]),
        ("type_tag", |f| f.type_tag = false, &[Kind::TypeTag]),
        ("enum64", |f| f.enum64 = false, &[Kind::Enum64]),
        ("global_func", |f| f.global_func = false, &[]),
    ];
    // Every committed object with BTF, in this machine's byte order.
    let mut objs: Vec<String> = vec![];
    for dir in ["", "core/", "core16/", "vm/"] {
        for e in std::fs::read_dir(root().join("tests/fixtures").join(dir)).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.ends_with(".bpf-el.o") {
                objs.push(format!("{dir}{n}"));
            }
        }
    }
    objs.sort();
    assert!(objs.len() > 20);
    for o in &objs {
        let data = std::fs::read(fixture(o)).unwrap();
        let obj = Object::parse(&data, "x").unwrap();
        if obj.btf.is_none() {
            continue;
        }
        let full = kernel_btf(&obj, &BtfFeatures::default()).unwrap();
        ember_sys::btf_load(&full, None).unwrap_or_else(|e| panic!("{o}: fixed-up BTF: {e}"));
        for (name, off, gone) in &cases {
            let mut f = BtfFeatures::default();
            off(&mut f);
            let b = kernel_btf(&obj, &f).unwrap();
            let mut log = vec![0u8; 1 << 16];
            if let Err(e) = ember_sys::btf_load(&b, Some(&mut log)) {
                let end = log.iter().position(|&c| c == 0).unwrap_or(0);
                panic!(
                    "{o} without {name}: {e}\n{}",
                    String::from_utf8_lossy(&log[..end])
                );
            }
            let parsed = Btf::parse(&b).unwrap();
            assert!(parsed.type_count() >= obj.btf.as_ref().unwrap().type_count());
            for t in parsed.types() {
                assert!(
                    !gone.contains(&t.kind()),
                    "{o} without {name}: {:?} left",
                    t.kind()
                );
                if *name == "global_func" && t.kind() == Kind::Func {
                    assert_eq!(t.func_linkage(), Some(0), "{o}: global FUNC left");
                }
            }
        }
    }
}

#[test]
fn typed_ksym_reaches_the_kernel_here() {
    // Resolution and patching are checked against bpftool in ksym.rs; the
    // load itself succeeds in the VM (vm.rs). This kernel lacks
    // CONFIG_KALLSYMS_ALL, so its verifier refuses the address lookup,
    // and the error must say exactly that.
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    let e = EbpfLoader::new()
        .load_file(fixture("vm/ksyms.bpf-el.o"))
        .expect_err("typed ksyms cannot load without CONFIG_KALLSYMS_ALL");
    let LoadError::ProgLoad { program, log, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(program, "typed");
    assert!(
        log.contains("failed to find the address for kernel symbol 'bpf_prog_active'"),
        "{log}"
    );
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn objects_without_btf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        // Legacy maps and global data need no BTF: it loads, and works.
        let e = EbpfLoader::new()
            .load_file(fixture("nobtf/legacy.bpf-el.o"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(e.btf_fd().is_none());
        let prog = e.program("count").unwrap();
        run(prog, 2);
        let hits = HashMap::<u32, u64>::new(e.map("hits").unwrap()).unwrap();
        assert_eq!(hits.get(&0).unwrap(), Some(1));
        let bss = e.map("legacy.bss").unwrap();
        assert_eq!(
            bss.lookup(&0u32.to_ne_bytes()).unwrap().unwrap(),
            2u64.to_ne_bytes()
        );
    }
    // A BTF-defined map without .BTF: the error says how to rebuild.
    let e = EbpfLoader::new()
        .load_file(fixture("nobtf/btf_maps.bpf-el.o"))
        .unwrap_err();
    assert!(matches!(e, LoadError::NoObjectBtf { .. }), "{e}");
    assert!(e.to_string().contains("clang -g -O2 -target bpf"), "{e}");
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn a_different_pinned_map_is_not_reused() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("mismatch") else {
        return;
    };
    let before = open_fds();
    {
        // "runs" is a u32 -> u64 hash of 16; pin a u32 -> u32 one there.
        let other = ember_sys::map_create(&ember_sys::MapCreate {
            map_type: 1,
            key_size: 4,
            value_size: 4,
            max_entries: 16,
            name: "runs",
            ..Default::default()
        })
        .unwrap();
        let p = std::ffi::CString::new(dir.join("runs").to_str().unwrap()).unwrap();
        ember_sys::obj_pin(ember_sys::AsFd::as_fd(&other), &p).unwrap();
        let e = EbpfLoader::new()
            .pin_dir(dir.to_path_buf())
            .load_file(fixture("load.bpf-el.o"))
            .unwrap_err();
        assert!(matches!(e, LoadError::PinMismatch { .. }), "{e}");
        assert!(e.to_string().contains("value size 4 vs 8"), "{e}");
        // Views over the pinned map see the kernel's shape, not a guess.
        let m = ember::Map::from_pin(dir.join("runs")).unwrap();
        assert_eq!((m.key_size(), m.value_size(), m.max_entries()), (4, 4, 16));
        assert!(HashMap::<u32, u64>::new(&m).is_err());
        assert!(HashMap::<u32, u32>::new(&m).is_ok());
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

/// Runs `prog` `repeat` times on a zeroed 64-byte packet; its return value.
fn run(prog: &ember::Program, repeat: u32) -> u32 {
    let pkt = [0u8; 64];
    let mut t = TestRun {
        data_in: &pkt,
        data_out: None,
        ctx_in: None,
        ctx_out: None,
        repeat,
        flags: 0,
        cpu: 0,
        batch_size: 0,
    };
    prog_test_run(prog.fd(), &mut t).expect("test run").retval
}

#[test]
fn kconfig_values_match_the_running_kernel() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let e = EbpfLoader::new()
        .load_file(fixture("kconfig.bpf-el.o"))
        .unwrap_or_else(|e| panic!("{e}"));
    run(e.program("read_kconfig").unwrap(), 1);
    // Internal maps are described by their DATASECs, .kconfig included.
    for m in ["kconfig.kconfig", "kconfig.bss"] {
        let info = ember_sys::map_info(e.map(m).unwrap().fd()).unwrap();
        assert_ne!(info.btf_value_type_id, 0, "{m} has no BTF value type");
    }
    let u =
        |n: &str| u32::from_ne_bytes(global_of(&e, "kconfig.bpf-el.o", n, 4).try_into().unwrap());
    let cfg = |n: &str| kernel_config(n).unwrap_or_else(|| panic!("{n} not in the kernel config"));
    let yn = |v: String| match v.as_str() {
        "y" => 1,
        "m" => 2,
        _ => 0,
    };
    let wrapper = std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some("__x64_sys_bpf"));
    assert_eq!(u("syscall_wrapper"), u32::from(wrapper));
    assert_eq!(u("bpf_cookie"), 1, "6.x kernels have bpf_get_attach_cookie");
    assert_eq!(u("bpf_syscall"), yn(cfg("CONFIG_BPF_SYSCALL")));
    assert_eq!(u("hz").to_string(), cfg("CONFIG_HZ"));
    assert_eq!(u("jit"), yn(cfg("CONFIG_BPF_JIT")));
    assert_eq!(u("missing"), 0);
    let host = global_of(&e, "kconfig.bpf-el.o", "hostname", 16);
    let host =
        String::from_utf8_lossy(&host[..host.iter().position(|&c| c == 0).unwrap()]).into_owned();
    assert_eq!(format!("\"{host}\""), cfg("CONFIG_DEFAULT_HOSTNAME"));
}

#[test]
fn set_global_of_an_unknown_name_is_an_error() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let e = EbpfLoader::new()
        .set_global("record_cuont", &5u32.to_ne_bytes())
        .load_file(fixture("load.bpf-el.o"))
        .unwrap_err();
    let LoadError::Spec(why) = &e else {
        panic!("{e}")
    };
    // The unknown name, and the names there are.
    let text = why.to_string();
    assert!(
        text.starts_with("no global variable 'record_cuont' (globals: "),
        "{text}"
    );
    assert!(text.contains("record_count"), "{text}");
}

/// Fuzzer finds, kept: objects on which load preparation once produced BTF
/// that neither ember's parser nor the kernel accepts.
#[test]
fn fuzz_regressions_load_prep() {
    // Reading files opens fds: keep out of the fd-counting tests' way.
    let _s = serial();
    // The seeds (fixture objects) ride along, so the kernel check below
    // runs even when every crasher is now refused by ember itself.
    let kernel = ember_tests::is_root();
    let (mut n, mut accepted) = (0, 0);
    let files = ["fuzz/regressions/load_prep", "fuzz/seeds/load_prep"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).expect("regressions"));
    for e in files {
        let name = e.expect("entry").path();
        let data = std::fs::read(&name).expect("read");
        let Ok(obj) = Object::parse(&data, "fuzz") else {
            continue;
        };
        for feat in [BtfFeatures::default(), BtfFeatures::NONE] {
            if let Ok(b) = kernel_btf(&obj, &feat) {
                Btf::parse(&b).expect("rewritten BTF parses");
                // What ember accepts and rewrites, the kernel must accept.
                if kernel {
                    if let Err(err) = ember_sys::btf_load(&b, None) {
                        let mut log = vec![0u8; 1 << 20];
                        let _ = ember_sys::btf_load(&b, Some(&mut log));
                        let end = log.iter().position(|&c| c == 0).unwrap_or(log.len());
                        panic!(
                            "{}: kernel refused rewritten BTF ({err}):\n{}",
                            name.display(),
                            String::from_utf8_lossy(&log[..end])
                        );
                    }
                    accepted += 1;
                }
            }
        }
        n += 1;
    }
    assert!(n > 0);
    assert!(!kernel || accepted > 0, "no regression reached the kernel");
}

#[test]
fn struct_ops_without_a_map_and_freplace_without_a_target_are_named() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let data = std::fs::read(fixture("sections.bpf-el.o")).unwrap();
    let obj = Object::parse(&data, "sections").unwrap();
    let only = |keep: &str| {
        let mut l = EbpfLoader::new();
        for f in obj.programs().filter(|f| f.name != keep) {
            l = l.autoload(f.name, false);
        }
        l.load(&data, "sections.bpf-el.o")
    };
    // A struct_ops program no struct_ops map uses is not loaded (libbpf's
    // rule), and the notes say so.
    let e = only("prog_78").unwrap_or_else(|e| panic!("{e}"));
    assert!(e.program("prog_78").is_none());
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("'prog_78' is used by no struct_ops map")),
        "{:?}",
        e.notes
    );
    // An extension program needs the program it extends.
    let e = only("prog_28").unwrap_err();
    assert!(matches!(e, LoadError::TargetProgram { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("'prog_28'"), "{text}");
    assert!(text.contains("AttachTarget::Program"), "{text}");
}

/// `LINUX_VERSION_CODE` as the running kernel was built with it: the
/// `Linux` note (type 0) of the vDSO, read through /proc/self/mem.
fn vdso_version_code() -> u32 {
    use std::io::{Read, Seek, SeekFrom};
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let line = maps
        .lines()
        .find(|l| l.ends_with("[vdso]"))
        .expect("a [vdso] mapping");
    let range = line.split_whitespace().next().unwrap();
    let (lo, hi) = range.split_once('-').unwrap();
    let lo = u64::from_str_radix(lo, 16).unwrap();
    let hi = u64::from_str_radix(hi, 16).unwrap();
    let mut image = vec![0u8; (hi - lo) as usize];
    let mut mem = std::fs::File::open("/proc/self/mem").unwrap();
    mem.seek(SeekFrom::Start(lo)).unwrap();
    mem.read_exact(&mut image).unwrap();
    // ELF64 notes: walk PT_NOTE segments for name "Linux", type 0.
    let u16_at = |o: usize| u16::from_ne_bytes(image[o..o + 2].try_into().unwrap());
    let u32_at = |o: usize| u32::from_ne_bytes(image[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_ne_bytes(image[o..o + 8].try_into().unwrap());
    assert_eq!(&image[..4], b"\x7fELF");
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36) as usize, u16_at(0x38));
    for i in 0..phnum as usize {
        let ph = phoff + i * phentsize;
        if u32_at(ph) != 4 {
            continue; // not PT_NOTE
        }
        let (mut at, end) = (
            u64_at(ph + 8) as usize,
            (u64_at(ph + 8) + u64_at(ph + 32)) as usize,
        );
        while at + 12 <= end {
            let (namesz, descsz, ty) =
                (u32_at(at) as usize, u32_at(at + 4) as usize, u32_at(at + 8));
            let name = &image[at + 12..at + 12 + namesz];
            let desc = at + 12 + namesz.next_multiple_of(4);
            if name == b"Linux\0" && ty == 0 && descsz == 4 {
                return u32_at(desc);
            }
            at = desc + descsz.next_multiple_of(4);
        }
    }
    panic!("the vDSO has no Linux version note");
}

#[test]
fn ring_buffer_sizes_are_checked_not_wrapped() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    // 0xfffff001 rounds past 32 bits: a clear error naming the map.
    let e = EbpfLoader::new()
        .load_file(fixture("ringbuf_sizes.bpf-el.o"))
        .unwrap_err();
    assert!(matches!(e, LoadError::MapDefinition { .. }), "{e}");
    assert!(e.to_string().contains("map 'huge_ring'"), "{e}");
    assert!(e.to_string().contains("4294963201"), "{e}");
    // Zero goes to the kernel as it is, and its refusal names the map.
    let e = EbpfLoader::new()
        .load_file(fixture("ringbuf_zero.bpf-el.o"))
        .unwrap_err();
    let LoadError::MapCreate { map, source, .. } = &e else {
        panic!("{e}");
    };
    assert_eq!(map, "zero_ring");
    assert_eq!(source.errno, Errno::INVAL);
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn reused_pins_keep_their_slots() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("slots") else {
        return;
    };
    let before = open_fds();
    {
        let first = EbpfLoader::new()
            .pin_dir(dir.to_path_buf())
            .load_file(fixture("pinned_slots.bpf-el.o"))
            .unwrap();
        let mut pinned = first.pinned.clone();
        pinned.sort();
        assert_eq!(pinned, vec![dir.join("slot_jumps"), dir.join("slot_outer")]);
        let jumps = ProgArray::new(first.map("slot_jumps").unwrap()).unwrap();
        let outer = MapOfMaps::new(first.map("slot_outer").unwrap()).unwrap();
        assert!(jumps.get_id(0).unwrap().is_some(), "created: slot filled");
        assert!(outer.get_id(&0u32.to_ne_bytes()).unwrap().is_some());
        // The user empties both slots of the pinned maps.
        assert!(jumps.clear(0).unwrap());
        assert!(
            first
                .map("slot_outer")
                .unwrap()
                .delete(&0u32.to_ne_bytes())
                .unwrap()
        );
        drop(first);

        let second = EbpfLoader::new()
            .pin_dir(dir.to_path_buf())
            .load_file(fixture("pinned_slots.bpf-el.o"))
            .unwrap();
        assert!(second.pinned.is_empty());
        let m = second.map("slot_jumps").unwrap();
        assert!(m.reused());
        assert_eq!(
            ProgArray::new(m).unwrap().get_id(0).unwrap(),
            None,
            "prog slot rewritten"
        );
        let o = second.map("slot_outer").unwrap();
        assert!(o.reused());
        assert_eq!(
            MapOfMaps::new(o)
                .unwrap()
                .get_id(&0u32.to_ne_bytes())
                .unwrap(),
            None,
            "map slot rewritten"
        );
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn a_failed_load_leaves_no_pin() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("failpin") else {
        return;
    };
    // Maps are pinned as they are made; a program that fails after that
    // must take the pins away again.
    let e = EbpfLoader::new()
        .pin_dir(dir.to_path_buf())
        .load_file(fixture("pinned_reject.bpf-el.o"));
    assert!(matches!(e, Err(LoadError::ProgLoad { .. })), "{e:?}");
    let left: Vec<_> = std::fs::read_dir(&*dir).unwrap().collect();
    assert!(left.is_empty(), "pins left behind: {left:?}");
}

#[test]
fn maps_move_out_and_programs_report_kernel_info() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ember::Ebpf>();
    send_sync::<ember::Map>();
    send_sync::<ember::Program>();

    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let mut e = EbpfLoader::new()
            .autoload("use_maps", false)
            .load_file(fixture("maps.bpf-el.o"))
            .unwrap();
        // A taken map is owned: its view moves into another thread.
        let array = e.take_map("array_map").unwrap();
        assert!(e.map("array_map").is_none());
        assert!(e.take_map("array_map").is_none());
        let read = std::thread::spawn(move || {
            let a = Array::<u64>::new(&array).unwrap();
            a.set(1, &42).unwrap();
            a.get(1).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(read, 42);

        use std::os::fd::AsFd;
        let p = e.program("tail_target").unwrap();
        let info = p.info().unwrap();
        assert_ne!(info.id.0, 0);
        assert_ne!(info.tag, [0; 8]);
        assert!(info.xlated_prog_len > 0);
        assert_eq!(info.prog_type, p.prog_type().0);
        // AsFd on programs and maps reaches the kernel objects of those
        // names (the names as the kernel keeps them).
        assert_eq!(prog_info(p.as_fd()).unwrap().name(), "tail_target");
        let m = e.map("hash_map").unwrap();
        assert_eq!(ember_sys::map_info(m.as_fd()).unwrap().name(), "hash_map");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn views_of_stacks_sockets_redirects_and_storage() {
    use ember::maps::{LocalStorage, RedirectMap, RedirectSlot, SockMap, StackTraceMap};
    use std::os::fd::AsFd;
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let e = EbpfLoader::new()
            .load_file(fixture("map_views.bpf-el.o"))
            .unwrap_or_else(|e| panic!("{e}"));

        // A raw tracepoint run records its own kernel stack.
        let prog = e.program("record_stack").unwrap();
        let mut args = [0u8; 16];
        let mut t = TestRun {
            data_in: &[],
            data_out: None,
            ctx_in: Some(&mut args),
            ctx_out: None,
            repeat: 0,
            flags: 0,
            cpu: 0,
            batch_size: 0,
        };
        prog_test_run(prog.fd(), &mut t).expect("raw_tp test run");
        let id = Array::<i64>::new(e.map("last_stack").unwrap())
            .unwrap()
            .get(0)
            .unwrap();
        assert!(id >= 0, "bpf_get_stackid failed: {id}");
        let stacks = StackTraceMap::new(e.map("stacks").unwrap()).unwrap();
        let ips = stacks.get(id as u32).unwrap().expect("the stack");
        assert!(!ips.is_empty() && ips.len() <= 32);
        // Kernel text addresses: the upper half of the address space.
        assert!(
            ips.iter().all(|&ip| ip >= 0xffff_8000_0000_0000),
            "{ips:x?}"
        );
        assert_eq!(
            stacks.ids().collect::<Result<Vec<_>, _>>().unwrap(),
            vec![id as u32]
        );
        assert!(stacks.remove(id as u32).unwrap());
        assert_eq!(stacks.get(id as u32).unwrap(), None);
        assert!(StackTraceMap::new(e.map("socks").unwrap()).is_err());

        // Sockets (a connected unix pair: no network traffic).
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let socks = SockMap::new(e.map("socks").unwrap()).unwrap();
        socks.set(&1u32.to_ne_bytes(), a.as_fd(), 0).unwrap();
        let cookie = socks
            .cookie(&1u32.to_ne_bytes())
            .unwrap()
            .expect("a cookie");
        assert_ne!(cookie, 0);
        assert_eq!(socks.cookie(&2u32.to_ne_bytes()).unwrap(), None);
        let hash = SockMap::new(e.map("sock_hash").unwrap()).unwrap();
        hash.set(&cookie.to_ne_bytes(), a.as_fd(), 0).unwrap();
        assert_eq!(hash.cookie(&cookie.to_ne_bytes()).unwrap(), Some(cookie));
        assert!(socks.remove(&1u32.to_ne_bytes()).unwrap());
        assert!(hash.remove(&cookie.to_ne_bytes()).unwrap());

        // Redirect slots: loopback (ifindex 1) and a CPU queue.
        let devs = RedirectMap::new(e.map("devs").unwrap()).unwrap();
        devs.set(2, 1, None).unwrap();
        assert_eq!(
            devs.get(2).unwrap(),
            Some(RedirectSlot {
                target: 1,
                prog_id: None
            })
        );
        let cpus = RedirectMap::new(e.map("cpus").unwrap()).unwrap();
        cpus.set(0, 192, None).unwrap();
        assert_eq!(cpus.get(0).unwrap().map(|s| s.target), Some(192));
        let err = cpus.set(0, 192, Some(prog.fd())).unwrap_err();
        assert!(err.to_string().contains("map 'cpus'"), "{err}");
        assert!(devs.remove(2).unwrap());

        // AF_XDP: a socket bound (copy mode) to loopback's queue 0, with a
        // UMEM of our own; binding sends nothing.
        let xsks = ember::maps::XskMap::new(e.map("xsks").unwrap()).unwrap();
        let (xsk, _umem) = af_xdp_on_loopback();
        xsks.set(1, xsk.as_fd()).unwrap();
        xsks.remove(1).unwrap();
        xsks.remove(1).unwrap();
        assert!(xsks.remove(9).is_err(), "past the end");
        let not_xsk = xsks.set(1, a.as_fd()).unwrap_err();
        assert_eq!(not_xsk.errno(), Some(Errno::OPNOTSUPP), "{not_xsk}");
        assert!(not_xsk.to_string().contains("map 'xsks'"), "{not_xsk}");

        // Local storage on this process (a pidfd) and on a socket.
        #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        #[repr(C)]
        struct Stored {
            a: u64,
            b: u64,
        }
        let pidfd = pidfd_self();
        let tasks = LocalStorage::<Stored>::new(e.map("task_store").unwrap()).unwrap();
        assert_eq!(tasks.get(pidfd.as_fd()).unwrap(), None);
        tasks
            .insert(pidfd.as_fd(), &Stored { a: 1, b: 2 }, 0)
            .unwrap();
        assert_eq!(
            tasks.get(pidfd.as_fd()).unwrap(),
            Some(Stored { a: 1, b: 2 })
        );
        assert!(tasks.remove(pidfd.as_fd()).unwrap());
        let sks = LocalStorage::<Stored>::new(e.map("sk_store").unwrap()).unwrap();
        sks.insert(a.as_fd(), &Stored { a: 3, b: 4 }, 0).unwrap();
        assert_eq!(sks.get(a.as_fd()).unwrap(), Some(Stored { a: 3, b: 4 }));
        assert!(LocalStorage::<u32>::new(e.map("sk_store").unwrap()).is_err());
        // On a file's inode, and on a cgroup (its directory's fd).
        let file = std::fs::File::open(fixture("map_views.bpf.c")).unwrap();
        let inodes = LocalStorage::<Stored>::new(e.map("inode_store").unwrap()).unwrap();
        inodes
            .insert(file.as_fd(), &Stored { a: 5, b: 6 }, 0)
            .unwrap();
        let again = std::fs::File::open(fixture("map_views.bpf.c")).unwrap();
        assert_eq!(
            inodes.get(again.as_fd()).unwrap(),
            Some(Stored { a: 5, b: 6 }),
            "stored on the inode, not the fd"
        );
        match cgroup2_mount() {
            Some(root) => {
                let cgroup = std::fs::File::open(root).unwrap();
                let cgroups = LocalStorage::<Stored>::new(e.map("cgrp_store").unwrap()).unwrap();
                cgroups
                    .insert(cgroup.as_fd(), &Stored { a: 7, b: 8 }, 0)
                    .unwrap();
                assert_eq!(
                    cgroups.get(cgroup.as_fd()).unwrap(),
                    Some(Stored { a: 7, b: 8 })
                );
                assert!(cgroups.remove(cgroup.as_fd()).unwrap());
            }
            None => skip("no cgroup2 mount for cgroup storage"),
        }
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

/// A pidfd of this process (`pidfd_open(getpid(), 0)`).
fn pidfd_self() -> std::os::fd::OwnedFd {
    use rustix::process::{PidfdFlags, getpid, pidfd_open};
    pidfd_open(getpid(), PidfdFlags::empty()).expect("pidfd_open")
}

/// An AF_XDP socket bound in copy mode to queue 0 of loopback, and the
/// page-aligned UMEM it registered (kept alive with the socket).
fn af_xdp_on_loopback() -> (std::os::fd::OwnedFd, Vec<u8>) {
    use rustix::net::xdp::{SocketAddrXdp, SocketAddrXdpFlags, XdpUmemReg, XdpUmemRegFlags};
    use rustix::net::{AddressFamily, SocketType, bind, socket, sockopt};
    const PAGE: usize = 4096;
    const CHUNKS: usize = 16;
    let mut umem = vec![0u8; (CHUNKS + 1) * PAGE];
    let addr = umem.as_mut_ptr().addr().next_multiple_of(PAGE);
    let fd = socket(AddressFamily::XDP, SocketType::RAW, None).expect("AF_XDP socket");
    sockopt::set_xdp_umem_reg(
        &fd,
        XdpUmemReg {
            addr: addr as u64,
            len: (CHUNKS * PAGE) as u64,
            chunk_size: PAGE as u32,
            headroom: 0,
            flags: XdpUmemRegFlags::empty(),
            tx_metadata_len: 0,
        },
    )
    .expect("XDP_UMEM_REG");
    sockopt::set_xdp_umem_fill_ring_size(&fd, 16).expect("fill ring");
    sockopt::set_xdp_umem_completion_ring_size(&fd, 16).expect("completion ring");
    sockopt::set_xdp_rx_ring_size(&fd, 16).expect("rx ring");
    bind(&fd, &SocketAddrXdp::new(SocketAddrXdpFlags::XDP_COPY, 1, 0)).expect("bind to lo queue 0");
    (fd, umem)
}

/// Where a cgroup2 hierarchy is mounted (`/sys/fs/cgroup` or, beside v1
/// controllers, `/sys/fs/cgroup/unified`).
fn cgroup2_mount() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, fs) = (f.next()?, f.next()?, f.next()?);
            (fs == "cgroup2").then(|| PathBuf::from(at))
        })
}
