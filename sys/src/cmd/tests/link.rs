//! Links and attachment against the fake.

use super::*;
use crate::raw::fake::{fresh_fd, in_bytes};

#[test]
fn link_create_variants() {
    type L = LinkCreateAttr;
    let f = Fake::install();
    let (prog, target) = (some_fd(), some_fd());
    let base = LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::Fd(target.as_fd()),
        attach_type: 9,
        flags: 1,
        extra: LinkExtra::None,
    };
    link_create(&base).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::LinkCreate));
    assert_eq!(c.attr().len(), 48);
    assert_eq!(c.u32(offset_of!(L, prog_fd)), raw(&prog));
    assert_eq!(c.u32(offset_of!(L, target_fd)), raw(&target));
    assert_eq!(
        (
            c.u32(offset_of!(L, attach_type)),
            c.u32(offset_of!(L, flags))
        ),
        (9, 1)
    );
    assert_eq!(&c.attr()[16..], &[0; 32]);

    link_create(&LinkCreate {
        target: LinkTarget::Ifindex(3),
        extra: LinkExtra::TargetBtfId(55),
        ..base
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (c.u32(offset_of!(L, target_fd)), c.u32(16), c.u32(20)),
        (3, 55, 0)
    );

    link_create(&LinkCreate {
        target: LinkTarget::None,
        extra: LinkExtra::PerfEvent {
            bpf_cookie: 0x1_0000_0002,
        },
        ..base
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (c.u32(offset_of!(L, target_fd)), c.u64(16)),
        (0, 0x1_0000_0002)
    );

    link_create(&LinkCreate {
        extra: LinkExtra::Tracing {
            target_btf_id: 8,
            cookie: 99,
        },
        ..base
    })
    .unwrap();
    let c = last(&f);
    assert_eq!((c.u32(16), c.u64(offset_of!(L, cookie))), (8, 99));
    f.push([Reply::Err(Errno::INVAL)]);
    let e = link_create(&base).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_LINK_CREATE", Errno::INVAL));
}

#[test]
fn iter_link_passes_its_info_and_iter_create_its_link() {
    use std::sync::{Arc, Mutex};
    let f = Fake::install();
    let prog = some_fd();
    // The kernel reads `iter_info` through the pointer: the fake sees the
    // map fd bytes and their length.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    f.push([Reply::attr(move |a| {
        s.lock().unwrap().extend_from_slice(in_bytes(a, 16));
        Ok(fresh_fd())
    })]);
    let info = 7u32.to_ne_bytes();
    let link = link_create(&LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::None,
        attach_type: 28,
        flags: 0,
        extra: LinkExtra::Iter(&info),
    })
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), info);
    assert_eq!(last(&f).u32(24), 4);
    iter_create(link.as_fd()).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::IterCreate));
    assert_eq!(c.u32(0), raw(&link));
    // No info: nothing is pointed at.
    link_create(&LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::None,
        attach_type: 28,
        flags: 0,
        extra: LinkExtra::Iter(&[]),
    })
    .unwrap();
    assert_eq!(&last(&f).attr()[16..], &[0; 32]);
}

#[test]
fn link_update_detach_and_raw_tracepoints() {
    type U = LinkUpdateAttr;
    let f = Fake::install();
    let (link, new, old) = (some_fd(), some_fd(), some_fd());
    link_update(link.as_fd(), new.as_fd(), None).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::LinkUpdate));
    assert_eq!(
        [
            c.u32(offset_of!(U, link_fd)),
            c.u32(offset_of!(U, new_prog_fd)),
            c.u32(offset_of!(U, flags)),
            c.u32(offset_of!(U, old_prog_fd))
        ],
        [raw(&link), raw(&new), 0, 0]
    );
    link_update(link.as_fd(), new.as_fd(), Some(old.as_fd())).unwrap();
    let c = last(&f);
    assert_eq!(
        (
            c.u32(offset_of!(U, flags)),
            c.u32(offset_of!(U, old_prog_fd))
        ),
        (4, raw(&old))
    );

    link_detach(link.as_fd()).unwrap();
    let c = last(&f);
    assert_eq!(
        (c.cmd(), c.attr().len(), c.u32(0)),
        (Some(Cmd::LinkDetach), 4, raw(&link))
    );

    let name = c"sys_enter";
    raw_tracepoint_open(new.as_fd(), Some(name)).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::RawTracepointOpen));
    assert_eq!(
        c.u64(offset_of!(RawTracepointAttr, name)),
        name.as_ptr().addr() as u64
    );
    assert_eq!(c.u32(offset_of!(RawTracepointAttr, prog_fd)), raw(&new));
    raw_tracepoint_open(new.as_fd(), None).unwrap();
    assert_eq!(last(&f).u64(0), 0);
}

