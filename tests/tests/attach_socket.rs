//! Socket and network-namespace programs attached for real: a socket
//! filter on a UDP socket (counting, then dropping what it receives),
//! sk_msg verdicts on a sockmap (link and `BPF_PROG_ATTACH`), and in a
//! network namespace made for the test: sk_lookup, a flow dissector (link
//! and legacy, fed raw frames through an AF_PACKET socket on `lo`) and a
//! netfilter LOCAL_OUT hook. Each program counts into its own slot;
//! dropping the link stops the count. The namespace guard deletes it.

use core::time::Duration;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::Command;

use ember::attach::{AttachErrorKind, Netfilter, NfHook, NfProto};
use ember::maps::SockMap;
use ember::{AttachMode, AttachOpts, Ebpf, EbpfLoader, Mechanism};
use ember_tests::{fixture, kernel_ready, open_fds, serial, skip, tool};

fn load() -> Ebpf {
    EbpfLoader::new()
        .load_file(fixture("attach/socket.bpf-el.o"))
        .expect("load attach/socket.bpf")
}

fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("counts")
        .expect("counts")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("an array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

fn legacy() -> AttachOpts {
    AttachOpts {
        mode: AttachMode::Legacy,
        ..AttachOpts::default()
    }
}

/// Sends one datagram to `rx` and says whether it arrived.
fn arrives(tx: &UdpSocket, rx: &UdpSocket) -> bool {
    tx.send_to(b"ping", rx.local_addr().expect("addr"))
        .expect("send");
    let mut buf = [0u8; 16];
    match rx.recv(&mut buf) {
        Ok(n) => n == 4,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("recv: {e}"),
    }
}

#[test]
fn socket_filter_counts_then_drops_and_detaches() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let rx = UdpSocket::bind("127.0.0.1:0").expect("rx");
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("tx");
        let keep = ebpf
            .program("keep_all")
            .expect("keep_all")
            .attach_socket(&rx)
            .expect("attach keep_all");
        assert_eq!(keep.mechanism(), Mechanism::SocketOption);
        assert!(
            keep.target().starts_with("socket 'socket:["),
            "{}",
            keep.target()
        );
        for _ in 0..3 {
            assert!(arrives(&tx, &rx), "keep_all keeps packets");
        }
        assert_eq!(count(&ebpf, 0), 3);
        keep.detach().expect("SO_DETACH_BPF");
        assert!(arrives(&tx, &rx));
        assert_eq!(count(&ebpf, 0), 3, "detached filter does not run");

        let drop_all = ebpf
            .program("drop_all")
            .expect("drop_all")
            .attach_socket(&rx)
            .expect("attach drop_all");
        assert!(!arrives(&tx, &rx), "drop_all drops");
        assert_eq!(count(&ebpf, 1), 1);
        drop(drop_all);
        assert!(arrives(&tx, &rx), "dropping the link removes the filter");
        assert_eq!(count(&ebpf, 1), 1);

        // A socket filter is not a sockmap program; a pipe is no socket.
        let e = ebpf
            .program("keep_all")
            .expect("keep_all")
            .attach_sockmap(
                ebpf.map("socks").expect("socks"),
                None,
                AttachOpts::default(),
            )
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
        let f = File::open("/proc/self/stat").expect("a file");
        let e = ebpf
            .program("keep_all")
            .expect("keep_all")
            .attach_socket(&f)
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::Sys(_)), "{e}");
        assert!(e.to_string().contains("keep_all"), "{e}");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn reuseport_selector_runs_for_the_group_and_detaches() {
    use rustix::net::{AddressFamily, SocketType, bind, socket, sockopt};
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let rx = socket(AddressFamily::INET, SocketType::DGRAM, None).expect("socket");
        sockopt::set_socket_reuseport(&rx, true).expect("SO_REUSEPORT");
        bind(&rx, &core::net::SocketAddrV4::new([127, 0, 0, 1].into(), 0)).expect("bind");
        let rx = UdpSocket::from(rx);
        rx.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let tx = UdpSocket::bind("127.0.0.1:0").expect("tx");
        let pick = ebpf.program("pick").expect("pick");
        let link = pick.attach_reuseport(&rx).expect("attach");
        assert_eq!(link.mechanism(), Mechanism::SocketOption);
        assert!(arrives(&tx, &rx));
        let n = count(&ebpf, 7);
        assert!(n >= 1, "the selector ran");
        drop(link);
        assert!(arrives(&tx, &rx));
        assert_eq!(count(&ebpf, 7), n, "detached");
        let e = ebpf
            .program("keep_all")
            .expect("keep_all")
            .attach_reuseport(&rx)
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

/// A fresh connected TCP pair with one end in the sockmap (sockets take
/// the map's programs when they are put in): the client in `socks[0]`
/// (sk_msg sees what it sends) or, with `receiver`, the server in
/// `socks[1]` (sk_skb sees what it receives). The client writes, the
/// server reads it back, the socket leaves the map again.
fn through_sockmap(ebpf: &Ebpf, receiver: bool) {
    let l = TcpListener::bind("127.0.0.1:0").expect("listen");
    let mut client = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (mut server, _) = l.accept().expect("accept");
    let socks = SockMap::new(ebpf.map("socks").expect("socks")).expect("sockmap view");
    let (slot, sock) = if receiver {
        (1u32, ember::ember_sys::AsFd::as_fd(&server))
    } else {
        (0u32, ember::ember_sys::AsFd::as_fd(&client))
    };
    socks
        .set(&slot.to_ne_bytes(), sock, 0)
        .expect("into the sockmap");
    client.write_all(b"hi").expect("write");
    let mut buf = [0u8; 2];
    server.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hi", "SK_PASS lets it through");
    socks
        .remove(&slot.to_ne_bytes())
        .expect("out of the sockmap");
}

fn via_sockmap(ebpf: &Ebpf) {
    through_sockmap(ebpf, false);
}

#[test]
fn sk_msg_on_a_sockmap_by_link_and_prog_attach() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let p = |n: &str| ebpf.program(n).expect(n);
        let socks = ebpf.map("socks").expect("socks");
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (0, 0));

        let mut link = p("msg_a")
            .attach_sockmap(socks, None, AttachOpts::default())
            .expect("msg_a");
        assert!(link.target().contains("socks"), "{}", link.target());
        let mech = link.mechanism();
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (1, 0), "msg_a ran");
        link.update(p("msg_b")).expect("update");
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (1, 1), "msg_b instead");
        drop(link);
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (1, 1), "detached");

        let old = p("msg_a")
            .attach_sockmap(socks, None, legacy())
            .expect("msg_a by PROG_ATTACH");
        assert_eq!(old.mechanism(), Mechanism::ProgAttach);
        via_sockmap(&ebpf);
        assert_eq!(count(&ebpf, 2), 2, "msg_a ran");
        // The legacy slot is swapped by attaching again (no REPLACE).
        let mut old = old;
        old.update(p("msg_b")).expect("update");
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (2, 2), "msg_b instead");
        drop(old);
        via_sockmap(&ebpf);
        assert_eq!((count(&ebpf, 2), count(&ebpf, 3)), (2, 2), "detached");
        let want = if ember::attach::socket::sockmap_link() {
            Mechanism::BpfLink
        } else {
            Mechanism::ProgAttach
        };
        assert_eq!(mech, want, "Auto follows the sockmap-link probe");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn sk_skb_stream_verdict_on_a_sockmap() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let socks = ebpf.map("socks").expect("socks");
        let p = ebpf.program("skb_verdict").expect("skb_verdict");
        for opts in [AttachOpts::default(), legacy()] {
            let start = count(&ebpf, 8);
            let link = p.attach_sockmap(socks, None, opts).expect("stream verdict");
            through_sockmap(&ebpf, true);
            assert!(
                count(&ebpf, 8) > start,
                "{:?}: the verdict ran",
                link.mechanism()
            );
            drop(link);
            let after = count(&ebpf, 8);
            through_sockmap(&ebpf, true);
            assert_eq!(count(&ebpf, 8), after, "detached");
        }
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

