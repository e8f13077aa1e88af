//! The rtnetlink requests behind the legacy network attachments (XDP on
//! an interface, a `cls_bpf` filter under `clsact`) and interface lookup,
//! over a synchronous `NETLINK_ROUTE` socket. Messages are encoded and
//! decoded by `netlink-packet-route`; this module only sequences them.
//!
//! A socket belongs to the network namespace of the thread that opened
//! it, and so do the interfaces it names: a link keeps its socket, so it
//! detaches in the right namespace from any thread.

use ember_sys::{Errno, SysError};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage as Rt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage, LinkXdp};
use netlink_packet_route::tc::{
    TcAttribute, TcBpfFlags, TcFilterBpfOption, TcHandle, TcMessage, TcOption,
};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_ROUTE;

/// `XDP_FLAGS_UPDATE_IF_NOEXIST`: fail rather than replace a program.
pub(crate) const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
/// `XDP_FLAGS_REPLACE`: replace only the program `IFLA_XDP_EXPECTED_FD`
/// names.
pub(crate) const XDP_FLAGS_REPLACE: u32 = 1 << 4;
/// `ETH_P_ALL` in network order, the protocol of a filter that sees all.
const ETH_P_ALL_BE: u16 = 0x0003_u16.to_be();
/// `TC_H_MIN_INGRESS` / `TC_H_MIN_EGRESS`: clsact's two hooks.
pub(crate) const TC_H_MIN_INGRESS: u16 = 0xfff2;
pub(crate) const TC_H_MIN_EGRESS: u16 = 0xfff3;

/// A `NETLINK_ROUTE` socket in the namespace of the thread that opened
/// it.
#[derive(Debug)]
pub(crate) struct Rtnl {
    sock: Socket,
    seq: u32,
}

/// A `cls_bpf` filter as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    pub(crate) priority: u16,
    pub(crate) handle: u32,
    pub(crate) kind: String,
    pub(crate) prog_id: Option<u32>,
}

fn fail(op: &'static str, errno: Errno) -> SysError {
    SysError { cmd: op, errno }
}

