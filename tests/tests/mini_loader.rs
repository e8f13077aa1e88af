//! The `mini-loader` example (sys/examples/mini-loader/), the no_std
//! static loader, as a separate process, as root: it loads
//! attach/trace.bpf-el.o, attaches by section, pins maps, programs and
//! links, and exits; the pinned tracepoint link keeps counting after it
//! exited and stops once unpinned; its programs are the ones the `ember`
//! library loads (same kernel tags), CO-RE included; `.rodata` is filled
//! and frozen. A load or pin that fails leaves no pin behind, and objects
//! needing what it does not do are refused by feature and symbol.
//!
//! It is built in the `min-size` profile: with panic = "abort" it is the
//! `#![no_std]` binary that ships (dev builds run it on std's runtime).

use core::time::Duration;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ember::{EbpfLoader, Link, Map};
use ember_tests::{bpffs_dir, fixture, kernel_ready, open_files, root, serial};

/// Slot of `count_openat` in the fixture's `counts` map.
const OPENAT: u32 = 0;

/// Builds the no_std example once and returns it.
fn mini_loader() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target
    let target = exe.ancestors().nth(3).expect("the target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .current_dir(root())
        .env("CARGO_TARGET_DIR", target)
        .args([
            "build",
            "--quiet",
            "--profile",
            "min-size",
            "-p",
            "ember-sys",
            "--example",
            "mini-loader",
        ])
        .status()
        .expect("run cargo build");
    assert!(st.success(), "building the mini-loader example failed");
    target.join("min-size/examples/mini-loader")
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

fn prog_info(path: &Path) -> ember::ember_sys::ProgInfo {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    let fd = ember::ember_sys::obj_get(&c).expect("program pin");
    ember::ember_sys::prog_info(ember::ember_sys::AsFd::as_fd(&fd)).expect("prog info")
}

fn prog_id(path: &Path) -> u32 {
    prog_info(path).id.0
}

/// Every program of `obj` pinned under `dir/progs` has the kernel tag
/// (a hash of its instructions, map fds left out) of the same program
/// loaded by the `ember` library: same CO-RE, same linking.
fn same_programs_as_ember(obj: &Path, dir: &Path) {
    let ebpf = EbpfLoader::new().load_file(obj).expect("ember loads it");
    assert!(!ebpf.programs().is_empty());
    for p in ebpf.programs() {
        let ours = prog_info(&dir.join("progs").join(p.name()));
        let theirs = p.info().expect("prog info");
        assert_eq!(ours.tag, theirs.tag, "program {} differs", p.name());
        assert_eq!(ours.prog_type, theirs.prog_type, "{}", p.name());
    }
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
    for l in [
        "count_openat_b",
        "count_switch",
        "count_switch_btf",
        "dump_tasks",
    ] {
        assert!(dir.join("links").join(l).exists(), "link {l} pinned");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("dump_counts (section 'iter/bpf_map_elem'): loaded and pinned, not attached"),
        "{stderr}"
    );
    same_programs_as_ember(&fixture("attach/trace.bpf-el.o"), &dir);

    // `.rodata` holds the object's bytes and is frozen, as libbpf does.
    let rodata = Map::from_pin(dir.join("maps/trace_rodata")).expect("rodata pin");
    let v = rodata
        .lookup(&0u32.to_ne_bytes())
        .expect("lookup")
        .expect("slot 0");
    assert!(v.starts_with(b"task %d %d\n\0"), "{v:?}");
    assert!(
        rodata.update(&0u32.to_ne_bytes(), &v, 0).is_err(),
        "a frozen map refuses writes from user space"
    );

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
    for made in ["maps", "progs"] {
        assert!(
            !dir.join(made).exists(),
            "the {made} directory it made stays"
        );
    }
    assert!(dir.join("links/count_openat_b").is_dir(), "not its own");

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

#[test]
fn core_relocations_read_the_running_kernels_fields() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("mini-loader-core") else {
        return;
    };
    let obj = fixture("core_only.bpf-el.o");
    let out = run(&obj, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    same_programs_as_ember(&obj, &dir);
    // task->pid and task->tgid at the offsets CO-RE found: the program
    // records the new task's; other processes may fork meanwhile, so a
    // few children are tried.
    let bss = Map::from_pin(dir.join("maps/core_onl_bss")).expect("bss pin");
    let mut seen = Vec::new();
    for _ in 0..20 {
        let child = Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        let mut child = child;
        child.wait().expect("wait");
        let v = bss
            .lookup(&0u32.to_ne_bytes())
            .expect("lookup")
            .expect("slot 0");
        let (p, t) = (
            u32::from_ne_bytes(v[..4].try_into().expect("4 bytes")),
            u32::from_ne_bytes(v[4..8].try_into().expect("4 bytes")),
        );
        if p == pid && t == pid {
            return;
        }
        seen.push((pid, p, t));
    }
    panic!("never recorded a child's pid and tgid: {seen:?}");
}

#[test]
fn legacy_maps_load_and_an_unsupported_attach_is_named() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("mini-loader-legacy") else {
        return;
    };
    let out = run(&fixture("legacy_maps.bpf-el.o"), &dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for m in ["legacy_hash", "legacy_array"] {
        let map = Map::from_pin(dir.join("maps").join(m)).expect("legacy map pinned");
        assert_eq!(map.name(), m);
    }
    assert!(dir.join("progs/legacy").exists());
    assert!(
        stderr.contains(
            "legacy (section 'kprobe/do_unlinkat'): loaded and pinned, not attached: \
             kprobe attachment is not supported; use the `ember` CLI"
        ),
        "{stderr}"
    );
    assert!(walk(&dir.join("links")).is_empty());
}

/// Refusals come before any system call: no root needed.
#[test]
fn features_it_does_not_do_are_refused_by_name() {
    let _s = serial();
    let dir = std::env::temp_dir().join(format!("ember-mini-refuse-{}", std::process::id()));
    for (obj, want) in [
        (
            "kernel_ids.bpf-el.o",
            "kernel_ids.bpf-el.o: kfunc 'bpf_task_acquire' not supported; use the `ember` CLI",
        ),
        (
            "globals.bpf-el.o",
            "globals.bpf-el.o: kconfig extern 'CONFIG_NR_CPUS' not supported",
        ),
        (
            "maps.bpf-el.o",
            "maps.bpf-el.o: map-in-map 'outer_array' not supported",
        ),
        (
            "pinned_reject.bpf-el.o",
            "pinned_reject.bpf-el.o: map 'pinned_counts' pinned by name not supported",
        ),
    ] {
        let out = run(&fixture(obj), &dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{obj}: {stderr}");
        assert!(stderr.contains(want), "{obj}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!dir.exists(), "{obj}: nothing made before the refusal");
    }
}
