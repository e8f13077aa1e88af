//! ember-sys's second batch of commands against this kernel, as root: map
//! batches and lookup-and-delete, id walks, get-fd-by-id and get-info
//! (programs, maps, BTF including the kernel's vmlinux, links), test runs
//! and run-time stats, raw tracepoint links, cgroup links and legacy
//! attachment with queries, and errors that name their command. Every value
//! is checked against what the kernel reports, and no fd is left behind.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use ember::ember_core::btf::{Btf, Kind};
use ember::ember_core::insn::Insn;
use ember_sys::cmd::{LINK_TYPE_CGROUP, LINK_TYPE_RAW_TRACEPOINT, STATS_RUN_TIME};
use ember_sys::{
    AsFd, BorrowedFd, BtfId, Errno, Id, LinkCreate, LinkExtra, LinkId, LinkTarget, MapCreate,
    MapFd, MapId, OwnedFd, ProgId, ProgLoad, TestRun, btf_info, btf_info_full, btf_load,
    enable_stats, get_fd_by_id, link_create, link_detach, link_info, link_update, map_create,
    map_info, obj_ids, prog_attach, prog_detach, prog_info, prog_load, prog_query, prog_test_run,
    raw_tracepoint_open,
};
use ember_tests::{EXIT, insns, is_root, open_fds, serial, skip};

/// Runs `f` and checks it closed every fd it opened.
fn no_leak(f: impl FnOnce()) {
    let before = open_fds();
    f();
    assert_eq!(open_fds(), before, "fds leaked");
}

const fn mov_r0(imm: i32) -> Insn {
    Insn {
        code: 0xb7,
        dst: 0,
        src: 0,
        off: 0,
        imm,
    }
}

const PROG_TYPE_SOCKET_FILTER: u32 = 1;
const PROG_TYPE_CGROUP_SKB: u32 = 8;
const PROG_TYPE_RAW_TRACEPOINT: u32 = 17;
const PROG_TYPE_TRACING: u32 = 26;
const CGROUP_INET_INGRESS: u32 = 0;
const TRACE_RAW_TP: u32 = 23;
const F_ALLOW_MULTI: u32 = 1 << 1;
const MAP_TYPE_HASH: u32 = 1;
const MAP_TYPE_ARRAY: u32 = 2;
const MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const MAP_TYPE_QUEUE: u32 = 22;

/// Loads `r0 = ret; exit` as `prog_type`, returning the fd or the verifier
/// log in the panic message.
fn load(prog_type: u32, attach_type: u32, ret: i32, name: &str) -> OwnedFd {
    try_load(prog_type, attach_type, 0, ret, name)
        .unwrap_or_else(|(e, log)| panic!("load {name}: {e}\n{log}"))
}

fn try_load(
    prog_type: u32,
    attach_type: u32,
    attach_btf_id: u32,
    ret: i32,
    name: &str,
) -> Result<OwnedFd, (ember_sys::ProgLoadError, String)> {
    let code = insns(&[mov_r0(ret), EXIT]);
    let license = CString::new("GPL").expect("license");
    let mut log = vec![0u8; 1 << 16];
    let mut p = ProgLoad {
        prog_type,
        expected_attach_type: attach_type,
        insns: &code,
        license: &license,
        name,
        log: Some(&mut log),
        log_level: 1,
        prog_flags: 0,
        btf: None,
        attach_btf_id,
        attach_btf_obj_fd: None,
        kern_version: 0,
        fd_array: &[],
        ifindex: 0,
    };
    prog_load(&mut p).map_err(|e| {
        let text = String::from_utf8_lossy(&log);
        (e, text.trim_end_matches('\0').to_owned())
    })
}

/// An `O_PATH` fd: open, but the kernel's `fdget()` ignores it, so every
/// bpf(2) command that takes it fails with `EBADF`.
fn path_fd() -> OwnedFd {
    const O_PATH: i32 = 0o10_000_000; // x86-64 and arm64
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_PATH)
        .open("/")
        .expect("O_PATH open")
        .into()
}

fn all_ids<I: Id>() -> Vec<I> {
    obj_ids::<I>()
        .collect::<Result<Vec<_>, _>>()
        .expect("id walk")
}

