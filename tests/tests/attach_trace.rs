//! Tracing attachments on this kernel, as root, each shown to fire: a
//! tracepoint through a perf-event link and through the SET_BPF ioctl
//! (with a cookie), raw_tp and tp_btf on sched_switch, perf_event on
//! cpu-clock, a task iterator's text; dropping a link stops the counts; a
//! link pinned by a process that exits keeps counting until unpinned;
//! missing targets are errors naming them; nothing is left behind.

use core::time::Duration;
use std::path::Path;
use std::process::Command;

use ember::attach::AttachErrorKind;
use ember::ember_core::object::LinkType;
use ember::{AttachMode, AttachOpts, Ebpf, EbpfLoader, Link, Mechanism};
use ember_tests::{bpffs_dir, fixture, kernel_ready, open_fds, open_files, serial};

const OPENAT: u32 = 0;
const OPENAT_B: u32 = 1;
const SWITCH: u32 = 2;
const SWITCH_BTF: u32 = 3;
const CLOCK: u32 = 4;
const COOKIE: u32 = 5;

fn load() -> Ebpf {
    EbpfLoader::new()
        .load_file(fixture("attach/trace.bpf-el.o"))
        .expect("load attach/trace")
}

fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("counts")
        .expect("counts")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

/// Lets the scheduler switch a few times.
fn switch_a_while() {
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn tracepoint_fires_through_link_and_ioctl_and_stops_on_drop() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let p = ebpf.program("count_openat").expect("program");
        for (mode, mech) in [
            (AttachMode::Auto, Mechanism::PerfEventLink),
            (AttachMode::Link, Mechanism::PerfEventLink),
            (AttachMode::Legacy, Mechanism::PerfIoctl),
        ] {
            let before = count(&ebpf, OPENAT);
            let link = p
                .attach_with(AttachOpts {
                    mode,
                    ..AttachOpts::default()
                })
                .expect("attach");
            assert_eq!(link.mechanism(), mech, "{mode:?}");
            assert_eq!(
                link.target(),
                "tracepoint 'syscalls/sys_enter_openat'",
                "the link says where"
            );
            assert_eq!(link.can_pin(), mech == Mechanism::PerfEventLink);
            open_files(10);
            let fired = count(&ebpf, OPENAT) - before;
            assert!(fired >= 10, "{mode:?}: fired {fired} times for 10 opens");
            drop(link);
            let after = count(&ebpf, OPENAT);
            open_files(10);
            assert_eq!(count(&ebpf, OPENAT), after, "{mode:?}: counts after drop");
        }

        // The cookie reaches bpf_get_attach_cookie (perf-event links only).
        let b = ebpf.program("count_openat_b").expect("program");
        let cookie = 0xc00c_1e00_0000_0001;
        let link = b
            .attach_tracepoint(
                "syscalls",
                "sys_enter_openat",
                AttachOpts {
                    cookie,
                    ..AttachOpts::default()
                },
            )
            .expect("attach with cookie");
        open_files(3);
        assert!(count(&ebpf, OPENAT_B) >= 3);
        assert_eq!(count(&ebpf, COOKIE), cookie);
        // A perf-event link cannot swap its program; the error says so.
        let mut link = link;
        let e = link.update(p).expect_err("perf links have no update");
        assert!(e.to_string().contains("cannot swap its program"), "{e}");
        drop(link);
        let e = b
            .attach_tracepoint(
                "syscalls",
                "sys_enter_openat",
                AttachOpts {
                    cookie,
                    mode: AttachMode::Legacy,
                },
            )
            .expect_err("no cookie through the ioctl");
        assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn raw_tp_tp_btf_and_perf_event_fire() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        for (name, slot) in [("count_switch", SWITCH), ("count_switch_btf", SWITCH_BTF)] {
            let link = ebpf.program(name).expect("program").attach().expect(name);
            assert_eq!(link.mechanism(), Mechanism::BpfLink);
            let info = link.info().expect("link info");
            // tp_btf attaches through BPF_RAW_TRACEPOINT_OPEN too, and
            // the kernel makes it a raw_tracepoint link.
            assert_eq!(LinkType(info.link_type), LinkType::RAW_TRACEPOINT, "{name}");
            switch_a_while();
            assert!(count(&ebpf, slot) > 0, "{name} did not fire");
            drop(link);
            let after = count(&ebpf, slot);
            switch_a_while();
            assert_eq!(count(&ebpf, slot), after, "{name} fired after drop");
        }

        // perf_event: cpu-clock every 100 µs on every online CPU.
        let p = ebpf.program("count_clock").expect("program");
        let link = p
            .attach_perf_event(
                &ember::ember_sys::PerfEventAttr::cpu_clock(100_000),
                AttachOpts::default(),
            )
            .expect("perf_event");
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(30) {
            core::hint::black_box(0u64.wrapping_add(1));
        }
        assert!(count(&ebpf, CLOCK) > 0, "cpu-clock samples");
        drop(link);
        let after = count(&ebpf, CLOCK);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(count(&ebpf, CLOCK), after);
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn task_iterator_prints_this_process() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let ebpf = load();
    let link = ebpf
        .program("dump_tasks")
        .expect("program")
        .attach()
        .expect("iter");
    let text = String::from_utf8(link.read_iter().expect("read")).expect("utf-8");
    let me = format!("task {} ", std::process::id());
    assert!(
        text.contains(&me),
        "no '{me}' line among {} bytes",
        text.len()
    );
    assert!(text.lines().count() > 1);
    // Each read runs the iterator afresh.
    assert!(!link.read_iter().expect("again").is_empty());
    // A non-iterator link refuses.
    let raw = ebpf
        .program("count_switch")
        .expect("p")
        .attach()
        .expect("raw_tp");
    let e = raw.read_iter().expect_err("not an iterator");
    assert!(e.to_string().contains("count_switch"), "{e}");
}

