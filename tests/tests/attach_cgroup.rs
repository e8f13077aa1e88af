//! cgroup programs attached for real: a cgroup v2 child made for the test
//! holds a bash process that, on demand, connects to a local listener
//! and writes a line (`/dev/tcp`), so cgroup_skb egress and sock_addr
//! connect4 programs see its packets and connects. Through cgroup links
//! and through `BPF_PROG_ATTACH`: both programs of an ALLOW_MULTI pair
//! fire, an update swaps which counter moves, and dropping stops them.
//! The guard kills the process and removes the cgroup, also on failure.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use ember::attach::{AttachErrorKind, CgroupFlags, CgroupOpts};
use ember::ember_core::object::AttachType;
use ember::ember_core::object::LinkType;
use ember::{AttachMode, Ebpf, EbpfLoader, Link, LoadError, Mechanism};
use ember_tests::{bpffs_dir, fixture, kernel_ready, open_fds, serial, skip};

fn load() -> Ebpf {
    EbpfLoader::new()
        .autoload("lsm_connect", false)
        .load_file(fixture("attach/cgroup.bpf-el.o"))
        .expect("load attach/cgroup.bpf")
}

/// The counter in slot `slot` of the fixture's `counts` array.
fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("counts")
        .expect("counts")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("an array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

/// Every counter of interest, for before/after comparisons.
fn counts(ebpf: &Ebpf) -> [u64; 5] {
    [0, 1, 2, 3, 4].map(|s| count(ebpf, s))
}

/// Whether the kernel is locked down (integrity or confidentiality).
fn locked_down() -> bool {
    use ember::privilege::{Lockdown, Snapshot};
    matches!(
        Snapshot::read().lockdown,
        Some(Lockdown::Integrity | Lockdown::Confidentiality)
    )
}

/// Where the unified (v2) hierarchy is mounted, from mountinfo: the mount
/// point is field 5, the filesystem type follows the " - " separator.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next() == Some("cgroup2")).then(|| PathBuf::from(point))
    })
}

/// A cgroup v2 child with a bash process in it that connects once to a
/// listener of this test per [`Cgroup::round`]. Dropping it kills the
/// process, removes the cgroup and unmounts what it mounted.
struct Cgroup {
    dir: PathBuf,
    mounted: Option<PathBuf>,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
    _listener: Option<TcpListener>,
}

impl Cgroup {
    fn new(name: &str) -> Cgroup {
        let (root, mounted) = match cgroup2_mount() {
            Some(r) => (r, None),
            None => {
                let m = PathBuf::from(format!("/run/ember-test-cgroup2-{}", std::process::id()));
                std::fs::create_dir_all(&m).expect("mount point");
                let st = Command::new("mount")
                    .args(["-t", "cgroup2", "cgroup2"])
                    .arg(&m)
                    .status()
                    .expect("run mount");
                assert!(st.success(), "mounting cgroup2 failed");
                (m.clone(), Some(m))
            }
        };
        let dir = root.join(format!("ember-test-{}-{name}", std::process::id()));
        let mut cg = Cgroup {
            dir,
            mounted,
            child: None,
            stdin: None,
            stdout: None,
            _listener: None,
        };
        std::fs::create_dir(&cg.dir).expect("create the cgroup");
        let listener = TcpListener::bind("127.0.0.1:0").expect("listener");
        let port = listener.local_addr().expect("port").port();
        // One connect and one line per line read; unaccepted connections
        // wait in the listener's backlog, enough for a test.
        let script = format!(
            "while read -r _; do exec 3<>/dev/tcp/127.0.0.1/{port} && echo x >&3; \
             exec 3>&-; echo done; done"
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn bash");
        cg.stdin = child.stdin.take();
        cg.stdout = child.stdout.take().map(BufReader::new);
        let pid = child.id();
        cg.child = Some(child);
        cg._listener = Some(listener);
        // Before its first socket: a socket belongs to the cgroup its
        // creator was in then.
        std::fs::write(cg.dir.join("cgroup.procs"), pid.to_string()).expect("move into cgroup");
        cg
    }

    fn path(&self) -> &Path {
        &self.dir
    }

    fn open(&self) -> File {
        File::open(&self.dir).expect("open the cgroup")
    }

    /// One connect (and a line written) from inside the cgroup.
    fn round(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "go").expect("write to bash");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout
            .as_mut()
            .expect("stdout")
            .read_line(&mut line)
            .expect("read from bash");
        assert_eq!(line.trim(), "done", "bash's round failed");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.stdin = None;
        self.stdout = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The cgroup is busy for a moment after its last process exits.
        for _ in 0..100 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    std::thread::sleep(core::time::Duration::from_millis(10));
                }
                _ => break,
            }
        }
        if let Some(m) = &self.mounted {
            let _ = Command::new("umount").arg(m).status();
            let _ = std::fs::remove_dir(m);
        }
    }
}

