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
