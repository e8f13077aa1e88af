//! Every command against the fake kernel: the attr bytes it sends (command,
//! field offsets, pointer/length pairs) and how it maps results and errnos.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::offset_of;

use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;

use super::*;
use crate::attr::*;
use crate::call::Attr;
use crate::raw::fake::{self, Call, Fake, Reply};

/// A real fd to lend (the fake never looks at it).
fn some_fd() -> OwnedFd {
    rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap()
}

fn raw(fd: &OwnedFd) -> u32 {
    u32::try_from(fd.as_raw_fd()).unwrap()
}

fn addr<T>(s: &[T]) -> u64 {
    s.as_ptr().addr() as u64
}

/// A reply to `BPF_OBJ_GET_INFO_BY_FD` that fills `(offset, u32)` pairs of
/// the info struct.
fn info_reply(fields: Vec<(usize, u32)>) -> Reply {
    Reply::attr(move |a| {
        let info = fake::nested(a, offset_of!(InfoAttr, info));
        for &(off, v) in &fields {
            info.put_u32(off, v);
        }
        Ok(0)
    })
}

/// A map fd with these sizes, through the fake's answer to `map_info`.
fn map_fd(fake: &Fake, map_type: u32, key: u32, value: u32) -> MapFd {
    type M = BpfMapInfo;
    fake.push([info_reply(vec![
        (offset_of!(M, type_), map_type),
        (offset_of!(M, key_size), key),
        (offset_of!(M, value_size), value),
    ])]);
    MapFd::from_fd(some_fd()).unwrap()
}

fn last(fake: &Fake) -> Call {
    fake.calls().pop().unwrap()
}

#[test]
fn without_a_fake_nothing_reaches_the_kernel() {
    let e = map_create(&MapCreate::default()).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_MAP_CREATE", Errno::NOSYS));
}

#[test]
fn map_create_sends_every_field() {
    type A = MapCreateAttr;
    let f = Fake::install();
    let (inner, btf) = (some_fd(), some_fd());
    let fd = map_create(&MapCreate {
        map_type: 1,
        key_size: 4,
        value_size: 8,
        max_entries: 16,
        map_flags: 0x40,
        name: "a_name_longer_than_fifteen",
        inner_map_fd: Some(inner.as_fd()),
        btf: Some((btf.as_fd(), 3, 5)),
        map_extra: 0x1234_5678_9abc,
        numa_node: 2,
        btf_vmlinux_value_type_id: 7,
    })
    .unwrap();
    assert!(fd.as_raw_fd() > 2);
    let c = f.only();
    assert_eq!(c.cmd(), Some(Cmd::MapCreate));
    assert_eq!(c.attr().len(), 72);
    assert_eq!(c.u32(offset_of!(A, map_type)), 1);
    assert_eq!(c.u32(offset_of!(A, key_size)), 4);
    assert_eq!(c.u32(offset_of!(A, value_size)), 8);
    assert_eq!(c.u32(offset_of!(A, max_entries)), 16);
    assert_eq!(c.u32(offset_of!(A, map_flags)), 0x40);
    assert_eq!(c.u32(offset_of!(A, numa_node)), 2);
    assert_eq!(c.u32(offset_of!(A, inner_map_fd)), raw(&inner));
    assert_eq!(c.u32(offset_of!(A, btf_fd)), raw(&btf));
    assert_eq!(c.u32(offset_of!(A, btf_key_type_id)), 3);
    assert_eq!(c.u32(offset_of!(A, btf_value_type_id)), 5);
    assert_eq!(c.u32(offset_of!(A, btf_vmlinux_value_type_id)), 7);
    assert_eq!(c.u64(offset_of!(A, map_extra)), 0x1234_5678_9abc);
    let name = &c.attr()[offset_of!(A, map_name)..][..16];
    assert_eq!(name, b"a_name_longer_t\0");
    f.push([Reply::Err(Errno::PERM)]);
    let e = map_create(&MapCreate::default()).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_MAP_CREATE", Errno::PERM));
}