fn ready() -> bool {
    if !kernel_ready() {
        return false;
    }
    if cgroup2_mount().is_none() && !Path::new("/sys/fs/cgroup").exists() {
        skip("no cgroup filesystem");
        return false;
    }
    true
}

#[test]
fn links_count_egress_and_connects_multi_update_and_drop() {
    let _s = serial();
    if !ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let mut cg = Cgroup::new("link");
        let p = |n: &str| ebpf.program(n).expect(n);
        cg.round();
        assert_eq!(counts(&ebpf), [0; 5], "nothing attached yet");

        let opts = CgroupOpts::default;
        let egress_a = p("egress_a")
            .attach_cgroup(cg.open(), opts())
            .expect("egress_a");
        assert_eq!(egress_a.mechanism(), Mechanism::BpfLink);
        assert!(egress_a.target().contains(&*cg.path().to_string_lossy()));
        let mut connect = p("connect_a")
            .attach_cgroup_path(
                cg.path(),
                CgroupOpts {
                    mode: AttachMode::Link,
                    ..opts()
                },
            )
            .expect("connect_a");
        assert_eq!(connect.mechanism(), Mechanism::BpfLink);
        cg.round();
        let c = counts(&ebpf);
        assert!(c[0] > 0, "egress_a fired: {c:?}");
        assert_eq!((c[1], c[2], c[3]), (0, 1, 0), "one connect: {c:?}");

        // A second egress link: both run.
        let egress_b = p("egress_b")
            .attach_cgroup(cg.open(), opts())
            .expect("egress_b");
        cg.round();
        let d = counts(&ebpf);
        assert!(d[0] > c[0] && d[1] > 0, "both egress programs fired: {d:?}");

        // The link swaps its program.
        connect.update(p("connect_b")).expect("update");
        assert_eq!(connect.program(), "connect_b");
        cg.round();
        let e = counts(&ebpf);
        assert_eq!(
            (e[2], e[3]),
            (d[2], 1),
            "connect_b, not connect_a: {d:?} -> {e:?}"
        );

        // A pinned link outlives its Link value; from_pin + unpin ends it.
        let Some(dir) = bpffs_dir("cgroup-link") else {
            return;
        };
        let mut egress_a = egress_a;
        egress_a.pin(dir.join("egress_a")).expect("pin");
        drop(egress_a);
        let g = counts(&ebpf);
        cg.round();
        assert!(count(&ebpf, 0) > g[0], "the pinned link still runs");
        let mut again =
            Link::from_pin(dir.join("egress_a"), Some(LinkType::CGROUP)).expect("from_pin");
        assert_eq!(again.program(), "egress_a");
        again.unpin().expect("unpin");
        drop(again);

        drop((egress_b, connect));
        let f = counts(&ebpf);
        cg.round();
        assert_eq!(counts(&ebpf), f, "detached programs do not run");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn prog_attach_multi_replace_exclusive_and_drop() {
    let _s = serial();
    if !ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let mut cg = Cgroup::new("legacy");
        let p = |n: &str| ebpf.program(n).expect(n);
        let legacy = CgroupOpts {
            mode: AttachMode::Legacy,
            ..CgroupOpts::default()
        };
        let egress_a = p("egress_a")
            .attach_cgroup(cg.open(), legacy)
            .expect("egress_a");
        assert_eq!(egress_a.mechanism(), Mechanism::ProgAttach);
        let egress_b = p("egress_b")
            .attach_cgroup(cg.open(), legacy)
            .expect("egress_b");
        let mut connect = p("connect_a")
            .attach_cgroup(cg.open(), legacy)
            .expect("connect_a");
        cg.round();
        let c = counts(&ebpf);
        assert!(
            c[0] > 0 && c[1] > 0,
            "both ALLOW_MULTI programs fired: {c:?}"
        );
        assert_eq!((c[2], c[3]), (1, 0));

        // BPF_F_REPLACE in place of connect_a.
        connect.update(p("connect_b")).expect("update by REPLACE");
        cg.round();
        let d = counts(&ebpf);
        assert_eq!((d[2], d[3]), (1, 1), "connect_b replaced connect_a: {d:?}");

        // Attaching with replace: egress_b's place goes to skb_either.
        let skb = p("skb_either")
            .attach_cgroup(
                cg.open(),
                CgroupOpts {
                    attach_type: Some(AttachType::CGROUP_INET_EGRESS),
                    replace: Some(p("egress_b")),
                    ..legacy
                },
            )
            .expect("replace egress_b");
        cg.round();
        let e = counts(&ebpf);
        assert!(
            e[4] > 0 && e[1] == d[1],
            "skb_either took egress_b's place: {e:?}"
        );
        // egress_b's link has nothing left to detach.
        assert!(egress_b.detach().is_err());

        drop((egress_a, skb, connect));
        let f = counts(&ebpf);
        cg.round();
        assert_eq!(counts(&ebpf), f, "detached programs do not run");

        // One exclusive program: an update attaches again without REPLACE.
        let exclusive = CgroupOpts {
            flags: CgroupFlags::Exclusive,
            ..CgroupOpts::default()
        };
        let mut only = p("connect_a")
            .attach_cgroup(cg.open(), exclusive)
            .expect("exclusive");
        assert_eq!(
            only.mechanism(),
            Mechanism::ProgAttach,
            "Auto picks PROG_ATTACH"
        );
        assert!(
            p("connect_b")
                .attach_cgroup(cg.open(), CgroupOpts::default())
                .is_err(),
            "an exclusive slot takes no link"
        );
        cg.round();
        only.update(p("connect_b")).expect("update exclusive");
        cg.round();
        let g = counts(&ebpf);
        assert_eq!((g[2] - f[2], g[3] - f[3]), (1, 1), "{f:?} -> {g:?}");
        drop(only);
        cg.round();
        assert_eq!(counts(&ebpf), g, "detached");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn errors_name_the_program_and_the_cgroup() {
    let _s = serial();
    if !ready() {
        return;
    }
    let before = open_fds();
    {
        let ebpf = load();
        let cg = Cgroup::new("errors");
        let p = |n: &str| ebpf.program(n).expect(n);
        // Auto-attach needs a target, as in libbpf: none of these has one.
        for name in ["egress_a", "connect_a", "skb_either"] {
            let e = p(name).attach().unwrap_err();
            assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
        }
        let (links, skipped) = ebpf
            .attach_all(ember::AttachOpts::default())
            .expect("attach_all");
        assert!(links.is_empty() && skipped.len() == 5, "{skipped:?}");
        let e = p("skb_either")
            .attach_cgroup(cg.open(), CgroupOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
        assert_eq!(e.program, "skb_either");
        let e = p("egress_a")
            .attach_cgroup_path("/sys/fs/cgroup/no-such-ember-cgroup", CgroupOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
        assert!(e.to_string().contains("no-such-ember-cgroup"), "{e}");
        let e = p("egress_a")
            .attach_cgroup(
                cg.open(),
                CgroupOpts {
                    mode: AttachMode::Link,
                    flags: CgroupFlags::Override,
                    ..CgroupOpts::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
        let e = p("egress_a")
            .attach_cgroup(
                cg.open(),
                CgroupOpts {
                    flags: CgroupFlags::Override,
                    replace: Some(p("egress_b")),
                    ..CgroupOpts::default()
                },
            )
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
        // Not a cgroup: the kernel says so, and the error names both.
        let e = p("egress_a")
            .attach_cgroup_path("/proc/self/ns/net", CgroupOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::Sys(_)), "{e}");
        assert!(e.to_string().contains("egress_a") && e.to_string().contains("/proc/self/ns/net"));
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn lsm_cgroup_attaches_by_link_where_lockdown_lets_it_load() {
    let _s = serial();
    if !ready() {
        return;
    }
    let before = open_fds();
    {
        let r = EbpfLoader::new()
            .autoload("egress_a", false)
            .autoload("egress_b", false)
            .autoload("connect_a", false)
            .autoload("connect_b", false)
            .autoload("skb_either", false)
            .load_file(fixture("attach/cgroup.bpf-el.o"));
        let ebpf = match r {
            Err(LoadError::ProgLoad {
                program, source, ..
            }) if source.errno == ember::ember_sys::Errno::PERM && locked_down() => {
                // lsm_cgroup needs a BPF trampoline, which lockdown refuses
                // at load: the attachment cannot be reached here.
                assert_eq!(program, "lsm_connect");
                eprintln!("lsm_cgroup: the load is refused under lockdown (EPERM)");
                return;
            }
            r => r.expect("load lsm_connect"),
        };
        let mut cg = Cgroup::new("lsm");
        let link = ebpf
            .program("lsm_connect")
            .expect("lsm_connect")
            .attach_cgroup(cg.open(), CgroupOpts::default())
            .expect("attach lsm_cgroup");
        cg.round();
        let n = count(&ebpf, 5);
        assert!(n >= 1, "lsm_cgroup ran on the connect");
        drop(link);
        cg.round();
        assert_eq!(count(&ebpf, 5), n, "detached");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}
