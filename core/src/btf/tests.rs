//! Unit tests of the decoder over blobs built in both byte orders.

use alloc::string::String;
use alloc::vec::Vec;

use super::test_util::Builder;
use super::*;

const BOTH: [Endian; 2] = [Endian::Little, Endian::Big];

/// `int`, `struct point { int x; int y; }`, `ptr`, a FUNC_PROTO and a FUNC.
fn sample(e: Endian) -> Builder {
    let mut b = Builder::new(e);
    b.int("int", 4, 1, 32); // [1]
    let (p, x, y) = (b.s("point"), b.s("x"), b.s("y"));
    b.rec(p, 4, false, 2, 8, &[x, 1, 0, y, 1, 32]); // [2]
    b.rec(0, 2, false, 0, 2, &[]); // [3] struct point *
    b.rec(0, 13, false, 1, 1, &[0, 3]); // [4] int (*)(struct point *)
    let f = b.s("get_x");
    b.rec(f, 12, false, 1, 4, &[]); // [5] FUNC global
    let t = b.s("point___v2");
    b.rec(t, 4, false, 0, 16, &[]); // [6] a flavor
    b
}

fn parse_err(bytes: &[u8]) -> ErrorKind {
    Btf::parse(bytes).expect_err("must fail").kind()
}

#[test]
fn parses_both_byte_orders() {
    for e in BOTH {
        let bytes = sample(e).build();
        let btf = Btf::parse(&bytes).unwrap();
        assert_eq!(btf.endian(), e);
        assert_eq!(btf.type_count(), 7);
        let point = btf.find_by_name_kind("point", Kind::Struct).unwrap();
        assert_eq!(point, TypeId(2));
        let t = btf.type_by_id(point).unwrap();
        let names: Vec<&str> = t
            .members()
            .map(|m| btf.str_at(m.name_off).unwrap())
            .collect();
        assert_eq!(names, ["x", "y"]);
        assert_eq!(t.members().nth(1).unwrap().bit_offset, 32);
        assert_eq!(btf.resolve_size(point).unwrap(), 8);
        assert_eq!(btf.align_of(point).unwrap(), 4);
        assert_eq!(btf.resolve_size(TypeId(3)).unwrap(), 8);
        let flavors: Vec<TypeId> = btf.index().find(&btf, "point", Kind::Struct).collect();
        assert_eq!(flavors.len(), 2);
        assert_eq!(
            btf.find_by_name_kind("point___v2", Kind::Struct),
            Some(TypeId(6))
        );
        assert_eq!(btf.find_by_name_kind("point", Kind::Union), None);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for e in BOTH {
        let bytes = sample(e).build();
        for n in 0..bytes.len() {
            assert!(
                Btf::parse(bytes.get(..n).unwrap()).is_err(),
                "prefix {n} accepted"
            );
        }
    }
}

#[test]
fn header_rules() {
    let good = sample(Endian::Little).build();
    let mut b = good.clone();
    b[0] = 0;
    assert_eq!(parse_err(&b), ErrorKind::BadMagic(0xeb00));
    let mut b = good.clone();
    b[2] = 2;
    assert_eq!(parse_err(&b), ErrorKind::BadVersion(2));
    let mut b = good.clone();
    b[3] = 1;
    assert_eq!(parse_err(&b), ErrorKind::BadFlags(1));
    let mut b = good.clone();
    b[4] = 20;
    assert_eq!(parse_err(&b), ErrorKind::BadHeaderLen(20));
    let mut b = good.clone();
    b[8] = 2; // type_off 2
    assert_eq!(
        parse_err(&b),
        ErrorKind::Misaligned(crate::error::Section::Types)
    );
    let mut b = good.clone();
    b[12] = b[12].wrapping_add(4); // type_len runs into strings
    assert_eq!(parse_err(&b), ErrorKind::SectionsOverlap);
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] = b'x';
    assert_eq!(parse_err(&b), ErrorKind::StringsNotTerminated);
}

#[test]
fn record_rules_name_the_offset() {
    // Bad name offset on the second record, at byte 24 + 16.
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32);
    b.rec(999, 2, false, 0, 1, &[]);
    let e = Btf::parse(&b.build()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadStrOffset(999));
    assert_eq!(e.offset(), 24 + 16);

    type Case = (fn(&mut Builder), ErrorKind);
    let cases: [Case; 9] = [
        (
            |b| b.rec(0, 2, false, 0, 9, &[]),
            ErrorKind::BadTypeId(TypeId(9)),
        ),
        (|b| b.rec(0, 0, false, 0, 0, &[]), ErrorKind::UnknownKind(0)),
        (
            |b| b.rec(0, 25, false, 0, 0, &[]),
            ErrorKind::UnknownKind(25),
        ),
        (
            |b| b.rec(0, 1, false, 0, 4, &[0x0800_0020]),
            ErrorKind::BadInt(0x0800_0020),
        ),
        (
            |b| b.rec(0, 1, false, 0, 3, &[32]),
            ErrorKind::BadSize(Kind::Int, 3),
        ),
        (
            |b| b.rec(0, 5, false, 1, 4, &[0, 1, 8]),
            ErrorKind::UnionMemberOffset,
        ),
        (
            |b| b.rec(0, 13, false, 2, 1, &[0, 0, 0, 1]),
            ErrorKind::BadVarargs,
        ),
        (
            |b| b.rec(0, 8, false, 0, 1, &[]),
            ErrorKind::NameRequired(Kind::Typedef),
        ),
        (
            |b| b.rec(0, 4, false, 2, 4, &[0, 1, 8, 0, 1, 0]),
            ErrorKind::BadMember(1),
        ),
    ];
    for (add, want) in cases {
        for e in BOTH {
            let mut b = Builder::new(e);
            b.int("int", 4, 1, 32);
            add(&mut b);
            assert_eq!(parse_err(&b.build()), want);
        }
    }
}