#[test]
fn map_fd_sizes_come_from_the_kernel() {
    let f = Fake::install();
    let m = map_fd(&f, 1, 4, 12);
    assert_eq!(
        (m.key_size(), m.value_len(), m.batch_token_len()),
        (4, 12, 4)
    );
    let c = f.only();
    assert_eq!(c.cmd(), Some(Cmd::ObjGetInfoByFd));
    assert_eq!(c.u32(offset_of!(InfoAttr, info_len)), 88);
    assert_ne!(c.u64(offset_of!(InfoAttr, info)), 0);
    // A caller's wrong belief is refused.
    f.push([info_reply(vec![(offset_of!(BpfMapInfo, key_size), 4)])]);
    assert_eq!(MapFd::new(some_fd(), 8, 0).unwrap_err().errno, Errno::INVAL);
    // Per-CPU values are rounded to 8 and multiplied by the CPUs (read
    // from sysfs, which miri's isolation hides).
    if cfg!(miri) {
        return;
    }
    let p = map_fd(&f, 6, 4, 12);
    let cpus = usize::try_from(crate::cpu::possible_cpus().unwrap()).unwrap();
    assert_eq!(p.value_len(), 16 * cpus);
}

#[test]
fn element_commands() {
    type E = MapElemAttr;
    let f = Fake::install();
    let m = map_fd(&f, 1, 4, 8);
    let key = 7u32.to_ne_bytes();
    let mut value = [0u8; 8];
    f.push([Reply::attr(|a| {
        fake::out_bytes(a, offset_of!(MapElemAttr, value)).copy_from_slice(&[9; 8]);
        Ok(0)
    })]);
    m.lookup(&key, &mut value, 4).unwrap();
    assert_eq!(value, [9; 8]);
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapLookupElem));
    assert_eq!(c.u32(offset_of!(E, map_fd)), m.fd().as_raw_fd() as u32);
    assert_eq!(c.u64(offset_of!(E, key)), addr(&key));
    assert_eq!(c.u64(offset_of!(E, value)), addr(&value));
    assert_eq!(c.u64(offset_of!(E, flags)), 4);

    m.update(&key, &value, 2).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapUpdateElem));
    assert_eq!(c.u64(offset_of!(E, value)), addr(&value));
    assert_eq!(c.u64(offset_of!(E, flags)), 2);

    f.push([Reply::Err(Errno::NOENT)]);
    let e = m.delete(&key).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_MAP_DELETE_ELEM", Errno::NOENT));
    assert_eq!(last(&f).u64(offset_of!(E, value)), 0);

    let mut next = [0u8; 4];
    m.next_key(None, &mut next).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapGetNextKey));
    assert_eq!(
        (c.u64(offset_of!(E, key)), c.u64(offset_of!(E, value))),
        (0, addr(&next))
    );

    m.lookup_and_delete(&key, &mut value, 0).unwrap();
    assert_eq!(last(&f).cmd(), Some(Cmd::MapLookupAndDeleteElem));

    m.freeze().unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapFreeze));
    assert_eq!((c.u64(8), c.u64(16)), (0, 0));

    // Slices that do not fit the map never reach the kernel.
    let n = f.calls().len();
    assert_eq!(
        m.lookup(&[0; 3], &mut value, 0).unwrap_err().errno,
        Errno::INVAL
    );
    assert_eq!(
        m.lookup(&key, &mut [0; 7], 0).unwrap_err().errno,
        Errno::INVAL
    );
    assert_eq!(m.update(&key, &[0; 7], 0).unwrap_err().errno, Errno::INVAL);
    assert_eq!(
        m.next_key(None, &mut [0; 5]).unwrap_err().errno,
        Errno::INVAL
    );
    assert_eq!(f.calls().len(), n);
}

#[test]
fn keyless_maps_send_a_null_key() {
    let f = Fake::install();
    let q = map_fd(&f, 22, 0, 4);
    let mut v = [0u8; 4];
    q.lookup_and_delete(&[], &mut v, 0).unwrap();
    q.update(&[], &v, 0).unwrap();
    for c in &f.calls()[1..] {
        assert_eq!(c.u64(offset_of!(MapElemAttr, key)), 0);
    }
}

