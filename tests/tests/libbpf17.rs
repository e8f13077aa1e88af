//! What libbpf learned after Debian's 1.1, on this kernel and in the
//! CLI: BPF arena maps load (6.9+) and their program runs, `__ulong()`
//! attributes reach the kernel, the libbpf 1.7 section names show in
//! `ember object inspect`, and legacy map definitions ember does not
//! understand are refused naming the map. Debian's libbpf 1.1 knows none
//! of this, so these fixtures (tests/fixtures/libbpf17, bad/legacy_map_*)
//! are not compared with it.

use std::process::Command;

use ember::EbpfLoader;
use ember::ember_sys::{TestRun, prog_test_run};
use ember_tests::{ember_bin, fixture, kernel_ready, open_fds, serial, skip};

/// The running kernel's (major, minor).
fn kernel_version() -> (u32, u32) {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

#[test]
fn arena_map_loads_and_its_program_allocates_a_page() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    if kernel_version() < (6, 9) {
        skip("BPF arena maps need Linux 6.9");
        return;
    }
    let before = open_fds();
    {
        let e = EbpfLoader::new()
            .load_file(fixture("libbpf17/arena.bpf-el.o"))
            .unwrap_or_else(|e| panic!("{e}"));
        let m = e.map("arena").expect("arena map");
        assert_eq!(m.map_type().to_string(), "arena");
        assert_eq!((m.key_size(), m.value_size(), m.max_entries()), (0, 0, 4));
        // Mapped before the program loaded, as libbpf does: that mapping
        // gives the arena its user address.
        let pages = m.arena().expect("arena mapped");
        let segv = e.map("arena_segv").expect("second arena");
        assert!(segv.arena().is_none(), "its bytes must not be exposed");
        let r = segv.arena_reservation().expect("reserved");
        assert_eq!(r.len(), 2 * ember::ember_sys::mmap::page_size());
        assert_ne!(r.addr(), 0);
        assert_eq!(pages.len(), 4 * ember::ember_sys::mmap::page_size());
        assert_ne!(pages.addr(), 0);
        // bpf_arena_alloc_pages() returned a page, which was freed again.
        let prog = e.program("arena_page").expect("program");
        let mut t = TestRun {
            data_in: &[],
            data_out: None,
            ctx_in: None,
            ctx_out: None,
            repeat: 0,
            flags: 0,
            cpu: 0,
            batch_size: 0,
        };
        let r = prog_test_run(prog.fd(), &mut t).expect("syscall test run");
        assert_eq!(r.retval, 0, "bpf_arena_alloc_pages failed");
    }
    assert_eq!(open_fds(), before, "fds leaked");
}

#[test]
fn ulong_attributes_reach_the_kernel() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    if kernel_version() < (6, 9) {
        skip("the fixture's arena map needs Linux 6.9");
        return;
    }
    // The kernel takes map_extra only from bloom filters (hash count)
    // and arenas (address): both are checked by their creation.
    let e = EbpfLoader::new()
        .load_file(fixture("libbpf17/ulong.bpf-el.o"))
        .unwrap_or_else(|e| panic!("{e}"));
    let info = |name: &str| {
        let m = e.map(name).unwrap();
        ember::ember_sys::map_info(m.fd()).expect("map info")
    };
    assert_eq!(
        (info("bloom").max_entries, info("bloom").map_extra),
        (64, 3)
    );
    assert_eq!(
        (info("counts").max_entries, info("counts").map_flags),
        (8, 1024)
    );
    assert_eq!(info("wide").map_extra, 1 << 32);
}

#[test]
fn arena_globals_are_refused_by_name() {
    // Other tests here count this process's fds.
    let _serial = serial();
    let err = EbpfLoader::new()
        .load_file(fixture("libbpf17/arena_data.bpf-el.o"))
        .expect_err("arena data refused");
    let msg = err.to_string();
    assert!(
        msg.contains("'.addr_space.1'") && msg.contains("arena"),
        "{msg}"
    );
}

#[test]
fn inspect_shows_libbpf_17_section_names() {
    // Other tests here count this process's fds.
    let _serial = serial();
    let out = Command::new(ember_bin())
        .args(["object", "inspect", "--json"])
        .arg(fixture("libbpf17/sections_17.bpf-el.o"))
        .output()
        .expect("run ember");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for w in [
        "trace_kprobe_session",
        "netkit_primary",
        "trace_fsession",
        "trace_fsession_multi",
        "cgroup_unix_getsockname",
    ] {
        assert!(stdout.contains(w), "no {w} in {stdout}");
    }
}

#[test]
fn legacy_map_faults_name_the_map() {
    // Other tests here count this process's fds.
    let _serial = serial();
    let cases: &[(&str, &[&str])] = &[
        (
            "legacy_map_extra",
            &["section 'maps'", "map 'extended'", "unrecognized fields"],
        ),
        (
            "legacy_map_pinning",
            &[
                "section 'maps'",
                "map 'tc_counts'",
                "attribute 'pinning'",
                "bpf_elf_map",
            ],
        ),
        ("legacy_map_sizes", &["section 'maps'", "map 'short_def'"]),
    ];
    for (name, want) in cases {
        for e in ["el", "eb"] {
            let path = fixture(&format!("bad/{name}.bpf-{e}.o"));
            let out = Command::new(ember_bin())
                .args(["object", "inspect"])
                .arg(&path)
                .output()
                .expect("run ember");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}-{e}: {stderr}");
            for w in *want {
                assert!(stderr.contains(w), "{name}-{e}: no {w:?} in {stderr}");
            }
            if e == "el" {
                let msg = EbpfLoader::new()
                    .load_file(&path)
                    .expect_err("load refused")
                    .to_string();
                for w in *want {
                    assert!(msg.contains(w), "{name}: no {w:?} in {msg}");
                }
            }
        }
    }
}
