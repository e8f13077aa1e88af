//! The encoder's round trip: any raw BTF that parses re-encodes to a blob
//! that parses to the same types, record by record, and re-encoding that
//! again is the identity (the first re-encoding is canonical). The same in
//! the other byte order. Re-encoding allocates in proportion to the input
//! and gives the same bytes twice.
#![no_main]

use ember_core::Endian;
use ember_core::btf::Btf;
use ember_core::btf::encode::{Scratch, reencode, reencode_as};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fn same_types(a: &Btf<'_>, b: &Btf<'_>) {
    assert_eq!(a.type_count(), b.type_count());
    assert_eq!(a.strings(), b.strings());
    let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
    for (x, y) in a.types().zip(b.types()) {
        assert_eq!(x.to_record(&mut s1).unwrap(), y.to_record(&mut s2).unwrap());
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data) else { return };
    let live = common::reset_peak();
    let out = reencode(&btf).expect("a parsed BTF re-encodes");
    // The string section copied, the type records (a growing Vec: up to
    // twice their size, and the old buffer while it moves), the output.
    let peak = common::peak_since(live);
    assert!(
        peak <= 8 * data.len() + 4096,
        "re-encoding allocated {peak} for {} bytes",
        data.len()
    );
    assert_eq!(reencode(&btf).unwrap(), out, "the same bytes twice");
    let again = Btf::parse(&out).expect("re-encoded BTF parses");
    same_types(&btf, &again);
    assert_eq!(
        reencode(&again).unwrap(),
        out,
        "canonical output is a fixed point"
    );
    let other = match btf.endian() {
        Endian::Little => Endian::Big,
        Endian::Big => Endian::Little,
    };
    // Unknown kinds (described by a layout section) cannot be byte-swapped.
    if let Ok(swapped) = reencode_as(&btf, other) {
        let s = Btf::parse(&swapped).expect("swapped BTF parses");
        same_types(&btf, &s);
        assert_eq!(reencode_as(&s, btf.endian()).unwrap(), out);
    }
});