#[test]
fn batch_commands() {
    type B = BatchAttr;
    let f = Fake::install();
    let m = map_fd(&f, 1, 4, 8);
    let (mut out, mut keys, mut values) = ([0u8; 4], [0u8; 8], [0u8; 16]);
    f.push([Reply::attr(|a| {
        a.put_u32(offset_of!(BatchAttr, count), 1);
        fake::out_bytes(a, offset_of!(BatchAttr, keys))[..4].copy_from_slice(&[1; 4]);
        Err(Errno::NOENT)
    })]);
    let b = m
        .lookup_batch(None, &mut out, &mut keys, &mut values, 0)
        .unwrap();
    assert_eq!(
        b,
        Batch {
            count: 1,
            done: true
        }
    );
    assert_eq!(keys[..4], [1; 4]);
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapLookupBatch));
    assert_eq!(c.u64(offset_of!(B, in_batch)), 0);
    assert_eq!(c.u64(offset_of!(B, out_batch)), addr(&out));
    assert_eq!(c.u64(offset_of!(B, keys)), addr(&keys));
    assert_eq!(c.u64(offset_of!(B, values)), addr(&values));
    assert_eq!(c.u32(offset_of!(B, count)), 2);
    assert_eq!(c.u32(offset_of!(B, map_fd)), m.fd().as_raw_fd() as u32);

    let tok = out;
    m.lookup_and_delete_batch(Some(&tok), &mut out, &mut keys, &mut values, 0)
        .unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapLookupAndDeleteBatch));
    assert_eq!(c.u64(offset_of!(B, in_batch)), addr(&tok));

    f.push([Reply::attr(|a| {
        a.put_u32(offset_of!(BatchAttr, count), 1);
        Err(Errno::NOENT)
    })]);
    let e = m.update_batch(&keys, &values, 4).unwrap_err();
    assert_eq!((e.error.errno, e.count), (Errno::NOENT, 1));
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::MapUpdateBatch));
    assert_eq!(c.u64(offset_of!(B, elem_flags)), 4);

    // The fake leaves `count` as sent: all processed.
    assert_eq!(m.delete_batch(&keys, 0), Ok(2));
    assert_eq!(last(&f).cmd(), Some(Cmd::MapDeleteBatch));
    // Partial keys, short values or tokens: refused before the call.
    let n = f.calls().len();
    assert!(m.delete_batch(&keys[..5], 0).is_err());
    assert!(m.update_batch(&keys, &values[..8], 0).is_err());
    assert!(
        m.lookup_batch(None, &mut [0; 3], &mut keys, &mut values, 0)
            .is_err()
    );
    assert_eq!(f.calls().len(), n);
}

#[test]
fn prog_load_sends_pointers_and_counts() {
    type P = ProgLoadAttr;
    let f = Fake::install();
    let (btf, kfunc, target) = (some_fd(), some_fd(), some_fd());
    let insns = [0u8; 24];
    let fi = [0u8; 16];
    let li = [0u8; 32];
    let mut log = vec![0u8; 64];
    let fds = [btf.as_fd(), kfunc.as_fd()];
    f.push([Reply::attr(|a| {
        fake::out_bytes(a, offset_of!(ProgLoadAttr, log_buf))[..3].copy_from_slice(b"ok\0");
        Ok(fake::fresh_fd())
    })]);
    let mut p = ProgLoad {
        prog_type: 6,
        expected_attach_type: 2,
        insns: &insns,
        license: c"GPL",
        name: "prog",
        log: Some(&mut log),
        log_level: 2,
        prog_flags: 8,
        btf: Some(ProgBtf {
            fd: btf.as_fd(),
            func_info: &fi,
            func_info_rec_size: 8,
            line_info: &li,
            line_info_rec_size: 16,
        }),
        attach_btf_id: 77,
        attach_btf_obj_fd: Some(target.as_fd()),
        kern_version: 0x50000,
        fd_array: &fds,
        ifindex: 9,
    };
    prog_load(&mut p).unwrap();
    assert_eq!(&log[..3], b"ok\0");
    let c = f.only();
    assert_eq!(c.cmd(), Some(Cmd::ProgLoad));
    assert_eq!(c.attr().len(), 144);
    assert_eq!(c.u32(offset_of!(P, prog_type)), 6);
    assert_eq!(c.u32(offset_of!(P, insn_cnt)), 3);
    assert_eq!(c.u64(offset_of!(P, insns)), addr(&insns));
    assert_eq!(c.u64(offset_of!(P, license)), c"GPL".as_ptr().addr() as u64);
    assert_eq!(c.u32(offset_of!(P, log_level)), 2);
    assert_eq!(c.u32(offset_of!(P, log_size)), 64);
    assert_eq!(c.u64(offset_of!(P, log_buf)), addr(&log));
    assert_eq!(c.u32(offset_of!(P, kern_version)), 0x50000);
    assert_eq!(c.u32(offset_of!(P, prog_ifindex)), 9);
    assert_eq!(c.u32(offset_of!(P, prog_flags)), 8);
    assert_eq!(&c.attr()[48..53], b"prog\0");
    assert_eq!(c.u32(offset_of!(P, expected_attach_type)), 2);
    assert_eq!(c.u32(offset_of!(P, prog_btf_fd)), raw(&btf));
    assert_eq!(c.u32(offset_of!(P, func_info_rec_size)), 8);
    assert_eq!(c.u64(offset_of!(P, func_info)), addr(&fi));
    assert_eq!(c.u32(offset_of!(P, func_info_cnt)), 2);
    assert_eq!(c.u32(offset_of!(P, line_info_rec_size)), 16);
    assert_eq!(c.u64(offset_of!(P, line_info)), addr(&li));
    assert_eq!(c.u32(offset_of!(P, line_info_cnt)), 2);
    assert_eq!(c.u32(offset_of!(P, attach_btf_id)), 77);
    assert_eq!(c.u32(offset_of!(P, attach_fd)), raw(&target));
    assert_ne!(c.u64(offset_of!(P, fd_array)), 0);
}

