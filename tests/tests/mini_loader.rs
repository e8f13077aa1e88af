//! The `mini-loader` example (std-loader/examples/mini-loader.rs) as a
//! separate process, as root: it loads attach/trace.bpf-el.o, attaches by
//! section, pins maps, programs and links, and exits; the pinned
//! tracepoint link keeps counting after it exited and stops once
//! unpinned. A load or pin that fails leaves no pin behind.

use core::time::Duration;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ember::{Link, Map};
use ember_tests::{bpffs_dir, fixture, kernel_ready, root, serial};

/// Slot of `count_openat` in the fixture's `counts` map.
const OPENAT: u32 = 0;

/// Builds the example once, in this test binary's profile, and returns it.
fn mini_loader() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(p) => p,
        None => "release",
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(root())
        .args([
            "build",
            "--quiet",
            "-p",
            "ember",
            "--example",
            "mini-loader",
        ])
        .args(["--profile", profile])
        .status()
        .expect("run cargo build");
    assert!(st.success(), "building the mini-loader example failed");
    dir.join("examples/mini-loader")
}

fn run(obj: &Path, dir: &Path) -> Output {
    Command::new(mini_loader())
        .arg(obj)
        .arg(dir)
        .output()
        .expect("run mini-loader")
}

fn count(counts: &Map) -> u64 {
    let v = counts
        .lookup(&OPENAT.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

fn open_files(n: usize) {
    for _ in 0..n {
        drop(std::fs::File::open("/proc/self/stat").expect("open"));
    }
}

fn prog_id(path: &Path) -> u32 {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let fd = ember::ember_sys::obj_get(&c).expect("program pin");
    ember::ember_sys::prog_info(ember::ember_sys::AsFd::as_fd(&fd))
        .expect("prog info")
        .id
        .0
}

#[test]
fn pins_links_that_fire_after_it_exits_and_stop_once_unpinned() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("mini-loader") else {
        return;
    };
    let out = run(&fixture("attach/trace.bpf-el.o"), &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mini-loader failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("attached count_openat to tracepoint 'syscalls/sys_enter_openat'"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped count_clock: its section names no target"),
        "a bare SEC(\"perf_event\") is skipped, not an error: {stdout}"
    );
    for p in ["count_openat", "count_switch", "dump_tasks"] {
        assert!(dir.join("progs").join(p).exists(), "program {p} pinned");
    }

    // The link pinned by a process that has exited holds the program.
    let link_pin = dir.join("links/count_openat");
    let link = Link::from_pin(&link_pin, None).expect("link pin");
    let info = link.info().expect("link info");
    assert_eq!(
        info.prog_id.0,
        prog_id(&dir.join("progs/count_openat")),
        "the pinned link holds the pinned program"
    );
    drop(link);

    let counts = Map::from_pin(dir.join("maps/counts")).expect("map pin");
    let before = count(&counts);
    open_files(5);
    assert!(
        count(&counts) >= before + 5,
        "the tracepoint fires after mini-loader exited"
    );

    // Unpinned, the link goes with its last reference; its release may
    // be deferred, so wait until the count stays put across opens.
    std::fs::remove_file(&link_pin).expect("unpin link");
    let mut still = false;
    for _ in 0..50 {
        let c = count(&counts);
        open_files(5);
        if count(&counts) == c {
            still = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        still,
        "the tracepoint kept firing after its link was unpinned"
    );
}

#[test]
fn a_failure_names_what_failed_and_leaves_nothing_pinned() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("mini-loader-fail") else {
        return;
    };
    let obj = fixture("reject.bpf-el.o");
    let out = run(&obj, &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("reject.bpf-el.o"),
        "names the object: {stderr}"
    );
    let left: Vec<_> = walk(&dir);
    assert!(left.is_empty(), "left behind: {left:?}");

    // A pin that fails midway (a directory already holds the second
    // link's name): every pin made before it is removed again, and the
    // links made are detached with them.
    std::fs::create_dir_all(dir.join("links/count_openat_b")).expect("mkdir");
    let out = run(&fixture("attach/trace.bpf-el.o"), &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pin link of count_openat_b"),
        "names the link: {stderr}"
    );
    let left: Vec<_> = walk(&dir);
    assert!(left.is_empty(), "left behind: {left:?}");

    let out = Command::new(mini_loader()).arg(&obj).output().expect("run");
    assert_eq!(out.status.code(), Some(2), "usage error");
}

/// Every file under `dir` (pins), recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
