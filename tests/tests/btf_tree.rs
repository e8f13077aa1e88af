//! btfhub trees end to end: picking `ID/VERSION_ID/ARCH/RELEASE.btf[.tar.xz]`
//! by os-release and uname (and saying why, and what was tried), and
//! `ember btf minimize --btf-dir IN -o OUT` turning a whole tree of real
//! kernel BTFs into a tree of small files of the same shape that solve
//! every object exactly as the full files do.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::btf_source::{BtfSearch, Why, find_kernel_btf};
use ember::btf_tree::{Packing, scan};
use ember::ember_core::btf::{Btf, TypeId};
use ember::ember_core::object::{Object, object_name};
use ember::ember_core::reloc::{Outcome, RelocKind, Targets, relocate};
use ember_tests::{ember_bin, fixture, kernel_btf_dir, serial, skip, tool};

const SYSFS: &str = "/sys/kernel/btf/vmlinux";

/// A scratch directory, removed when dropped (also when a test fails).
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tree-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tar -cJf DIR/NAME.tar.xz NAME` with the system's tar.
fn pack(dir: &Path, name: &str) {
    let st = Command::new(tool("tar").expect("tar"))
        .current_dir(dir)
        .args(["-cJf", &format!("{name}.tar.xz"), name])
        .status()
        .expect("tar");
    assert!(st.success());
    std::fs::remove_file(dir.join(name)).expect("rm");
}

/// Ubuntu 20.04 on arm64 (os-release and machine overridden): of four
/// files in the tree, the archive under ubuntu/20.04/arm64 is picked; the
/// reason names the key and where it came from, and the plain file tried
/// first is listed as absent.
#[test]
fn selection_follows_os_release_and_uname() {
    let _s = serial();
    let Ok(btf) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let t = Tmp::new("select");
    let hub = t.0.join("hub");
    let rel = "5.4.0-1009-aws";
    for (d, decoy) in [
        ("ubuntu/20.04/x86_64", true),
        ("ubuntu/18.04/arm64", true),
        ("centos/8/arm64", true),
        ("ubuntu/20.04/arm64", false),
    ] {
        let dir = hub.join(d);
        std::fs::create_dir_all(&dir).expect("mkdir");
        // Decoys are valid BTF too: picking one would not fail to parse.
        std::fs::write(dir.join(format!("{rel}.btf")), &btf).expect("write");
        if !decoy {
            pack(&dir, &format!("{rel}.btf"));
        }
    }
    let osr = t.0.join("os-release");
    std::fs::write(
        &osr,
        "NAME=\"Ubuntu\"\nVERSION_ID=\"20.04\"\nID_LIKE=debian\nID=ubuntu\nPRETTY_NAME=\"Ubuntu 20.04\"\n",
    )
    .expect("write");
    let search = BtfSearch {
        hub_dir: Some(hub.clone()),
        release: Some(rel.into()),
        sysfs: Some(t.0.join("no-sysfs")),
        os_release: Some(osr.clone()),
        arch: Some("aarch64".into()),
        ..Default::default()
    };
    let k = find_kernel_btf(&search).expect("picked");
    let want = hub.join(format!("ubuntu/20.04/arm64/{rel}.btf.tar.xz"));
    assert_eq!(k.path, want);
    assert!(!k.is_running_kernel());
    assert_eq!(
        k.reason,
        format!(
            "btfhub tree {}: ID=ubuntu VERSION_ID=20.04 (from {}), arch arm64 (uname -m), \
             release {rel} (uname -r)",
            hub.display(),
            osr.display()
        )
    );
    let tried: Vec<&Path> = k.tried.iter().map(|(p, _)| p.as_path()).collect();
    assert_eq!(tried.first(), Some(&t.0.join("no-sysfs").as_path()));
    assert_eq!(
        tried.last(),
        Some(&hub.join(format!("ubuntu/20.04/arm64/{rel}.btf")).as_path())
    );
    assert!(k.tried.iter().all(|(_, w)| matches!(w, Why::Absent)));
    assert_eq!(
        k.btf().expect("extracted").type_count(),
        Btf::parse(&btf).expect("BTF").type_count()
    );

    // Another machine of the same tree: nothing for it, every place listed.
    let e = find_kernel_btf(&BtfSearch {
        arch: Some("riscv64".into()),
        ..search.clone()
    })
    .expect_err("no riscv64 file");
    let text = e.to_string();
    assert!(
        text.contains(&format!("ubuntu/20.04/riscv64/{rel}.btf.tar.xz: absent")),
        "{text}"
    );
}

/// With sysfs BTF present, `--verbose` says the running kernel's BTF was
/// used and that the btfhub directory is only a fallback.
#[test]
fn verbose_says_what_was_picked() {
    let _s = serial();
    if !Path::new(SYSFS).exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let t = Tmp::new("verbose");
    let out = Command::new(ember_bin())
        .args(["core", "explain", "--verbose", "--btf-dir"])
        .arg(&t.0)
        .arg(fixture("kernel_ids.bpf-el.o"))
        .output()
        .expect("ember");
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "target BTF: /sys/kernel/btf/vmlinux (the running kernel's own BTF (sysfs); \
             --btf-dir is searched only when the kernel has none)"
        ),
        "{err}"
    );
}

/// Every relocation's outcome, target ids named rather than numbered
/// (the minimized BTF renumbers them).
fn outcomes(obj: &Object<'_>, btf: &Btf<'_>) -> Vec<String> {
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    let reports = relocate(obj, &Targets::single(btf), &mut code).expect("relocate");
    reports
        .iter()
        .map(|r| match r.outcome {
            Outcome::Patched { new, .. } if r.kind == RelocKind::TypeIdTarget && new != 0 => {
                let t = btf.get(TypeId(new as u32)).expect("type");
                format!("#{} type {:?}", r.index, btf.name(&t))
            }
            o => format!("#{} {o:?}", r.index),
        })
        .collect()
}

/// A tree of this machine's BTF (raw and as a btfhub archive) and Debian
/// 6.1's (ELF vmlinux): the output tree has the same relative paths, the
/// archive stays an archive (that the system's tar opens), every object
/// solves against each small file as against its full one, and the size
/// line adds up.
#[test]
fn minimize_a_tree() {
    let _s = serial();
    let Ok(sysfs) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let t = Tmp::new("minimize");
    let input = t.0.join("in");
    let here = input.join("debian/12/x86_64");
    std::fs::create_dir_all(&here).expect("mkdir");
    std::fs::write(here.join("6.18.0-this.btf"), &sysfs).expect("write");
    std::fs::write(here.join("6.18.0-packed.btf"), &sysfs).expect("write");
    pack(&here, "6.18.0-packed.btf");
    match kernel_btf_dir() {
        Some(d) => {
            let dir = input.join("debian/12/x86_64/elf");
            std::fs::create_dir_all(&dir).expect("mkdir");
            std::fs::copy(d.join("vmlinux"), dir.join("6.1.0-debian")).expect("copy");
        }
        None => skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh"),
    }
    let objs: Vec<PathBuf> = [
        "core_kernel.bpf-el.o",
        "kernel_ids.bpf-el.o",
        "core_bench.bpf-el.o",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect();
    let out_dir = t.0.join("out");
    let out = Command::new(ember_bin())
        .args(["btf", "minimize", "-j", "2", "--btf-dir"])
        .arg(&input)
        .arg("-o")
        .arg(&out_dir)
        .args(&objs)
        .output()
        .expect("ember");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ins, _) = scan(&input).expect("scan in");
    let (outs, _) = scan(&out_dir).expect("scan out");
    let rels = |v: &[ember::btf_tree::TreeBtf]| v.iter().map(|f| f.rel.clone()).collect::<Vec<_>>();
    assert_eq!(rels(&ins), rels(&outs));
    let obj_bytes: Vec<Vec<u8>> = objs
        .iter()
        .map(|p| std::fs::read(p).expect("obj"))
        .collect();
    let (mut before, mut after) = (0u64, 0u64);
    for (i, o) in ins.iter().zip(&outs) {
        let want = match i.packing {
            Packing::Archive => Packing::Archive,
            _ => Packing::Raw,
        };
        assert_eq!(o.packing, want, "{}", o.rel.display());
        before += std::fs::metadata(&i.path).expect("in").len();
        after += std::fs::metadata(&o.path).expect("out").len();
        let (fb, mb) = (i.read().expect("in"), o.read().expect("out"));
        let full = Btf::parse_any(&fb, None).expect("full");
        let min = Btf::parse_any(&mb, None).expect("minimized parses");
        assert!(
            mb.len() * 100 < full.data().len(),
            "{}: not small",
            o.rel.display()
        );
        for (p, b) in objs.iter().zip(&obj_bytes) {
            let name = p.file_name().and_then(|n| n.to_str()).expect("name");
            let obj = Object::parse(b, object_name(name)).expect("object");
            assert_eq!(
                outcomes(&obj, &full),
                outcomes(&obj, &min),
                "{name} on {}",
                o.rel.display()
            );
        }
        if o.packing == Packing::Archive {
            // The system's tar opens ours and finds <release>.btf.
            let x = t.0.join("x");
            std::fs::create_dir_all(&x).expect("mkdir");
            let st = Command::new(tool("tar").expect("tar"))
                .arg("-C")
                .arg(&x)
                .arg("-xJf")
                .arg(&o.path)
                .status()
                .expect("tar");
            assert!(st.success());
            assert_eq!(
                std::fs::read(x.join("6.18.0-packed.btf")).expect("entry"),
                &mb[..]
            );
        }
    }
    let line = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        line.starts_with(&format!(
            "{} BTF files: {before} -> {after} bytes on disk",
            ins.len()
        )),
        "{line}"
    );
}

/// End to end on this machine's own os-release and uname: with sysfs BTF
/// hidden (a private mount namespace), `ember core explain --btf-dir
/// --verbose` picks `ID/VERSION_ID/ARCH/RELEASE.btf.tar.xz` and says so.
#[test]
fn hub_picked_when_the_kernel_has_no_btf() {
    let _s = serial();
    let Ok(btf) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let Some(unshare) = tool("unshare") else {
        return skip("unshare is not installed");
    };
    let key = ember::btf_source::hub_key(
        &BtfSearch::default(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .expect("osrelease")
            .trim(),
    );
    let t = Tmp::new("hub");
    let [plain, packed] = key.candidates(&t.0);
    let dir = plain.parent().expect("dir");
    std::fs::create_dir_all(dir).expect("mkdir");
    std::fs::write(&plain, &btf).expect("write");
    let name = plain.file_name().and_then(|n| n.to_str()).expect("name");
    pack(dir, name);
    let out = Command::new(unshare)
        .args(["-m", "sh", "-c"])
        .arg("mount --make-rprivate / && mount -t tmpfs none /sys/kernel/btf && exec \"$0\" core explain --verbose --btf-dir \"$1\" \"$2\"")
        .arg(ember_bin())
        .arg(&t.0)
        .arg(fixture("kernel_ids.bpf-el.o"))
        .output()
        .expect("unshare");
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success()
        && (err.contains("Operation not permitted") || err.contains("unshare failed"))
    {
        return skip("cannot create a mount namespace here (needs root / CAP_SYS_ADMIN)");
    }
    assert!(out.status.success(), "{err}");
    let first = err.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!(
            "target BTF: {} (btfhub tree {}: {key})",
            packed.display(),
            t.0.display()
        )
    );
    assert!(
        err.contains(&format!("  tried {}: absent", plain.display())),
        "{err}"
    );
    assert!(
        err.contains("  tried /sys/kernel/btf/vmlinux: absent"),
        "{err}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("field offset of struct task_struct.pid")
    );
}

/// `ember load --verbose` says which BTF served CO-RE, why, and that the
/// btfhub directory was not needed on a kernel with BTF of its own.
#[test]
fn load_verbose_notes_the_pick() {
    let _s = serial();
    if !ember_tests::kernel_ready() {
        return skip("needs root and bpf(2)");
    }
    let t = Tmp::new("load");
    let out = Command::new(ember_bin())
        .args(["load", "--verbose", "--btf-dir"])
        .arg(&t.0)
        .arg(fixture("core_only.bpf-el.o"))
        .output()
        .expect("ember");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "note: CO-RE target: /sys/kernel/btf/vmlinux\n".to_owned(),
        "note:   picked because: the running kernel's own BTF (sysfs)\n".to_owned(),
        format!(
            "note:   {} not consulted: btfhub files stand in only when the kernel has no BTF\n",
            t.0.display()
        ),
    ] {
        assert!(text.contains(&want), "{want:?} not in\n{text}");
    }
}
