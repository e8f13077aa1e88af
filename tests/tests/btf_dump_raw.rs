//! `ember btf dump --format raw` against `bpftool btf dump file`, line for
//! line: this machine's vmlinux, the Debian 6.1 vmlinux, a module's split
//! BTF over it, and our fixture object in both byte orders.

use std::path::Path;
use std::process::Command;

use ember::ember_core::btf::{Btf, dump};
use ember_tests::{first_difference, fixture, kernel_btf_dir, run_stdout, skip, tool};

fn ember_raw(file: &Path, base: Option<&Path>) -> String {
    let base_bytes = base.map(|b| std::fs::read(b).expect("read base"));
    let base_btf = base_bytes
        .as_deref()
        .map(|b| Btf::parse_any(b, None).expect("parse base"));
    let bytes = std::fs::read(file).expect("read BTF file");
    let btf = Btf::parse_any(&bytes, base_btf.as_ref()).expect("parse BTF");
    let mut s = String::new();
    dump::raw::dump(&btf, &mut s).expect("dump");
    s
}

fn bpftool_raw(file: &Path, base: Option<&Path>) -> Option<String> {
    let Some(bpftool) = tool("bpftool") else {
        skip("bpftool is not installed (apt-get install bpftool)");
        return None;
    };
    let mut cmd = Command::new(bpftool);
    if let Some(b) = base {
        cmd.arg("-B").arg(b);
    }
    cmd.args(["btf", "dump", "file"]).arg(file);
    Some(String::from_utf8(run_stdout(&mut cmd)).expect("bpftool output is UTF-8"))
}

fn assert_same(file: &Path, base: Option<&Path>) {
    let Some(want) = bpftool_raw(file, base) else {
        return;
    };
    let got = ember_raw(file, base);
    if let Some((line, w, g)) = first_difference(&want, &got) {
        panic!(
            "{}: line {line} differs\n bpftool: {w}\n ember:   {g}",
            file.display()
        );
    }
    assert!(want.lines().count() > 10, "suspiciously short dump");
}

#[test]
fn this_kernel_vmlinux() {
    let p = Path::new("/sys/kernel/btf/vmlinux");
    if !p.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    assert_same(p, None);
}

#[test]
fn debian_61_vmlinux_and_module() {
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vmlinux = dir.join("vmlinux");
    assert_same(&vmlinux, None);
    for m in ["nf_conntrack.ko", "nf_conntrack_netlink.ko"] {
        assert_same(&dir.join("modules").join(m), Some(&vmlinux));
    }
}

#[test]
fn fixture_object_both_byte_orders() {
    for e in ["el", "eb"] {
        assert_same(&fixture(&format!("btf_kinds.bpf-{e}.o")), None);
    }
}

#[test]
fn foreign_endian_decodes_like_native() {
    let le = std::fs::read(fixture("btf_kinds.bpf-el.o")).expect("read el");
    let be = std::fs::read(fixture("btf_kinds.bpf-eb.o")).expect("read eb");
    let (le, be) = (
        Btf::parse_any(&le, None).expect("el"),
        Btf::parse_any(&be, None).expect("eb"),
    );
    assert_ne!(le.endian(), be.endian());
    let (mut a, mut b) = (String::new(), String::new());
    dump::raw::dump(&le, &mut a).expect("dump el");
    dump::raw::dump(&be, &mut b).expect("dump eb");
    assert_eq!(a, b);
}