#[test]
fn legacy_attach_detach_and_query() {
    type A = ProgAttachAttr;
    let f = Fake::install();
    let (prog, cg, old) = (some_fd(), some_fd(), some_fd());
    prog_attach(prog.as_fd(), cg.as_fd(), 2, 2, Some(old.as_fd())).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ProgAttach));
    assert_eq!(
        [
            c.u32(offset_of!(A, target_fd)),
            c.u32(offset_of!(A, attach_bpf_fd)),
            c.u32(offset_of!(A, attach_type)),
            c.u32(offset_of!(A, attach_flags)),
            c.u32(offset_of!(A, replace_bpf_fd))
        ],
        [raw(&cg), raw(&prog), 2, 2 | 4, raw(&old)]
    );
    prog_detach(None, cg.as_fd(), 2).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ProgDetach));
    assert_eq!(
        (
            c.u32(offset_of!(A, attach_bpf_fd)),
            c.u32(offset_of!(A, attach_type))
        ),
        (0, 2)
    );

    type Q = QueryAttr;
    let mut ids = [ProgId(0); 2];
    let mut flags = [0u32; 3];
    f.push([Reply::attr(|a| {
        fake::out_prog_ids(a, offset_of!(QueryAttr, prog_ids))
            .copy_from_slice(&[ProgId(10), ProgId(11)]);
        a.put_u32(offset_of!(QueryAttr, prog_cnt), 5);
        a.put_u32(offset_of!(QueryAttr, attach_flags), 2);
        a.put_u64(offset_of!(QueryAttr, revision), 7);
        Err(Errno::NOSPC)
    })]);
    let q = prog_query(cg.as_fd(), 2, 0, &mut ids, Some(&mut flags)).unwrap();
    assert_eq!(
        q,
        ProgQuery {
            attach_flags: 2,
            prog_cnt: 5,
            written: 2,
            revision: 7
        }
    );
    assert_eq!(ids, [ProgId(10), ProgId(11)]);
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ProgQuery));
    assert_eq!(c.attr().len(), 64);
    assert_eq!(c.u64(offset_of!(Q, prog_ids)), addr(&ids));
    assert_eq!(c.u64(offset_of!(Q, prog_attach_flags)), addr(&flags));
    // Room is the shorter of the two slices.
    assert_eq!(c.u32(offset_of!(Q, prog_cnt)), 2);
    // No room: no pointers, and the count comes back.
    prog_query(cg.as_fd(), 2, 1, &mut [], None).unwrap();
    let c = last(&f);
    assert_eq!(
        (
            c.u64(offset_of!(Q, prog_ids)),
            c.u32(offset_of!(Q, prog_cnt)),
            c.u32(offset_of!(Q, query_flags))
        ),
        (0, 0, 1)
    );
    f.push([Reply::Err(Errno::PERM)]);
    assert_eq!(
        prog_query(cg.as_fd(), 2, 0, &mut ids, None)
            .unwrap_err()
            .errno,
        Errno::PERM
    );
}

#[test]
fn tcx_link_places_relative_and_revision() {
    let f = Fake::install();
    let (prog, rel) = (some_fd(), some_fd());
    let base = LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::Ifindex(4),
        attach_type: 46,
        flags: F_BEFORE,
        extra: LinkExtra::Tcx {
            relative: Relative::Fd(rel.as_fd()),
            expected_revision: 0x1_0000_0007,
        },
    };
    link_create(&base).unwrap();
    let c = last(&f);
    assert_eq!(
        (c.u32(4), c.u32(8), c.u32(12), c.u32(16), c.u64(24)),
        (4, 46, F_BEFORE, raw(&rel), 0x1_0000_0007)
    );
    link_create(&LinkCreate {
        flags: F_AFTER | F_ID | F_LINK,
        extra: LinkExtra::Tcx {
            relative: Relative::Id(12),
            expected_revision: 0,
        },
        ..base
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (c.u32(12), c.u32(16), c.u64(24)),
        (F_AFTER | F_ID | F_LINK, 12, 0)
    );
    // No relative: first or last, nothing in the union.
    link_create(&LinkCreate {
        extra: LinkExtra::Tcx {
            relative: Relative::None,
            expected_revision: 0,
        },
        ..base
    })
    .unwrap();
    assert_eq!(&last(&f).attr()[16..], &[0; 32]);
    assert_eq!(Relative::Id(3), Relative::Id(3));
    assert_ne!(Relative::Fd(rel.as_fd()), Relative::None);
}

