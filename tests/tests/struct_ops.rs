//! struct_ops and freplace on the running kernel: a TCP congestion control
//! of our own registered (and unregistered on drop), and an extension
//! program replacing a global function of another program.

use ember::EbpfLoader;
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
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = available();
    }
    assert!(
        !after.iter().any(|n| n.starts_with("ember_test")),
        "{after:?}"
    );
}