fn hash_map(key_size: u32, value_size: u32, max: u32, name: &str) -> MapFd {
    let fd = map_create(&MapCreate {
        map_type: MAP_TYPE_HASH,
        key_size,
        value_size,
        max_entries: max,
        name,
        ..Default::default()
    })
    .expect("hash map");
    MapFd::from_fd(fd).expect("map info")
}

/// Reads every element with `BPF_MAP_LOOKUP_BATCH`, `per_call` at a time.
fn read_all(m: &MapFd, per_call: usize) -> (BTreeMap<u32, u64>, usize) {
    let mut all = BTreeMap::new();
    let mut keys = vec![0u8; per_call * 4];
    let mut values = vec![0u8; per_call * 8];
    let mut token = vec![0u8; m.batch_token_len()];
    let mut next = vec![0u8; m.batch_token_len()];
    let mut calls = 0;
    let mut first = true;
    loop {
        let b = m
            .lookup_batch(
                (!first).then_some(&token[..]),
                &mut next,
                &mut keys,
                &mut values,
                0,
            )
            .expect("lookup batch");
        calls += 1;
        assert!(b.count <= per_call);
        for (k, v) in keys
            .chunks_exact(4)
            .zip(values.chunks_exact(8))
            .take(b.count)
        {
            let k = u32::from_ne_bytes(k.try_into().expect("4"));
            let v = u64::from_ne_bytes(v.try_into().expect("8"));
            assert!(all.insert(k, v).is_none(), "key {k} read twice");
        }
        if b.done {
            return (all, calls);
        }
        assert!(calls < 1000, "batch iteration does not end");
        token.copy_from_slice(&next);
        first = false;
    }
}

#[test]
fn batch_update_lookup_delete_on_a_hash_map() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let m = hash_map(4, 8, 64, "ember_batch");
        assert_eq!((m.key_size(), m.value_len()), (4, 8));

        // An empty map: the first call already ends the iteration.
        let (empty, calls) = read_all(&m, 8);
        assert!(empty.is_empty());
        assert_eq!(calls, 1);

        let want: BTreeMap<u32, u64> = (0..20u32)
            .map(|i| (i * 3 + 1, u64::from(i) << 33 | 7))
            .collect();
        let keys: Vec<u8> = want.keys().flat_map(|k| k.to_ne_bytes()).collect();
        let values: Vec<u8> = want.values().flat_map(|v| v.to_ne_bytes()).collect();
        assert_eq!(m.update_batch(&keys, &values, 0).expect("update batch"), 20);

        // Every key and value comes back, whatever the chunk size, and the
        // iteration ends with ENOENT.
        for per_call in [64, 8] {
            let (got, calls) = read_all(&m, per_call);
            assert_eq!(got, want, "{per_call} per call");
            assert!(calls >= 20usize.div_ceil(per_call));
        }
        // And single lookups agree.
        let mut v = [0u8; 8];
        m.lookup(&4u32.to_ne_bytes(), &mut v, 0).expect("lookup");
        assert_eq!(u64::from_ne_bytes(v), want[&4]);

        // Buffers that do not fit never reach the kernel.
        let mut tok = vec![0u8; m.batch_token_len()];
        let e = m
            .lookup_batch(None, &mut tok, &mut [0u8; 6], &mut [0u8; 16], 0)
            .unwrap_err();
        assert_eq!(
            (e.error.cmd, e.error.errno, e.count),
            ("BPF_MAP_LOOKUP_BATCH", Errno::INVAL, 0)
        );
        let e = m
            .lookup_batch(None, &mut tok, &mut [0u8; 8], &mut [0u8; 15], 0)
            .unwrap_err();
        assert_eq!(e.error.errno, Errno::INVAL);
        let e = m
            .lookup_batch(None, &mut [0u8; 3], &mut [0u8; 8], &mut [0u8; 16], 0)
            .unwrap_err();
        assert_eq!(e.error.errno, Errno::INVAL);
        let e = m.update_batch(&keys, &values[..150], 0).unwrap_err();
        assert_eq!(
            (e.error.cmd, e.error.errno),
            ("BPF_MAP_UPDATE_BATCH", Errno::INVAL)
        );

        // Delete five; deleting a missing key stops with ENOENT and says
        // how many went before it.
        assert_eq!(m.delete_batch(&keys[..20], 0).expect("delete batch"), 5);
        let mut missing = keys[20..28].to_vec();
        missing.extend_from_slice(&1u32.to_ne_bytes());
        let e = m.delete_batch(&missing, 0).unwrap_err();
        assert_eq!(
            (e.error.cmd, e.error.errno, e.count),
            ("BPF_MAP_DELETE_BATCH", Errno::NOENT, 2)
        );
        let (left, _) = read_all(&m, 64);
        let expect: BTreeMap<u32, u64> = want.iter().skip(7).map(|(&k, &v)| (k, v)).collect();
        assert_eq!(left, expect);

        // Lookup-and-delete drains the rest.
        let mut ks = vec![0u8; 64 * 4];
        let mut vs = vec![0u8; 64 * 8];
        let mut out = vec![0u8; m.batch_token_len()];
        let b = m
            .lookup_and_delete_batch(None, &mut out, &mut ks, &mut vs, 0)
            .expect("lookup and delete batch");
        assert_eq!((b.count, b.done), (13, true));
        let mut k = [0u8; 4];
        assert_eq!(m.next_key(None, &mut k).unwrap_err().errno, Errno::NOENT);
    });
}