#[test]
fn map_iterator_walks_the_map_it_is_given() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let ebpf = load();
    let counts = ebpf.map("counts").expect("counts");
    for (k, v) in [(1u32, 11u64), (6, 66)] {
        counts
            .update(&k.to_ne_bytes(), &v.to_ne_bytes(), 0)
            .expect("update");
    }
    let p = ebpf.program("dump_counts").expect("program");
    let link = p.attach_iter(Some(counts.fd())).expect("map iterator");
    let text = String::from_utf8(link.read_iter().expect("read")).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    // Every slot of the 8-entry array, in order, with the values set.
    assert_eq!(lines.len(), 8, "{text}");
    assert_eq!(lines[1], "slot 1 11");
    assert_eq!(lines[6], "slot 6 66");
    // A map iterator needs its map: the kernel refuses one without.
    let e = p.attach_iter(None).expect_err("no map");
    assert!(e.to_string().contains("dump_counts"), "{e}");
    // Auto-attach cannot know the map: no target, so `attach_all` and
    // `ember run` skip it.
    let e = p.attach().expect_err("no map");
    assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
}

#[test]
fn missing_targets_and_wrong_types_are_named() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let ebpf = load();
    let p = ebpf.program("count_openat").expect("program");
    let e = p
        .attach_tracepoint("syscalls", "sys_enter_no_such", AttachOpts::default())
        .expect_err("missing");
    assert!(matches!(e.kind, AttachErrorKind::NotFound(_)));
    let s = e.to_string();
    assert!(
        s.contains("'count_openat'") && s.contains("syscalls/sys_enter_no_such"),
        "{s}"
    );
    let e = p
        .attach_tracepoint("..", "x", AttachOpts::default())
        .expect_err("path escape");
    assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
    let r = ebpf.program("count_switch").expect("program");
    let e = r
        .attach_raw_tracepoint("no_such_tp_ember")
        .expect_err("missing");
    assert!(e.to_string().contains("no_such_tp_ember"), "{e}");
    let e = r
        .attach_tracepoint("sched", "sched_switch", AttachOpts::default())
        .expect_err("wrong type");
    assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
    // perf_event has no target in its section.
    let e = ebpf
        .program("count_clock")
        .expect("program")
        .attach()
        .expect_err("no target");
    assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
}

/// The child half of the pin test: attach, pin, exit.
const PIN_ENV: &str = "EMBER_TEST_PIN_LINK_AT";

#[test]
fn pinned_link_outlives_the_process_until_unpinned() {
    if let Ok(dir) = std::env::var(PIN_ENV) {
        // In the child: load, pin the link and the counter map, exit.
        let dir = Path::new(&dir);
        let ebpf = load();
        ebpf.map("counts")
            .expect("counts")
            .pin(dir.join("counts"))
            .expect("pin map");
        let mut link = ebpf
            .program("count_switch")
            .expect("p")
            .attach()
            .expect("attach");
        link.pin(dir.join("link")).expect("pin link");
        return;
    }
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("attach_pin") else {
        return;
    };
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "--exact",
            "pinned_link_outlives_the_process_until_unpinned",
            "--nocapture",
        ])
        .env(PIN_ENV, &*dir)
        .output()
        .expect("child");
    assert!(out.status.success(), "child: {out:?}");
    let counts = ember::Map::from_pin(dir.join("counts")).expect("map pin");
    let read = || {
        let v = counts
            .lookup(&SWITCH.to_ne_bytes())
            .expect("lookup")
            .expect("slot");
        u64::from_ne_bytes(v[..8].try_into().expect("8"))
    };
    let first = read();
    switch_a_while();
    assert!(
        read() > first,
        "the pinned link still fires after its process exited"
    );
    // The wrong expected type is refused; the right one opens.
    let e = Link::from_pin(dir.join("link"), Some(LinkType::XDP)).expect_err("type");
    assert!(e.to_string().contains("raw_tracepoint"), "{e}");
    let e = Link::from_pin(dir.join("counts"), None).expect_err("a map");
    assert!(e.to_string().contains("not a link"), "{e}");
    let mut link =
        Link::from_pin(dir.join("link"), Some(LinkType::RAW_TRACEPOINT)).expect("reopen");
    assert_eq!(link.program(), "count_switch");
    assert_eq!(
        link.info().expect("info").link_type,
        LinkType::RAW_TRACEPOINT.0
    );
    link.unpin().expect("unpin");
    drop(link);
    let stopped = read();
    switch_a_while();
    assert_eq!(read(), stopped, "detached once unpinned and closed");
    assert!(!dir.join("link").exists());
}