/// A network namespace made for the test (`ip netns add`), with `lo` up;
/// deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        let Some(ip) = tool("ip") else {
            skip("no ip(8) (iproute2) to make a network namespace");
            return None;
        };
        let name = format!("ember-test-{}-{tag}", std::process::id());
        let _ = Command::new(&ip)
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let ok = Command::new(&ip)
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name} failed");
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    fn open(&self) -> File {
        File::open(self.path()).expect("open the netns")
    }

    /// Runs `cmd` inside the namespace; returns whether it succeeded.
    fn exec(&self, cmd: &[&str]) -> bool {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A TCP connect to a closed port of 127.0.0.1 inside the namespace:
    /// a SYN out (netfilter LOCAL_OUT), a listener lookup (sk_lookup).
    fn connect(&self) {
        let refused = !self.exec(&["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9"]);
        assert!(refused, "nothing listens on port 9");
    }

    /// Raw Ethernet frames sent on `lo` through AF_PACKET: the kernel
    /// dissects each (`skb_probe_transport_header`) with the namespace's
    /// flow dissector.
    fn raw_frames(&self, python: &std::path::Path) {
        let script = "import socket\n\
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\n\
            s.bind(('lo', 0))\n\
            for _ in range(3): s.send(bytes(12) + b'\\x08\\x00' + bytes(40))\n";
        let ok = self.exec(&[&python.to_string_lossy(), "-c", script]);
        assert!(ok, "sending raw frames failed");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

#[test]
fn sk_lookup_flow_dissector_and_netfilter_in_a_netns() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let p = |n: &str| ebpf.program(n).expect(n);
        let Some(ns) = Netns::new("ns") else {
            return;
        };

        // libbpf auto-attaches none of these (they need a target).
        for name in ["lookup", "dissect", "nf_count", "msg_a", "keep_all", "pick"] {
            let e = p(name).attach().unwrap_err();
            assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
        }

        // sk_lookup: the listener lookup of the SYN runs it.
        let lookup = p("lookup")
            .attach_netns_path(ns.path(), AttachOpts::default())
            .expect("sk_lookup");
        assert_eq!(lookup.mechanism(), Mechanism::BpfLink);
        ns.connect();
        let n = count(&ebpf, 4);
        assert!(n >= 1, "sk_lookup ran");
        let e = p("lookup").attach_netns(ns.open(), legacy()).unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
        drop(lookup);
        ns.connect();
        assert_eq!(count(&ebpf, 4), n, "detached");

        // netfilter LOCAL_OUT in that namespace.
        let hook = Netfilter {
            proto: NfProto::Ipv4,
            hook: NfHook::LocalOut,
            priority: 1,
            defrag: false,
        };
        let nf_fd = ns.open();
        let nf = p("nf_count")
            .attach_netfilter(hook, Some(ember::ember_sys::AsFd::as_fd(&nf_fd)))
            .expect("netfilter");
        ns.connect();
        let n = count(&ebpf, 6);
        assert!(n >= 1, "the netfilter hook ran");
        drop(nf);
        ns.connect();
        assert_eq!(count(&ebpf, 6), n, "detached");
        drop(nf_fd);

        // Flow dissector: by netns link, then by PROG_ATTACH from a
        // thread in the namespace.
        let Some(python) = tool("python3") else {
            skip("no python3 to send raw frames for the flow dissector");
            return;
        };
        let mut last = count(&ebpf, 5);
        for opts in [AttachOpts::default(), legacy()] {
            let link = p("dissect")
                .attach_netns(ns.open(), opts)
                .expect("flow dissector");
            let want = if opts.mode == AttachMode::Legacy {
                Mechanism::ProgAttach
            } else {
                Mechanism::BpfLink
            };
            assert_eq!(link.mechanism(), want);
            ns.raw_frames(&python);
            let n = count(&ebpf, 5);
            assert!(n >= last + 3, "the flow dissector ran: {last} -> {n}");
            link.detach().expect("detach");
            ns.raw_frames(&python);
            assert_eq!(count(&ebpf, 5), n, "detached");
            last = n;
        }
    }
    assert_eq!(open_fds(), before, "fds leaked");
}
