//! struct_ops and freplace on the running kernel: a TCP congestion control
//! of our own registered (and unregistered on drop), and an extension
//! program replacing a global function of another program.

use ember::privilege::{EpermReason, Lockdown, Snapshot};
use ember::{AttachTarget, EbpfLoader, LoadError, ObjectSpec};
use ember_core::btf::{Btf, Kind};
use ember_tests::{fixture, kernel_ready};

const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";

fn available() -> Vec<String> {
    std::fs::read_to_string(AVAILABLE)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn tcp_congestion_ops_register_and_unregister_on_drop() {
    if !kernel_ready() {
        return;
    }
    if !std::path::Path::new(AVAILABLE).exists() {
        eprintln!("skipped: no {AVAILABLE}");
        return;
    }
    let before = available();
    assert!(
        !before.iter().any(|n| n.starts_with("ember_test")),
        "{before:?}"
    );
    let ebpf = EbpfLoader::new()
        .load_file(fixture("struct_ops.bpf-el.o"))
        .unwrap_or_else(|e| panic!("{e}"));
    let now = available();
    // .struct_ops.link through a link, .struct_ops by map update.
    assert!(now.contains(&"ember_test".to_owned()), "{now:?}");
    assert!(now.contains(&"ember_test2".to_owned()), "{now:?}");
    let link = ebpf.struct_ops("ember_link_ca").expect("link map");
    assert!(link.link_fd().is_some());
    assert!(ebpf.struct_ops("ember_map_ca").unwrap().link_fd().is_none());
    // Programs loaded against the kernel struct, at the kernel's member
    // index, whatever the local order.
    let raw = std::fs::read("/sys/kernel/btf/vmlinux").unwrap();
    let vmlinux = Btf::parse(&raw).unwrap();
    let kt = vmlinux
        .find_by_name_kind("tcp_congestion_ops", Kind::Struct)
        .unwrap();
    let members: Vec<&str> = vmlinux
        .type_by_id(kt)
        .unwrap()
        .members()
        .map(|m| vmlinux.str_at(m.name_off).unwrap())
        .collect();
    for (prog, member) in [
        ("ember_ssthresh", "ssthresh"),
        ("ember_cong_avoid", "cong_avoid"),
        ("ember_undo_cwnd", "undo_cwnd"),
    ] {
        let p = ebpf.program(prog).unwrap();
        assert_eq!(p.prog_type().0, 27, "{prog}");
        assert_eq!(p.attach_btf_id(), kt.0, "{prog}");
        let index = members.iter().position(|m| *m == member).unwrap();
        assert_eq!(p.attach_type().map(|a| a.0), Some(index as u32), "{prog}");
    }
    // The program no map uses is not loaded (libbpf's rule).
    assert!(ebpf.program("ember_unused").is_none());
    assert!(
        ebpf.notes.iter().any(|n| n.contains("ember_unused")),
        "{:?}",
        ebpf.notes
    );
    drop(ebpf);
    // Unregistration of a link-less struct_ops map is immediate; a link's
    // goes with its last reference: wait briefly for both.
    let mut after = available();
    for _ in 0..50 {
        if !after.iter().any(|n| n.starts_with("ember_test")) {
            break;
        }
        std::thread::sleep(core::time::Duration::from_millis(20));
        after = available();
    }
    assert!(
        !after.iter().any(|n| n.starts_with("ember_test")),
        "{after:?}"
    );
}

#[test]
fn freplace_loads_against_a_target_program_and_replaces_its_function() {
    if !kernel_ready() {
        return;
    }
    let data = std::fs::read(fixture("freplace.bpf-el.o")).unwrap();
    let target = EbpfLoader::new()
        .autoload("ember_replacement", false)
        .load(&data, "freplace.bpf-el.o")
        .unwrap_or_else(|e| panic!("{e}"));
    let tprog = target.program("ember_target").unwrap();
    let run = |fd| {
        let mut packet = [0u8; 64];
        ember_sys::prog_test_run(
            fd,
            &mut ember_sys::TestRun {
                data_in: &[0u8; 64],
                data_out: Some(&mut packet),
                repeat: 1,
                ..Default::default()
            },
        )
        .expect("test run")
        .retval
    };
    assert_eq!(run(tprog.fd()), 1, "XDP_DROP before replacement");

    // Without a target: refused by name, before the kernel sees it.
    let e = EbpfLoader::new()
        .autoload("ember_target", false)
        .load(&data, "freplace.bpf-el.o")
        .unwrap_err();
    assert!(matches!(e, LoadError::TargetProgram { .. }), "{e}");
    assert!(e.to_string().contains("ember_replacement"), "{e}");

    // A function the target lacks: named.
    let mut spec = ObjectSpec::parse(&data, "freplace.bpf-el.o").unwrap();
    spec.program_mut("ember_target")
        .unwrap()
        .set_autoload(false);
    spec.program_mut("ember_replacement")
        .unwrap()
        .set_attach_target(AttachTarget::program(tprog.fd(), "no_such_fn").unwrap());
    let e = EbpfLoader::new().load_spec(spec).unwrap_err();
    assert!(e.to_string().contains("no function 'no_such_fn'"), "{e}");

    // Against the target, with the function from the section name.
    let mut spec = ObjectSpec::parse(&data, "freplace.bpf-el.o").unwrap();
    spec.program_mut("ember_target")
        .unwrap()
        .set_autoload(false);
    spec.program_mut("ember_replacement")
        .unwrap()
        .set_attach_target(AttachTarget::program(tprog.fd(), "").unwrap());
    // Kernel lockdown (integrity or stricter) refuses extension programs
    // with EPERM, as it does every program that needs a BPF trampoline:
    // then the refusal must be exactly that, and explained.
    let mode = Snapshot::read().lockdown;
    let ext = match (EbpfLoader::new().load_spec(spec), mode) {
        (Ok(ext), _) => ext,
        (Err(e), Some(Lockdown::Integrity | Lockdown::Confidentiality) | None) => {
            let LoadError::ProgLoad {
                program,
                source,
                eperm,
                ..
            } = &e
            else {
                panic!("{e}");
            };
            assert_eq!(program, "ember_replacement");
            assert_eq!(source.errno, ember_sys::Errno::PERM, "{e}");
            match (mode, eperm.as_deref()) {
                (Some(m), Some(EpermReason::Lockdown { mode, .. })) => assert_eq!(*mode, m),
                (None, Some(EpermReason::LikelyLockdown { .. })) => {}
                (m, why) => panic!("lockdown {m:?}, explanation {why:?}: {e}"),
            }
            assert!(e.to_string().contains("freplace"), "{e}");
            eprintln!("freplace refused by lockdown {mode:?} here, as expected: {e}");
            return;
        }
        (Err(e), m) => panic!("lockdown {m:?}: {e}"),
    };
    let eprog = ext.program("ember_replacement").unwrap();
    assert_eq!(eprog.prog_type().0, 28);
    assert!(eprog.attach_btf_id() > 0);

    // Attached where its load put it (the target program's function),
    // the replacement runs in place of ember_verdict; detached, not.
    let link = eprog
        .attach()
        .unwrap_or_else(|e| panic!("freplace link: {e}"));
    assert_eq!(link.mechanism(), ember::Mechanism::BpfLink);
    assert_eq!(run(tprog.fd()), 2, "XDP_PASS from the replacement");
    drop(link);
    assert_eq!(run(tprog.fd()), 1, "XDP_DROP again once detached");
}

#[test]
fn struct_ops_the_kernel_cannot_take_are_named() {
    if !kernel_ready() {
        return;
    }
    for (fixture_name, want) in [
        (
            "struct_ops_bad_type",
            "struct_ops map 'ember_bad_type': this kernel has no struct_ops type 'struct ember_no_such_ops'",
        ),
        (
            "struct_ops_bad_member",
            "struct_ops map 'ember_bad_member': member 'ember_extra': set in the object, but this kernel's struct tcp_congestion_ops has no such member",
        ),
        (
            "struct_ops_bad_size",
            "struct_ops map 'ember_bad_size': member 'flags': 8 bytes here, 4 in the kernel's struct tcp_congestion_ops",
        ),
    ] {
        let e = EbpfLoader::new()
            .load_file(fixture(&format!("{fixture_name}.bpf-el.o")))
            .unwrap_err();
        assert!(matches!(e, LoadError::StructOps { .. }), "{e}");
        assert!(e.to_string().starts_with(want), "{fixture_name}: {e}");
    }
    // Nothing was registered on the way.
    assert!(!available().iter().any(|n| n == "ember_bad"));
}
