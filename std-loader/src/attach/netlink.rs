//! The rtnetlink requests behind the legacy network attachments (XDP on
//! an interface, a `cls_bpf` filter under `clsact`) and interface lookup,
//! over a synchronous `NETLINK_ROUTE` socket. Messages are encoded and
//! decoded by [`super::rtnl_wire`]; this module sequences them.
//!
//! A socket belongs to the network namespace of the thread that opened
//! it, and so do the interfaces it names: a link keeps its socket, so it
//! detaches in the right namespace from any thread.

use ember_sys::{Errno, SysError};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_ROUTE;

use super::rtnl_wire::{self as w, FilterInfo, LinkInfo, Message, Request};

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

    /// A request of type `ty` with `flags`, numbered for this socket.
    fn start(&mut self, ty: u16, flags: u16) -> Request {
        self.seq = self.seq.wrapping_add(1);
        let ack = if flags & w::NLM_F_DUMP == w::NLM_F_DUMP {
            0
        } else {
            w::NLM_F_ACK
        };
        Request::new(ty, w::NLM_F_REQUEST | flags | ack, self.seq)
    }

    /// Sends `req` and hands each reply message of its sequence number to
    /// `each`, up to the ACK (or, for a dump, `NLMSG_DONE`); a NACK
    /// becomes `op`'s error.
    fn request(
        &mut self,
        op: &'static str,
        req: Request,
        mut each: impl FnMut(&Message<'_>),
    ) -> Result<(), SysError> {
        let buf = req.finish().ok_or(fail(op, Errno::MSGSIZE))?;
        self.sock.send(&buf, 0).map_err(|e| io_fail(op, &e))?;
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
            while let Some(m) = w::next_message(&mut rest).map_err(|_| fail(op, Errno::PROTO))? {
                if m.seq != self.seq {
                    continue;
                }
                match (m.ty, m.error()) {
                    (w::NLMSG_ERROR, Some(0)) | (w::NLMSG_DONE, _) => return Ok(()),
                    (w::NLMSG_ERROR, Some(c)) => {
                        return Err(fail(op, Errno::from_raw_os_error(c.saturating_abs())));
                    }
                    (w::NLMSG_ERROR, None) => return Err(fail(op, Errno::PROTO)),
                    _ => each(&m),
                }
            }
        }
    }

    /// The interface called `name` (`if_nametoindex`), `None` when there
    /// is none.
    pub(crate) fn ifindex(&mut self, name: &str) -> Result<Option<u32>, SysError> {
        let mut r = self.start(w::RTM_GETLINK, 0).ifinfo(0);
        r.attr_str(w::IFLA_IFNAME, name);
        self.get_link(r)
            .map(|l| l.and_then(|l| u32::try_from(l.index).ok()))
    }

    /// Whether the interface `ifindex` exists.
    pub(crate) fn has_ifindex(&mut self, ifindex: u32) -> Result<bool, SysError> {
        let r = self.start(w::RTM_GETLINK, 0).ifinfo(index(ifindex)?);
        self.get_link(r).map(|l| l.is_some())
    }

    fn get_link(&mut self, r: Request) -> Result<Option<LinkInfo>, SysError> {
        let mut link = None;
        let res = self.request("RTM_GETLINK", r, |m| {
            if m.ty == w::RTM_NEWLINK && link.is_none() {
                link = LinkInfo::parse(m.payload);
            }
        });
        match res {
            Ok(()) => Ok(link),
            Err(e) if e.errno == Errno::NODEV => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The id of the XDP program attached to `ifindex` (any mode).
    pub(crate) fn xdp_prog_id(&mut self, ifindex: u32) -> Result<Option<u32>, SysError> {
        let r = self.start(w::RTM_GETLINK, 0).ifinfo(index(ifindex)?);
        let Some(l) = self.get_link(r)? else {
            return Err(fail("RTM_GETLINK", Errno::NODEV));
        };
        Ok(l.xdp_prog_id)
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
        let mut r = self.start(w::RTM_SETLINK, 0).ifinfo(index(ifindex)?);
        let x = r.nest(w::IFLA_XDP);
        r.attr_u32(w::IFLA_XDP_FD, fd.cast_unsigned());
        r.attr_u32(w::IFLA_XDP_FLAGS, flags);
        if let Some(e) = expected {
            r.attr_u32(w::IFLA_XDP_EXPECTED_FD, e.cast_unsigned());
        }
        r.end(x);
        self.request("RTM_SETLINK (IFLA_XDP)", r, |_| {})
    }

    /// Adds the `clsact` qdisc to `ifindex`; `false` when it was there.
    pub(crate) fn clsact_add(&mut self, ifindex: u32) -> Result<bool, SysError> {
        let r = self.start(w::RTM_NEWQDISC, w::NLM_F_CREATE | w::NLM_F_EXCL);
        match self.request("RTM_NEWQDISC (clsact)", clsact(r, ifindex)?, |_| {}) {
            Ok(()) => Ok(true),
            Err(e) if e.errno == Errno::EXIST => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes the `clsact` qdisc of `ifindex` (and what is under it).
    pub(crate) fn clsact_del(&mut self, ifindex: u32) -> Result<(), SysError> {
        let r = self.start(w::RTM_DELQDISC, 0);
        self.request("RTM_DELQDISC (clsact)", clsact(r, ifindex)?, |_| {})
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
        // NLM_F_ECHO: the kernel sends the filter back with the priority
        // and handle it chose.
        let r = self.start(
            w::RTM_NEWTFILTER,
            w::NLM_F_CREATE | w::NLM_F_EXCL | w::NLM_F_ECHO,
        );
        let mut r = filter_msg(r, ifindex, hook, priority, handle)?;
        r.attr_str(w::TCA_KIND, "bpf");
        let o = r.nest(w::TCA_OPTIONS);
        r.attr_u32(w::TCA_BPF_FD, prog_fd.cast_unsigned());
        r.attr_str(w::TCA_BPF_NAME, name);
        r.attr_u32(w::TCA_BPF_FLAGS, w::TCA_BPF_FLAG_ACT_DIRECT);
        r.end(o);
        let mut got = None;
        self.request(op, r, |m| {
            if m.ty == w::RTM_NEWTFILTER && got.is_none() {
                got = FilterInfo::parse(m.payload).map(|f| split_info(&f));
            }
        })?;
        got.ok_or_else(|| fail(op, Errno::PROTO))
    }

    /// Deletes the filter at `priority` / `handle` under `hook`.
    pub(crate) fn filter_del(
        &mut self,
        ifindex: u32,
        hook: u16,
        priority: u16,
        handle: u32,
    ) -> Result<(), SysError> {
        let r = self.start(w::RTM_DELTFILTER, 0);
        let mut r = filter_msg(r, ifindex, hook, priority, handle)?;
        r.attr_str(w::TCA_KIND, "bpf");
        self.request("RTM_DELTFILTER (bpf)", r, |_| {})
    }

    /// The filters under `hook` of `ifindex`'s clsact.
    pub(crate) fn filters(&mut self, ifindex: u32, hook: u16) -> Result<Vec<Filter>, SysError> {
        let r = self.start(w::RTM_GETTFILTER, w::NLM_F_DUMP);
        let r = filter_msg(r, ifindex, hook, 0, 0)?;
        let mut out = Vec::new();
        self.request("RTM_GETTFILTER", r, |m| {
            if m.ty != w::RTM_NEWTFILTER {
                return;
            }
            // Each priority opens with a handle-0 header entry.
            if let Some(f) = FilterInfo::parse(m.payload).filter(|f| f.handle != 0) {
                let (priority, handle) = split_info(&f);
                out.push(Filter {
                    priority,
                    handle,
                    kind: f.kind,
                    prog_id: f.prog_id,
                });
            }
        })?;
        Ok(out)
    }
}

/// Room for one datagram of replies.
const RECV_MAX: usize = 64 * 1024;

/// `MSG_TRUNC`: `recv` returns the datagram's real length.
const MSG_TRUNC: i32 = 0x20;

fn index(ifindex: u32) -> Result<i32, SysError> {
    i32::try_from(ifindex).map_err(|_| fail("rtnetlink", Errno::NODEV))
}

/// `TC_H_MAKE(TC_H_CLSACT, 0)`: clsact's handle; also its parent
/// (`TC_H_CLSACT`, the same as `TC_H_INGRESS`).
const CLSACT_HANDLE: u32 = 0xffff_0000;
const TC_H_CLSACT: u32 = 0xffff_fff1;

fn clsact(r: Request, ifindex: u32) -> Result<Request, SysError> {
    let mut r = r.tcmsg(index(ifindex)?, CLSACT_HANDLE, TC_H_CLSACT, 0);
    r.attr_str(w::TCA_KIND, "clsact");
    Ok(r)
}

/// A `tcmsg` for a filter under clsact's `hook`: `tcm_info` holds the
/// priority in the high half and the protocol (all) in the low.
fn filter_msg(
    r: Request,
    ifindex: u32,
    hook: u16,
    priority: u16,
    handle: u32,
) -> Result<Request, SysError> {
    let parent = 0xffff_0000 | u32::from(hook);
    let info = (u32::from(priority) << 16) | u32::from(ETH_P_ALL_BE);
    Ok(r.tcmsg(index(ifindex)?, handle, parent, info))
}

fn split_info(f: &FilterInfo) -> (u16, u32) {
    let prio = u16::try_from(f.info >> 16).unwrap_or(0);
    (prio, f.handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_requests_carry_priority_and_protocol() {
        let r = filter_msg(Request::new(0, 0, 0), 3, TC_H_MIN_EGRESS, 7, 0x10).unwrap();
        let b = r.finish().unwrap();
        let f = FilterInfo::parse(&b[w::NLMSG_HDRLEN..]).unwrap();
        assert_eq!(&b[20..24], &3i32.to_ne_bytes());
        assert_eq!(&b[28..32], &0xffff_fff3u32.to_ne_bytes());
        assert_eq!(f.handle, 0x10);
        assert_eq!(f.info >> 16, 7);
        assert_eq!(f.info & 0xffff, u32::from(0x0003_u16.to_be()));
        assert_eq!(split_info(&f), (7, 0x10));
        let c = clsact(Request::new(0, 0, 0), 3).unwrap().finish().unwrap();
        assert_eq!(&c[24..28], &0xffff_0000u32.to_ne_bytes());
        assert_eq!(&c[28..32], &0xffff_fff1u32.to_ne_bytes());
        // An ifindex the header cannot hold is no device.
        assert!(filter_msg(Request::new(0, 0, 0), u32::MAX, TC_H_MIN_INGRESS, 0, 0).is_err());
    }
}
