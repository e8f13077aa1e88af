//! A test network: two namespaces joined by a veth pair, made with
//! iproute2 and deleted on drop, and threads that run inside either.
//!
//! veth0 lives in A at 192.0.2.1, veth1 in B at 192.0.2.2 (documentation
//! addresses, /30, static neighbours so no ARP): traffic sent with
//! [`Net::send_to_a`] / [`Net::send_to_b`] never leaves the two
//! namespaces.

use core::sync::atomic::{AtomicU32, Ordering};
use std::fs::File;
use std::net::UdpSocket;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::Command;

/// Two namespaces and a veth pair between them, deleted on drop (the
/// veth goes with its namespace), also when the test fails.
#[derive(Debug)]
pub struct Net {
    /// Namespace A, holding veth0.
    pub a: String,
    /// Namespace B, holding veth1.
    pub b: String,
}

/// Runs `ip ARGS`, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `prog ARGS` and returns its stdout, panicking on failure.
pub fn stdout(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog).args(args).output().expect("run tool");
    assert!(out.status.success(), "{prog} {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Net {
    /// Makes the namespaces and the pair, both ends up and addressed.
    pub fn create() -> Net {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let net = Net {
            a: format!("ember-test-{pid}-{n}a"),
            b: format!("ember-test-{pid}-{n}b"),
        };
        let (a, b) = (net.a.as_str(), net.b.as_str());
        ip(&["netns", "add", a]);
        ip(&["netns", "add", b]);
        ip(&[
            "link",
            "add",
            "veth0",
            "address",
            "02:00:00:00:00:01",
            "netns",
            a,
            "type",
            "veth",
            "peer",
            "name",
            "veth1",
            "address",
            "02:00:00:00:00:02",
            "netns",
            b,
        ]);
        for (ns, dev, me, peer, mac) in [
            (a, "veth0", "192.0.2.1/30", "192.0.2.2", "02:00:00:00:00:02"),
            (b, "veth1", "192.0.2.2/30", "192.0.2.1", "02:00:00:00:00:01"),
        ] {
            ip(&["-n", ns, "addr", "add", me, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&[
                "-n",
                ns,
                "neigh",
                "add",
                peer,
                "lladdr",
                mac,
                "dev",
                dev,
                "nud",
                "permanent",
            ]);
        }
        net
    }

    /// Runs `f` on a thread inside the namespace `ns` (setns(2) moves
    /// only that thread). rustix's `thread` feature comes through `ember`,
    /// which enables it.
    pub fn in_ns<T: Send>(&self, ns: &str, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(Path::new("/run/netns").join(ns)).expect("netns file");
                rustix::thread::move_into_link_name_space(
                    file.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("setns");
                drop(file);
                f()
            })
            .join()
            .expect("netns thread")
        })
    }

    /// Runs `f` on a thread inside A.
    pub fn in_a<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.in_ns(&self.a, f)
    }

    /// `n` UDP datagrams from B to A's port 7777: veth0's ingress.
    pub fn send_to_a(&self, n: usize) {
        self.send(&self.b, "192.0.2.2:0", "192.0.2.1:7777", n);
    }

    /// `n` UDP datagrams from A to B's port 7777: veth0's egress.
    pub fn send_to_b(&self, n: usize) {
        self.send(&self.a, "192.0.2.1:0", "192.0.2.2:7777", n);
    }

    fn send(&self, ns: &str, from: &str, to: &str, n: usize) {
        self.in_ns(ns, || {
            let s = UdpSocket::bind(from).expect("bind");
            for _ in 0..n {
                s.send_to(b"ember", to).expect("send");
            }
        });
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