#[test]
fn func_must_point_at_a_proto_forward_or_backward() {
    for e in BOTH {
        let mut b = Builder::new(e);
        b.int("int", 4, 1, 32);
        let f = b.s("f");
        b.rec(f, 12, false, 0, 1, &[]);
        assert_eq!(parse_err(&b.build()), ErrorKind::FuncNotProto(TypeId(1)));
        let mut b = Builder::new(e);
        let f = b.s("f");
        b.rec(f, 12, false, 0, 2, &[]); // forward to an INT
        b.int("int", 4, 1, 32);
        assert_eq!(parse_err(&b.build()), ErrorKind::FuncNotProto(TypeId(2)));
        let mut b = Builder::new(e);
        let f = b.s("f");
        b.rec(f, 12, false, 0, 2, &[]); // forward to a proto: fine
        b.rec(0, 13, false, 0, 0, &[]);
        Btf::parse(&b.build()).unwrap();
    }
}

#[test]
fn layout_section_describes_unknown_kinds() {
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32);
    // Kind 25 with a 4-byte info tail and 8-byte elements, vlen 2.
    b.rec(0, 25, false, 2, 0, &[7, 1, 2, 3, 4]);
    b.rec(0, 2, false, 0, 1, &[]);
    let mut layout = alloc::vec![0u8; 26 * 4];
    layout[25 * 4] = 4;
    layout[25 * 4 + 1] = 8;
    b.layout = Some(layout);
    let bytes = b.build();
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.type_count(), 4);
    assert_eq!(btf.type_by_id(TypeId(2)).unwrap().kind(), Kind::Unknown);
    assert_eq!(btf.type_by_id(TypeId(3)).unwrap().kind(), Kind::Ptr);
}

#[test]
fn split_btf_continues_ids_and_strings() {
    for e in BOTH {
        let base_bytes = sample(e).build();
        let base = Btf::parse(&base_bytes).unwrap();
        let mut m = Builder::new_split(e);
        let start = base.strings().len() as u32;
        let n = m.s("mod_struct") + start;
        let x = m.s("m") + start;
        // Member of base type [1] (int), pointer to own type [7].
        m.rec(n, 4, false, 1, 4, &[x, 1, 0]);
        m.rec(0, 2, false, 0, 7, &[]);
        let bytes = m.build();
        let split = Btf::parse_split(&bytes, &base).unwrap();
        assert_eq!(split.start_id(), TypeId(7));
        assert_eq!(split.type_count(), 9);
        assert_eq!(
            split.find_by_name_kind("mod_struct", Kind::Struct),
            Some(TypeId(7))
        );
        assert_eq!(
            split.find_by_name_kind("point", Kind::Struct),
            Some(TypeId(2))
        );
        assert_eq!(split.resolve_size(TypeId(7)).unwrap(), 4);
        assert_eq!(split.str_at(StrOffset(x)).unwrap(), "m");
        assert_eq!(split.types().len(), 2);
        let mut s = String::new();
        dump::raw::dump(&split, &mut s).unwrap();
        assert!(s.starts_with(
            "[7] STRUCT 'mod_struct' size=4 vlen=1\n\t'm' type_id=1 bits_offset=0\n[8] PTR"
        ));
        // A reference past the split's last id is caught.
        let mut m = Builder::new_split(e);
        m.rec(0, 2, false, 0, 8, &[]);
        assert_eq!(
            Btf::parse_split(&m.build(), &base).unwrap_err().kind(),
            ErrorKind::BadTypeId(TypeId(8))
        );
    }
}

#[test]
fn typedef_cycles_are_bounded() {
    let mut b = Builder::new(Endian::Little);
    let (a, c) = (b.s("a"), b.s("c"));
    b.rec(a, 8, false, 0, 2, &[]);
    b.rec(c, 8, false, 0, 1, &[]);
    let bytes = b.build();
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(
        btf.resolve_size(TypeId(1)).unwrap_err().kind(),
        ErrorKind::TypeChainTooDeep(TypeId(1))
    );
    assert!(btf.skip_mods_and_typedefs(TypeId(1)).is_err());
    assert!(btf.align_of(TypeId(1)).is_err());
}

#[test]
fn array_sizes_multiply_and_overflow_is_an_error() {
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32); // [1]
    b.rec(0, 3, false, 0, 0, &[1, 1, 10]); // [2] int[10]
    b.rec(0, 3, false, 0, 0, &[2, 1, 0x2000_0000]); // [3] int[..][10]: too big
    let bytes = b.build();
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.resolve_size(TypeId(2)).unwrap(), 40);
    assert_eq!(
        btf.resolve_size(TypeId(3)).unwrap_err().kind(),
        ErrorKind::SizeOverflow(TypeId(3))
    );
}
