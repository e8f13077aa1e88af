//! What this kernel cannot run, in a qemu guest with Debian's 6.1 kernel
//! (tests/vm/run.sh, whose /init is tests/vm/init.sh): typed `__ksym`s
//! (need CONFIG_KALLSYMS_ALL), kfuncs that live in a module
//! (nf_conntrack), a module function as an fentry target, and the
//! scenarios this kernel refuses or lacks, each shown firing: fentry and
//! fexit, LSM, typed ksyms of vmlinux and a module read with sensible
//! values, no kernel BTF (external `--btf` / `--btf-dir`), and `ember run`
//! on the shipped example; kprobes on a module function (with and without
//! the module's BTF); and kprobes, which this kernel lacks
//! (tests/src/bin/vm_kprobe.rs: kprobe and kretprobe through the PMU and
//! tracefs, kprobe.multi, ksyscall, each shown to fire and stop); and
//! (tests/src/bin/vm_attach/) fmod_ret, fentry/fexit on a loaded BPF
//! program (library and `ember run --target`), lsm_cgroup, a module
//! kprobe's tracefs retry, and netkit refused saying 6.1 has none.

use std::process::Command;

use ember_tests::{root, skip, tool};

#[test]
fn guest_loads_typed_ksyms_and_module_kfuncs() {
    for (t, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
        ("depmod", "kmod"),
        ("apt-get", "apt"),
        ("objcopy", "binutils"),
        ("xz", "xz-utils"),
    ] {
        if tool(t).is_none() {
            skip(&format!("the VM test needs {t} (apt-get install {pkg})"));
            return;
        }
    }
    let log = root().join("target/vm/console.log");
    let out = Command::new(root().join("tests/vm/run.sh"))
        .arg(&log)
        .output()
        .expect("run tests/vm/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let console = std::fs::read(&log).unwrap_or_default();
    let console = String::from_utf8_lossy(&console);
    let context = format!(
        "run.sh stdout:\n{stdout}\nstderr:\n{}\nconsole tail:\n{}",
        String::from_utf8_lossy(&out.stderr),
        console
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    );
    for check in [
        "typed_ksym",
        "module_kfunc",
        "module_kfunc_loaded",
        "module_attach",
        "freplace_target",
        "freplace",
        "fentry",
        "lsm",
        "ksym-typed",
        "nobtf",
        "run",
        "kprobe",
        "kprobe-multi",
        "ksyscall",
        "kprobe-module",
        "kprobe-module-nobtf",
        "kprobe-module-retry",
        "fmod-ret",
        "fentry-bpf",
        "fentry-bpf-cli",
        "lsm-cgroup",
        "netkit",
    ] {
        assert!(
            console.contains(&format!("VMTEST {check} OK")),
            "guest check {check} did not pass\n{context}"
        );
    }
    // 6.1 has no netkit: the attach must have said so.
    let netkit = console
        .lines()
        .find(|l| l.starts_with("VMINFO netkit:"))
        .unwrap_or_default();
    assert!(
        netkit.contains("refused as expected") && netkit.contains("no netkit"),
        "netkit on 6.1: {netkit}\n{context}"
    );
    assert!(console.contains("VMDONE rc=0"), "{context}");
    assert!(out.status.success(), "{context}");
    // Issue 11's budget for the static CLI the guest runs: 1.5 MiB
    // stripped. It crept past once unnoticed; README's "Static binaries"
    // and tests/vm/size.sh say where the bytes go.
    // The budget is the musl build's (tests/vm/run.sh falls back to
    // static glibc, 0.8 MB bigger, where the musl target is missing).
    let (target, bytes) = stdout
        .lines()
        .find_map(|l| l.strip_prefix("VMINFO static "))
        .and_then(|l| l.split_once(": ember "))
        .and_then(|(target, rest)| Some((target, rest.split(' ').next()?.parse::<u64>().ok()?)))
        .unwrap_or_else(|| panic!("no VMINFO static line\n{context}"));
    if !target.ends_with("-musl") {
        skip(&format!(
            "the 1.5 MiB check is of the musl build, and this one is {target} \
             (rustup target add {}-unknown-linux-musl)",
            std::env::consts::ARCH
        ));
        return;
    }
    assert!(
        bytes <= 1_572_864,
        "the static ember ({target}) is {bytes} bytes, past its 1.5 MiB budget (README, Static binaries)"
    );
}
