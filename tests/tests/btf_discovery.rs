//! Kernel BTF discovery: sysfs, libbpf's fallback paths, explicit files
//! and btfhub directories (plain and `.btf.tar.xz`), and the "no kernel
//! BTF" error made real by hiding /sys/kernel/btf in a private mount
//! namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::btf_source::{BtfSearch, Why, find_kernel_btf};
use ember::ember_core::btf::Btf;
use ember_tests::{fixture, skip, tool};

const SYSFS: &str = "/sys/kernel/btf/vmlinux";
const INNER: &str = "EMBER_DISCOVERY_INNER";

fn scratch(name: &str) -> PathBuf {
    let d =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

#[test]
fn sysfs_is_found_first() {
    if !Path::new(SYSFS).exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let k = find_kernel_btf(&BtfSearch::default()).expect("kernel BTF");
    assert_eq!(k.path, Path::new(SYSFS));
    assert!(k.btf().expect("parses").type_count() > 1000);
}

#[test]
fn btfhub_directory_plain_and_archived() {
    if !Path::new(SYSFS).exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let Some(tar) = tool("tar") else {
        return skip("tar is not installed");
    };
    let os = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let get = |k: &str| {
        os.lines()
            .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default()
    };
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        a => a,
    };
    let release = "6.1.0-test";
    let hub = scratch("hub");
    let dir = hub.join(get("ID")).join(get("VERSION_ID")).join(arch);
    std::fs::create_dir_all(&dir).expect("hub dirs");
    let btf = std::fs::read(SYSFS).expect("vmlinux BTF");
    std::fs::write(dir.join(format!("{release}.btf")), &btf).expect("write");
    let search = BtfSearch {
        hub_dir: Some(hub.clone()),
        release: Some(release.into()),
        sysfs: Some(hub.join("no-sysfs")),
        ..Default::default()
    };
    let k = find_kernel_btf(&search).expect("plain hub file");
    assert_eq!(k.path, dir.join(format!("{release}.btf")));

    // The same, packed as btfhub ships it.
    let st = Command::new(tar)
        .arg("-C")
        .arg(&dir)
        .args([
            "-cJf",
            &format!("{release}.btf.tar.xz"),
            &format!("{release}.btf"),
        ])
        .current_dir(&dir)
        .status()
        .expect("tar");
    assert!(st.success());
    std::fs::remove_file(dir.join(format!("{release}.btf"))).expect("rm");
    let k = find_kernel_btf(&search).expect("archived hub file");
    assert_eq!(k.path, dir.join(format!("{release}.btf.tar.xz")));
    let want = Btf::parse(&btf).expect("sysfs").type_count();
    assert_eq!(k.btf().expect("extracted").type_count(), want);
    let _ = std::fs::remove_dir_all(&hub);
}

