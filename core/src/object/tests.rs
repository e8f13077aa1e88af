//! Parsing committed fixtures: the invariants of a parsed object, and
//! errors that name what is wrong.

use super::*;
use crate::bytes::Endian;

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "globals",
        include_bytes!("../../../tests/fixtures/globals.bpf-el.o"),
    ),
    (
        "globals",
        include_bytes!("../../../tests/fixtures/globals.bpf-eb.o"),
    ),
    (
        "btf_kinds",
        include_bytes!("../../../tests/fixtures/btf_kinds.bpf-el.o"),
    ),
    (
        "maps",
        include_bytes!("../../../tests/fixtures/maps.bpf-el.o"),
    ),
    (
        "maps",
        include_bytes!("../../../tests/fixtures/maps.bpf-eb.o"),
    ),
    (
        "legacy_maps",
        include_bytes!("../../../tests/fixtures/legacy_maps.bpf-el.o"),
    ),
    (
        "load",
        include_bytes!("../../../tests/fixtures/load.bpf-el.o"),
    ),
    (
        "kconfig",
        include_bytes!("../../../tests/fixtures/kconfig.bpf-el.o"),
    ),
    (
        "sections",
        include_bytes!("../../../tests/fixtures/sections.bpf-el.o"),
    ),
    (
        "hidden",
        include_bytes!("../../../tests/fixtures/hidden.bpf-el.o"),
    ),
];

#[test]
fn parsed_objects_keep_their_invariants() {
    for &(name, bytes) in FIXTURES {
        let obj = Object::parse(bytes, name).unwrap();
        assert!(obj.check_invariants(), "{name}");
        assert!(!obj.functions.is_empty(), "{name}");
        for (i, f) in obj.functions.iter().enumerate() {
            // locate() finds every instruction of every function, at its
            // place within the function.
            for k in 0..f.len {
                let at = f.section_insn(FuncInsn(k));
                assert_eq!(obj.locate(f.section, at), Some((FuncIndex(i), FuncInsn(k))));
            }
            assert_eq!(
                obj.function_starting_at(f.section, f.start),
                Some(FuncIndex(i))
            );
            assert!(
                obj.function_at(f.section, f.end())
                    .is_none_or(|g| g.start == f.end())
            );
        }
        for c in &obj.code {
            for r in &c.relocs {
                assert!(r.insn.0 < c.insn_count());
            }
        }
    }
}

#[test]
fn invariant_check_catches_unsorted_functions() {
    let obj = Object::parse(FIXTURES[0].1, "globals").unwrap();
    let mut bad = Object {
        functions: obj.functions.clone(),
        code: obj.code.clone(),
        maps: obj.maps.clone(),
        externs: obj.externs.clone(),
        ..empty(&obj)
    };
    assert!(bad.check_invariants());
    assert!(bad.functions.len() >= 2);
    bad.functions.swap(0, 1);
    assert!(!bad.check_invariants());
    bad.functions.swap(0, 1);
    // A function running past its section.
    bad.functions[0].len = bad.code[bad.functions[0].section.index()].insn_count() + 1;
    assert!(!bad.check_invariants());
}

fn empty<'a>(o: &Object<'a>) -> Object<'a> {
    Object {
        endian: o.endian,
        btf: None,
        btf_ext: None,
        license: None,
        kern_version: None,
        code: Vec::new(),
        functions: Vec::new(),
        maps: Vec::new(),
        data: Vec::new(),
        externs: Vec::new(),
        sections: Vec::new(),
        data_symbols: Vec::new(),
    }
}

#[test]
fn coordinates_convert_explicitly() {
    assert_eq!(
        SectionInsn::from_byte_offset(SectionByteOffset(16)),
        Some(SectionInsn(2))
    );
    assert_eq!(SectionInsn::from_byte_offset(SectionByteOffset(17)), None);
    assert_eq!(SectionInsn::from_elf_offset(8 << 35), None);
    assert_eq!(SectionInsn(5).since(SectionInsn(3)), Some(FuncInsn(2)));
    assert_eq!(SectionInsn(2).since(SectionInsn(3)), None);
    let _ = Endian::NATIVE;
}
