//! TYPE_MATCHES and ENUM64 rules on hand-built BTF (clang 14, the compiler
//! the fixtures use, emits neither), each case following SPEC-CORE §3.7
//! and §3.8.

use alloc::vec::Vec;

use super::*;
use crate::btf::test_util::Builder;
use crate::bytes::Endian;

const PTR: u32 = 2;
const ARRAY: u32 = 3;
const STRUCT: u32 = 4;
const UNION: u32 = 5;
const ENUM: u32 = 6;
const FWD: u32 = 7;
const ENUM64: u32 = 19;

/// Builds a blob; `f` adds types after `[1] int` and `[2] unsigned int`.
fn blob(f: impl FnOnce(&mut Builder)) -> Vec<u8> {
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32);
    b.int("unsigned int", 4, 0, 32);
    f(&mut b);
    b.build()
}

fn matches(local: &[u8], lid: u32, target: &[u8], tid: u32) -> bool {
    let l = Btf::parse(local).unwrap();
    let t = Btf::parse(target).unwrap();
    types_match(&l, TypeId(lid), &t, TypeId(tid)).unwrap()
}

#[test]
fn ints_match_by_name_size_and_sign() {
    let b = blob(|_| {});
    assert!(matches(&b, 1, &b, 1));
    assert!(!matches(&b, 1, &b, 2), "int vs unsigned int: names differ");
}

#[test]
fn structs_match_member_names_recursively() {
    // local: struct s { int a; }
    let local = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 1, 0]);
    });
    // target: struct s { unsigned int b; int a; } — reordered, extra member.
    let good = blob(|b| {
        let (s, bb, a) = (b.s("s"), b.s("b"), b.s("a"));
        b.rec(s, STRUCT, false, 2, 8, &[bb, 2, 0, a, 1, 32]);
    });
    // target: struct s { unsigned int a; } — member type differs.
    let bad = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 2, 0]);
    });
    assert!(matches(&local, 3, &good, 3));
    assert!(!matches(&local, 3, &bad, 3));
}

#[test]
fn behind_a_pointer_a_forward_declaration_matches() {
    // local: struct s { int a; } *  (ptr is [4])
    let local = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 1, 0]);
        b.rec(0, PTR, false, 0, 3, &[]);
        let u = b.s("u");
        b.rec(u, UNION, false, 0, 4, &[]);
        b.rec(0, PTR, false, 0, 5, &[]);
    });
    // target: struct fwd s; ptr to it ([4]); union fwd? no: struct fwd u.
    let target = blob(|b| {
        let s = b.s("s");
        b.rec(s, FWD, false, 0, 0, &[]);
        b.rec(0, PTR, false, 0, 3, &[]);
        let u = b.s("u");
        b.rec(u, FWD, false, 0, 0, &[]);
        b.rec(0, PTR, false, 0, 5, &[]);
    });
    assert!(
        matches(&local, 4, &target, 4),
        "struct behind ptr vs struct fwd"
    );
    assert!(
        !matches(&local, 6, &target, 6),
        "union behind ptr vs struct fwd"
    );
    assert!(
        !matches(&local, 3, &target, 3),
        "struct vs fwd not behind a pointer"
    );
}

#[test]
fn enums_match_by_size_and_enumerator_names() {
    let local = blob(|b| {
        let (e, a) = (b.s("e"), b.s("A"));
        b.rec(e, ENUM, false, 1, 4, &[a, 0]);
    });
    let wider = blob(|b| {
        let (e, bb, a) = (b.s("e"), b.s("B"), b.s("A___v2"));
        b.rec(e, ENUM, false, 2, 4, &[bb, 7, a, 9]);
    });
    let enum64 = blob(|b| {
        let (e, a) = (b.s("e"), b.s("A"));
        b.rec(e, ENUM64, false, 1, 8, &[a, 0, 0]);
    });
    assert!(
        matches(&local, 3, &wider, 3),
        "values ignored, flavors stripped"
    );
    assert!(!matches(&local, 3, &enum64, 3), "sizes differ");
}