#[test]
fn explicit_file_without_btf_says_why() {
    // An ELF object with no .BTF: build one by stripping a fixture.
    let Some(objcopy) = tool("llvm-objcopy") else {
        return skip("llvm-objcopy is not installed");
    };
    let d = scratch("nobtf");
    let out = d.join("nobtf.o");
    let st = Command::new(objcopy)
        .args(["--remove-section", ".BTF", "--remove-section", ".BTF.ext"])
        .arg(fixture("maps.bpf-el.o"))
        .arg(&out)
        .status()
        .expect("objcopy");
    assert!(st.success());
    let e = find_kernel_btf(&BtfSearch {
        file: Some(out.clone()),
        ..Default::default()
    })
    .expect_err("no .BTF");
    assert!(matches!(e.searched[0].1, Why::NotBtf(_)));
    assert!(e.to_string().contains("no .BTF section"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Runs in a private mount namespace with /sys/kernel/btf hidden (see
/// `no_kernel_btf_in_a_namespace`); does nothing otherwise.
#[test]
fn inner_no_sysfs() {
    let Ok(copy) = std::env::var(INNER) else {
        return;
    };
    let e = find_kernel_btf(&BtfSearch::default()).expect_err("BTF must be hidden");
    let text = e.to_string();
    assert!(text.contains("/sys/kernel/btf/vmlinux: absent"), "{text}");
    assert!(text.contains("/boot/vmlinux-"), "{text}");
    assert!(text.contains("--btf FILE"), "{text}");
    // The same BTF, supplied as an external file, works.
    let k = find_kernel_btf(&BtfSearch {
        file: Some(PathBuf::from(copy)),
        ..Default::default()
    })
    .expect("external file");
    assert!(k.btf().expect("parses").type_count() > 1000);
}

#[test]
fn no_kernel_btf_in_a_namespace() {
    if !Path::new(SYSFS).exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let Some(unshare) = tool("unshare") else {
        return skip("unshare is not installed");
    };
    let d = scratch("ns");
    let copy = d.join("vmlinux.btf");
    std::fs::copy(SYSFS, &copy).expect("copy BTF");
    let me = std::env::current_exe().expect("test binary");
    let out = Command::new(unshare)
        .args(["-m", "sh", "-c"])
        .arg("mount --make-rprivate / && mount -t tmpfs none /sys/kernel/btf && exec \"$0\" --exact inner_no_sysfs --nocapture")
        .arg(&me)
        .env(INNER, &copy)
        .output()
        .expect("unshare");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (text.contains("Operation not permitted") || text.contains("unshare failed"))
    {
        return skip("cannot create a mount namespace here (needs root / CAP_SYS_ADMIN)");
    }
    assert!(out.status.success(), "inner run failed:\n{text}");
    assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
    let _ = std::fs::remove_dir_all(&d);
}

/// kallsyms on this kernel: a text symbol and the untyped ksym the globals
/// fixture uses resolve to real addresses (as root); a missing name does not.
#[test]
fn kallsyms_resolves_real_symbols() {
    use ember::kallsyms::Kallsyms;
    let text = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
    let k = match Kallsyms::parse(&text, &["_stext", "__start_rodata", "no_such_symbol_xyz"]) {
        Ok(k) => k,
        Err(e) => return skip(&format!("kallsyms unusable here: {e}")),
    };
    let stext = k.get("_stext").expect("_stext");
    assert!(stext.addr != 0 && stext.module.is_none());
    // Cross-check with the file itself.
    let line = text.lines().find(|l| l.ends_with(" _stext")).expect("line");
    assert_eq!(format!("{:016x}", stext.addr), line[..16]);
    assert!(k.get("__start_rodata").is_some());
    assert!(k.get("no_such_symbol_xyz").is_none());
}

/// Module BTF from a sysfs-like directory: good modules parse as split BTF
/// over vmlinux; a corrupt one fails on its own without stopping the rest.
#[test]
fn module_btf_directory_with_a_corrupt_module() {
    use ember::btf_source::module_btfs;
    let Some(dir) = ember_tests::kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let mb = std::fs::read(dir.join("modules/nf_conntrack.ko")).expect("module");
    let raw = Btf::parse_any(&mb, Some(&vmlinux))
        .expect("module BTF")
        .data()
        .to_vec();
    let sys = scratch("sysbtf");
    std::fs::write(sys.join("vmlinux"), b"not read by module_btfs").expect("write");
    std::fs::write(sys.join("nf_conntrack"), &raw).expect("write");
    std::fs::write(sys.join("broken"), &raw[..raw.len() / 2]).expect("write");
    let (mods, failed) = module_btfs(Some(&sys));
    assert!(failed.is_empty());
    let names: Vec<&str> = mods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["broken", "nf_conntrack"]);
    assert!(
        mods[0].btf(&vmlinux).is_err(),
        "a truncated module BTF is an error for that module"
    );
    let good = mods[1].btf(&vmlinux).expect("nf_conntrack parses");
    assert_eq!(good.start_id().0, vmlinux.type_count());
    let (none, failed) = module_btfs(Some(&sys.join("absent")));
    assert!(
        none.is_empty() && failed.is_empty(),
        "no modules is not an error"
    );
    let _ = std::fs::remove_dir_all(&sys);
}
