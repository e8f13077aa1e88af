//! Lookups agree whichever way they run: binary search on sorted BTF,
//! the name index, the one-pass `find_many` and prefetched answers.

use alloc::string::String;
use alloc::vec::Vec;

use super::test_util::Builder;
use super::*;

const BOTH: [Endian; 2] = [Endian::Little, Endian::Big];

/// Unsorted, with duplicate names across kinds, a flavor, a name that
/// sorts between a name and its flavors, and anonymous types in between.
fn sample(e: Endian) -> Builder {
    let mut b = Builder::new(e);
    b.int("int", 4, 1, 32); // [1]
    let (p, x) = (b.s("point"), b.s("x"));
    b.rec(p, 4, false, 1, 4, &[x, 1, 0]); // [2] struct point
    b.rec(0, 2, false, 0, 2, &[]); // [3] struct point *
    let f = b.s("point___v2");
    b.rec(f, 4, false, 0, 8, &[]); // [4] struct point___v2
    b.rec(p, 8, false, 0, 2, &[]); // [5] typedef point
    let a = b.s("pointA");
    b.rec(a, 4, false, 0, 4, &[]); // [6] struct pointA
    b.rec(0, 13, false, 1, 1, &[0, 3]); // [7] int (*)(struct point *)
    let g = b.s("get_x");
    b.rec(g, 12, false, 1, 7, &[]); // [8] FUNC get_x
    b.rec(p, 4, false, 0, 0, &[]); // [9] a second struct point
    let w = b.s("point___a___b");
    b.rec(w, 4, false, 0, 0, &[]); // [10] essential name point___a
    b
}

/// Every (name, kind) of `btf` plus a few absent ones.
fn queries(btf: &Btf<'_>) -> Vec<(String, Kind)> {
    let mut q: Vec<(String, Kind)> = btf
        .types()
        .filter(|t| t.name_off().0 != 0)
        .map(|t| (String::from(btf.name(&t).unwrap()), t.kind()))
        .collect();
    q.extend([
        (String::from("absent"), Kind::Struct),
        (String::from("point"), Kind::Union),
        (String::from("poin"), Kind::Struct),
        (String::from("point___"), Kind::Struct),
    ]);
    q
}

fn name_kind(btf: &Btf<'_>, id: Option<TypeId>) -> Option<(String, Kind)> {
    let t = btf.get(id?)?;
    Some((String::from(btf.name(&t).ok()?), t.kind()))
}

#[test]
fn sorting_is_detected_and_binary_search_agrees_with_the_index() {
    for e in BOTH {
        let bytes = sample(e).build();
        let plain = Btf::parse(&bytes).unwrap();
        assert!(!plain.is_sorted_by_name());
        let sorted_bytes = sort_by_name(&plain).unwrap();
        let sorted = Btf::parse(&sorted_bytes).unwrap();
        assert!(sorted.is_sorted_by_name());
        assert!(!sorted.has_index());
        // Re-sorting sorted BTF changes nothing.
        assert_eq!(sort_by_name(&sorted).unwrap(), sorted_bytes);
        for (name, kind) in queries(&plain) {
            let a = name_kind(&plain, plain.find_by_name_kind(&name, kind));
            let b = name_kind(&sorted, sorted.find_by_name_kind(&name, kind));
            assert_eq!(a, b, "{name} {kind:?}");
            let ess = essential_name(&name);
            let names = |btf: &Btf<'_>| {
                let mut v: Vec<String> = btf
                    .find_essential(ess, kind)
                    .unwrap()
                    .into_iter()
                    .map(|id| name_kind(btf, Some(id)).unwrap().0)
                    .collect();
                v.sort();
                v
            };
            assert_eq!(names(&plain), names(&sorted), "{ess} {kind:?}");
        }
        // The flavors of `point`, and not `pointA` or `point___a___b`.
        let mut f: Vec<String> = sorted
            .find_essential("point", Kind::Struct)
            .unwrap()
            .into_iter()
            .map(|id| name_kind(&sorted, Some(id)).unwrap().0)
            .collect();
        f.sort();
        assert_eq!(f, ["point", "point", "point___v2"]);
        assert!(!sorted.has_index(), "sorted lookups never build the index");
        // References were renumbered: the FUNC still points at its proto.
        let func = sorted.find_by_name_kind("get_x", Kind::Func).unwrap();
        let proto = sorted.type_by_id(func).unwrap().type_id();
        assert_eq!(sorted.type_by_id(proto).unwrap().kind(), Kind::FuncProto);
    }
}

