//! The BTF encoder on real BTF: re-encoding a parsed blob gives back the
//! same bytes (every real BTF here is canonical), in both byte orders:
//! this machine's vmlinux, the Debian 6.1 vmlinux and two of its modules'
//! split BTF, and the `.BTF` of every fixture object.

use std::path::{Path, PathBuf};

use ember::ember_core::Endian;
use ember::ember_core::btf::encode::{Scratch, reencode, reencode_as};
use ember::ember_core::btf::{Btf, TypeId};
use ember_tests::{fixture, kernel_btf_dir, skip};

/// Both BTFs hold the same types, record by record.
fn same_types(a: &Btf<'_>, b: &Btf<'_>) {
    assert_eq!(a.type_count(), b.type_count());
    assert_eq!(a.strings(), b.strings());
    let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
    for (x, y) in a.types().zip(b.types()) {
        assert_eq!(
            x.to_record(&mut s1).expect("record"),
            y.to_record(&mut s2).expect("record"),
            "type [{}]",
            x.id()
        );
    }
}

/// Byte-exact round trip, and a trip through the other byte order.
fn round_trip(what: &str, btf: &Btf<'_>, base: Option<&Btf<'_>>) {
    let out = reencode(btf).expect("re-encode");
    assert!(
        out == btf.data(),
        "{what}: re-encoding differs ({} vs {} bytes)",
        out.len(),
        btf.data().len()
    );
    let other = match btf.endian() {
        Endian::Little => Endian::Big,
        Endian::Big => Endian::Little,
    };
    let swapped = reencode_as(btf, other).expect("re-encode swapped");
    if base.is_some() {
        // A split BTF needs a base of its own byte order: check it by size.
        assert_eq!(swapped.len(), out.len(), "{what}");
        return;
    }
    let sb = Btf::parse(&swapped).expect("swapped parses");
    assert_eq!(sb.endian(), other);
    same_types(btf, &sb);
    let back = reencode_as(&sb, btf.endian()).expect("swap back");
    assert!(back == btf.data(), "{what}: swapping twice differs");
}

#[test]
fn this_kernels_vmlinux_round_trips() {
    let path = Path::new("/sys/kernel/btf/vmlinux");
    let Ok(bytes) = std::fs::read(path) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let btf = Btf::parse(&bytes).expect("vmlinux parses");
    round_trip("vmlinux", &btf, None);
    // Module BTF beside it, if this kernel has modules.
    for e in std::fs::read_dir("/sys/kernel/btf").expect("sysfs btf") {
        let p = e.expect("entry").path();
        if p.file_name().is_some_and(|n| n != "vmlinux") {
            let mb = std::fs::read(&p).expect("module BTF");
            let m = Btf::parse_split(&mb, &btf).expect("module parses");
            round_trip(&p.display().to_string(), &m, Some(&btf));
        }
    }
}

#[test]
fn debian_61_vmlinux_and_modules_round_trip() {
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    round_trip("debian vmlinux", &vmlinux, None);
    let mut modules = 0;
    for m in ["nf_conntrack", "nf_conntrack_netlink"] {
        let mb = std::fs::read(dir.join(format!("modules/{m}.ko"))).expect("module");
        let btf = Btf::parse_any(&mb, Some(&vmlinux)).expect("module BTF");
        assert!(btf.start_id() > TypeId(1));
        round_trip(m, &btf, Some(&vmlinux));
        modules += 1;
    }
    assert_eq!(modules, 2);
}

fn objects(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("fixture dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            objects(&p, out);
        } else if p.extension().is_some_and(|x| x == "o") {
            out.push(p);
        }
    }
}

#[test]
fn every_fixture_objects_btf_round_trips() {
    let mut files = Vec::new();
    objects(&fixture(""), &mut files);
    files.sort();
    let (mut with_btf, mut be) = (0, 0);
    for f in &files {
        let bytes = std::fs::read(f).expect("read object");
        // Fixtures under bad/ are malformed on purpose; skip what does not parse.
        let Ok(btf) = Btf::parse_any(&bytes, None) else {
            continue;
        };
        round_trip(&f.display().to_string(), &btf, None);
        with_btf += 1;
        be += usize::from(btf.endian() == Endian::Big);
    }
    eprintln!(
        "{with_btf} of {} fixture objects have .BTF; all round-trip byte for byte ({be} big-endian)",
        files.len()
    );
    assert!(with_btf >= 100, "only {with_btf} objects with BTF");
    assert!(be >= 20, "only {be} big-endian objects");
}
