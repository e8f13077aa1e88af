//! `ember run` on the shipped example (tests/fixtures/attach/execsnoop):
//! the events of commands the test runs reach stdout, raw and decoded
//! through the object's BTF; SIGTERM and `--duration` detach everything
//! (no link left, by the kernel's id walk); bad flags fail before anything
//! is attached. Also the `prog list`, `link list` and `map dump` views.

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use ember::ember_sys::{self, LinkId};
use ember_tests::{ember_bin, fixture, kernel_ready, serial};

fn links() -> Vec<u32> {
    ember_sys::obj_ids::<LinkId>()
        .filter_map(Result::ok)
        .map(|l| l.0)
        .collect()
}

/// Starts `ember run` and waits until it says it attached.
fn start(extra: &[&str]) -> Child {
    let mut child = Command::new(ember_bin())
        .arg("run")
        .arg(fixture("attach/execsnoop.bpf-el.o"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ember run");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("stderr line");
    assert!(
        line.starts_with("attached on_execve to tracepoint 'syscalls/sys_enter_execve'"),
        "{line}"
    );
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    child
}

/// A child's stderr, read on a thread as it comes, so a test can wait for
/// a line (the attach report) instead of sleeping a fixed time that a
/// loaded machine can outrun.
struct StderrWatch {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StderrWatch {
    fn new(child: &mut Child) -> StderrWatch {
        let err = child.stderr.take().expect("piped stderr");
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&text);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut t = sink.lock().expect("lock");
                t.push_str(&line);
                t.push('\n');
            }
        });
        StderrWatch {
            text,
            reader: Some(reader),
        }
    }

    /// Waits until stderr holds `needle`; panics with what it holds
    /// after `timeout`.
    fn wait_for(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text.lock().expect("lock").clone();
            if t.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no '{needle}' on stderr after {timeout:?}: {t}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// All of stderr, once the child has exited.
    fn finish(mut self) -> String {
        if let Some(r) = self.reader.take() {
            r.join().expect("stderr reader");
        }
        self.text.lock().expect("lock").clone()
    }
}

/// A copy of /bin/true under a name only this test uses, run `n` times.
fn exec_marker(n: usize) -> String {
    let path = std::env::temp_dir().join(format!("ember-run-marker-{}", std::process::id()));
    std::fs::copy("/bin/true", &path).expect("copy /bin/true");
    for _ in 0..n {
        assert!(Command::new(&path).status().expect("exec").success());
    }
    let _ = std::fs::remove_file(&path);
    path.display().to_string()
}

#[test]
fn run_streams_decoded_events_and_detaches_on_sigterm() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = links();
    let child = start(&[
        "--json",
        "--event",
        "events=struct event",
        "--dump",
        "execs",
    ]);
    let marker = exec_marker(3);
    // Let one dump tick pass, then stop it the way a service manager does.
    std::thread::sleep(Duration::from_millis(1200));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let mut seen = 0;
    let mut dumped = false;
    for line in stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object a line");
        if v["dump"] == "execs" {
            let n = v["entries"][0]["value"]
                .as_u64()
                .expect("a decoded u64 count");
            assert!(n >= 3, "{line}");
            assert_eq!(v["entries"][0]["key"], 0);
            dumped = true;
            continue;
        }
        assert_eq!(v["map"], "events", "{line}");
        let data = v["data"].as_str().expect("hex data");
        assert_eq!(data.len(), 2 * 88, "struct event is 88 bytes");
        assert!(
            data.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        if v["value"]["filename"] == marker.as_str() {
            // The decoded pid is the raw record's first four bytes.
            let pid = u32::from_str_radix(&data[..8], 16)
                .expect("hex")
                .swap_bytes();
            assert_eq!(v["value"]["pid"].as_u64(), Some(u64::from(pid)));
            seen += 1;
        }
    }
    assert_eq!(seen, 3, "three execs of {marker} in:\n{stdout}");
    assert!(dumped, "no dump line in:\n{stdout}");
    let left: Vec<u32> = links()
        .into_iter()
        .filter(|l| !before.contains(l))
        .collect();
    assert!(left.is_empty(), "links left behind: {left:?}");
}

