//! A netkit pair for the guest's netkit check, made over rtnetlink with
//! netlink-packet-route (busybox `ip` knows no netkit): both devices in
//! this namespace, L3 mode (no ARP), each with its own /24, so a UDP
//! datagram to the other address of a /24 leaves through that device.

use core::net::Ipv4Addr;
use std::net::UdpSocket;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage as Rt;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoNetkit, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_sys::Socket;
use netlink_sys::protocols::NETLINK_ROUTE;

/// Datagrams sent through each device per call.
pub(crate) const PACKETS: u64 = 5;

/// The primary's /24 (10.201.1.0) and the peer's (10.201.2.0).
const NETS: [[u8; 3]; 2] = [[10, 201, 1], [10, 201, 2]];

/// A netkit pair; [`NetkitPair::delete`] removes both devices.
#[derive(Debug)]
pub(crate) struct NetkitPair {
    sock: Socket,
    seq: u32,
    name: String,
    /// The primary device's ifindex (both sides attach through it).
    pub(crate) primary: u32,
    peer: u32,
}

fn io(what: &str, e: impl core::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl NetkitPair {
    /// Creates `primary` with its peer `peer`, addressed and up.
    pub(crate) fn create(primary: &str, peer: &str) -> Result<NetkitPair, String> {
        let sock = Socket::new(NETLINK_ROUTE).map_err(|e| io("socket(NETLINK_ROUTE)", e))?;
        let mut pair = NetkitPair {
            sock,
            seq: 0,
            name: primary.to_owned(),
            primary: 0,
            peer: 0,
        };
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_owned()));
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(primary.to_owned()));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Netkit),
            LinkInfo::Data(InfoData::Netkit(vec![InfoNetkit::Peer(peer_msg)])),
        ]));
        pair.request(
            "RTM_NEWLINK netkit",
            Rt::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        let made = pair.setup(primary, peer);
        if let Err(e) = made {
            // Half made: remove what exists (the peer goes with it).
            let _ = pair.delete();
            return Err(e);
        }
        Ok(pair)
    }

    fn setup(&mut self, primary: &str, peer: &str) -> Result<(), String> {
        self.primary = ifindex(primary)?;
        self.peer = ifindex(peer)?;
        for (i, (name, index)) in [(primary, self.primary), (peer, self.peer)]
            .into_iter()
            .enumerate()
        {
            // No IPv6 chatter (router solicitations, MLD) to count.
            let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
            let [a, b, c] = NETS[i];
            let mut m = AddressMessage::default();
            m.header.family = AddressFamily::Inet;
            m.header.prefix_len = 24;
            m.header.index = index;
            let local = Ipv4Addr::new(a, b, c, 1).into();
            m.attributes.push(AddressAttribute::Local(local));
            m.attributes.push(AddressAttribute::Address(local));
            self.request("RTM_NEWADDR", Rt::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL)?;
            let mut l = LinkMessage::default();
            l.header.index = index;
            l.header.flags = LinkFlags::Up;
            l.header.change_mask = LinkFlags::Up;
            self.request("RTM_NEWLINK up", Rt::NewLink(l), 0)?;
        }
        Ok(())
    }

    /// Sends [`PACKETS`] datagrams out of the primary device.
    pub(crate) fn send_primary(&self) -> Result<(), String> {
        send(NETS[0])
    }

    /// Sends [`PACKETS`] datagrams out of the peer device.
    pub(crate) fn send_peer(&self) -> Result<(), String> {
        send(NETS[1])
    }

    /// Removes the pair (deleting the primary deletes its peer).
    pub(crate) fn delete(mut self) -> Result<(), String> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(self.name.clone()));
        self.request("RTM_DELLINK", Rt::DelLink(m), 0)
    }

    fn request(&mut self, op: &str, msg: Rt, flags: u16) -> Result<(), String> {
        self.seq += 1;
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        hdr.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(msg));
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| io(op, e))?;
        loop {
            let (data, _) = self.sock.recv_from_full().map_err(|e| io(op, e))?;
            let reply = NetlinkMessage::<Rt>::deserialize(&data).map_err(|e| io(op, e))?;
            if reply.header.sequence_number != self.seq {
                continue;
            }
            if let NetlinkPayload::Error(e) = reply.payload {
                return match e.code {
                    None => Ok(()),
                    Some(c) => Err(format!(
                        "{op}: {}",
                        std::io::Error::from_raw_os_error(c.get().abs())
                    )),
                };
            }
        }
    }
}

fn ifindex(name: &str) -> Result<u32, String> {
    let s = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .map_err(|e| io(&format!("ifindex of {name}"), e))?;
    s.trim().parse().map_err(|e| io(name, e))
}

fn send([a, b, c]: [u8; 3]) -> Result<(), String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| io("udp socket", e))?;
    let to = (Ipv4Addr::new(a, b, c, 2), 9);
    for _ in 0..PACKETS {
        s.send_to(b"ember netkit", to)
            .map_err(|e| io(&format!("send to {to:?}"), e))?;
    }
    Ok(())
}
