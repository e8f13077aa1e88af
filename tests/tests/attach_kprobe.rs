//! Kprobes, kretprobes, ksyscall, kprobe.multi and kprobe.session on this
//! kernel, as root.
//!
//! Where the kernel has kprobes (the kprobe PMU or tracefs
//! `kprobe_events`), each attachment is shown to fire on openat(2) and to
//! stop when its link is dropped. On a kernel built without
//! `CONFIG_KPROBES` (this project's development machine) every one of
//! them fails with `Unsupported` naming the program, the function and
//! both missing interfaces, in the PMU and the legacy mode alike;
//! kprobe.multi / kprobe.session (which need `CONFIG_FPROBE`) fail with
//! the kernel's `EOPNOTSUPP`, explained. Either way no fd is left behind.

use std::path::Path;

use ember::attach::{AttachErrorKind, KprobeMultiTarget, KprobeTarget};
use ember::{AttachError, AttachMode, AttachOpts, Ebpf, EbpfLoader, Link, Program};
use ember_tests::{fixture, kernel_ready, open_fds, open_files, serial, skip};

const ENTRY: u32 = 0;
const RETURN: u32 = 1;
const MULTI: u32 = 2;
const MULTI_COOKIES: u32 = 3;
const SYSCALL: u32 = 4;
const SYSCALL_RET: u32 = 5;
const SESSION: u32 = 6;
const BARE: u32 = 7;

const OPENS: u64 = 20;

fn load() -> Ebpf {
    EbpfLoader::new()
        .load_file(fixture("attach/kprobe.bpf-el.o"))
        .expect("load attach/kprobe")
}

fn prog<'a>(ebpf: &'a Ebpf, name: &str) -> &'a Program {
    ebpf.program(name)
        .unwrap_or_else(|| panic!("no program {name}"))
}

fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("hits")
        .expect("hits")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

/// `OPENS` openat(2) calls.
/// Whether this kernel can make kprobes at all.
fn has_kprobes() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || ember::attach::tracefs::root().is_ok_and(|r| r.join("kprobe_events").exists())
}

fn ready() -> bool {
    if !kernel_ready() {
        skip("needs root and bpf(2)");
        return false;
    }
    true
}

/// Fires `slot` by opening files while `link` holds, then shows that
/// dropping it stops the count (kprobes see every process's opens, so
/// the count is at least ours).
fn fires_then_stops(ebpf: &Ebpf, slot: u32, link: Link) {
    let before = count(ebpf, slot);
    open_files(OPENS as usize);
    let during = count(ebpf, slot);
    assert!(
        during >= before + OPENS,
        "{}: {before} -> {during} after {OPENS} opens",
        link.target()
    );
    drop(link);
    let after = count(ebpf, slot);
    open_files(OPENS as usize);
    assert_eq!(count(ebpf, slot), after, "still counting after drop");
}

/// The error this kernel gives where it has no kprobes.
fn assert_no_kprobes(e: &AttachError, program: &str, function: &str) {
    let text = e.to_string();
    assert!(
        matches!(&e.kind, AttachErrorKind::Unsupported(w)
            if w.contains("neither the kprobe PMU") && w.contains("kprobe_events")),
        "{text}"
    );
    assert_eq!(e.program, program);
    assert!(
        text.contains(&format!("program '{program}'")) && text.contains(function),
        "{text}"
    );
}

