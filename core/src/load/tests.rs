//! Linking and BTF rewriting on committed fixtures (the kernel's verdict on
//! the same output is checked in tests/tests/load.rs).

use alloc::vec::Vec;

use super::*;
use crate::btf::{Btf, Kind};
use crate::bytes::Endian;
use crate::error::ErrorKind;
use crate::id::{FuncIndex, Pc};
use crate::insn::{CALL, INSN_SIZE, Insn, LD_IMM64, PSEUDO_CALL, PSEUDO_FUNC, PSEUDO_MAP_VALUE};
use crate::object::Object;

const GLOBALS_EL: &[u8] = include_bytes!("../../../tests/fixtures/globals.bpf-el.o");
const GLOBALS_EB: &[u8] = include_bytes!("../../../tests/fixtures/globals.bpf-eb.o");
const KINDS_EL: &[u8] = include_bytes!("../../../tests/fixtures/btf_kinds.bpf-el.o");

fn native() -> (&'static [u8], &'static [u8]) {
    if Endian::NATIVE == Endian::Little {
        (GLOBALS_EL, GLOBALS_EB)
    } else {
        (GLOBALS_EB, GLOBALS_EL)
    }
}

#[test]
fn datasecs_get_sizes_and_offsets_from_the_elf_file() {
    let obj = Object::parse(native().0, "globals").unwrap();
    let out = kernel_btf(&obj, &BtfFeatures::default()).unwrap();
    let btf = Btf::parse(&out).unwrap();
    let mut seen = 0;
    for t in btf.types().filter(|t| t.kind() == Kind::Datasec) {
        let name = btf.name(&t).unwrap();
        let mut end = 0;
        for e in t.datasec_entries() {
            assert!(e.offset >= end, "{name}: entries overlap or are unsorted");
            end = e.offset + e.size;
            let v = btf.get(e.type_id).unwrap();
            assert_eq!(v.kind(), Kind::Var, "{name}: entry is not a VAR");
            assert_ne!(v.var_linkage(), Some(2), "{name}: extern VAR left");
            let vname = btf.name(&v).unwrap();
            if let Some(sym) = obj
                .data_symbols
                .iter()
                .find(|s| s.section == name && s.name == vname)
            {
                assert_eq!(e.offset, sym.offset, "{name}.{vname}");
            }
        }
        assert!(t.size() >= end, "{name}: size {} < end {end}", t.size());
        if let Some(&(_, size)) = obj.sections.iter().find(|(n, _)| *n == name) {
            assert_eq!(t.size(), size, "{name}");
            seen += 1;
        }
    }
    assert!(seen >= 4, "too few data sections checked");
    // Extern FUNCs are made global, with named parameters.
    for t in btf.types().filter(|t| t.kind() == Kind::Func) {
        assert_ne!(t.func_linkage(), Some(2));
        let proto = btf.get(t.type_id()).unwrap();
        for p in proto.params() {
            assert!(p.name_off.0 != 0 || p.type_id.0 == 0);
        }
    }
}

#[test]
fn each_missing_feature_removes_its_kinds() {
    let obj = Object::parse(KINDS_EL, "btf_kinds").unwrap();
    if obj.endian != Endian::NATIVE {
        return;
    }
    let before = obj.btf.as_ref().unwrap().type_count();
    let off = |f: fn(&mut BtfFeatures)| {
        let mut feat = BtfFeatures::default();
        f(&mut feat);
        let out = kernel_btf(&obj, &feat).unwrap();
        let kinds: Vec<Kind> = Btf::parse(&out)
            .unwrap()
            .types()
            .map(|t| t.kind())
            .collect();
        assert!(kinds.len() as u32 + 1 >= before);
        kinds
    };
    let all = off(|_| {});
    for k in [Kind::Float, Kind::DeclTag, Kind::TypeTag, Kind::Datasec] {
        assert!(all.contains(&k), "fixture lacks {k:?}");
    }
    assert!(!off(|f| f.float = false).contains(&Kind::Float));
    assert!(!off(|f| f.decl_tag = false).contains(&Kind::DeclTag));
    assert!(!off(|f| f.type_tag = false).contains(&Kind::TypeTag));
    let k = off(|f| f.datasec = false);
    assert!(!k.contains(&Kind::Datasec) && !k.contains(&Kind::Var));
    let k = off(|f| f.func = false);
    assert!(!k.contains(&Kind::Func) && !k.contains(&Kind::FuncProto));
}