#[test]
fn batch_on_an_array_and_per_cpu_value_lengths() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let fd = map_create(&MapCreate {
            map_type: MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: 5,
            name: "ember_barray",
            ..Default::default()
        })
        .expect("array");
        let m = MapFd::from_fd(fd).expect("info");
        let keys: Vec<u8> = (0..5u32).flat_map(u32::to_ne_bytes).collect();
        let values: Vec<u8> = (0..5u64).flat_map(|v| (v * 11).to_ne_bytes()).collect();
        assert_eq!(m.update_batch(&keys, &values, 0).expect("update"), 5);
        let (got, _) = read_all(&m, 2);
        assert_eq!(got, (0..5u32).map(|k| (k, u64::from(k) * 11)).collect());

        // Per-CPU maps write value size rounded to 8, once per possible CPU.
        let cpus = possible_cpus();
        let fd = map_create(&MapCreate {
            map_type: MAP_TYPE_PERCPU_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            name: "ember_pcpu",
            ..Default::default()
        })
        .expect("per-cpu array");
        let m = MapFd::from_fd(fd).expect("info");
        assert_eq!(m.value_len(), 8 * cpus as usize);
        let mut v = vec![0u8; m.value_len()];
        m.lookup(&0u32.to_ne_bytes(), &mut v, 0).expect("lookup");
        let e = m.lookup(&0u32.to_ne_bytes(), &mut v[..8], 0).unwrap_err();
        assert_eq!(e.errno, Errno::INVAL);
    });
}

/// CPUs in `/sys/devices/system/cpu/possible` ("0-3", "0,2-5").
fn possible_cpus() -> u32 {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible");
    s.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<u32>().expect("cpu") - a.parse::<u32>().expect("cpu") + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn lookup_and_delete_pops_a_queue_and_a_hash() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let fd = map_create(&MapCreate {
            map_type: MAP_TYPE_QUEUE,
            key_size: 0,
            value_size: 4,
            max_entries: 4,
            name: "ember_queue",
            ..Default::default()
        })
        .expect("queue");
        let q = MapFd::from_fd(fd).expect("info");
        for v in [10u32, 20, 30] {
            q.update(&[], &v.to_ne_bytes(), 0).expect("push");
        }
        let mut got = vec![];
        let mut v = [0u8; 4];
        loop {
            match q.lookup_and_delete(&[], &mut v, 0) {
                Ok(()) => got.push(u32::from_ne_bytes(v)),
                Err(e) => {
                    assert_eq!(
                        (e.cmd, e.errno),
                        ("BPF_MAP_LOOKUP_AND_DELETE_ELEM", Errno::NOENT)
                    );
                    break;
                }
            }
        }
        assert_eq!(got, [10, 20, 30], "FIFO order");
        assert_eq!(
            q.lookup_and_delete(&[], &mut [0u8; 2], 0)
                .unwrap_err()
                .errno,
            Errno::INVAL
        );

        let h = hash_map(4, 8, 4, "ember_lad");
        h.update(&5u32.to_ne_bytes(), &99u64.to_ne_bytes(), 0)
            .expect("insert");
        let mut v = [0u8; 8];
        h.lookup_and_delete(&5u32.to_ne_bytes(), &mut v, 0)
            .expect("lookup and delete");
        assert_eq!(u64::from_ne_bytes(v), 99);
        assert_eq!(
            h.lookup(&5u32.to_ne_bytes(), &mut v, 0).unwrap_err().errno,
            Errno::NOENT
        );
    });
}