#[test]
fn kprobes_kretprobes_and_ksyscalls_fire_or_are_unsupported() {
    let _s = serial();
    if !ready() {
        return;
    }
    let ebpf = load();
    let fds = open_fds();
    let wrapped = std::fs::read_to_string("/proc/kallsyms")
        .is_ok_and(|k| k.lines().any(|l| l.ends_with(" __x64_sys_bpf")));
    let openat_fn = if wrapped && cfg!(target_arch = "x86_64") {
        "__x64_sys_openat"
    } else {
        "sys_openat"
    };
    let kprobes = has_kprobes();
    for mode in [AttachMode::Auto, AttachMode::Legacy] {
        let opts = AttachOpts {
            mode,
            ..AttachOpts::default()
        };
        let cases: [(&str, u32, &str); 4] = [
            ("on_entry", ENTRY, "do_sys_openat2"),
            ("on_return", RETURN, "do_sys_openat2"),
            ("on_syscall", SYSCALL, openat_fn),
            ("on_syscall_return", SYSCALL_RET, openat_fn),
        ];
        for (name, slot, function) in cases {
            let r = prog(&ebpf, name).attach_with(opts);
            match (kprobes, r) {
                (true, Ok(link)) => fires_then_stops(&ebpf, slot, link),
                (false, Err(e)) => {
                    eprintln!("{mode:?}: {e}");
                    assert_no_kprobes(&e, name, function);
                }
                (true, Err(e)) => panic!("{mode:?}: {e}"),
                (false, Ok(l)) => panic!("{mode:?}: attached without kprobes: {l:?}"),
            }
        }
        // Explicitly, with an offset of 0 spelled out, and by address.
        let bare = prog(&ebpf, "on_bare");
        let t = KprobeTarget::parse("do_sys_openat2+0").expect("parse");
        match (kprobes, bare.attach_kprobe(&t, opts)) {
            (true, Ok(link)) => fires_then_stops(&ebpf, BARE, link),
            (false, Err(e)) => assert_no_kprobes(&e, "on_bare", "do_sys_openat2"),
            (_, r) => panic!("{mode:?}: {r:?}"),
        }
        let t = KprobeTarget::function("do_sys_openat2")
            .retprobe(true)
            .maxactive(Some(8));
        match (kprobes, bare.attach_kprobe(&t, opts)) {
            (true, Ok(link)) => fires_then_stops(&ebpf, BARE, link),
            (false, Err(e)) => assert_no_kprobes(&e, "on_bare", "do_sys_openat2"),
            (_, r) => panic!("{mode:?} maxactive: {r:?}"),
        }
    }
    assert_eq!(open_fds(), fds, "an fd was left behind");
}

/// Where the kernel has kprobes: a name with several definitions is
/// refused with its candidates, and one of them attaches by address.
#[test]
fn ambiguous_names_list_candidates() {
    let _s = serial();
    if !ready() {
        return;
    }
    if !has_kprobes() {
        eprintln!("no kprobes here: the support check comes first (unit-tested instead)");
        return;
    }
    let text = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let mut seen = std::collections::HashMap::<&str, &str>::new();
    let dup = text.lines().find_map(|l| {
        let mut p = l.split_whitespace();
        let (addr, kind, name) = (p.next()?, p.next()?, p.next()?);
        if p.next().is_some() || kind != "t" {
            return None;
        }
        match seen.insert(name, addr) {
            Some(prev) if prev != addr => Some(name.to_owned()),
            _ => None,
        }
    });
    let Some(dup) = dup else {
        eprintln!("no duplicate static function name in kallsyms");
        return;
    };
    let ebpf = load();
    let e = prog(&ebpf, "on_bare")
        .attach_kprobe(&KprobeTarget::function(&dup), AttachOpts::default())
        .expect_err("ambiguous");
    let AttachErrorKind::Ambiguous(c) = &e.kind else {
        panic!("{e}")
    };
    assert!(c.len() >= 2 && c[0].starts_with("vmlinux:0x"), "{e}");
}

