//! Unit tests of the EPERM explanations over crafted snapshots.

use super::system::parse_release;
use super::*;

const ROOT: CapabilitySet = CapabilitySet::all();

fn root() -> Snapshot {
    Snapshot {
        euid: 0,
        effective: Some(ROOT),
        lockdown: Some(Lockdown::None),
        unprivileged_bpf_disabled: Some(2),
        memlock: Memlock {
            limit: Some(8 << 20),
            memcg_accounting: Some(true),
            raise_error: None,
        },
        kernel_version: version(6, 18),
    }
}

fn prog(prog_type: ProgType, attach_type: Option<AttachType>) -> Operation {
    Operation::ProgLoad {
        prog_type,
        attach_type,
        empty_log: true,
    }
}

fn fentry() -> Operation {
    prog(ProgType::TRACING, Some(AttachType::TRACE_FENTRY))
}

#[test]
fn lockdown_file_parses() {
    assert_eq!(
        Lockdown::parse("none [integrity] confidentiality\n"),
        Some(Lockdown::Integrity)
    );
    assert_eq!(
        Lockdown::parse("[none] integrity confidentiality"),
        Some(Lockdown::None)
    );
    assert_eq!(Lockdown::parse("none integrity"), None);
    assert_eq!(parse_release("6.18.44-fc-v657"), version(6, 18));
    assert_eq!(parse_release("5.4"), version(5, 4));
    assert_eq!(parse_release("x"), 0);
}

#[test]
fn lockdown_refuses_trampolines() {
    let s = Snapshot {
        lockdown: Some(Lockdown::Integrity),
        ..root()
    };
    let r = explain(fentry(), &s).expect("a reason");
    assert_eq!(
        r,
        EpermReason::Lockdown {
            op: fentry(),
            mode: Lockdown::Integrity
        }
    );
    let text = r.to_string();
    assert!(text.contains("locked down (integrity)"), "{text}");
    assert!(text.contains("refuses fentry programs"), "{text}");
    let lsm = prog(ProgType::LSM, Some(AttachType::LSM_MAC));
    assert!(matches!(
        explain(lsm, &s),
        Some(EpermReason::Lockdown { .. })
    ));
    // tp_btf and kprobes need no trampoline: lockdown does not explain.
    let tp_btf = prog(ProgType::TRACING, Some(AttachType::TRACE_RAW_TP));
    assert_eq!(explain(tp_btf, &s), None);
    assert_eq!(explain(prog(ProgType::KPROBE, None), &s), None);
    // A verifier log means the verifier refused, not lockdown.
    let logged = Operation::ProgLoad {
        prog_type: ProgType::TRACING,
        attach_type: Some(AttachType::TRACE_FENTRY),
        empty_log: false,
    };
    assert_eq!(explain(logged, &s), None);
}

#[test]
fn unreadable_lockdown_is_inferred_from_the_refusal() {
    let s = Snapshot {
        lockdown: None,
        ..root()
    };
    let r = explain(fentry(), &s).expect("a reason");
    assert!(matches!(r, EpermReason::LikelyLockdown { .. }));
    assert!(r.to_string().contains("most likely locked down"), "{r}");
    // Unknown capabilities: no guess.
    let blind = Snapshot {
        effective: None,
        lockdown: None,
        ..root()
    };
    assert_eq!(explain(fentry(), &blind), None);
}

#[test]
fn missing_capabilities_are_named() {
    let s = Snapshot {
        euid: 1000,
        effective: Some(CapabilitySet::BPF),
        unprivileged_bpf_disabled: Some(0),
        ..root()
    };
    let tp = prog(ProgType::TRACEPOINT, None);
    let r = explain(tp, &s).expect("a reason");
    assert_eq!(
        r,
        EpermReason::MissingCapabilities {
            op: tp,
            missing: vec![Capability::Perfmon],
            root: false,
        }
    );
    let text = r.to_string();
    assert!(
        text.starts_with("tracepoint programs need CAP_PERFMON (or CAP_SYS_ADMIN)"),
        "{text}"
    );
    let xdp = prog(ProgType::XDP, None);
    let none = Snapshot {
        effective: Some(CapabilitySet::empty()),
        ..s
    };
    assert_eq!(
        explain(xdp, &none),
        Some(EpermReason::MissingCapabilities {
            op: xdp,
            missing: vec![Capability::Bpf, Capability::NetAdmin],
            root: false,
        })
    );
    // A socket filter needs nothing when unprivileged BPF is allowed.
    assert_eq!(explain(prog(ProgType::SOCKET_FILTER, None), &none), None);
    // CAP_SYS_ADMIN stands in for everything.
    let admin = Snapshot {
        effective: Some(CapabilitySet::SYS_ADMIN),
        ..s
    };
    assert_eq!(explain(xdp, &admin), None);
    let lru = Operation::MapCreate {
        map_type: MapType::LRU_HASH,
    };
    assert_eq!(
        explain(lru, &none),
        Some(EpermReason::MissingCapabilities {
            op: lru,
            missing: vec![Capability::Bpf],
            root: false,
        })
    );
    assert_eq!(
        explain(
            Operation::MapCreate {
                map_type: MapType::HASH
            },
            &none
        ),
        None
    );
    // Before 5.8 it was CAP_SYS_ADMIN.
    let old = Snapshot {
        kernel_version: version(5, 4),
        ..none
    };
    assert_eq!(
        explain(tp, &old),
        Some(EpermReason::MissingCapabilities {
            op: tp,
            missing: vec![Capability::SysAdmin],
            root: false,
        })
    );
}

