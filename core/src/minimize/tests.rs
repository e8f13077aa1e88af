use super::*;
use crate::btf::test_util::Builder;
use crate::bytes::Endian;

/// int; struct s { int a; int *p; int z[0]; int last; }; typedef s t;
fn sample() -> alloc::vec::Vec<u8> {
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32); // 1
    b.rec(0, 2, false, 0, 1, &[]); // 2: int *
    let (s, a, p, z, l, t) = (
        b.s("s"),
        b.s("a"),
        b.s("p"),
        b.s("z"),
        b.s("last"),
        b.s("t"),
    );
    b.rec(0, 3, false, 0, 0, &[1, 1, 0]); // 3: int[0]
    b.rec(
        s,
        4,
        false,
        4,
        20,
        &[a, 1, 0, p, 2, 64, z, 3, 128, l, 1, 128],
    ); // 4
    b.rec(t, 8, false, 0, 4, &[]); // 5
    b.build()
}

#[test]
fn keeps_members_and_renumbers() {
    let blob = sample();
    let btf = Btf::parse(&blob).unwrap();
    let mut k = Keep::new(&btf).unwrap();
    k.keep_type(TypeId(5), false).unwrap();
    k.keep_member(TypeId(4), 1).unwrap();
    // Typedef, struct, pointer (pointee not followed).
    assert_eq!(k.len(), 3);
    let out = k.emit().unwrap();
    let m = Btf::parse(&out).unwrap();
    assert_eq!(m.type_count(), 4);
    let s = m.get(TypeId(2)).unwrap();
    assert_eq!(m.name(&s).unwrap(), "s");
    assert_eq!(s.size(), 20);
    let mem: alloc::vec::Vec<_> = s.members().collect();
    assert_eq!(mem.len(), 1);
    assert_eq!(mem[0].bit_offset, 64);
    assert_eq!(m.str_at(mem[0].name_off).unwrap(), "p");
    // The pointer now points at void.
    assert_eq!(m.get(mem[0].type_id).unwrap().type_id(), TypeId::VOID);
    assert_eq!(m.get(TypeId(3)).unwrap().type_id(), TypeId(2));
}

#[test]
fn zero_length_array_stays_not_last() {
    let blob = sample();
    let btf = Btf::parse(&blob).unwrap();
    let mut k = Keep::new(&btf).unwrap();
    k.keep_member(TypeId(4), 2).unwrap();
    let out = k.emit().unwrap();
    let m = Btf::parse(&out).unwrap();
    let s = m.find_by_name_kind("s", Kind::Struct).unwrap();
    assert_eq!(m.get(s).unwrap().vlen(), 2, "z and last");
}

#[test]
fn match_keeps_everything_but_pointees() {
    let blob = sample();
    let btf = Btf::parse(&blob).unwrap();
    let mut k = Keep::new(&btf).unwrap();
    k.keep_for_match(TypeId(5)).unwrap();
    let out = k.emit().unwrap();
    let m = Btf::parse(&out).unwrap();
    let s = m.find_by_name_kind("s", Kind::Struct).unwrap();
    assert_eq!(m.get(s).unwrap().vlen(), 4);
    assert_eq!(m.type_count(), 6);
}

/// A pointer kept first as a member's type (pointee not followed), then
/// for a type-based relocation (pointee followed): the pointee is kept, as
/// it is in the other order. The btf_minimize campaign found the order
/// mattering (fuzz/regressions/btf_minimize).
#[test]
fn a_later_use_that_follows_pointers_walks_again() {
    let blob = sample();
    let btf = Btf::parse(&blob).unwrap();
    for member_first in [true, false] {
        let mut k = Keep::new(&btf).unwrap();
        if member_first {
            k.keep_member(TypeId(4), 1).unwrap();
            k.keep_type(TypeId(2), true).unwrap();
        } else {
            k.keep_type(TypeId(2), true).unwrap();
            k.keep_member(TypeId(4), 1).unwrap();
        }
        assert!(
            k.has(TypeId(1)),
            "int, the pointee (member first: {member_first})"
        );
        assert_eq!(k.len(), 3, "int, int *, s");
    }
}