fn io_fail(op: &'static str, e: &std::io::Error) -> SysError {
    fail(op, Errno::from_io_error(e).unwrap_or(Errno::IO))
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub(crate) fn open() -> Result<Rtnl, SysError> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_fail("socket(NETLINK_ROUTE)", &e))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// Sends `msg` and collects the replies up to the ACK (or, for a dump,
    /// `NLMSG_DONE`); a NACK becomes `op`'s error.
    fn request(&mut self, op: &'static str, msg: Rt, flags: u16) -> Result<Vec<Rt>, SysError> {
        self.seq = self.seq.wrapping_add(1);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags | if dump { 0 } else { NLM_F_ACK };
        hdr.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| io_fail(op, &e))?;
        let mut out = Vec::new();
        // Replies fit 32 KiB (the kernel's cap on a dump's datagram); a
        // larger one would come truncated and is refused.
        let mut data: Vec<u8> = Vec::with_capacity(RECV_MAX);
        loop {
            data.clear();
            let n = self
                .sock
                .recv(&mut data, MSG_TRUNC)
                .map_err(|e| io_fail(op, &e))?;
            if n > data.len() {
                return Err(fail(op, Errno::MSGSIZE));
            }
            let mut rest = data.as_slice();
            while let Some(one) = next_message(&mut rest).map_err(|()| fail(op, Errno::PROTO))? {
                // A message this crate cannot decode is not ours to judge.
                let Ok(reply) = NetlinkMessage::<Rt>::deserialize(one) else {
                    continue;
                };
                if reply.header.sequence_number != self.seq {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => return Ok(out),
                        Some(c) => {
                            return Err(fail(op, Errno::from_raw_os_error(c.get().abs())));
                        }
                    },
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::InnerMessage(i) => out.push(i),
                    _ => {}
                }
            }
        }
    }

    /// The interface called `name` (`if_nametoindex`), `None` when there
    /// is none.
    pub(crate) fn ifindex(&mut self, name: &str) -> Result<Option<u32>, SysError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        self.get_link(m).map(|l| l.map(|l| l.header.index))
    }

    /// Whether the interface `ifindex` exists.
    pub(crate) fn has_ifindex(&mut self, ifindex: u32) -> Result<bool, SysError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        self.get_link(m).map(|l| l.is_some())
    }

    fn get_link(&mut self, m: LinkMessage) -> Result<Option<LinkMessage>, SysError> {
        match self.request("RTM_GETLINK", Rt::GetLink(m), 0) {
            Ok(r) => Ok(r.into_iter().find_map(|r| match r {
                Rt::NewLink(l) => Some(l),
                _ => None,
            })),
            Err(e) if e.errno == Errno::NODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of the XDP program attached to `ifindex` (any mode).
    pub(crate) fn xdp_prog_id(&mut self, ifindex: u32) -> Result<Option<u32>, SysError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        let Some(l) = self.get_link(m)? else {
            return Err(fail("RTM_GETLINK", Errno::NODEV));
        };
        Ok(l.attributes.iter().find_map(|a| match a {
            LinkAttribute::Xdp(x) => x.iter().find_map(|x| match x {
                LinkXdp::ProgId(id) if *id != 0 => Some(*id),
                _ => None,
            }),
            _ => None,
        }))
    }

    /// `RTM_SETLINK` with `IFLA_XDP`: attaches the program `fd` (-1:
    /// none) with `flags`; `expected` is `IFLA_XDP_EXPECTED_FD` (with
    /// `XDP_FLAGS_REPLACE`).
    pub(crate) fn xdp_set(
        &mut self,
        ifindex: u32,
        fd: i32,
        flags: u32,
        expected: Option<i32>,
    ) -> Result<(), SysError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        let mut x = vec![LinkXdp::Fd(fd), LinkXdp::Flags(flags)];
        if let Some(e) = expected {
            x.push(LinkXdp::ExpectedFd(e.cast_unsigned()));
        }
        m.attributes.push(LinkAttribute::Xdp(x));
        self.request("RTM_SETLINK (IFLA_XDP)", Rt::SetLink(m), 0)
            .map(drop)
    }

    /// Adds the `clsact` qdisc to `ifindex`; `false` when it was there.
    pub(crate) fn clsact_add(&mut self, ifindex: u32) -> Result<bool, SysError> {
        let m = clsact(ifindex)?;
        match self.request(
            "RTM_NEWQDISC (clsact)",
            Rt::NewQueueDiscipline(m),
            NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.errno == Errno::EXIST => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the `clsact` qdisc of `ifindex` (and what is under it).
    pub(crate) fn clsact_del(&mut self, ifindex: u32) -> Result<(), SysError> {
        let m = clsact(ifindex)?;
        self.request("RTM_DELQDISC (clsact)", Rt::DelQueueDiscipline(m), 0)
            .map(drop)
    }

    /// Adds a direct-action `cls_bpf` filter running `prog_fd` under the
    /// clsact hook `hook` (`TC_H_MIN_INGRESS`/`EGRESS`) at `priority`
    /// with `handle` (0: the kernel picks either). Returns the priority
    /// and handle the filter got.
    pub(crate) fn filter_add(
        &mut self,
        ifindex: u32,
        hook: u16,
        priority: u16,
        handle: u32,
        prog_fd: i32,
        name: &str,
    ) -> Result<(u16, u32), SysError> {
        let op = "RTM_NEWTFILTER (bpf)";
        let mut m = filter_msg(ifindex, hook, priority, handle)?;
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        m.attributes.push(TcAttribute::Options(vec![
            TcOption::Bpf(TcFilterBpfOption::ProgFd(prog_fd.cast_unsigned())),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name.to_owned())),
            TcOption::Bpf(TcFilterBpfOption::Flags(TcBpfFlags::DirectAction)),
        ]));
        // NLM_F_ECHO: the kernel sends the filter back with the priority
        // and handle it chose.
        let r = self.request(
            op,
            Rt::NewTrafficFilter(m),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        )?;
        r.into_iter()
            .find_map(|r| match r {
                Rt::NewTrafficFilter(t) => Some(split_info(&t)),
                _ => None,
            })
            .ok_or_else(|| fail(op, Errno::PROTO))
    }

    /// Deletes the filter at `priority` / `handle` under `hook`.
    pub(crate) fn filter_del(
        &mut self,
        ifindex: u32,
        hook: u16,
        priority: u16,
        handle: u32,
    ) -> Result<(), SysError> {
        let mut m = filter_msg(ifindex, hook, priority, handle)?;
        m.attributes.push(TcAttribute::Kind("bpf".into()));
        self.request("RTM_DELTFILTER (bpf)", Rt::DelTrafficFilter(m), 0)
            .map(drop)
    }

    /// The filters under `hook` of `ifindex`'s clsact.
    pub(crate) fn filters(&mut self, ifindex: u32, hook: u16) -> Result<Vec<Filter>, SysError> {
        let m = filter_msg(ifindex, hook, 0, 0)?;
        let r = self.request("RTM_GETTFILTER", Rt::GetTrafficFilter(m), NLM_F_DUMP)?;
        Ok(r.into_iter()
            .filter_map(|r| match r {
                Rt::NewTrafficFilter(t) => Some(t),
                _ => None,
            })
            // Each priority opens with a handle-0 header entry.
            .filter(|t| u32::from(t.header.handle) != 0)
            .map(|t| {
                let (priority, handle) = split_info(&t);
                let mut kind = String::new();
                let mut prog_id = None;
                for a in &t.attributes {
                    match a {
                        TcAttribute::Kind(k) => kind.clone_from(k),
                        TcAttribute::Options(o) => {
                            prog_id = o.iter().find_map(|o| match o {
                                TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => Some(*id),
                                _ => None,
                            });
                        }
                        _ => {}
                    }
                }
                Filter {
                    priority,
                    handle,
                    kind,
                    prog_id,
                }
            })
            .collect())
    }
}