#[test]
fn device_query_sends_the_ifindex_and_reads_the_chain() {
    type Q = QueryAttr;
    let f = Fake::install();
    let mut ids = [ProgId(0); 3];
    f.push([Reply::attr(|a| {
        fake::out_prog_ids(a, offset_of!(QueryAttr, prog_ids))
            .get_mut(..2)
            .unwrap()
            .copy_from_slice(&[ProgId(21), ProgId(20)]);
        a.put_u32(offset_of!(QueryAttr, prog_cnt), 2);
        a.put_u64(offset_of!(QueryAttr, revision), 3);
        Ok(0)
    })]);
    let q = prog_query_ifindex(9, 46, &mut ids).unwrap();
    assert_eq!((q.prog_cnt, q.written, q.revision), (2, 2, 3));
    assert_eq!(ids, [ProgId(21), ProgId(20), ProgId(0)]);
    let c = last(&f);
    assert_eq!(
        (
            c.u32(offset_of!(Q, target_fd)),
            c.u32(offset_of!(Q, attach_type)),
            c.u32(offset_of!(Q, prog_cnt)),
            c.u64(offset_of!(Q, prog_ids))
        ),
        (9, 46, 3, addr(&ids))
    );
    f.push([Reply::Err(Errno::NODEV)]);
    let e = prog_query_ifindex(9, 46, &mut ids).unwrap_err();
    assert_eq!((e.cmd, e.errno), ("BPF_PROG_QUERY", Errno::NODEV));
}

#[test]
fn uprobe_multi_points_at_its_arrays() {
    type U = LinkCreateUprobeMultiAttr;
    let f = Fake::install();
    let prog = some_fd();
    let path = c"/bin/true";
    let offsets = [0x10u64, 0x20];
    let cookies = [1u64, 2];
    let base = LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::None,
        attach_type: 48,
        flags: 0,
        extra: LinkExtra::UprobeMulti {
            path,
            offsets: &offsets,
            ref_ctr_offsets: &[],
            cookies: &cookies,
            flags: crate::cmd::link::F_UPROBE_MULTI_RETURN,
            pid: 42,
        },
    };
    link_create(&base).unwrap();
    let c = last(&f);
    assert_eq!(c.attr().len(), 64);
    assert_eq!(c.u32(offset_of!(U, attach_type)), 48);
    assert_eq!(c.u64(offset_of!(U, path)), path.as_ptr().addr() as u64);
    assert_eq!(c.u64(offset_of!(U, offsets)), addr(&offsets));
    assert_eq!(c.u64(offset_of!(U, ref_ctr_offsets)), 0);
    assert_eq!(c.u64(offset_of!(U, cookies)), addr(&cookies));
    assert_eq!(
        [
            c.u32(offset_of!(U, cnt)),
            c.u32(offset_of!(U, uprobe_flags)),
            c.u32(offset_of!(U, pid))
        ],
        [2, 1, 42]
    );
    // Arrays shorter than `cnt`, or no probes at all, never reach the
    // kernel.
    let n = f.calls().len();
    for (offs, refs) in [(&offsets[..], &cookies[..1]), (&[][..], &[][..])] {
        let e = link_create(&LinkCreate {
            extra: LinkExtra::UprobeMulti {
                path,
                offsets: offs,
                ref_ctr_offsets: refs,
                cookies: &[],
                flags: 0,
                pid: 0,
            },
            ..base
        })
        .unwrap_err();
        assert_eq!(e.errno, Errno::INVAL);
    }
    assert_eq!(f.calls().len(), n);
}