#[test]
fn prog_load_errors_carry_the_log_size() {
    let f = Fake::install();
    f.push([Reply::attr(|a| {
        a.put_u32(offset_of!(ProgLoadAttr, log_true_size), 4096);
        Err(Errno::ACCESS)
    })]);
    let mut log = [0u8; 8];
    let mut p = ProgLoad {
        insns: &[0; 8],
        log: Some(&mut log),
        ..ProgLoad::default()
    };
    let e = prog_load(&mut p).unwrap_err();
    assert_eq!((e.error.errno, e.log_true_size), (Errno::ACCESS, 4096));
    // No log: no pointer, level 0.
    prog_load(&mut ProgLoad {
        insns: &[0; 8],
        ..ProgLoad::default()
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(c.u64(offset_of!(ProgLoadAttr, log_buf)), 0);
    assert_eq!(c.u32(offset_of!(ProgLoadAttr, log_level)), 0);
    assert_eq!(c.u64(offset_of!(ProgLoadAttr, fd_array)), 0);
    // Partial instructions never reach the kernel.
    let e = prog_load(&mut ProgLoad {
        insns: &[0; 9],
        ..ProgLoad::default()
    })
    .unwrap_err();
    assert_eq!(e.error.errno, Errno::INVAL);
    assert_eq!(f.calls().len(), 2);
}

#[test]
fn enable_stats_and_btf_load() {
    let f = Fake::install();
    enable_stats(STATS_RUN_TIME).unwrap();
    let c = f.only();
    assert_eq!(
        (c.cmd(), c.attr().len(), c.u32(0)),
        (Some(Cmd::EnableStats), 4, 0)
    );

    type B = BtfLoadAttr;
    let blob = [1u8; 40];
    let mut log = [0u8; 16];
    btf_load(&blob, Some(&mut log)).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::BtfLoad));
    assert_eq!(c.u64(offset_of!(B, btf)), addr(&blob));
    assert_eq!(c.u32(offset_of!(B, btf_size)), 40);
    assert_eq!(c.u64(offset_of!(B, btf_log_buf)), addr(&log));
    assert_eq!(c.u32(offset_of!(B, btf_log_size)), 16);
    assert_eq!(c.u32(offset_of!(B, btf_log_level)), 1);
    f.push([Reply::Err(Errno::INVAL)]);
    let e = btf_load(&blob, None).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_BTF_LOAD", Errno::INVAL));
    assert_eq!(last(&f).u64(offset_of!(B, btf_log_buf)), 0);
}

