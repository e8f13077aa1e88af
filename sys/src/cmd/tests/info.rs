//! `BPF_OBJ_GET_INFO_BY_FD` and `BPF_PROG_TEST_RUN` against the fake.

use super::*;

#[test]
fn prog_map_and_link_info_decode() {
    type P = BpfProgInfo;
    let f = Fake::install();
    f.push([Reply::attr(|a| {
        let i = fake::nested(a, offset_of!(InfoAttr, info));
        i.put_u32(offset_of!(P, type_), 5);
        i.put_u32(offset_of!(P, id), 11);
        i.put_u32(offset_of!(P, gpl_compatible), 1);
        i.put_u64(offset_of!(P, run_cnt), 99);
        i.put_u32(offset_of!(P, verified_insns), 12);
        i.put_name(offset_of!(P, name), "hello");
        Ok(0)
    })]);
    let fd = some_fd();
    let p = prog_info(fd.as_fd()).unwrap();
    assert_eq!((p.prog_type, p.id, p.gpl_compatible), (5, ProgId(11), true));
    assert_eq!((p.run_cnt, p.verified_insns, p.name()), (99, 12, "hello"));
    let c = f.only();
    assert_eq!(c.cmd(), Some(Cmd::ObjGetInfoByFd));
    assert_eq!(c.u32(offset_of!(InfoAttr, bpf_fd)), raw(&fd));
    assert_eq!(c.u32(offset_of!(InfoAttr, info_len)), 232);

    type M = BpfMapInfo;
    f.push([Reply::attr(|a| {
        let i = fake::nested(a, offset_of!(InfoAttr, info));
        i.put_u32(offset_of!(M, max_entries), 64);
        i.put_u64(offset_of!(M, map_extra), 3);
        i.put_name(offset_of!(M, name), "m");
        Ok(0)
    })]);
    let m = map_info(fd.as_fd()).unwrap();
    assert_eq!((m.max_entries, m.map_extra, m.name()), (64, 3, "m"));
    assert_eq!(last(&f).u32(offset_of!(InfoAttr, info_len)), 88);

    type L = BpfLinkInfo;
    f.push([Reply::attr(|a| {
        let i = fake::nested(a, offset_of!(InfoAttr, info));
        i.put_u32(offset_of!(L, type_), LINK_TYPE_CGROUP);
        i.put_u32(offset_of!(L, prog_id), 4);
        i.put_u64(offset_of!(L, data), 1234);
        i.put_u32(offset_of!(L, data) + 8, 2);
        Ok(0)
    })]);
    let l = link_info(fd.as_fd()).unwrap();
    assert_eq!((l.link_type, l.prog_id), (LINK_TYPE_CGROUP, ProgId(4)));
    assert_eq!((l.cgroup_id(), l.attach_type()), (Some(1234), Some(2)));
    assert_eq!(l.raw_tracepoint_name_len(), None);
    assert_eq!(last(&f).u32(offset_of!(InfoAttr, info_len)), 48);

    f.push([Reply::Err(Errno::BADF)]);
    let e = btf_info(fd.as_fd()).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_OBJ_GET_INFO_BY_FD", Errno::BADF));
}

#[test]
fn btf_info_full_fetches_through_a_reopened_fd() {
    type B = BpfBtfInfo;
    let basic = || {
        Reply::attr(|a| {
            let i = fake::nested(a, offset_of!(InfoAttr, info));
            i.put_u32(offset_of!(B, id), 5);
            i.put_u32(offset_of!(B, btf_size), 6);
            i.put_u32(offset_of!(B, kernel_btf), 1);
            Ok(0)
        })
    };
    let f = Fake::install();
    f.push([
        basic(),
        Reply::Fd,
        basic(),
        Reply::attr(|a| {
            let i = fake::nested(a, offset_of!(InfoAttr, info));
            fake::out_bytes(i, offset_of!(B, name))[..8].copy_from_slice(b"vmlinux\0");
            fake::out_bytes(i, offset_of!(B, btf)).copy_from_slice(b"btf!!!");
            i.put_u32(offset_of!(B, id), 5);
            i.put_u32(offset_of!(B, name_len), 7);
            Ok(0)
        }),
    ]);
    let mut data = vec![1, 2];
    let info = btf_info_full(some_fd().as_fd(), Some(&mut data)).unwrap();
    assert_eq!(
        (info.id, info.name(), info.name_len),
        (BtfId(5), "vmlinux", 7)
    );
    assert_eq!(data, b"btf!!!");
    let c = f.calls();
    assert_eq!(c[1].cmd(), Some(Cmd::BtfGetFdById));
    assert_eq!(c[1].u32(0), 5);
    // The pointers go only to the reopened fd.
    assert_ne!(
        c[3].u32(offset_of!(InfoAttr, bpf_fd)),
        c[0].u32(offset_of!(InfoAttr, bpf_fd))
    );
    assert_eq!(
        c[3].u32(offset_of!(InfoAttr, bpf_fd)),
        c[2].u32(offset_of!(InfoAttr, bpf_fd))
    );
    // A different object behind the id: refused before any pointer goes
    // out.
    let f = Fake::install();
    f.push([basic(), Reply::Fd, Reply::Ret(0)]);
    let e = btf_info_full(some_fd().as_fd(), None).unwrap_err();
    assert_eq!(e.errno, Errno::INVAL);
    assert_eq!(f.calls().len(), 3);
    // Not BTF at all: the id names no BTF object.
    let f = Fake::install();
    f.push([basic(), Reply::Err(Errno::NOENT)]);
    assert_eq!(
        btf_info_full(some_fd().as_fd(), None).unwrap_err().errno,
        Errno::INVAL
    );
}

