//! A guest tool for the VM scenarios (tests/vm): makes nf_conntrack_netlink
//! run its dump path, which calls `ctnetlink_fill_info` and nf_conntrack's
//! `nf_ct_get_id` once per entry. With no netfilter rules the guest tracks
//! no connection, so it first creates an entry itself
//! (`IPCTNL_MSG_CT_NEW`: UDP 127.0.0.1:40000 -> 127.0.0.1:40001), then asks
//! for the table (`IPCTNL_MSG_CT_GET` with `NLM_F_DUMP`) and prints how
//! many entries came back. Exits 0 when at least one did.
//!
//! Usage: `vm_conntrack` (static; nothing else in the guest speaks
//! ctnetlink).

use std::process::ExitCode;

use rustix::fd::OwnedFd;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_TIMEOUT: u16 = 7;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const AF_INET: u8 = 2;
const IPPROTO_UDP: u8 = 17;

/// A netlink message under construction: header, nfgenmsg, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(msg: u16, flags: u16, seq: u32) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish
        buf.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | msg).to_ne_bytes());
        buf.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // nfgenmsg: family, version 0, resource id 0.
        buf.extend_from_slice(&[AF_INET, 0, 0, 0]);
        Msg { buf }
    }

    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A nested attribute whose members `f` adds.
    fn nest(&mut self, ty: u16, f: impl FnOnce(&mut Msg)) {
        let at = self.buf.len();
        self.attr(ty | NLA_F_NESTED, &[]);
        f(self);
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// `src:sport -> dst:dport` over UDP.
    fn tuple(&mut self, ty: u16, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) {
        self.nest(ty, |m| {
            m.nest(CTA_TUPLE_IP, |m| {
                m.attr(CTA_IP_V4_SRC, &src);
                m.attr(CTA_IP_V4_DST, &dst);
            });
            m.nest(CTA_TUPLE_PROTO, |m| {
                m.attr(CTA_PROTO_NUM, &[IPPROTO_UDP]);
                m.attr(CTA_PROTO_SRC_PORT, &sport.to_be_bytes());
                m.attr(CTA_PROTO_DST_PORT, &dport.to_be_bytes());
            });
        });
    }

    fn finish(mut self) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The replies to one request: entries seen, until the ack or the end of
/// the dump; an error the kernel sent back is returned as such.
fn replies(sock: &OwnedFd, dump: bool) -> Result<usize, String> {
    let mut buf = vec![0u8; 1 << 16];
    let mut entries = 0;
    loop {
        let (n, _) = rustix::net::recv(sock, &mut buf[..], RecvFlags::empty())
            .map_err(|e| format!("recv: {e}"))?;
        let mut at = 0;
        while at + 16 <= n {
            let u32_at =
                |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
            let len = u32_at(at) as usize;
            let ty = u16::from_ne_bytes([buf[at + 4], buf[at + 5]]);
            if len < 16 || at + len > n {
                return Err(format!("malformed reply (length {len} at {at} of {n})"));
            }
            match ty {
                NLMSG_DONE => return Ok(entries),
                NLMSG_ERROR if len >= 20 => {
                    let errno = i32::from_ne_bytes([
                        buf[at + 16],
                        buf[at + 17],
                        buf[at + 18],
                        buf[at + 19],
                    ]);
                    // EEXIST: a second run finds the first one's entry.
                    if errno != 0 && (dump || errno != -17) {
                        return Err(format!(
                            "the kernel answered {}",
                            rustix::io::Errno::from_raw_os_error(-errno)
                        ));
                    }
                    if !dump {
                        return Ok(entries);
                    }
                }
                t if t == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW => entries += 1,
                _ => {}
            }
            at += (len + 3) & !3;
        }
    }
}

fn run() -> Result<usize, String> {
    let sock = rustix::net::socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::NETFILTER),
    )
    .map_err(|e| format!("socket(AF_NETLINK, NETLINK_NETFILTER): {e}"))?;
    let kernel = SocketAddrNetlink::new(0, 0);
    rustix::net::bind(&sock, &kernel).map_err(|e| format!("bind: {e}"))?;
    let send = |m: Vec<u8>| {
        rustix::net::sendto(&sock, &m, SendFlags::empty(), &kernel)
            .map(drop)
            .map_err(|e| format!("sendto: {e}"))
    };

    let lo = [127, 0, 0, 1];
    let mut new = Msg::new(IPCTNL_MSG_CT_NEW, NLM_F_CREATE | NLM_F_ACK, 1);
    new.tuple(CTA_TUPLE_ORIG, lo, 40000, lo, 40001);
    new.tuple(CTA_TUPLE_REPLY, lo, 40001, lo, 40000);
    new.attr(CTA_TIMEOUT, &60u32.to_be_bytes());
    send(new.finish())?;
    replies(&sock, false).map_err(|e| format!("IPCTNL_MSG_CT_NEW: {e}"))?;

    send(Msg::new(IPCTNL_MSG_CT_GET, NLM_F_DUMP, 2).finish())?;
    replies(&sock, true).map_err(|e| format!("IPCTNL_MSG_CT_GET dump: {e}"))
}

fn main() -> ExitCode {
    match run() {
        Ok(n) => {
            println!("vm_conntrack: dumped {n} conntrack entries");
            if n > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("vm_conntrack: {e}");
            ExitCode::FAILURE
        }
    }
}