#[test]
fn kprobe_multi_points_at_names_through_an_address_array() {
    use std::sync::{Arc, Mutex};
    type K = LinkCreateKprobeMultiAttr;
    let f = Fake::install();
    let prog = some_fd();
    let syms = [c"do_sys_openat2", c"vfs_read"];
    let cookies = [7u64, 8];
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    f.push([Reply::attr(move |a| {
        *s.lock().unwrap() = crate::raw::fake::in_cstrs(a, offset_of!(K, syms));
        Ok(fresh_fd())
    })]);
    let base = LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::None,
        attach_type: 42,
        flags: 0,
        extra: LinkExtra::KprobeMulti {
            syms: &syms,
            addrs: &[],
            cookies: &cookies,
            flags: crate::cmd::link::F_KPROBE_MULTI_RETURN,
        },
    };
    link_create(&base).unwrap();
    assert_eq!(*seen.lock().unwrap(), ["do_sys_openat2", "vfs_read"]);
    let c = last(&f);
    assert_eq!(c.attr().len(), 48);
    assert_eq!(
        [
            c.u32(offset_of!(K, kprobe_flags)),
            c.u32(offset_of!(K, cnt))
        ],
        [1, 2]
    );
    assert_ne!(c.u64(offset_of!(K, syms)), 0);
    assert_eq!(c.u64(offset_of!(K, addrs)), 0);
    assert_eq!(c.u64(offset_of!(K, cookies)), addr(&cookies));

    let addrs = [0xffff_ffff_8100_0000u64];
    link_create(&LinkCreate {
        extra: LinkExtra::KprobeMulti {
            syms: &[],
            addrs: &addrs,
            cookies: &[],
            flags: 0,
        },
        ..base
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (c.u64(offset_of!(K, syms)), c.u64(offset_of!(K, addrs))),
        (0, addr(&addrs))
    );
    // Names and addresses together, neither, or cookies of another count
    // never reach the kernel.
    let n = f.calls().len();
    for (s, a, k) in [
        (&syms[..], &addrs[..], &[][..]),
        (&[][..], &[][..], &[][..]),
        (&syms[..], &[][..], &cookies[..1]),
    ] {
        let e = link_create(&LinkCreate {
            extra: LinkExtra::KprobeMulti {
                syms: s,
                addrs: a,
                cookies: k,
                flags: 0,
            },
            ..base
        })
        .unwrap_err();
        assert_eq!(e.errno, Errno::INVAL);
    }
    assert_eq!(f.calls().len(), n);
}

#[test]
fn string_arrays_go_only_where_the_table_says() {
    type K = LinkCreateKprobeMultiAttr;
    let names = [c"a"];
    let nums = [1u64];
    // A string array on an integer array's field, and integers on the
    // string array's field, are refused before any call.
    let mut a = Attr::with_layout(Cmd::LinkCreate, crate::call::Layout::LinkCreateKprobeMulti);
    a.put_u32(offset_of!(K, cnt), 1);
    let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
        a.put_cstrs(offset_of!(K, addrs), &names);
    }));
    if r.is_ok() {
        assert_eq!(a.check(), Err(Errno::INVAL));
    }
    let mut a = Attr::with_layout(Cmd::LinkCreate, crate::call::Layout::LinkCreateKprobeMulti);
    a.put_u32(offset_of!(K, cnt), 1);
    let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| {
        a.put_slice(offset_of!(K, syms), &nums[..]);
    }));
    if r.is_ok() {
        assert_eq!(a.check(), Err(Errno::INVAL));
    }
    // A count past the array is refused too.
    let mut a = Attr::with_layout(Cmd::LinkCreate, crate::call::Layout::LinkCreateKprobeMulti);
    a.put_cstrs(offset_of!(K, syms), &names);
    a.put_u32(offset_of!(K, cnt), 2);
    assert_eq!(a.check(), Err(Errno::INVAL));
    a.put_u32(offset_of!(K, cnt), 1);
    assert_eq!(a.check(), Ok(()));
}

#[test]
fn netfilter_link_and_netns_prog_attach() {
    type L = LinkCreateAttr;
    let f = Fake::install();
    let prog = some_fd();
    link_create(&LinkCreate {
        prog: prog.as_fd(),
        target: LinkTarget::None,
        attach_type: 45,
        flags: 0,
        extra: LinkExtra::Netfilter {
            pf: 2,
            hooknum: 3,
            priority: -128,
            flags: NETFILTER_IP_DEFRAG,
        },
    })
    .unwrap();
    let c = last(&f);
    assert_eq!(
        (
            c.u32(offset_of!(L, target_fd)),
            c.u32(offset_of!(L, attach_type))
        ),
        (0, 45)
    );
    assert_eq!(
        (c.u32(16), c.u32(20), c.u32(24), c.u32(28)),
        (2, 3, (-128i32).cast_unsigned(), 1)
    );
    assert_eq!(&c.attr()[32..], &[0; 16]);

    type P = ProgAttachAttr;
    prog_attach_current_netns(prog.as_fd(), 17).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ProgAttach));
    assert_eq!(
        (
            c.u32(offset_of!(P, target_fd)),
            c.u32(offset_of!(P, attach_bpf_fd)),
            c.u32(offset_of!(P, attach_type)),
            c.u32(offset_of!(P, attach_flags)),
        ),
        (0, raw(&prog), 17, 0)
    );
    prog_detach_current_netns(prog.as_fd(), 17).unwrap();
    let c = last(&f);
    assert_eq!(c.cmd(), Some(Cmd::ProgDetach));
    assert_eq!(
        (
            c.u32(offset_of!(P, target_fd)),
            c.u32(offset_of!(P, attach_bpf_fd)),
            c.u32(offset_of!(P, attach_type)),
        ),
        (0, raw(&prog), 17)
    );
}
