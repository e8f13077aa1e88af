//! Untyped ksyms through `bpf_kallsyms_lookup_name` (5.16) instead of a
//! `/proc/kallsyms` scan, on this kernel as root: the same addresses as
//! the scan; the load takes the fast path and says so, the forced scan
//! does not; and the documented policy on names listed twice (the helper
//! takes the kernel's first match, the scan refuses them as ambiguous).

use ember::EbpfLoader;
use ember::kallsyms::KsymError;
use ember::ksym_lookup::{Source, Used, resolve};
use ember_tests::{fixture, kernel_ready, serial};

#[test]
fn helper_and_scan_agree() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let names = [
        "bpf_prog_put",
        "_stext",
        "bpf_prog_active",
        "ember_no_such_symbol",
    ];
    let (fast, used) = resolve(&names, Source::Auto).expect("resolve");
    assert_eq!(used, Used::Helper, "this kernel (6.18) has the helper");
    let fast = fast.expect("fast");
    let (scan, used) = resolve(&names, Source::Kallsyms).expect("scan");
    assert_eq!(used, Used::Scan);
    let scan = scan.expect("scan");
    for n in names {
        assert_eq!(
            fast.get(n).map(|k| k.addr),
            scan.get(n).map(|k| k.addr),
            "{n}"
        );
    }
    assert!(fast.get("_stext").is_some_and(|k| k.addr != 0));
    assert!(fast.get("ember_no_such_symbol").is_none());
}

#[test]
fn loads_take_the_fast_path_unless_told_to_scan() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let note = "resolved through bpf_kallsyms_lookup_name";
    let e = EbpfLoader::new()
        .load_file(fixture("load.bpf-el.o"))
        .expect("load");
    assert!(e.notes.iter().any(|n| n.contains(note)), "{:?}", e.notes);
    let e = EbpfLoader::new()
        .kallsyms_scan(true)
        .load_file(fixture("load.bpf-el.o"))
        .expect("load, scanning");
    assert!(!e.notes.iter().any(|n| n.contains(note)), "{:?}", e.notes);
}

#[test]
fn duplicate_names_first_match_or_ambiguous() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    // A name kallsyms lists at two addresses (static functions of the
    // same name in different files).
    let text = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let mut seen = std::collections::HashMap::new();
    let dup = text
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            let (addr, _, name) = (p.next()?, p.next()?, p.next()?);
            // Module symbols and LTO suffixes are out of this policy.
            (p.next().is_none() && !name.contains('.')).then_some((addr, name))
        })
        .find_map(|(addr, name)| match seen.insert(name, addr) {
            Some(prev) if prev != addr => Some(name.to_owned()),
            _ => None,
        });
    let Some(dup) = dup else {
        eprintln!("skipped: this kernel lists no vmlinux name twice");
        return;
    };
    let (scan, _) = resolve(&[&dup], Source::Kallsyms).expect("scan");
    assert!(
        matches!(scan, Err(KsymError::Ambiguous { ref name, .. }) if *name == dup),
        "{dup}: {scan:?}"
    );
    let (fast, used) = resolve(&[&dup], Source::Auto).expect("fast");
    assert_eq!(used, Used::Helper);
    let addr = fast.expect("first match").get(&dup).expect("found").addr;
    let listed: Vec<u64> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some(dup.as_str()))
        .filter_map(|l| u64::from_str_radix(l.split_whitespace().next()?, 16).ok())
        .collect();
    assert!(
        listed.contains(&addr),
        "{dup}: {addr:#x} not among {listed:x?}"
    );
}