#[test]
fn foreign_byte_order_is_refused() {
    let obj = Object::parse(native().1, "globals").unwrap();
    let e = kernel_btf(&obj, &BtfFeatures::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignEndian);
}

#[test]
fn linking_appends_each_subprogram_once_and_resolves_references() {
    let obj = Object::parse(native().0, "globals").unwrap();
    let code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    let prog = obj
        .functions
        .iter()
        .position(|f| f.name == "on_newtask")
        .map(FuncIndex)
        .unwrap();
    let l = link_program(&obj, &code, prog, &|m| Some(100 + m.0 as i32)).unwrap();
    let names: Vec<&str> = l
        .pieces
        .iter()
        .map(|p| obj.functions[p.func.index()].name)
        .collect();
    assert_eq!(names[0], "on_newtask");
    for sub in ["global_sub", "parent_tgid", "count_cb"] {
        assert_eq!(names.iter().filter(|n| **n == sub).count(), 1, "{sub}");
    }
    let insns: Vec<Insn> = crate::insn::decode_all(&l.insns, obj.endian).collect();
    let starts: Vec<u32> = l.pieces.iter().map(|p| p.start.0).collect();
    // kfunc calls are patched by ksym::patch, not by linking: skip them.
    let externs: Vec<u32> = l
        .pieces
        .iter()
        .flat_map(|p| {
            let f = &obj.functions[p.func.index()];
            obj.externs
                .iter()
                .flat_map(|x| &x.refs)
                .filter(move |&&(ci, i)| ci == f.section && f.contains(i))
                .map(move |&(_, i)| p.pc(f.func_insn(i).unwrap()).0)
        })
        .collect();
    let mut calls = 0;
    let mut data = 0;
    for (pc, i) in insns.iter().enumerate() {
        let target = pc as i64 + 1 + i64::from(i.imm);
        if i.code == CALL && i.src == PSEUDO_CALL && !externs.contains(&(pc as u32)) {
            assert!(
                starts.contains(&(target as u32)),
                "call at {pc} lands inside a piece"
            );
            calls += 1;
        }
        if i.code == LD_IMM64 && i.src == PSEUDO_FUNC {
            assert!(starts.contains(&(target as u32)), "func address at {pc}");
        }
        if i.code == LD_IMM64 && i.src == PSEUDO_MAP_VALUE {
            assert!(i.imm >= 100, "map fd at {pc}");
            data += 1;
        }
    }
    assert!(calls >= 2 && data >= 3, "calls {calls}, data refs {data}");
    // One func_info per piece, at its start; line info sorted.
    let fi: Vec<u32> = l
        .func_info
        .chunks_exact(FUNC_INFO_SIZE as usize)
        .map(|r| u32::from_ne_bytes(r[..4].try_into().unwrap()))
        .collect();
    assert_eq!(fi, starts);
    let li: Vec<u32> = l
        .line_info
        .chunks_exact(LINE_INFO_SIZE as usize)
        .map(|r| u32::from_ne_bytes(r[..4].try_into().unwrap()))
        .collect();
    // The kernel wants line_info offsets strictly increasing.
    assert!(!li.is_empty() && li.windows(2).all(|w| w[0] < w[1]));
    assert!(
        li.iter()
            .all(|&pc| (pc as usize) < l.insns.len() / INSN_SIZE)
    );
    // Every linked instruction maps back to its function.
    let last = Pc((l.insns.len() / INSN_SIZE - 1) as u32);
    let (f, i) = l.origin(last).unwrap();
    assert!(i.0 < obj.functions[f.index()].len);
}
