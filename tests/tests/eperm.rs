//! A bare EPERM explained on this kernel, as root: an fentry program under
//! lockdown (read from securityfs, through a private mount when it is not
//! mounted), a helper lockdown withholds, and the CLI run with
//! capabilities dropped by setpriv(1), naming what is missing.

use std::path::Path;
use std::process::Command;

use ember::privilege::{EpermReason, Lockdown, Snapshot};
use ember::{EbpfLoader, LoadError};
use ember_tests::{ember_bin, fixture, kernel_ready, open_fds, serial, skip, tool};

fn mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo")
}

#[test]
fn lockdown_is_read_without_mounting_anything_visible() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    if !Path::new("/sys/kernel/security").is_dir() {
        skip("no /sys/kernel/security: the kernel has no securityfs");
        return;
    }
    let before = (open_fds(), mounts());
    let s = Snapshot::read();
    assert_eq!((open_fds(), mounts()), before, "fd or mount left behind");
    assert_eq!(s.euid, 0);
    let caps = s.effective.expect("capget");
    assert!(
        caps.contains(ember::privilege::CapabilitySet::BPF),
        "{caps:?}"
    );
    // As root the mode is always known: from the mounted file, or from a
    // detached securityfs mount when it is not mounted (as here).
    let mode = s.lockdown.expect("lockdown mode");
    if let Ok(text) = std::fs::read_to_string("/sys/kernel/security/lockdown") {
        assert_eq!(Lockdown::parse(&text), Some(mode));
    }
    eprintln!("lockdown: {mode}");
}