/// One `int`, as in ember-core's crate docs.
fn tiny_btf() -> Vec<u8> {
    let mut b = vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
    for w in [0u32, 16, 16, 5] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    for w in [1u32, 0x0100_0000, 4, 0x0100_0020] {
        b.extend_from_slice(&w.to_le_bytes());
    }
    b.extend_from_slice(b"\0int\0");
    b
}

#[test]
fn ids_reopen_by_id_and_info_match() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        // A map.
        let fd = map_create(&MapCreate {
            map_type: MAP_TYPE_HASH,
            key_size: 8,
            value_size: 16,
            max_entries: 7,
            map_flags: 1, // BPF_F_NO_PREALLOC
            name: "ember_ids",
            ..Default::default()
        })
        .expect("map");
        let mi = map_info(fd.as_fd()).expect("map info");
        assert_eq!(
            (
                mi.map_type,
                mi.key_size,
                mi.value_size,
                mi.max_entries,
                mi.map_flags,
                mi.name()
            ),
            (MAP_TYPE_HASH, 8, 16, 7, 1, "ember_ids")
        );
        assert_ne!(mi.id, MapId(0));
        assert_eq!(mi.btf_id, BtfId(0));
        assert!(all_ids::<MapId>().contains(&mi.id));
        let again = get_fd_by_id(mi.id, 0).expect("map by id");
        assert_eq!(map_info(again.as_fd()).expect("info"), mi);

        // A program.
        let p = load(PROG_TYPE_SOCKET_FILTER, 0, 0, "ember_ids_prog");
        let pi = prog_info(p.as_fd()).expect("prog info");
        assert_eq!(
            (pi.prog_type, pi.name(), pi.xlated_prog_len, pi.nr_map_ids),
            (PROG_TYPE_SOCKET_FILTER, "ember_ids_prog", 16, 0)
        );
        assert!(pi.gpl_compatible);
        assert_eq!(pi.created_by_uid, 0);
        assert!(pi.verified_insns >= 2, "{pi:?}");
        assert_ne!(pi.tag, [0; 8]);
        assert!(all_ids::<ProgId>().contains(&pi.id));
        let again = get_fd_by_id(pi.id, 0).expect("prog by id");
        let pi2 = prog_info(again.as_fd()).expect("info");
        assert_eq!((pi2.id, pi2.tag, pi2.name()), (pi.id, pi.tag, pi.name()));
        // Tags are the kernel's hash of the instructions: the same code
        // loaded again has the same tag and a new id.
        let twin = load(PROG_TYPE_SOCKET_FILTER, 0, 0, "ember_twin");
        let ti = prog_info(twin.as_fd()).expect("info");
        assert_eq!(ti.tag, pi.tag);
        assert!(ti.id > pi.id);

        // A BTF object: info, and its bytes read back.
        let blob = tiny_btf();
        let b = btf_load(&blob, None).expect("btf");
        let bi = btf_info(b.as_fd()).expect("btf info");
        assert_eq!(
            (bi.btf_size as usize, bi.kernel_btf, bi.name_len, bi.name()),
            (blob.len(), false, 0, "")
        );
        assert!(all_ids::<BtfId>().contains(&bi.id));
        let mut data = vec![0xaa; 3];
        let full = btf_info_full(b.as_fd(), Some(&mut data)).expect("btf data");
        assert_eq!(data, blob);
        assert_eq!(full.id, bi.id);
        let again = get_fd_by_id(bi.id, 0).expect("btf by id");
        assert_eq!(btf_info(again.as_fd()).expect("info"), bi);
        // The BTF reader will not hand pointers to a fd that is not BTF.
        let e = btf_info_full(fd.as_fd(), Some(&mut data)).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_OBJ_GET_INFO_BY_FD", Errno::INVAL));

        // Ids nobody holds.
        for e in [
            get_fd_by_id(ProgId(u32::MAX), 0),
            get_fd_by_id(MapId(u32::MAX), 0),
            get_fd_by_id(BtfId(u32::MAX), 0),
            get_fd_by_id(LinkId(u32::MAX), 0),
        ] {
            let e = e.unwrap_err();
            assert_eq!(e.errno, Errno::NOENT, "{}", e.cmd);
        }
        let e = get_fd_by_id(MapId(u32::MAX), 0).unwrap_err();
        assert_eq!(e.cmd, "BPF_MAP_GET_FD_BY_ID");
        // Ids stay below INT_MAX; starting at or above it is EINVAL.
        let last = u32::try_from(i32::MAX).expect("fits") - 1;
        assert_eq!(ember_sys::get_next_id(MapId(last)), Ok(None));
        let e = ember_sys::get_next_id(LinkId(u32::MAX)).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_LINK_GET_NEXT_ID", Errno::INVAL));
    });
}

