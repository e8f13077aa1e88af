//! rtnetlink reply datagrams from arbitrary bytes: splitting messages and
//! decoding links, filters and errors never panics, never reads past a
//! message, ends, and gives the same answers twice; decoding allocates
//! only a filter's kind. What a link or filter decodes to, encoded again
//! by `Request` as the kernel would send it, decodes the same.
#![no_main]

use ember::attach::rtnl_wire::{
    FilterInfo, IFLA_XDP, IFLA_XDP_PROG_ID, LinkInfo, Message, RTM_NEWLINK, RTM_NEWTFILTER,
    Request, TCA_BPF_ID, TCA_KIND, TCA_OPTIONS, attrs, next_message,
};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

type Decoded<'a> = (
    Message<'a>,
    Option<i32>,
    Option<LinkInfo>,
    Option<FilterInfo>,
);

/// Every message of `data` decoded every way, and whether the walk ended
/// on a malformed length.
fn walk(data: &[u8]) -> (Vec<Decoded<'_>>, bool) {
    let mut rest = data;
    let mut out = Vec::new();
    loop {
        match next_message(&mut rest) {
            Ok(Some(m)) => {
                assert!(
                    out.len() < data.len() / 16,
                    "more messages than 16-byte headers"
                );
                assert!(attrs(m.payload).count() <= m.payload.len() / 4);
                let live = common::reset_peak();
                let d = (
                    m,
                    m.error(),
                    LinkInfo::parse(m.payload),
                    FilterInfo::parse(m.payload),
                );
                // Only the kind: lossy decoding may make it 3x longer, in a String
                // grown by doubling (old and new buffer at once as it moves).
                let peak = common::peak_since(live);
                assert!(
                    peak <= 8 * m.payload.len() + 64,
                    "decoding allocated {peak}"
                );
                out.push(d);
            }
            Ok(None) => return (out, false),
            Err(_) => return (out, true),
        }
    }
}

/// The only message of `bytes`, which must be whole.
fn only_message(bytes: &[u8]) -> Message<'_> {
    let mut rest = bytes;
    let m = next_message(&mut rest)
        .expect("encoded message")
        .expect("one message");
    assert!(rest.is_empty());
    m
}

fn link_again(l: LinkInfo) {
    let mut r = Request::new(RTM_NEWLINK, 0, 1).ifinfo(l.index);
    if let Some(id) = l.xdp_prog_id {
        let x = r.nest(IFLA_XDP);
        r.attr_u32(IFLA_XDP_PROG_ID, id);
        r.end(x);
    }
    let bytes = r.finish().expect("a small message");
    assert_eq!(LinkInfo::parse(only_message(&bytes).payload), Some(l));
}

fn filter_again(f: &FilterInfo) {
    let mut r = Request::new(RTM_NEWTFILTER, 0, 1).tcmsg(1, f.handle, 0, f.info);
    if !f.kind.is_empty() {
        r.attr_str(TCA_KIND, &f.kind);
    }
    if let Some(id) = f.prog_id {
        let o = r.nest(TCA_OPTIONS);
        r.attr_u32(TCA_BPF_ID, id);
        r.end(o);
    }
    // A kind grown past an attribute's 16-bit length cannot be sent.
    if let Some(bytes) = r.finish() {
        assert_eq!(
            FilterInfo::parse(only_message(&bytes).payload).as_ref(),
            Some(f)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let first = walk(data);
    assert_eq!(first, walk(data), "the same answers twice");
    for (_, _, link, filter) in &first.0 {
        if let Some(l) = link {
            link_again(*l);
        }
        if let Some(f) = filter {
            filter_again(f);
        }
    }
});