#[test]
fn fentry_refused_under_lockdown_is_explained() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let mode = Snapshot::read().lockdown;
    let before = open_fds();
    let r = EbpfLoader::new()
        .autoload("plain", false)
        .autoload("on_enter", false)
        .autoload("writes_user", false)
        .load_file(fixture("eperm.bpf-el.o"));
    let e = match (r, mode) {
        (Ok(_), Some(Lockdown::Integrity | Lockdown::Confidentiality)) => {
            skip("this kernel's lockdown lets fentry programs load: nothing to explain");
            return;
        }
        (Ok(_), _) => {
            eprintln!("fentry loads here (lockdown {mode:?})");
            return;
        }
        (Err(e), _) => e,
    };
    let LoadError::ProgLoad {
        program,
        source,
        log,
        eperm,
        ..
    } = &e
    else {
        panic!("{e}");
    };
    assert_eq!(program, "on_nanosleep");
    assert_eq!(source.errno, ember::ember_sys::Errno::PERM, "{e}");
    assert!(log.trim().is_empty(), "{log}");
    match (mode, eperm.as_deref()) {
        (Some(m), Some(EpermReason::Lockdown { mode, .. })) => assert_eq!(*mode, m),
        (None, Some(EpermReason::LikelyLockdown { .. })) => {}
        (m, why) => panic!("lockdown {m:?}, explanation {why:?}: {e}"),
    }
    let text = e.to_string();
    assert!(text.contains("locked down"), "{text}");
    assert!(text.contains("fentry programs"), "{text}");
    drop(e);
    assert_eq!(open_fds(), before, "fds leaked");

    // The CLI prints it, above the errno.
    let out = Command::new(ember_bin())
        .arg("load")
        .arg(fixture("eperm.bpf-el.o"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for want in [
        "program 'on_nanosleep' was rejected\n  cause: the kernel is locked down",
        "caused by: BPF_PROG_LOAD failed: Operation not permitted",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
}

/// `ember load eperm.bpf-el.o` with `drop` removed from the capability
/// bounding set (root gets only what that set allows at exec).
fn load_without(drop: &str) -> Option<String> {
    setpriv(&[&format!("--bounding-set={drop}")])
}

/// `ember load eperm.bpf-el.o` under `setpriv ARGS`; its stderr.
fn setpriv(args: &[&str]) -> Option<String> {
    let Some(setpriv) = tool("setpriv") else {
        skip("no setpriv(1) (util-linux)");
        return None;
    };
    let out = Command::new(setpriv)
        .args(args)
        .arg(ember_bin())
        .arg("load")
        .arg(fixture("eperm.bpf-el.o"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "loaded under setpriv {args:?}");
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_dropped_capability_is_named() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    // CAP_BPF stays: BTF, maps and the socket filter load; the tracepoint
    // program needs CAP_PERFMON.
    let Some(err) = load_without("-perfmon,-sys_admin") else {
        return;
    };
    for want in [
        "program 'on_enter' was rejected",
        "cause: tracepoint programs need CAP_PERFMON (or CAP_SYS_ADMIN), which this process lacks",
        "being root is not enough",
    ] {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
}

#[test]
fn unprivileged_bpf_disabled_is_named() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let sysctl = Snapshot::read().unprivileged_bpf_disabled;
    let Some(err) = load_without("-bpf,-perfmon,-sys_admin") else {
        return;
    };
    let wants: &[&str] = match sysctl {
        // Even the socket filter is refused.
        Some(v) if v != 0 => &[
            "program 'plain' was rejected",
            "kernel.unprivileged_bpf_disabled is",
            "lacks CAP_BPF;",
        ],
        // The socket filter loads; the tracepoint needs both.
        _ => &[
            "program 'on_enter' was rejected",
            "need CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)",
        ],
    };
    for want in wants {
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
    // Root is told that dropped capabilities must be kept; anyone else
    // that they need root or a grant.
    assert!(err.contains("being root is not enough"), "{err}");
    if sysctl.is_some_and(|v| v != 0) {
        let Some(err) = setpriv(&[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ]) else {
            return;
        };
        if err.contains("failed to execute") {
            skip(&format!("user nobody cannot run the ember CLI here: {err}"));
            return;
        }
        let want = "this process lacks CAP_BPF; run it as root or grant CAP_BPF";
        assert!(err.contains(want), "missing '{want}' in:\n{err}");
    }
}

/// `Max locked memory` of /proc/self/limits.
fn memlock_line() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .expect("limits")
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .expect("memlock line")
        .to_owned()
}

#[test]
fn memlock_is_left_alone_with_memcg_accounting() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let s = Snapshot::read();
    if s.memlock.memcg_accounting != Some(true) {
        skip(
            "this kernel charges BPF memory to RLIMIT_MEMLOCK: raising it is tested by unit tests only",
        );
        return;
    }
    let before = memlock_line();
    assert_eq!(ember::privilege::raise_memlock(), Ok(()));
    EbpfLoader::new()
        .autoload("on_enter", false)
        .autoload("on_nanosleep", false)
        .autoload("writes_user", false)
        .load_file(fixture("eperm.bpf-el.o"))
        .expect("a socket filter loads");
    assert_eq!(memlock_line(), before, "RLIMIT_MEMLOCK changed");
}

#[test]
fn a_helper_withheld_by_lockdown_is_explained() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let mode = Snapshot::read().lockdown;
    let before = open_fds();
    let r = EbpfLoader::new()
        .autoload("plain", false)
        .autoload("on_enter", false)
        .autoload("on_nanosleep", false)
        .load_file(fixture("eperm.bpf-el.o"));
    match (r, mode) {
        (Ok(_), Some(Lockdown::None)) => {}
        (Ok(_), m) => panic!("bpf_probe_write_user allowed under lockdown {m:?}"),
        (Err(LoadError::ProgLoad { cause, log, .. }), Some(Lockdown::None)) => {
            assert_eq!(cause, None, "{log}");
        }
        (Err(LoadError::ProgLoad { cause, log, .. }), Some(m)) => {
            assert!(log.contains("bpf_probe_write_user#36"), "{log}");
            let cause = cause.expect("a cause");
            let want = format!("bpf_probe_write_user is withheld by kernel lockdown ({m})");
            assert!(cause.starts_with(&want), "{cause}");
        }
        (Err(e), m) => panic!("lockdown {m:?}: {e}"),
    }
    assert_eq!(open_fds(), before, "fds leaked");
}