#[test]
fn run_text_output_and_duration() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let before = links();
    let t = Instant::now();
    let child = start(&["--duration", "1.5"]);
    let marker = exec_marker(1);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    // Raw records are `events: <hex>`; the marker's path is in the hex.
    let marker_hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("events: ") && l.contains(&marker_hex)),
        "{stdout}"
    );
    assert_eq!(
        links().into_iter().filter(|l| !before.contains(l)).count(),
        0
    );
}

#[test]
fn run_refuses_bad_flags_before_attaching() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    for (args, want) in [
        (
            &["--event", "events=struct nope"][..],
            "no type 'struct nope'",
        ),
        (&["--event", "nomap=struct event"][..], "no map 'nomap'"),
        (&["--dump", "nomap"][..], "--dump nomap"),
        (&["--attach", "nope=x/y"][..], "no program 'nope'"),
        (&["--attach", "on_execve=noslash"][..], "CATEGORY/NAME"),
    ] {
        let out = Command::new(ember_bin())
            .arg("run")
            .arg(fixture("attach/execsnoop.bpf-el.o"))
            .args(args)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn views_list_programs_links_and_dump_maps() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let child = start(&["--duration", "3"]);
    exec_marker(2);
    let run = |args: &[&str]| {
        let out = Command::new(ember_bin())
            .args(args)
            .output()
            .expect("ember");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let progs = run(&["prog", "list", "--json"]);
    let prog = progs
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .find(|v| v["name"] == "on_execve")
        .expect("on_execve listed");
    assert_eq!(prog["type"], "tracepoint");
    let links = run(&["link", "list", "--json"]);
    assert!(
        links
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
            .any(|v| v["prog_id"] == prog["id"] && v["type"] == "perf_event"),
        "{links}"
    );
    // Through the program's own map, by id (a map of an earlier run may
    // linger under the same name until the kernel frees it).
    let execs = prog["map_ids"]
        .as_array()
        .expect("map_ids")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .find(|id| {
            // The ring buffer refuses a dump; the array is the counter.
            Command::new(ember_bin())
                .args(["map", "dump", &id.to_string()])
                .output()
                .expect("ember")
                .status
                .success()
        })
        .expect("the program's counter map");
    let dump: serde_json::Value =
        serde_json::from_str(&run(&["map", "dump", &execs.to_string()])).expect("json");
    assert!(dump[0]["value"].as_u64().expect("count") >= 2, "{dump}");
    let by_name: serde_json::Value =
        serde_json::from_str(&run(&["map", "dump", "execs"])).expect("json");
    assert!(by_name[0]["value"].as_u64().is_some(), "{by_name}");
    let out = Command::new(ember_bin())
        .args(["map", "dump", "no_such_map_ember"])
        .output()
        .expect("ember");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_map_ember"));
    child.wait_with_output().expect("wait");
}

#[test]
fn run_attaches_to_an_interface_and_leaves_no_filter() {
    use ember_tests::netns::{Net, stdout};
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let net = Net::create();
    for mode in ["auto", "legacy"] {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.a])
            .arg(ember_bin())
            .arg("run")
            .arg(fixture("attach/net.bpf-el.o"))
            .args([
                "--attach",
                "xdp_a=veth0",
                "--attach",
                "tc_legacy=veth0:ingress",
            ])
            .args([
                "--attach-mode",
                mode,
                "--dump",
                "counts",
                "--json",
                "--duration",
                "2.5",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Wait for the last attach line, then send.
        let watch = StderrWatch::new(&mut child);
        watch.wait_for("attached tc_legacy", Duration::from_secs(20));
        net.send_to_a(5);
        let out = child.wait_with_output().expect("wait");
        let err = watch.finish();
        assert!(out.status.success(), "{mode}: {err}");
        assert!(
            err.contains("attached xdp_a to interface 'veth0'"),
            "{mode}: {err}"
        );
        assert!(err.contains("skipped xdp_b"), "{mode}: {err}");
        let want = if mode == "legacy" {
            "(netlink)"
        } else {
            "(bpf_link)"
        };
        assert!(
            err.lines()
                .filter(|l| l.starts_with("attached"))
                .all(|l| l.ends_with(want)),
            "{mode}: {err}"
        );
        // The last dump: slot 0 (XDP_A) and 2 (TC_LEGACY) saw the five.
        let last = String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["dump"] == "counts")
            .expect("a dump line");
        let at = |slot: u64| {
            last["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .find(|e| e["key"] == slot)
                .and_then(|e| e["value"].as_u64())
        };
        assert_eq!((at(0), at(2)), (Some(5), Some(5)), "{mode}: {last}");
        // Nothing left on the interface: no XDP program, no clsact/filter.
        let link = stdout("ip", &["-n", &net.a, "-d", "link", "show", "veth0"]);
        assert!(!link.contains("prog/xdp"), "{mode}: {link}");
        let qd = stdout("tc", &["-n", &net.a, "qdisc", "show", "dev", "veth0"]);
        assert!(!qd.contains("clsact"), "{mode}: {qd}");
    }
}

/// Where the unified (v2) cgroup hierarchy is mounted.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let point = left.split(' ').nth(4)?;
        (right.split(' ').next() == Some("cgroup2")).then(|| std::path::PathBuf::from(point))
    })
}

