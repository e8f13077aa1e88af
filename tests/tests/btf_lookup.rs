//! Name lookups on this machine's vmlinux BTF: the same answers whether
//! they come from the name index, one targeted pass (`find_many`), or
//! binary search over the same BTF sorted by name; and `ember btf stats`
//! times open plus validation, by mmap or by read.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ember::FileBytes;
use ember::ember_core::btf::{Btf, Kind, TypeId, essential_name, sort_by_name};
use ember_tests::{ember_bin, skip};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn vmlinux() -> Option<FileBytes> {
    if !Path::new(VMLINUX).exists() {
        skip("no /sys/kernel/btf/vmlinux");
        return None;
    }
    Some(FileBytes::read(Path::new(VMLINUX)).expect("read vmlinux BTF"))
}

#[test]
fn sorted_vmlinux_binary_search_agrees_with_the_index_for_every_name() {
    let Some(bytes) = vmlinux() else { return };
    let plain = Btf::parse(&bytes).expect("parse");
    let sorted_bytes = sort_by_name(&plain).expect("sort");
    let sorted = Btf::parse(&sorted_bytes).expect("parse sorted");
    assert!(sorted.is_sorted_by_name());
    // Where each type went: the sort is stable by (name, old id).
    let name = |id: u32| {
        plain
            .bytes_at(plain.get(TypeId(id)).unwrap().name_off())
            .unwrap()
    };
    let mut order: Vec<u32> = (1..plain.type_count()).collect();
    order.sort_by(|&a, &b| name(a).cmp(name(b)).then(a.cmp(&b)));
    let mut new_of = vec![0u32; plain.type_count() as usize];
    for (i, &old) in order.iter().enumerate() {
        new_of[old as usize] = i as u32 + 1;
    }
    let moved = |id: Option<TypeId>| id.map(|t| TypeId(new_of[t.0 as usize]));
    let mut seen = HashMap::new();
    for t in plain.types() {
        let n = plain.name(&t).expect("name");
        if n.is_empty() || seen.insert((n, t.kind()), ()).is_some() {
            continue;
        }
        let want = plain.find_by_name_kind(n, t.kind());
        assert_eq!(sorted.find_by_name_kind(n, t.kind()), moved(want), "{n}");
        let ess = essential_name(n);
        let mut a: Vec<TypeId> = plain
            .find_essential(ess, t.kind())
            .expect("index")
            .into_iter()
            .map(|i| moved(Some(i)).unwrap())
            .collect();
        a.sort();
        assert_eq!(
            sorted.find_essential(ess, t.kind()).expect("sorted"),
            a,
            "{ess}"
        );
    }
    assert!(plain.has_index());
    assert!(!sorted.has_index(), "binary search needs no index");
    assert!(
        seen.len() > 50_000,
        "vmlinux has tens of thousands of names"
    );
}

#[test]
fn find_many_on_vmlinux_agrees_with_single_lookups() {
    let Some(bytes) = vmlinux() else { return };
    let scan = Btf::parse(&bytes).expect("parse");
    let indexed = Btf::parse(&bytes).expect("parse");
    let names: Vec<(String, Kind)> = scan
        .types()
        .filter(|t| matches!(t.kind(), Kind::Func | Kind::Struct | Kind::Var))
        .step_by(97)
        .map(|t| (scan.name(&t).expect("name").to_owned(), t.kind()))
        .chain([("no_such_kfunc".to_owned(), Kind::Func)])
        .collect();
    let wants: Vec<(&str, Kind)> = names.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let got = scan.find_many(&wants).expect("find_many");
    assert!(!scan.has_index(), "one pass, no index");
    for (&(n, k), id) in wants.iter().zip(&got) {
        assert_eq!(*id, indexed.find_by_name_kind(n, k), "{n}");
    }
    assert_eq!(got.last(), Some(&None));
}

#[test]
fn stats_times_open_and_validation_by_mmap_or_read() {
    let Some(bytes) = vmlinux() else { return };
    let sorted = Btf::parse(&bytes).expect("parse").is_sorted_by_name();
    for (args, how) in [(&[][..], "mmap"), (&["--read"][..], "read")] {
        let out = Command::new(ember_bin())
            .args(["btf", "stats", "--repeat", "3", VMLINUX])
            .args(args)
            .output()
            .expect("run ember");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("utf-8");
        let line = text
            .lines()
            .find(|l| l.starts_with("parse: "))
            .expect("a parse line");
        assert!(line.contains("(median of 3; min "), "{line}");
        assert!(
            line.ends_with(&format!("open by {how} + full validation)")),
            "{line}"
        );
        let want = if sorted {
            "sorted by name: yes"
        } else {
            "sorted by name: no"
        };
        assert!(text.contains(want), "{text}");
    }
}
