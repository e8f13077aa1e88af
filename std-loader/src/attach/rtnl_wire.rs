//! The rtnetlink wire format, for exactly the messages ember sends and
//! reads (`RTM_*LINK` with `IFLA_XDP`, `clsact` qdiscs, `cls_bpf`
//! filters): `nlmsghdr`, `ifinfomsg`/`tcmsg` and `rtattr`s, as
//! `<linux/netlink.h>`, `<linux/rtnetlink.h>` and `<linux/if_link.h>` lay
//! them out. A general rtnetlink crate decodes every link and filter kind
//! the kernel knows (about 300 KiB of code in the static CLI); ember needs
//! a handful of attributes.
//!
//! Decoding never trusts a length: a message or attribute that runs past
//! its buffer ends the walk (fuzzed by `fuzz/fuzz_targets/rtnl_reply.rs`).

/// `NLMSG_HDRLEN`.
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct ifinfomsg)`.
const IFINFOMSG_LEN: usize = 16;
/// `sizeof(struct tcmsg)`.
const TCMSG_LEN: usize = 20;

/// `NLMSG_ERROR`: an error, or an ACK when its code is 0.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `RTM_NEWLINK` (also the reply to `RTM_GETLINK`).
pub const RTM_NEWLINK: u16 = 16;
/// `RTM_GETLINK`.
pub const RTM_GETLINK: u16 = 18;
/// `RTM_SETLINK`.
pub const RTM_SETLINK: u16 = 19;
/// `RTM_NEWQDISC`.
pub const RTM_NEWQDISC: u16 = 36;
/// `RTM_DELQDISC`.
pub const RTM_DELQDISC: u16 = 37;
/// `RTM_NEWTFILTER` (also each entry of a filter dump).
pub const RTM_NEWTFILTER: u16 = 44;
/// `RTM_DELTFILTER`.
pub const RTM_DELTFILTER: u16 = 45;
/// `RTM_GETTFILTER`.
pub const RTM_GETTFILTER: u16 = 46;

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_ECHO`.
pub const NLM_F_ECHO: u16 = 0x8;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLM_F_EXCL`.
pub const NLM_F_EXCL: u16 = 0x200;
/// `NLM_F_CREATE`.
pub const NLM_F_CREATE: u16 = 0x400;

/// `IFLA_IFNAME`.
pub const IFLA_IFNAME: u16 = 3;
/// `IFLA_XDP` (nested).
pub const IFLA_XDP: u16 = 43;
/// `IFLA_XDP_FD`.
pub const IFLA_XDP_FD: u16 = 1;
/// `IFLA_XDP_FLAGS`.
pub const IFLA_XDP_FLAGS: u16 = 3;
/// `IFLA_XDP_PROG_ID`.
pub const IFLA_XDP_PROG_ID: u16 = 4;
/// `IFLA_XDP_EXPECTED_FD`.
pub const IFLA_XDP_EXPECTED_FD: u16 = 8;
/// `TCA_KIND`.
pub const TCA_KIND: u16 = 1;
/// `TCA_OPTIONS` (nested).
pub const TCA_OPTIONS: u16 = 2;
/// `TCA_BPF_FD`.
pub const TCA_BPF_FD: u16 = 6;
/// `TCA_BPF_NAME`.
pub const TCA_BPF_NAME: u16 = 7;
/// `TCA_BPF_FLAGS`.
pub const TCA_BPF_FLAGS: u16 = 8;
/// `TCA_BPF_ID`.
pub const TCA_BPF_ID: u16 = 11;
/// `TCA_BPF_FLAG_ACT_DIRECT`.
pub const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

/// `NLA_F_NESTED`, set on nests as libbpf sets it.
const NLA_F_NESTED: u16 = 1 << 15;
/// `NLA_TYPE_MASK`: the type without the nested/byte-order flags.
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | (1 << 14));

/// One request being encoded: header, family header, attributes.
#[derive(Debug)]
pub struct Request {
    buf: Vec<u8>,
    /// An attribute or the message outgrew its 16/32-bit length.
    overflow: bool,
}

/// An open nest: where its `rtattr` starts.
#[derive(Debug, Clone, Copy)]
pub struct Nest(usize);

impl Request {
    /// A request of type `ty` with `flags` and sequence number `seq`.
    pub fn new(ty: u16, flags: u16, seq: u32) -> Request {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, at finish
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: the kernel
        Request {
            buf,
            overflow: false,
        }
    }

    /// A `struct ifinfomsg` (`AF_UNSPEC`) for interface `index`.
    pub fn ifinfo(mut self, index: i32) -> Request {
        let mut m = [0u8; IFINFOMSG_LEN];
        m[4..8].copy_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&m);
        self
    }

    /// A `struct tcmsg` (`AF_UNSPEC`).
    pub fn tcmsg(mut self, ifindex: i32, handle: u32, parent: u32, info: u32) -> Request {
        let mut m = [0u8; TCMSG_LEN];
        m[4..8].copy_from_slice(&ifindex.to_ne_bytes());
        m[8..12].copy_from_slice(&handle.to_ne_bytes());
        m[12..16].copy_from_slice(&parent.to_ne_bytes());
        m[16..20].copy_from_slice(&info.to_ne_bytes());
        self.buf.extend_from_slice(&m);
        self
    }

    fn header(&mut self, ty: u16, len: usize) {
        let len = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.buf.resize(self.buf.len().next_multiple_of(4), 0);
    }

    /// An attribute with `payload`.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        self.header(ty, 4 + payload.len());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    /// A `u32` attribute (also `s32`: the bits are the same).
    pub fn attr_u32(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_ne_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) {
        self.header(ty, 4 + s.len() + 1);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
    }

    /// Opens a nest of type `ty`; close it with [`Request::end`].
    pub fn nest(&mut self, ty: u16) -> Nest {
        let at = self.buf.len();
        self.header(ty | NLA_F_NESTED, 0);
        Nest(at)
    }

    /// Closes `nest`, writing its length.
    pub fn end(&mut self, nest: Nest) {
        let len = self.buf.len() - nest.0;
        let len = u16::try_from(len).unwrap_or_else(|_| {
            self.overflow = true;
            0
        });
        self.buf[nest.0..nest.0 + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// The encoded message; `None` when a length does not fit its field.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        let len = u32::try_from(self.buf.len()).ok()?;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        (!self.overflow).then_some(self.buf)
    }
}

/// One message of a reply datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// What follows the header.
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// For `NLMSG_ERROR`: the error code (0 is an ACK, else `-errno`);
    /// `None` for other types or a payload too short to hold one.
    pub fn error(&self) -> Option<i32> {
        (self.ty == NLMSG_ERROR).then(|| i32_at(self.payload, 0))?
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(w.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    u32_at(b, at).map(u32::cast_signed)
}

/// A reply message whose length is shorter than a header or runs past
/// its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl core::fmt::Display for Malformed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("netlink message length shorter than a header or past its datagram")
    }
}

impl core::error::Error for Malformed {}

/// Splits the next message off a datagram: `Ok(None)` at its end, `Err`
/// for a length too short for a header or running past the data.
pub fn next_message<'a>(rest: &mut &'a [u8]) -> Result<Option<Message<'a>>, Malformed> {
    let Some(len) = u32_at(rest, 0) else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| Malformed)?;
    let one = rest
        .get(..len)
        .filter(|_| len >= NLMSG_HDRLEN)
        .ok_or(Malformed)?;
    // Messages start 4-aligned; the last may end unpadded.
    *rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    let ty = u16::from_ne_bytes([one[4], one[5]]);
    let seq = u32_at(one, 8).ok_or(Malformed)?;
    Ok(Some(Message {
        ty,
        seq,
        payload: &one[NLMSG_HDRLEN..],
    }))
}

/// The attributes in `b`: `(type without flags, payload)`, until the end
/// or the first one whose length is impossible.
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    core::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?));
        let ty = u16::from_ne_bytes(b.get(2..4)?.try_into().ok()?) & NLA_TYPE_MASK;
        let payload = b.get(4..len)?;
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
        Some((ty, payload))
    })
}

fn find(b: &[u8], want: u16) -> Option<&[u8]> {
    attrs(b).find_map(|(t, p)| (t == want).then_some(p))
}

/// What ember reads of an `RTM_NEWLINK`: the interface index and the id
/// of its XDP program, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// `ifi_index`.
    pub index: i32,
    /// `IFLA_XDP` / `IFLA_XDP_PROG_ID`, when nonzero.
    pub xdp_prog_id: Option<u32>,
}

impl LinkInfo {
    /// Decodes an `RTM_NEWLINK` message's payload.
    pub fn parse(payload: &[u8]) -> Option<LinkInfo> {
        let index = i32_at(payload, 4)?;
        let xdp_prog_id = payload
            .get(IFINFOMSG_LEN..)
            .and_then(|a| find(a, IFLA_XDP))
            .and_then(|x| find(x, IFLA_XDP_PROG_ID))
            .and_then(|p| u32_at(p, 0))
            .filter(|&id| id != 0);
        Some(LinkInfo { index, xdp_prog_id })
    }
}

/// What ember reads of an `RTM_NEWTFILTER`: header fields, kind and the
/// `cls_bpf` program id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterInfo {
    /// `tcm_handle`.
    pub handle: u32,
    /// `tcm_info`: priority in the high half, protocol in the low.
    pub info: u32,
    /// `TCA_KIND` (empty when absent).
    pub kind: String,
    /// `TCA_OPTIONS` / `TCA_BPF_ID`.
    pub prog_id: Option<u32>,
}

impl FilterInfo {
    /// Decodes an `RTM_NEWTFILTER` message's payload.
    pub fn parse(payload: &[u8]) -> Option<FilterInfo> {
        let handle = u32_at(payload, 8)?;
        let info = u32_at(payload, 16)?;
        let a = payload.get(TCMSG_LEN..).unwrap_or_default();
        let kind = find(a, TCA_KIND)
            .map(|k| {
                let k = k.split(|&c| c == 0).next().unwrap_or_default();
                String::from_utf8_lossy(k).into_owned()
            })
            .unwrap_or_default();
        let prog_id = find(a, TCA_OPTIONS)
            .and_then(|o| find(o, TCA_BPF_ID))
            .and_then(|p| u32_at(p, 0));
        Some(FilterInfo {
            handle,
            info,
            kind,
            prog_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RTM_SETLINK` for ifindex 3 with `IFLA_XDP { FD 7, FLAGS 1 }`, as
    /// libbpf's `__bpf_set_link_xdp_fd_replace` encodes it.
    #[test]
    fn xdp_set_request_bytes() {
        let mut r = Request::new(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, 9).ifinfo(3);
        let x = r.nest(IFLA_XDP);
        r.attr_u32(IFLA_XDP_FD, 7);
        r.attr_u32(IFLA_XDP_FLAGS, 1);
        r.end(x);
        let b = r.finish().unwrap();
        let mut want = Vec::new();
        want.extend_from_slice(&52u32.to_ne_bytes());
        want.extend_from_slice(&RTM_SETLINK.to_ne_bytes());
        want.extend_from_slice(&5u16.to_ne_bytes());
        want.extend_from_slice(&9u32.to_ne_bytes());
        want.extend_from_slice(&0u32.to_ne_bytes());
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&3i32.to_ne_bytes());
        want.extend_from_slice(&[0; 8]);
        for (len, ty) in [(20u16, 43u16 | 0x8000), (8, 1)] {
            want.extend_from_slice(&len.to_ne_bytes());
            want.extend_from_slice(&ty.to_ne_bytes());
            if ty == 1 {
                want.extend_from_slice(&7u32.to_ne_bytes());
            }
        }
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&3u16.to_ne_bytes());
        want.extend_from_slice(&1u32.to_ne_bytes());
        assert_eq!(b, want);
    }

    #[test]
    fn strings_are_nul_terminated_and_padded_and_overflow_is_refused() {
        let mut r = Request::new(RTM_GETLINK, NLM_F_REQUEST, 1).ifinfo(0);
        r.attr_str(IFLA_IFNAME, "veth0");
        let b = r.finish().unwrap();
        assert_eq!(b.len(), 16 + 16 + 12);
        assert_eq!(&b[32..34], &10u16.to_ne_bytes());
        assert_eq!(&b[36..44], b"veth0\0\0\0");
        let mut r = Request::new(RTM_GETLINK, NLM_F_REQUEST, 1);
        r.attr_str(IFLA_IFNAME, &"x".repeat(70_000));
        assert_eq!(r.finish(), None);
    }

    fn reply(ty: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Request::new(ty, 0, seq);
        m.buf.extend_from_slice(payload);
        m.finish().unwrap()
    }

    #[test]
    fn replies_decode_links_filters_and_errors() {
        // A link with IFLA_XDP { ATTACHED 1, PROG_ID 42 }.
        let mut l = Request::new(0, 0, 0).ifinfo(5);
        l.attr_str(IFLA_IFNAME, "veth0");
        let x = l.nest(IFLA_XDP);
        l.attr(2, &[1]);
        l.attr_u32(IFLA_XDP_PROG_ID, 42);
        l.end(x);
        let l = l.finish().unwrap();
        // A cls_bpf filter at priority 7, handle 1, program 9.
        let mut f = Request::new(0, 0, 0).tcmsg(5, 1, 0xffff_fff2, 7 << 16 | 0x0300);
        f.attr_str(TCA_KIND, "bpf");
        let o = f.nest(TCA_OPTIONS);
        f.attr_str(TCA_BPF_NAME, "tc_prog");
        f.attr_u32(TCA_BPF_ID, 9);
        f.end(o);
        let f = f.finish().unwrap();
        let mut d = reply(RTM_NEWLINK, 4, &l[NLMSG_HDRLEN..]);
        d.extend(reply(RTM_NEWTFILTER, 4, &f[NLMSG_HDRLEN..]));
        d.extend(reply(NLMSG_ERROR, 4, &(-19i32).to_ne_bytes()));
        let mut rest = d.as_slice();
        let m = next_message(&mut rest).unwrap().unwrap();
        assert_eq!((m.ty, m.seq, m.error()), (RTM_NEWLINK, 4, None));
        assert_eq!(
            LinkInfo::parse(m.payload),
            Some(LinkInfo {
                index: 5,
                xdp_prog_id: Some(42)
            })
        );
        let m = next_message(&mut rest).unwrap().unwrap();
        assert_eq!(
            FilterInfo::parse(m.payload),
            Some(FilterInfo {
                handle: 1,
                info: 7 << 16 | 0x0300,
                kind: "bpf".into(),
                prog_id: Some(9)
            })
        );
        let m = next_message(&mut rest).unwrap().unwrap();
        assert_eq!(m.error(), Some(-19));
        assert_eq!(next_message(&mut rest), Ok(None));
        // A link without XDP; truncated payloads decode to nothing.
        let bare = Request::new(0, 0, 0).ifinfo(2).finish().unwrap();
        assert_eq!(
            LinkInfo::parse(&bare[NLMSG_HDRLEN..]).unwrap().xdp_prog_id,
            None
        );
        assert_eq!(LinkInfo::parse(&[0; 6]), None);
        assert_eq!(FilterInfo::parse(&[0; 12]), None);
    }

    fn msg(len: u32, total: usize) -> Vec<u8> {
        let mut m = len.to_ne_bytes().to_vec();
        m.resize(total, 0xaa);
        m
    }

    #[test]
    fn datagrams_split_into_messages_and_refuse_bad_lengths() {
        // Two messages, the first padded from 18 to 20 bytes.
        let mut d = msg(18, 20);
        d.extend(msg(16, 16));
        let mut rest = d.as_slice();
        assert_eq!(
            next_message(&mut rest).unwrap().map(|m| m.payload.len()),
            Some(2)
        );
        assert_eq!(
            next_message(&mut rest).unwrap().map(|m| m.payload.len()),
            Some(0)
        );
        assert_eq!(next_message(&mut rest), Ok(None));
        // Shorter than a header, past the end, zero: refused, no panic.
        for bad in [msg(8, 16), msg(40, 16), msg(0, 16), msg(u32::MAX, 16)] {
            assert_eq!(next_message(&mut bad.as_slice()), Err(Malformed));
        }
        // A stub shorter than a length word ends the datagram.
        assert_eq!(next_message(&mut [1u8, 2].as_slice()), Ok(None));
    }

    #[test]
    fn attribute_walk_stops_at_impossible_lengths() {
        // len 2 (< header), len past the end, then nothing.
        for bad in [&[2u8, 0, 1, 0][..], &[40, 0, 1, 0, 0, 0, 0, 0], &[8, 0]] {
            assert_eq!(attrs(bad).count(), 0);
        }
        // A valid one followed by garbage: the valid one only.
        let b = [8u8, 0, 0x05, 0x80, 1, 2, 3, 4, 0xff];
        assert_eq!(attrs(&b).collect::<Vec<_>>(), [(5u16, &[1u8, 2, 3, 4][..])]);
    }
}
