//! kprobe.multi and kprobe.session, which need `CONFIG_FPROBE`: neither
//! this machine's kernel nor Debian's 6.1 has it, Debian's 6.12 does. The
//! whole guest suite (tests/vm/run.sh) runs there with
//! `EMBER_VM_KERNEL=linux-image-6.12-amd64`, and `tests/src/bin/vm_kprobe`
//! must show kprobe.multi (with cookies) and kprobe.session firing, not
//! the `EOPNOTSUPP` it accepts from a kernel without fprobe. netkit
//! (`CONFIG_NETKIT`, 6.7) must fire there too (tests/src/bin/vm_attach/).

use std::process::Command;

use ember_tests::{root, skip, tool};

const KERNEL: &str = "linux-image-6.12-amd64";

#[test]
fn guest_with_fprobe_fires_kprobe_multi_and_session() {
    for (t, pkg) in [
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("busybox", "busybox-static"),
        ("cpio", "cpio"),
        ("depmod", "kmod"),
        ("apt-get", "apt"),
        ("zstd", "zstd"),
        ("xz", "xz-utils"),
    ] {
        if tool(t).is_none() {
            skip(&format!("the VM test needs {t} (apt-get install {pkg})"));
            return;
        }
    }
    let log = root().join(format!("target/vm-{KERNEL}/console.log"));
    let out = Command::new(root().join("tests/vm/run.sh"))
        .env("EMBER_VM_KERNEL", KERNEL)
        .arg(&log)
        .output()
        .expect("run tests/vm/run.sh");
    let console = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
    let tail: Vec<&str> = console.lines().rev().take(60).collect();
    let context = format!(
        "run.sh stdout:\n{}\nstderr:\n{}\nconsole tail:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    for check in [
        "kprobe",
        "kprobe-multi",
        "ksyscall",
        "fmod-ret",
        "fentry-bpf",
        "fentry-bpf-cli",
        "lsm-cgroup",
        "netkit",
        "kprobe-module-retry",
    ] {
        assert!(
            console.contains(&format!("VMTEST {check} OK")),
            "guest check {check} did not pass\n{context}"
        );
    }
    let multi = console
        .lines()
        .find(|l| l.starts_with("VMINFO kprobe-multi:"))
        .unwrap_or_default();
    assert!(
        multi.contains("kprobe.multi 'do_sys_openat*' via bpf_link: fired")
            && multi.contains("cookies summed")
            && multi.contains("kprobe.session 'do_sys_openat2' via bpf_link: fired"),
        "kprobe.multi / kprobe.session did not fire on {KERNEL}: {multi}\n{context}"
    );
    // 6.12 has CONFIG_NETKIT: the programs must have fired on the pair.
    let netkit = console
        .lines()
        .find(|l| l.starts_with("VMINFO netkit:"))
        .unwrap_or_default();
    assert!(
        netkit.contains("fired") && netkit.contains("stopped after drop"),
        "netkit did not fire on {KERNEL}: {netkit}\n{context}"
    );
    assert!(console.contains("VMDONE rc=0"), "{context}");
    assert!(out.status.success(), "{context}");
}
