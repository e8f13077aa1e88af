use alloc::vec::Vec;

use super::*;
use crate::btf::test_util::Builder;
use crate::btf::{Array, DatasecEntry, Enumerator, Member, Param};

/// One type of every kind, built with the encoder.
fn every_kind(endian: Endian) -> Vec<u8> {
    let mut e = Encoder::new(endian);
    let int = e.add_str("int").unwrap();
    let s = e.add_str("s").unwrap();
    let a = e.add_str("a").unwrap();
    let b = e.add_str("b").unwrap();
    assert_eq!(e.add_str("int").unwrap(), int, "dedup");
    assert_eq!(e.add_str("").unwrap(), StrOffset::EMPTY);
    let i = e
        .add(&TypeRecord::named(
            int,
            Body::Int {
                size: 4,
                encoding: BTF_INT_SIGNED,
                offset: 0,
                bits: 32,
            },
        ))
        .unwrap();
    assert_eq!(i, TypeId(1));
    let p = e.add(&TypeRecord::anon(Body::Ptr(i))).unwrap();
    e.add(&TypeRecord::anon(Body::Array(Array {
        elem_type: p,
        index_type: i,
        nelems: 3,
    })))
    .unwrap();
    let members = [
        Member {
            name_off: a,
            type_id: i,
            bit_offset: 0,
            bitfield_size: 3,
        },
        Member {
            name_off: b,
            type_id: p,
            bit_offset: 64,
            bitfield_size: 0,
        },
    ];
    let st = e
        .add(&TypeRecord {
            name: s,
            kflag: true,
            body: Body::Struct {
                size: 16,
                members: &members,
            },
        })
        .unwrap();
    e.add(&TypeRecord::anon(Body::Union {
        size: 8,
        members: &[Member {
            bit_offset: 0,
            ..members[1]
        }],
    }))
    .unwrap();
    let vals = [Enumerator {
        name_off: a,
        value: u64::MAX,
    }];
    e.add(&TypeRecord {
        name: b,
        kflag: true,
        body: Body::Enum {
            size: 4,
            values: &vals,
        },
    })
    .unwrap();
    e.add(&TypeRecord {
        name: s,
        kflag: true,
        body: Body::Fwd,
    })
    .unwrap();
    let td = e.add(&TypeRecord::named(a, Body::Typedef(st))).unwrap();
    e.add(&TypeRecord::anon(Body::Volatile(td))).unwrap();
    e.add(&TypeRecord::anon(Body::Const(td))).unwrap();
    e.add(&TypeRecord::anon(Body::Restrict(p))).unwrap();
    let params = [Param {
        name_off: a,
        type_id: i,
    }];
    let fp = e
        .add(&TypeRecord::anon(Body::FuncProto {
            ret: i,
            params: &params,
        }))
        .unwrap();
    let f = e
        .add(&TypeRecord::named(
            b,
            Body::Func {
                proto: fp,
                linkage: 1,
            },
        ))
        .unwrap();
    let v = e
        .add(&TypeRecord::named(
            a,
            Body::Var {
                type_id: i,
                linkage: 1,
            },
        ))
        .unwrap();
    let data = e.add_str(".data").unwrap();
    let ents = [DatasecEntry {
        type_id: v,
        offset: 0,
        size: 4,
    }];
    e.add(&TypeRecord::named(
        data,
        Body::Datasec {
            size: 4,
            entries: &ents,
        },
    ))
    .unwrap();
    let dbl = e.add_str("double").unwrap();
    e.add(&TypeRecord::named(dbl, Body::Float(8))).unwrap();
    let tag = e.add_str("tag").unwrap();
    e.add(&TypeRecord::named(
        tag,
        Body::DeclTag {
            type_id: f,
            component: 0,
        },
    ))
    .unwrap();
    e.add(&TypeRecord::named(tag, Body::TypeTag(i))).unwrap();
    let vals64 = [Enumerator {
        name_off: b,
        value: 0x1_2345_6789,
    }];
    e.add(&TypeRecord::named(
        s,
        Body::Enum64 {
            size: 8,
            values: &vals64,
        },
    ))
    .unwrap();
    assert_eq!(e.next_id(), TypeId(20));
    e.finish().unwrap()
}