#[test]
fn nested_info_pointers_are_bounded() {
    // An info struct whose length field exceeds its buffer is refused.
    let mut name = [0u8; 4];
    let mut info = Attr::info(crate::call::Layout::BtfInfo);
    info.put_u32(offset_of!(BpfBtfInfo, name_len), 5);
    info.put_mut_slice(offset_of!(BpfBtfInfo, name), &mut name[..]);
    let mut a = Attr::new(Cmd::ObjGetInfoByFd);
    a.put_u32(offset_of!(InfoAttr, info_len), 32);
    a.put_nested(offset_of!(InfoAttr, info), &mut info);
    assert_eq!(a.check(), Err(Errno::INVAL));
}

#[test]
fn test_run_lends_ctx_in_exclusively() {
    type T = TestRunAttr;
    let f = Fake::install();
    let prog = some_fd();
    let data = [1u8; 14];
    let mut out = [0u8; 32];
    let mut ctx = [0u8; 8];
    let mut ctx_out = [0u8; 8];
    f.push([Reply::attr(|a| {
        // A BPF_PROG_TYPE_SYSCALL program writes its context back.
        fake::out_bytes(a, offset_of!(TestRunAttr, ctx_in)).copy_from_slice(&[7; 8]);
        fake::out_bytes(a, offset_of!(TestRunAttr, data_out))[..2].copy_from_slice(&[5, 5]);
        a.put_u32(offset_of!(TestRunAttr, retval), 2);
        a.put_u32(offset_of!(TestRunAttr, duration), 30);
        a.put_u32(offset_of!(TestRunAttr, data_size_out), 2);
        Ok(0)
    })]);
    let r = prog_test_run(
        prog.as_fd(),
        &mut TestRun {
            data_in: &data,
            data_out: Some(&mut out),
            ctx_in: Some(&mut ctx),
            ctx_out: Some(&mut ctx_out),
            repeat: 3,
            flags: 1,
            cpu: 2,
            batch_size: 4,
        },
    )
    .unwrap();
    assert_eq!(ctx, [7; 8]);
    assert_eq!(out[..2], [5, 5]);
    assert_eq!(
        (r.retval, r.duration, r.data_size_out, r.ctx_size_out),
        (2, 30, 2, 8)
    );
    let c = f.only();
    assert_eq!(c.cmd(), Some(Cmd::ProgTestRun));
    assert_eq!(c.u32(offset_of!(T, prog_fd)), raw(&prog));
    assert_eq!(
        (
            c.u64(offset_of!(T, data_in)),
            c.u32(offset_of!(T, data_size_in))
        ),
        (addr(&data), 14)
    );
    assert_eq!(
        (
            c.u64(offset_of!(T, data_out)),
            c.u32(offset_of!(T, data_size_out))
        ),
        (addr(&out), 32)
    );
    assert_eq!(
        (
            c.u64(offset_of!(T, ctx_in)),
            c.u32(offset_of!(T, ctx_size_in))
        ),
        (addr(&ctx), 8)
    );
    assert_eq!(
        (
            c.u64(offset_of!(T, ctx_out)),
            c.u32(offset_of!(T, ctx_size_out))
        ),
        (addr(&ctx_out), 8)
    );
    assert_eq!(
        [
            c.u32(offset_of!(T, repeat)),
            c.u32(offset_of!(T, flags)),
            c.u32(offset_of!(T, cpu)),
            c.u32(offset_of!(T, batch_size))
        ],
        [3, 1, 2, 4]
    );
    // Empty outputs go as NULL with size 0, never as "unbounded".
    prog_test_run(
        prog.as_fd(),
        &mut TestRun {
            data_out: Some(&mut []),
            ..TestRun::default()
        },
    )
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (
            c.u64(offset_of!(T, data_out)),
            c.u32(offset_of!(T, data_size_out))
        ),
        (0, 0)
    );
    assert_eq!(c.u64(offset_of!(T, data_in)), 0);
    f.push([Reply::Err(Errno::NOSPC)]);
    let e = prog_test_run(prog.as_fd(), &mut TestRun::default()).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_PROG_TEST_RUN", Errno::NOSPC));
}

#[test]
fn prog_map_ids_fills_what_fits() {
    use crate::call::Pointee;
    type P = BpfProgInfo;
    let f = Fake::install();
    f.push([Reply::attr(|a| {
        let i = fake::nested(a, offset_of!(InfoAttr, info));
        assert_eq!(i.get_u32(offset_of!(P, nr_map_ids)), 2);
        match i.pointee_mut(offset_of!(P, map_ids)) {
            Some(Pointee::U32sMut(s)) => s.copy_from_slice(&[7, 9]),
            other => panic!("{other:?}"),
        }
        i.put_u32(offset_of!(P, nr_map_ids), 3);
        Ok(0)
    })]);
    let fd = some_fd();
    let mut ids = [MapId(0); 2];
    assert_eq!(prog_map_ids(fd.as_fd(), &mut ids).unwrap(), 3);
    assert_eq!(ids, [MapId(7), MapId(9)]);
    // No room: only the count, and the pointer stays NULL.
    prog_map_ids(fd.as_fd(), &mut []).unwrap();
}