/// A child cgroup, removed on drop.
struct CgroupDir(std::path::PathBuf);

impl Drop for CgroupDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn run_attaches_to_a_cgroup_path() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(root) = cgroup2_mount() else {
        // attach_cgroup.rs mounts one; here the machine's own is needed.
        assert!(
            std::env::var_os("EMBER_REQUIRE_KERNEL").is_none(),
            "no cgroup2 mount"
        );
        eprintln!("skipped: no cgroup2 mount");
        return;
    };
    let cg = CgroupDir(root.join(format!("ember-run-test-{}", std::process::id())));
    std::fs::create_dir(&cg.0).expect("cgroup");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let before = links();
    let target = format!("connect_a={}", cg.0.display());
    let mut child = Command::new(ember_bin())
        .arg("run")
        .arg(fixture("attach/cgroup.bpf-el.o"))
        // Lockdown refuses lsm_cgroup's trampoline here.
        .args(["--no-autoload", "lsm_connect", "--attach", &target])
        .args(["--dump", "counts", "--json", "--duration", "2.5"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let watch = StderrWatch::new(&mut child);
    watch.wait_for("attached connect_a", Duration::from_secs(20));
    // Three connects from a shell in the cgroup, one from outside it.
    let script = format!(
        "echo $$ > {}/cgroup.procs && for i in 1 2 3; do (exec 3<>/dev/tcp/127.0.0.1/{port}); done",
        cg.0.display()
    );
    assert!(
        Command::new("bash")
            .args(["-c", &script])
            .status()
            .expect("bash")
            .success()
    );
    drop(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
    let out = child.wait_with_output().expect("wait");
    let err = watch.finish();
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "attached connect_a to cgroup '{}' (bpf_link)",
            cg.0.display()
        )),
        "{err}"
    );
    let last = String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["dump"] == "counts")
        .expect("a dump line");
    let slot2 = last["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["key"] == 2)
        .and_then(|e| e["value"].as_u64());
    assert_eq!(
        slot2,
        Some(3),
        "connects from inside the cgroup only: {last}"
    );
    assert_eq!(
        links().into_iter().filter(|l| !before.contains(l)).count(),
        0
    );
    drop(listener);
}
