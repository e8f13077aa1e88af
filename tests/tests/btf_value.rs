//! The BTF value decoder (`ember map dump`, `ember run --event`) on the
//! inputs its fuzz target found, replayed: each decodes quickly into a
//! bounded value.

use ember::btf_value::decode;
use ember::ember_core::btf::{Btf, TypeId};

#[test]
fn fuzz_regressions_btf_value() {
    let dir = ember_tests::root().join("fuzz/regressions/btf_value");
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("regressions") {
        let path = e.expect("entry").path();
        let input = std::fs::read(&path).expect("read");
        // The target's framing: [btf length: u16 LE][btf][data].
        let Some((len, rest)) = input.split_first_chunk::<2>() else {
            continue;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(rest.len());
        let (raw, data) = rest.split_at(len);
        let Ok(btf) = Btf::parse(raw) else { continue };
        for id in 1..=btf.type_count().min(64) {
            let v = decode(&btf, TypeId(id), data);
            // Output stays proportional to the data (32 bytes a byte, plus
            // 4 KiB), whatever the types say.
            let out = v.to_string().len();
            assert!(
                out <= 32 * data.len() + 4096 + 1024,
                "{}: type {id}: {out} bytes",
                path.display()
            );
        }
        n += 1;
    }
    assert!(n > 0, "no regression inputs");
}