#[test]
fn a_named_type_before_an_anonymous_one_is_not_sorted() {
    for e in BOTH {
        let mut b = Builder::new(e);
        b.int("a", 4, 0, 32);
        b.rec(0, 2, false, 0, 1, &[]);
        assert!(!Btf::parse(&b.build()).unwrap().is_sorted_by_name());
        let mut b = Builder::new(e);
        b.int("b", 4, 0, 32);
        b.int("a", 4, 0, 32);
        assert!(!Btf::parse(&b.build()).unwrap().is_sorted_by_name());
        let mut b = Builder::new(e);
        b.rec(0, 2, false, 0, 0, &[]);
        b.int("a", 4, 0, 32);
        b.int("a", 2, 0, 16);
        b.int("b", 4, 0, 32);
        let bytes = b.build();
        let btf = Btf::parse(&bytes).unwrap();
        assert!(btf.is_sorted_by_name());
        assert_eq!(btf.find_by_name_kind("a", Kind::Int), Some(TypeId(2)));
        assert_eq!(btf.find_by_name_kind("b", Kind::Int), Some(TypeId(4)));
        assert_eq!(btf.find_by_name_kind("c", Kind::Int), None);
    }
}

#[test]
fn find_many_and_prefetch_agree_with_single_lookups() {
    for e in BOTH {
        let bytes = sample(e).build();
        let scan = Btf::parse(&bytes).unwrap();
        let indexed = Btf::parse(&bytes).unwrap();
        let q = queries(&scan);
        let wants: Vec<(&str, Kind)> = q.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        let many = scan.find_many(&wants).unwrap();
        assert!(!scan.has_index(), "one pass, no index");
        for (&(n, k), got) in wants.iter().zip(&many) {
            assert_eq!(*got, indexed.find_by_name_kind(n, k), "{n} {k:?}");
        }
        // The lowest id of two with one name and kind.
        assert_eq!(
            scan.find_many(&[("point", Kind::Struct)]).unwrap(),
            [Some(TypeId(2))]
        );
        // Asking for nothing settles nothing.
        scan.prefetch(&[]).unwrap();
        scan.prefetch(&wants).unwrap();
        for &(n, k) in &wants {
            assert_eq!(
                scan.find_by_name_kind(n, k),
                indexed.find_by_name_kind(n, k)
            );
        }
        assert!(!scan.has_index());
        // A second load asking for something new: the index pays.
        scan.prefetch(&[("int", Kind::Int), ("get_x", Kind::Typedef)])
            .unwrap();
        assert!(scan.has_index());
        // With the index built, find_many uses it.
        assert_eq!(scan.find_many(&wants).unwrap(), many);
    }
}

#[test]
fn find_many_searches_the_base_first() {
    for e in BOTH {
        let base_bytes = sample(e).build();
        let base = Btf::parse(&base_bytes).unwrap();
        let mut m = Builder::new_split(e);
        let start = base.strings().len() as u32;
        let n = m.s("mod_struct") + start;
        m.rec(n, 4, false, 0, 4, &[]); // [11]
        // `int` again: the base's wins.
        let i = m.s("int") + start;
        m.rec(i, 1, false, 0, 4, &[32]); // [12]
        let bytes = m.build();
        let split = Btf::parse_split(&bytes, &base).unwrap();
        let got = split
            .find_many(&[
                ("mod_struct", Kind::Struct),
                ("int", Kind::Int),
                ("x", Kind::Int),
            ])
            .unwrap();
        assert_eq!(got, [Some(TypeId(11)), Some(TypeId(1)), None]);
        assert_eq!(
            split.find_own_by_name_kind("int", Kind::Int),
            Some(TypeId(12))
        );
        // A sorted split keeps its base's ids.
        let sorted_bytes = sort_by_name(&split).unwrap();
        let sorted = Btf::parse_split(&sorted_bytes, &base).unwrap();
        assert!(sorted.is_sorted_by_name());
        assert_eq!(
            sorted.find_own_by_name_kind("int", Kind::Int),
            Some(TypeId(11))
        );
        assert_eq!(
            sorted.find_by_name_kind("mod_struct", Kind::Struct),
            Some(TypeId(12))
        );
    }
}