#[test]
fn arrays_match_only_with_equal_lengths() {
    let mk = |n: u32| blob(move |b| b.rec(0, ARRAY, false, 0, 0, &[1, 1, n]));
    assert!(matches(&mk(4), 3, &mk(4), 3));
    assert!(!matches(&mk(4), 3, &mk(5), 3));
}

/// One relocation of `kind` on local type `lid`, solved against `target`.
fn solve_kind(local: &[u8], lid: u32, access: &str, kind: RelocKind, target: &[u8]) -> RelocRes {
    // Append the access string to the local blob's strings.
    let l = Btf::parse(local).unwrap();
    let off = l
        .strings()
        .windows(access.len() + 1)
        .position(|w| &w[..access.len()] == access.as_bytes() && w[access.len()] == 0);
    let off = off.expect("access string present in local strings") as u32;
    let t = Btf::parse(target).unwrap();
    let targets = Targets::single(&t);
    let relo = CoreRelo {
        insn_off: crate::id::SectionByteOffset(0),
        type_id: TypeId(lid),
        access_str_off: StrOffset(off),
        kind: kind as u32,
    };
    let mut cands = find_candidates(&l, TypeId(lid), &targets).unwrap();
    solve_one(&l, &relo, &targets, &mut cands).unwrap().3
}

#[test]
fn enum64_values_and_sign_extension() {
    // local: enum64 e { V = 0x1_ffff_ffff }, and strings "0".
    let local = blob(|b| {
        let (e, v) = (b.s("e"), b.s("V"));
        b.rec(e, ENUM64, false, 1, 8, &[v, 0xffff_ffff, 1]);
        b.s("0");
        let (e2, n) = (b.s("neg"), b.s("N"));
        b.rec(e2, ENUM, true, 1, 4, &[n, (-2i32) as u32]);
    });
    let target = blob(|b| {
        let (e, w, v) = (b.s("e"), b.s("W"), b.s("V"));
        b.rec(e, ENUM64, false, 2, 8, &[w, 1, 0, v, 0xffff_ffff, 2]);
        let (e2, n) = (b.s("neg"), b.s("N"));
        // An unsigned 32-bit enum: the value is still sign-extended.
        b.rec(e2, ENUM, false, 1, 4, &[n, (-5i32) as u32]);
    });
    let r = solve_kind(&local, 3, "0", RelocKind::EnumvalValue, &target);
    assert_eq!(
        (r.orig, r.new, r.poison),
        (0x1_ffff_ffff, 0x2_ffff_ffff, false)
    );
    let r = solve_kind(&local, 4, "0", RelocKind::EnumvalValue, &target);
    assert_eq!((r.orig, r.new), ((-2i64) as u64, (-5i64) as u64));
    let r = solve_kind(&local, 3, "0", RelocKind::EnumvalExists, &target);
    assert_eq!((r.orig, r.new), (1, 1));
}

#[test]
fn type_matches_relocation_values() {
    let local = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 1, 0]);
        b.s("0");
    });
    let same = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 1, 0]);
    });
    let other = blob(|b| {
        let (s, a) = (b.s("s"), b.s("a"));
        b.rec(s, STRUCT, false, 1, 4, &[a, 2, 0]);
    });
    let r = solve_kind(&local, 3, "0", RelocKind::TypeMatches, &same);
    assert_eq!((r.orig, r.new), (1, 1));
    let r = solve_kind(&local, 3, "0", RelocKind::TypeMatches, &other);
    assert_eq!((r.orig, r.new), (1, 0));
    // TYPE_EXISTS is laxer: the same pair exists.
    let r = solve_kind(&local, 3, "0", RelocKind::TypeExists, &other);
    assert_eq!((r.orig, r.new), (1, 1));
}