#[test]
fn pins_and_ids() {
    let f = Fake::install();
    let fd = some_fd();
    let path = c"/sys/fs/bpf/x";
    f.push([Reply::attr(|a| {
        assert_eq!(fake::in_bytes(a, 0), b"/sys/fs/bpf/x\0");
        Ok(0)
    })]);
    obj_pin(fd.as_fd(), path).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ObjPin));
    assert_eq!(
        c.u64(offset_of!(ObjAttr, pathname)),
        path.as_ptr().addr() as u64
    );
    assert_eq!(c.u32(offset_of!(ObjAttr, bpf_fd)), raw(&fd));
    obj_get(path).unwrap();
    assert_eq!(last(&f).cmd(), Some(Cmd::ObjGet));

    let next = |v: u32| {
        Reply::attr(move |a| {
            a.put_u32(offset_of!(GetIdAttr, next_id), v);
            Ok(0)
        })
    };
    f.push([next(3), next(9), Reply::Err(Errno::NOENT)]);
    let ids: Vec<_> = obj_ids::<BtfId>().collect();
    assert_eq!(ids, [Ok(BtfId(3)), Ok(BtfId(9))]);
    let starts: Vec<_> = f.calls()[2..].iter().map(|c| c.u32(0)).collect();
    assert_eq!(starts, [0, 3, 9]);
    assert!(
        f.calls()[2..]
            .iter()
            .all(|c| c.cmd() == Some(Cmd::BtfGetNextId))
    );
    f.push([Reply::Err(Errno::PERM)]);
    let e = get_next_id(LinkId(0)).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_LINK_GET_NEXT_ID", Errno::PERM));
    // A kernel that does not move forward ends the walk.
    f.push([next(0)]);
    assert_eq!(obj_ids::<ProgId>().count(), 0);

    get_fd_by_id(ProgId(42), 1).unwrap();
    get_fd_by_id(MapId(42), 1).unwrap();
    get_fd_by_id(BtfId(42), 1).unwrap();
    get_fd_by_id(LinkId(42), 1).unwrap();
    let cmds = [
        Cmd::ProgGetFdById,
        Cmd::MapGetFdById,
        Cmd::BtfGetFdById,
        Cmd::LinkGetFdById,
    ];
    let calls = f.calls();
    for (c, cmd) in calls[calls.len() - 4..].iter().zip(cmds) {
        assert_eq!((c.cmd(), c.u32(0), c.u32(8)), (Some(cmd), 42, 1));
    }
}

#[test]
fn fd_results_are_moved_above_two() {
    let f = Fake::install();
    // Whatever number the kernel hands back, the caller never sees 0..=2.
    f.push([Reply::Fd]);
    assert!(obj_get(c"/x").unwrap().as_raw_fd() > 2);
}

#[test]
fn every_call_can_fail() {
    // The error-injection pattern: fail call n, for every n.
    // btf_info_full makes four calls: info, reopen by id, info, full info.
    for n in 0..4 {
        let f = Fake::install();
        f.fail_nth(n, Errno::PERM);
        let e = btf_info_full(some_fd().as_fd(), None).unwrap_err();
        assert_eq!(e.errno, Errno::PERM);
        assert_eq!(f.calls().len(), n + 1);
    }
    let f = Fake::install();
    btf_info_full(some_fd().as_fd(), None).unwrap();
    assert_eq!(f.calls().len(), 4);
    // EINTR is the kernel asking for the call again: restarted, once more.
    for n in 0..4 {
        let f = Fake::install();
        f.fail_nth(n, Errno::INTR);
        btf_info_full(some_fd().as_fd(), None).unwrap();
        assert_eq!(f.calls().len(), 5);
    }
}

#[test]
fn prog_loads_are_retried_on_eagain() {
    // The verifier, interrupted by a signal, asks again: five attempts.
    let f = Fake::install();
    f.push((0..4).map(|_| Reply::Err(Errno::AGAIN)));
    prog_load(&mut ProgLoad {
        insns: &[0; 8],
        ..ProgLoad::default()
    })
    .unwrap();
    assert_eq!(f.calls().len(), 5);
    let f = Fake::install();
    f.push((0..5).map(|_| Reply::Err(Errno::AGAIN)));
    let e = prog_load(&mut ProgLoad {
        insns: &[0; 8],
        ..ProgLoad::default()
    })
    .unwrap_err();
    assert_eq!((e.error.errno, f.calls().len()), (Errno::AGAIN, 5));
}

#[test]
fn test_runs_report_eintr() {
    // A signal during a test run's repeat loop is the caller's to obey.
    let f = Fake::install();
    f.fail_nth(0, Errno::INTR);
    let prog = some_fd();
    let e = prog_test_run(prog.as_fd(), &mut TestRun::default()).unwrap_err();
    assert_eq!(e.errno, Errno::INTR);
    assert_eq!(f.calls().len(), 1);
}

mod info;
mod link;