#[test]
fn unprivileged_bpf_disabled_comes_first() {
    let s = Snapshot {
        euid: 1000,
        effective: Some(CapabilitySet::PERFMON),
        ..root()
    };
    let r = explain(prog(ProgType::SOCKET_FILTER, None), &s).expect("a reason");
    assert_eq!(
        r,
        EpermReason::UnprivilegedBpfDisabled {
            value: 2,
            missing: vec![Capability::Bpf],
            root: false,
        }
    );
    let text = r.to_string();
    assert!(
        text.contains("kernel.unprivileged_bpf_disabled is 2"),
        "{text}"
    );
    assert!(text.contains("grant CAP_BPF"), "{text}");
    let r = explain(
        prog(ProgType::KPROBE, None),
        &Snapshot {
            effective: Some(CapabilitySet::empty()),
            ..s
        },
    );
    assert_eq!(
        r.map(|r| r.to_string()).unwrap_or_default(),
        "kernel.unprivileged_bpf_disabled is 2, so bpf(2) needs CAP_BPF (or CAP_SYS_ADMIN), \
         and this process lacks CAP_BPF and CAP_PERFMON; run it as root or grant CAP_BPF and \
         CAP_PERFMON (setcap, or AmbientCapabilities= in a systemd unit); or have an admin \
         set the sysctl to 0"
    );
    // BTF load, with the sysctl cleared: CAP_BPF still needed.
    let cleared = Snapshot {
        unprivileged_bpf_disabled: Some(0),
        ..s
    };
    assert!(matches!(
        explain(Operation::BtfLoad, &cleared),
        Some(EpermReason::MissingCapabilities { .. })
    ));
}

#[test]
fn memlock_explains_old_kernels() {
    let s = Snapshot {
        memlock: Memlock {
            limit: Some(64 << 10),
            memcg_accounting: Some(false),
            raise_error: Some(Errno::PERM),
        },
        kernel_version: version(5, 4),
        ..root()
    };
    let map = Operation::MapCreate {
        map_type: MapType::HASH,
    };
    let r = explain(map, &s).expect("a reason");
    assert_eq!(
        r,
        EpermReason::Memlock {
            limit: 64 << 10,
            raise_error: Some(Errno::PERM)
        }
    );
    let text = r.to_string();
    assert!(text.contains("RLIMIT_MEMLOCK"), "{text}");
    assert!(text.contains("65536 bytes"), "{text}");
    assert!(text.contains("could not be raised"), "{text}");
    // Unlimited, or memcg accounting: not the memlock.
    let unlimited = Snapshot {
        memlock: Memlock {
            limit: None,
            ..s.memlock
        },
        ..s
    };
    assert_eq!(explain(map, &unlimited), None);
    assert_eq!(explain(map, &root()), None);
    // An unknown probe result falls back to the kernel version.
    let unknown = Snapshot {
        memlock: Memlock {
            memcg_accounting: None,
            ..s.memlock
        },
        ..s
    };
    assert!(explain(map, &unknown).is_some());
    let recent = Snapshot {
        kernel_version: version(6, 1),
        ..unknown
    };
    assert_eq!(explain(map, &recent), None);
}

#[test]
fn helpers_withheld_by_lockdown() {
    let log = "6: (85) call bpf_probe_write_user#36\n\
               program of this type cannot use helper bpf_probe_write_user#36\n\
               processed 7 insns";
    let c = lockdown_helper_cause(log, Lockdown::Integrity).expect("a cause");
    assert!(
        c.starts_with("bpf_probe_write_user is withheld by kernel lockdown (integrity)"),
        "{c}"
    );
    assert_eq!(lockdown_helper_cause(log, Lockdown::None), None);
    let read = "unknown func bpf_probe_read_kernel#113\n";
    assert_eq!(lockdown_helper_cause(read, Lockdown::Integrity), None);
    let c = lockdown_helper_cause(read, Lockdown::Confidentiality).expect("a cause");
    assert!(c.contains("bpf_probe_read_user"), "{c}");
    // Other helpers, other logs: nothing.
    let other = "program of this type cannot use helper bpf_sk_lookup_tcp#84\n";
    assert_eq!(
        lockdown_helper_cause(other, Lockdown::Confidentiality),
        None
    );
    assert_eq!(
        lockdown_helper_cause("R1 invalid mem access", Lockdown::Confidentiality),
        None
    );
}

#[test]
fn nothing_found_is_none() {
    let s = root();
    assert_eq!(explain(fentry(), &s), None);
    assert_eq!(explain(prog(ProgType::XDP, None), &s), None);
    assert_eq!(explain(Operation::BtfLoad, &s), None);
    assert_eq!(
        explain(
            Operation::MapCreate {
                map_type: MapType::DEVMAP
            },
            &s
        ),
        None
    );
}
