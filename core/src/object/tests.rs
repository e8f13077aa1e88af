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
        struct_ops: Vec::new(),
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

/// A fixture of `tests/fixtures/bad`, in both byte orders.
macro_rules! bad {
    ($name:literal) => {
        [
            include_bytes!(concat!("../../../tests/fixtures/bad/", $name, ".bpf-el.o")).as_slice(),
            include_bytes!(concat!("../../../tests/fixtures/bad/", $name, ".bpf-eb.o")).as_slice(),
        ]
    };
}

fn parse_err(bytes: &[u8]) -> ObjectError<'_> {
    match Object::parse(bytes, "bad") {
        Ok(_) => panic!("parsed"),
        Err(e) => e,
    }
}

#[test]
fn unknown_extern_names_the_symbol_and_where_it_is_called() {
    for bytes in bad!("extern_memcmp") {
        let e = parse_err(bytes);
        assert_eq!(e.section, Some("socket"));
        assert_eq!(e.function, Some("cmp"));
        assert!(matches!(
            e.kind,
            ObjectErrorKind::BadExtern {
                name: "memcmp",
                insn: Some(_)
            }
        ));
        let msg = alloc::format!("{e}");
        assert!(msg.contains("'memcmp'") && msg.contains("__ksym"), "{msg}");
        assert!(!msg.contains("at byte"), "{msg}");
    }
}

#[test]
fn static_program_names_the_function_and_its_section() {
    for bytes in bad!("static_prog") {
        let e = parse_err(bytes);
        assert_eq!(
            e.kind,
            ObjectErrorKind::StaticProgram {
                name: "hidden_probe"
            }
        );
        assert_eq!(
            alloc::format!("{e}"),
            "section 'kprobe/do_unlinkat': program 'hidden_probe' is static; \
             programs must be global (drop 'static')"
        );
    }
}

#[test]
fn malformed_map_definition_names_map_attribute_and_what_was_found() {
    for bytes in bad!("map_def") {
        let e = parse_err(bytes);
        assert_eq!(
            alloc::format!("{e}"),
            "section '.maps': map 'events': attribute 'max_entries' must be a pointer to an \
             array (__uint) or an enum of one value (__ulong), found INT"
        );
        assert_eq!(
            e.kind,
            ObjectErrorKind::BadMapDef {
                map: "events",
                attr: "max_entries",
                expected: "a pointer to an array (__uint) or an enum of one value (__ulong)",
                found: Found::Kind(crate::btf::Kind::Int),
            }
        );
    }
}

#[test]
fn static_legacy_maps_are_resolved_by_offset_through_the_section_symbol() {
    for bytes in bad!("static_legacy_map") {
        let obj = Object::parse(bytes, "static_legacy_map").unwrap();
        assert!(obj.check_invariants());
        let code = &obj.code[0];
        let names: Vec<&str> = code
            .relocs
            .iter()
            .map(|r| match r.target {
                RelocTarget::Map(m) => &*obj.maps[m.index()].name,
                t => panic!("{t:?}"),
            })
            .collect();
        // The program looks up `second` first.
        assert_eq!(names, ["second", "first"]);
    }
}

#[test]
fn section_symbol_reference_to_no_map_names_the_section_and_offset() {
    for bytes in bad!("static_legacy_map") {
        let obj = Object::parse(bytes, "static_legacy_map").unwrap();
        let endian = obj.endian;
        let insn = obj.code[0].relocs[0].insn;
        // Point the first map reference 8 bytes into `first`, where no map
        // starts: the imm of the LD_IMM64 carries the offset.
        let file_off = {
            use object::{Object as _, ObjectSection as _};
            let elf = object::File::parse(bytes).unwrap();
            let s = elf.section_by_name("socket").unwrap();
            s.file_range().unwrap().0 as usize + insn.byte_offset() + 4
        };
        let mut patched = bytes.to_vec();
        let imm = match endian {
            Endian::Little => 8u32.to_le_bytes(),
            Endian::Big => 8u32.to_be_bytes(),
        };
        patched[file_off..file_off + 4].copy_from_slice(&imm);
        let e = parse_err(&patched);
        assert_eq!(e.section, Some("socket"));
        assert_eq!(e.function, Some("lookup"));
        assert_eq!(
            e.kind,
            ObjectErrorKind::MapRefWithoutSymbol {
                map_section: "maps",
                offset: 8,
                insn,
            }
        );
        let msg = alloc::format!("{e}");
        assert!(msg.contains("offset 8 of section 'maps'"), "{msg}");
    }
}