#[test]
fn built_btf_parses_in_both_orders() {
    for endian in [Endian::Little, Endian::Big] {
        let blob = every_kind(endian);
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.endian(), endian);
        assert_eq!(btf.type_count(), 20);
        let s = btf.get(TypeId(4)).unwrap();
        assert_eq!(btf.name(&s).unwrap(), "s");
        let m: Vec<Member> = s.members().collect();
        assert_eq!(m[0].bitfield_size, 3);
        assert_eq!(m[1].bit_offset, 64);
        let en = btf.get(TypeId(6)).unwrap();
        assert_eq!(en.enumerators().next().unwrap().value, u64::MAX);
        let e64 = btf.get(TypeId(19)).unwrap();
        assert_eq!(e64.enumerators().next().unwrap().value, 0x1_2345_6789);
        assert_eq!(btf.get(TypeId(17)).unwrap().decl_tag_component(), Some(0));
        // Each string once.
        assert_eq!(btf.strings(), b"\0int\0s\0a\0b\0.data\0double\0tag\0");
        // Canonical by construction: re-encoding is the identity.
        assert_eq!(reencode(&btf).unwrap(), blob);
    }
}

#[test]
fn the_orders_differ_only_in_byte_order() {
    let (le, be) = (every_kind(Endian::Little), every_kind(Endian::Big));
    assert_eq!(le.len(), be.len());
    let (l, b) = (Btf::parse(&le).unwrap(), Btf::parse(&be).unwrap());
    for (x, y) in l.types().zip(b.types()) {
        let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
        assert_eq!(x.to_record(&mut s1).unwrap(), y.to_record(&mut s2).unwrap());
    }
}

#[test]
fn split_continues_base_ids_and_strings() {
    let base_blob = every_kind(Endian::Little);
    let base = Btf::parse(&base_blob).unwrap();
    let mut e = Encoder::new_split(&base);
    assert_eq!(e.next_id(), TypeId(20));
    let n = e.add_str("mod_t").unwrap();
    assert_eq!(n.0 as usize, base.strings().len());
    let id = e.add(&TypeRecord::anon(Body::Ptr(TypeId(1)))).unwrap();
    assert_eq!(id, TypeId(20));
    e.add(&TypeRecord::named(n, Body::Typedef(id))).unwrap();
    let blob = e.finish().unwrap();
    let split = Btf::parse_split(&blob, &base).unwrap();
    assert_eq!(split.type_count(), 22);
    let t = split.get(TypeId(21)).unwrap();
    assert_eq!(split.name(&t).unwrap(), "mod_t");
    assert_eq!(reencode(&split).unwrap(), blob);
}

#[test]
fn reencode_keeps_layout_and_unknown_kinds() {
    // A kind-layout section describing kind 20 as 4-byte info, no elems.
    let mut b = Builder::new(Endian::Big);
    b.int("int", 4, 1, 32);
    b.rec(0, 20, false, 0, 1, &[7]);
    let mut layout = alloc::vec![0u8; 21 * 4];
    layout[80] = 4;
    b.layout = Some(layout);
    let blob = b.build();
    let btf = Btf::parse(&blob).unwrap();
    assert_eq!(reencode(&btf).unwrap(), blob);
}

#[test]
fn reencode_canonicalizes_gaps() {
    // A gap between types and strings: legal, not canonical.
    let mut b = Builder::new(Endian::Little);
    b.int("int", 4, 1, 32);
    let canon = b.build();
    let mut odd = canon[..24].to_vec();
    let str_off = b.types.len() as u32 + 4;
    odd[16..20].copy_from_slice(&str_off.to_le_bytes());
    odd.extend_from_slice(&b.types);
    odd.extend_from_slice(&[0; 4]);
    odd.extend_from_slice(&b.strs);
    let btf = Btf::parse(&odd).unwrap();
    assert_eq!(reencode(&btf).unwrap(), canon);
}

#[test]
fn bad_strings_and_vlen_are_errors() {
    let mut e = Encoder::new(Endian::Little);
    assert!(e.add_str("a\0b").is_err());
    let many = alloc::vec![
        Param {
            name_off: StrOffset::EMPTY,
            type_id: TypeId::VOID
        };
        0x0100_0000
    ];
    let r = TypeRecord::anon(Body::FuncProto {
        ret: TypeId::VOID,
        params: &many,
    });
    assert_eq!(e.add(&r).unwrap_err().kind(), ErrorKind::TooMany("vlen"));
}