#[test]
fn vmlinux_btf_by_id_matches_sysfs() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let Ok(sysfs) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return skip("no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)");
    };
    no_leak(|| {
        let mut found = vec![];
        let mut data = Vec::new();
        for id in all_ids::<BtfId>() {
            let fd = match get_fd_by_id(id, 0) {
                Ok(fd) => fd,
                // Freed since the walk.
                Err(e) if e.errno == Errno::NOENT => continue,
                Err(e) => panic!("{e}"),
            };
            let info = btf_info(fd.as_fd()).expect("info");
            assert_eq!(info.id, id);
            if !(info.kernel_btf && info.name_len == 7) {
                continue;
            }
            let full = btf_info_full(fd.as_fd(), Some(&mut data)).expect("data");
            if full.name() == "vmlinux" {
                assert!(full.kernel_btf);
                assert_eq!(full.btf_size as usize, data.len());
                found.push(id);
                assert!(
                    data == sysfs,
                    "raw BTF differs from /sys/kernel/btf/vmlinux"
                );
            }
        }
        assert_eq!(found.len(), 1, "vmlinux BTF ids: {found:?}");
    });
}

#[test]
fn test_run_returns_r0_and_stats_count_runs() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let p = load(PROG_TYPE_SOCKET_FILTER, 0, 7, "ember_seven");
        let packet: Vec<u8> = (0..64u8).collect();
        let mut out = [0u8; 128];
        let r = prog_test_run(
            p.as_fd(),
            &mut TestRun {
                data_in: &packet,
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            },
        )
        .expect("test run");
        assert_eq!(r.retval, 7);
        assert_eq!(r.data_size_out, 64);
        // Socket filters see the packet from L3: the kernel pulls the
        // Ethernet header and hands it back zeroed.
        assert!(out[..14].iter().all(|&b| b == 0));
        assert_eq!(&out[14..64], &packet[14..]);
        assert!(out[64..].iter().all(|&b| b == 0));

        // A short output buffer: the kernel stops at its end and says
        // ENOSPC; the byte after it is untouched.
        let mut guard = [0xeeu8; 16];
        let e = prog_test_run(
            p.as_fd(),
            &mut TestRun {
                data_in: &packet,
                data_out: Some(&mut guard[..8]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_PROG_TEST_RUN", Errno::NOSPC));
        assert_eq!(&guard[..8], &[0; 8]);
        assert!(guard[8..].iter().all(|&b| b == 0xee));

        // Too short for an Ethernet header.
        let e = prog_test_run(
            p.as_fd(),
            &mut TestRun {
                data_in: &packet[..4],
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.errno, Errno::INVAL);

        // With run-time stats on, runs are counted.
        let before = prog_info(p.as_fd()).expect("info").run_cnt;
        let stats = enable_stats(STATS_RUN_TIME).expect("enable stats");
        prog_test_run(
            p.as_fd(),
            &mut TestRun {
                data_in: &packet,
                repeat: 100,
                ..Default::default()
            },
        )
        .expect("test run");
        let info = prog_info(p.as_fd()).expect("info");
        assert!(info.run_cnt >= before + 100, "{} runs", info.run_cnt);
        assert!(info.run_time_ns > 0);
        drop(stats);
        let e = enable_stats(99).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_ENABLE_STATS", Errno::INVAL));
    });
}

#[test]
fn raw_tracepoint_links() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let p = load(PROG_TYPE_RAW_TRACEPOINT, 0, 0, "ember_rawtp");
        let pi = prog_info(p.as_fd()).expect("info");
        let name = CString::new("sys_enter").expect("name");
        let link = raw_tracepoint_open(p.as_fd(), Some(&name)).expect("raw tracepoint");
        let li = link_info(link.as_fd()).expect("link info");
        assert_eq!(
            (li.link_type, li.prog_id, li.raw_tracepoint_name_len()),
            (LINK_TYPE_RAW_TRACEPOINT, pi.id, Some(10))
        );
        assert_eq!(li.cgroup_id(), None);
        assert!(all_ids::<LinkId>().contains(&li.id));
        let again = get_fd_by_id(li.id, 0).expect("link by id");
        assert_eq!(link_info(again.as_fd()).expect("info"), li);
        drop((again, link));
        assert!(!all_ids::<LinkId>().contains(&li.id), "closing detaches");

        let bogus = CString::new("ember_no_such_tracepoint").expect("name");
        let e = raw_tracepoint_open(p.as_fd(), Some(&bogus)).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_RAW_TRACEPOINT_OPEN", Errno::NOENT));
        // Without a name the kernel wants a BTF-typed program.
        // (It copies the name from user memory: NULL is EFAULT.)
        let e = raw_tracepoint_open(p.as_fd(), None).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_RAW_TRACEPOINT_OPEN", Errno::FAULT));

        // The name-less form proper: a tp_btf program.
        let Ok(vmlinux) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let btf = Btf::parse(&vmlinux).expect("vmlinux BTF");
        let target = btf
            .find_by_name_kind("btf_trace_sys_enter", Kind::Typedef)
            .expect("btf_trace_sys_enter");
        match try_load(PROG_TYPE_TRACING, TRACE_RAW_TP, target.0, 0, "ember_tp_btf") {
            Ok(t) => {
                let link = raw_tracepoint_open(t.as_fd(), None).expect("tp_btf attach");
                let li = link_info(link.as_fd()).expect("info");
                assert_eq!(li.link_type, LINK_TYPE_RAW_TRACEPOINT);
                assert_eq!(li.prog_id, prog_info(t.as_fd()).expect("info").id);
                assert_eq!(li.raw_tracepoint_name_len(), Some(10));
                eprintln!("tp_btf program attached with a NULL name");
            }
            Err((e, log)) => eprintln!("tp_btf load refused here: {e}\n{log}"),
        }
    });
}