/// Room for one datagram of replies.
const RECV_MAX: usize = 64 * 1024;

/// `MSG_TRUNC`: `recv` returns the datagram's real length.
const MSG_TRUNC: i32 = 0x20;

/// Splits the next message off a datagram: `Ok(None)` at its end, `Err`
/// for a length that is too short for a header or runs past the data.
fn next_message<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, ()> {
    let Some(len) = rest.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_ne_bytes(len.try_into().map_err(drop)?);
    let len = usize::try_from(len).map_err(drop)?;
    let one = rest.get(..len).filter(|_| len >= NLMSG_HDRLEN).ok_or(())?;
    // Messages start 4-aligned; the last may end unpadded.
    *rest = rest.get(len.next_multiple_of(4)..).unwrap_or_default();
    Ok(Some(one))
}

/// `NLMSG_HDRLEN`.
const NLMSG_HDRLEN: usize = 16;

fn index(ifindex: u32) -> Result<i32, SysError> {
    i32::try_from(ifindex).map_err(|_| fail("rtnetlink", Errno::NODEV))
}

fn clsact(ifindex: u32) -> Result<TcMessage, SysError> {
    let mut m = TcMessage::with_index(index(ifindex)?);
    m.header.handle = TcHandle {
        major: 0xffff,
        minor: 0,
    };
    m.header.parent = TcHandle::CLSACT;
    m.attributes.push(TcAttribute::Kind("clsact".into()));
    Ok(m)
}

fn filter_msg(ifindex: u32, hook: u16, priority: u16, handle: u32) -> Result<TcMessage, SysError> {
    let mut m = TcMessage::with_index(index(ifindex)?);
    m.header.parent = TcHandle {
        major: 0xffff,
        minor: hook,
    };
    m.header.handle = handle.into();
    // tcm_info: priority in the high half, protocol in the low.
    m.header.info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL_BE);
    Ok(m)
}

fn split_info(t: &TcMessage) -> (u16, u32) {
    let prio = u16::try_from(t.header.info >> 16).unwrap_or(0);
    (prio, t.header.handle.into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(next_message(&mut rest).unwrap().map(<[u8]>::len), Some(18));
        assert_eq!(next_message(&mut rest).unwrap().map(<[u8]>::len), Some(16));
        assert_eq!(next_message(&mut rest), Ok(None));
        // Shorter than a header, past the end, zero: refused, no panic.
        for bad in [msg(8, 16), msg(40, 16), msg(0, 16), msg(u32::MAX, 16)] {
            assert_eq!(next_message(&mut bad.as_slice()), Err(()));
        }
        // A stub shorter than a length word ends the datagram.
        assert_eq!(next_message(&mut [1u8, 2].as_slice()), Ok(None));
    }

    #[test]
    fn filter_requests_carry_priority_and_protocol() {
        let m = filter_msg(3, TC_H_MIN_EGRESS, 7, 0x10).unwrap();
        assert_eq!(m.header.index, 3);
        assert_eq!(u32::from(m.header.parent), 0xffff_fff3);
        assert_eq!(u32::from(m.header.handle), 0x10);
        assert_eq!(m.header.info >> 16, 7);
        assert_eq!(m.header.info & 0xffff, u32::from(0x0003_u16.to_be()));
        assert_eq!(split_info(&m), (7, 0x10));
        assert_eq!(u32::from(clsact(3).unwrap().header.parent), 0xffff_fff1);
        // An ifindex the header cannot hold is no device.
        assert!(filter_msg(u32::MAX, TC_H_MIN_INGRESS, 0, 0).is_err());
    }
}