#[test]
fn kprobe_multi_and_session_fire_or_are_explained() {
    let _s = serial();
    if !ready() {
        return;
    }
    let ebpf = load();
    let fds = open_fds();
    let multi = prog(&ebpf, "on_multi");
    // Section auto-attach (pattern `do_sys_openat*`), with a cookie.
    let opts = AttachOpts {
        cookie: 3,
        ..AttachOpts::default()
    };
    match multi.attach_with(opts) {
        Ok(link) => {
            let c0 = count(&ebpf, MULTI_COOKIES);
            fires_then_stops(&ebpf, MULTI, link);
            assert!(count(&ebpf, MULTI_COOKIES) >= c0 + 3 * OPENS);
        }
        Err(e) => {
            eprintln!("kprobe.multi on this kernel: {e}");
            assert!(
                matches!(&e.kind, AttachErrorKind::Unsupported(w) if w.contains("CONFIG_FPROBE") && w.contains("EOPNOTSUPP")),
                "{e}"
            );
            assert!(
                e.to_string().contains("program 'on_multi'") && e.target.contains("do_sys_openat*")
            );
        }
    }
    match prog(&ebpf, "on_session").attach() {
        Ok(link) => {
            // Entry and return: two runs per open.
            let before = count(&ebpf, SESSION);
            open_files(OPENS as usize);
            assert!(count(&ebpf, SESSION) >= before + 2 * OPENS);
            drop(link);
        }
        Err(e) => {
            eprintln!("kprobe.session on this kernel: {e}");
            assert!(
                matches!(&e.kind, AttachErrorKind::Unsupported(w) if w.contains("kprobe.session") && w.contains("EOPNOTSUPP"))
                    || matches!(&e.kind, AttachErrorKind::Sys(s) if s.errno == ember::ember_sys::Errno::INVAL),
                "{e}"
            );
            assert!(e.target.starts_with("kprobe.session"), "{e}");
        }
    }
    // A pattern that matches nothing is named before any call; names
    // that are no function are the kernel's to refuse.
    let e = multi
        .attach_kprobe_multi(
            &KprobeMultiTarget::pattern("ember_no_such_function_*"),
            AttachOpts::default(),
        )
        .expect_err("nothing matches");
    assert!(
        matches!(&e.kind, AttachErrorKind::NotFound(w) if w.contains("ember_no_such_function_*")),
        "{e}"
    );
    let legacy = AttachOpts {
        mode: AttachMode::Legacy,
        ..AttachOpts::default()
    };
    let e = multi
        .attach_kprobe_multi(&KprobeMultiTarget::symbols(["do_sys_openat2"]), legacy)
        .expect_err("no legacy kprobe.multi");
    assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
    let e = multi
        .attach_kprobe_multi(
            &KprobeMultiTarget::symbols(["do_sys_openat2"]).cookies(vec![1, 2]),
            AttachOpts::default(),
        )
        .expect_err("cookie count");
    assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");
    assert_eq!(open_fds(), fds, "an fd was left behind");
}

#[test]
fn wrong_types_and_bad_targets_are_named() {
    let _s = serial();
    if !ready() {
        return;
    }
    let ebpf = load();
    let fds = open_fds();
    let opts = AttachOpts::default();
    let entry = prog(&ebpf, "on_entry");
    let multi = prog(&ebpf, "on_multi");
    let bare = prog(&ebpf, "on_bare");
    let e = multi
        .attach_kprobe(&KprobeTarget::function("do_sys_openat2"), opts)
        .expect_err("multi as kprobe");
    assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
    let e = entry
        .attach_kprobe_multi(&KprobeMultiTarget::pattern("do_sys_*"), opts)
        .expect_err("kprobe as multi");
    assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
    let e = bare.attach().expect_err("bare section");
    assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
    assert!(e.to_string().contains("program 'on_bare'"), "{e}");
    let e = bare
        .attach_ksyscall("open at", false, opts)
        .expect_err("bad syscall");
    assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");
    let e = bare
        .attach_kprobe(
            &KprobeTarget::function("do_sys_openat2")
                .offset(4)
                .retprobe(true),
            opts,
        )
        .expect_err("kretprobe offset");
    assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");
    let e = bare
        .attach_kprobe(&KprobeTarget::function("bad name"), opts)
        .expect_err("bad name");
    assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");
    let (links, skipped) = match ebpf.attach_all(ember::AttachOpts::default()) {
        Ok(x) => x,
        Err(e) => {
            // Without kprobes (or fprobe, for the multi ones) the first
            // program that needs them stops it, named.
            assert!(matches!(e.kind, AttachErrorKind::Unsupported(_)), "{e}");
            assert!(e.to_string().starts_with("program 'on_"), "{e}");
            (Vec::new(), vec!["on_bare".to_owned()])
        }
    };
    assert!(skipped.contains(&"on_bare".to_owned()));
    drop(links);
    assert_eq!(open_fds(), fds, "an fd was left behind");
}