/// A cgroup v2 directory made for the test; on drop it detaches whatever
/// the test left attached and removes itself.
struct Cgroup {
    path: std::path::PathBuf,
    dir: std::fs::File,
}

impl Cgroup {
    fn new() -> Option<Cgroup> {
        let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
        let root = mounts.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, fs) = (f.next()?, f.next()?, f.next()?);
            (fs == "cgroup2").then(|| at.to_owned())
        })?;
        let path = std::path::Path::new(&root).join(format!("ember-test-{}", std::process::id()));
        std::fs::create_dir(&path).ok()?;
        let dir = std::fs::File::open(&path).ok()?;
        Some(Cgroup { path, dir })
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }

    /// Ids attached for ingress, and the query's report.
    fn query(&self, room: usize) -> (Vec<ProgId>, Vec<u32>, ember_sys::ProgQuery) {
        let mut ids = vec![ProgId(0); room];
        let mut flags = vec![0u32; room];
        let q = prog_query(
            self.fd(),
            CGROUP_INET_INGRESS,
            0,
            &mut ids,
            Some(&mut flags),
        )
        .expect("query");
        ids.truncate(q.written);
        flags.truncate(q.written);
        (ids, flags, q)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let (ids, _, _) = self.query(16);
        for id in ids {
            if let Ok(p) = get_fd_by_id(id, 0) {
                let _ = prog_detach(Some(p.as_fd()), self.fd(), CGROUP_INET_INGRESS);
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[test]
fn cgroup_links_and_legacy_attach_with_queries() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    let before = open_fds();
    {
        let Some(cg) = Cgroup::new() else {
            return skip("no writable cgroup v2 hierarchy");
        };
        let ino = std::fs::metadata(&cg.path).expect("stat").ino();
        let p1 = load(PROG_TYPE_CGROUP_SKB, CGROUP_INET_INGRESS, 1, "ember_cg1");
        let p2 = load(PROG_TYPE_CGROUP_SKB, CGROUP_INET_INGRESS, 1, "ember_cg2");
        let id1 = prog_info(p1.as_fd()).expect("info").id;
        let id2 = prog_info(p2.as_fd()).expect("info").id;
        let (ids0, _, q0) = cg.query(4);
        assert!(ids0.is_empty());
        assert_eq!(q0.prog_cnt, 0);

        // A link.
        let link = link_create(&LinkCreate {
            prog: p1.as_fd(),
            target: LinkTarget::Fd(cg.fd()),
            attach_type: CGROUP_INET_INGRESS,
            flags: 0,
            extra: LinkExtra::None,
        })
        .expect("link create");
        let (ids, flags, q) = cg.query(4);
        assert_eq!(ids, [id1]);
        assert_eq!((q.prog_cnt, q.attach_flags), (1, F_ALLOW_MULTI));
        // A cgroup link is a multi attachment.
        assert_eq!(flags, [F_ALLOW_MULTI]);
        // Kernels with cgroup revisions (6.16+) bump it on every change and
        // write it at offset 56 of the attr, past the 6.1 header's struct.
        assert!(
            q.revision == 0 || q.revision > q0.revision,
            "revision {} then {}",
            q0.revision,
            q.revision
        );
        let li = link_info(link.as_fd()).expect("link info");
        assert_eq!(
            (li.link_type, li.prog_id, li.cgroup_id(), li.attach_type()),
            (LINK_TYPE_CGROUP, id1, Some(ino), Some(CGROUP_INET_INGRESS))
        );
        assert!(all_ids::<LinkId>().contains(&li.id));

        // Swap its program; a stale expectation is refused.
        link_update(link.as_fd(), p2.as_fd(), Some(p1.as_fd())).expect("link update");
        assert_eq!(cg.query(4).0, [id2]);
        assert_eq!(link_info(link.as_fd()).expect("info").prog_id, id2);
        let e = link_update(link.as_fd(), p1.as_fd(), Some(p1.as_fd())).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_LINK_UPDATE", Errno::PERM));
        link_update(link.as_fd(), p1.as_fd(), None).expect("link update");
        assert_eq!(cg.query(4).0, [id1]);

        // Detach: the fd stays, the attachment goes.
        link_detach(link.as_fd()).expect("link detach");
        let (ids, _, q) = cg.query(4);
        assert!(ids.is_empty());
        assert_eq!(q.prog_cnt, 0);
        drop(link);

        // The legacy API, two programs.
        prog_attach(
            p1.as_fd(),
            cg.fd(),
            CGROUP_INET_INGRESS,
            F_ALLOW_MULTI,
            None,
        )
        .expect("attach 1");
        prog_attach(
            p2.as_fd(),
            cg.fd(),
            CGROUP_INET_INGRESS,
            F_ALLOW_MULTI,
            None,
        )
        .expect("attach 2");
        let (ids, flags, q) = cg.query(4);
        assert_eq!(ids, [id1, id2]);
        assert_eq!(flags, [F_ALLOW_MULTI, F_ALLOW_MULTI]);
        assert_eq!((q.prog_cnt, q.attach_flags), (2, F_ALLOW_MULTI));
        // Room for one: the kernel fills it and reports both.
        let (ids, _, q) = cg.query(1);
        assert_eq!((ids, q.prog_cnt, q.written), (vec![id1], 2, 1));
        // Room for none: just the count.
        let q = prog_query(cg.fd(), CGROUP_INET_INGRESS, 0, &mut [], None).expect("count");
        assert_eq!((q.prog_cnt, q.written), (2, 0));
        // Attaching the same program twice is refused (EINVAL on 6.x).
        let e = prog_attach(
            p1.as_fd(),
            cg.fd(),
            CGROUP_INET_INGRESS,
            F_ALLOW_MULTI,
            None,
        )
        .unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_PROG_ATTACH", Errno::INVAL));

        prog_detach(Some(p1.as_fd()), cg.fd(), CGROUP_INET_INGRESS).expect("detach 1");
        assert_eq!(cg.query(4).0, [id2]);
        prog_detach(Some(p2.as_fd()), cg.fd(), CGROUP_INET_INGRESS).expect("detach 2");
        assert!(cg.query(4).0.is_empty());
        let e = prog_detach(Some(p2.as_fd()), cg.fd(), CGROUP_INET_INGRESS).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_PROG_DETACH", Errno::NOENT));
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn errors_name_the_command_and_the_errno() {
    let _serial = serial();
    if !is_root() {
        return;
    }
    no_leak(|| {
        let bad = path_fd();
        let b = bad.as_fd();
        let cases = [
            ("BPF_OBJ_GET_INFO_BY_FD", prog_info(b).map(drop)),
            ("BPF_OBJ_GET_INFO_BY_FD", map_info(b).map(drop)),
            ("BPF_OBJ_GET_INFO_BY_FD", btf_info(b).map(drop)),
            ("BPF_OBJ_GET_INFO_BY_FD", link_info(b).map(drop)),
            ("BPF_LINK_DETACH", link_detach(b)),
            ("BPF_LINK_UPDATE", link_update(b, b, None)),
            (
                "BPF_PROG_TEST_RUN",
                prog_test_run(b, &mut TestRun::default()).map(drop),
            ),
            (
                "BPF_RAW_TRACEPOINT_OPEN",
                raw_tracepoint_open(b, Some(c"sys_enter")).map(drop),
            ),
            (
                "BPF_PROG_QUERY",
                prog_query(b, CGROUP_INET_INGRESS, 0, &mut [ProgId(0); 2], None).map(drop),
            ),
            (
                "BPF_PROG_DETACH",
                prog_detach(Some(b), b, CGROUP_INET_INGRESS),
            ),
            (
                "BPF_LINK_CREATE",
                link_create(&LinkCreate {
                    prog: b,
                    target: LinkTarget::Fd(b),
                    attach_type: CGROUP_INET_INGRESS,
                    flags: 0,
                    extra: LinkExtra::None,
                })
                .map(drop),
            ),
        ];
        for (cmd, r) in cases {
            let e = r.unwrap_err();
            // BPF_OBJ_GET_INFO_BY_FD has said EBADFD, not EBADF, for a
            // missing file since it was added (Linux 4.13).
            let want = if cmd == "BPF_OBJ_GET_INFO_BY_FD" {
                Errno::BADFD
            } else {
                Errno::BADF
            };
            assert_eq!((e.cmd, e.errno), (cmd, want), "{e}");
        }
        // A MapFd is only made from a real map: its sizes come from the
        // kernel, so a bad fd fails here, before any element command.
        let e = MapFd::new(path_fd(), 4, 8).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_OBJ_GET_INFO_BY_FD", Errno::BADFD));

        // A real fd of the wrong kind: EINVAL, not EBADF.
        let null: OwnedFd = std::fs::File::open("/dev/null").expect("null").into();
        let e = prog_info(null.as_fd()).unwrap_err();
        assert_eq!((e.cmd, e.errno), ("BPF_OBJ_GET_INFO_BY_FD", Errno::INVAL));
    });
}
