//! Small kernel text files from arbitrary bytes, chosen by the first byte:
//! kernel config (`/proc/config.gz` inflated, or `/boot/config-*`) with
//! every value encoded for each kind of `.kconfig` extern; sysfs CPU lists;
//! PMU `format/retprobe` lines; kernel release strings, and the version
//! code libbpf reads from a release, `uname -v` and Ubuntu's signature.
//! None panics, each is deterministic and allocates in proportion to the
//! input, and what is parsed, written back as the kernel writes it, parses
//! to the same.
#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use ember::ember_sys::cpu::{MAX_CPU, count_possible, parse_cpu_list};
use ember::ember_sys::perf::parse_config_bit;
use ember::load::kconfig::{encode, parse_config};
use ember_core::Endian;
use ember_core::btf::encode::{Body, Encoder, TypeRecord};
use ember_core::btf::{Array, Btf, Enumerator, TypeId};
use ember_core::load::{kernel_version, running_version_code};
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

/// What a `.kconfig` extern can be declared as.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ty {
    /// Size in bytes, signed (1-byte ints are chars to libbpf).
    Int(usize, bool),
    Bool,
    /// A `BTF_INT_CHAR` byte.
    Char,
    /// `enum libbpf_tristate`.
    Tristate,
    /// `char[8]`.
    Str,
}

const TYPES: [Ty; 12] = [
    Ty::Int(1, false),
    Ty::Int(1, true),
    Ty::Int(2, false),
    Ty::Int(2, true),
    Ty::Int(4, false),
    Ty::Int(4, true),
    Ty::Int(8, false),
    Ty::Int(8, true),
    Ty::Bool,
    Ty::Char,
    Ty::Tristate,
    Ty::Str,
];

/// One BTF holding every type of `TYPES`, in order from id 1.
fn btf_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let mut e = Encoder::new(Endian::NATIVE);
        let name = e.add_str("t").unwrap();
        let tristate = e.add_str("libbpf_tristate").unwrap();
        let vals: Vec<Enumerator> = ["TRI_NO", "TRI_YES", "TRI_MODULE"]
            .iter()
            .zip(0..)
            .map(|(n, value)| Enumerator {
                name_off: e.add_str(n).unwrap(),
                value,
            })
            .collect();
        let int = |size: u32, encoding: u8| Body::Int {
            size,
            encoding,
            offset: 0,
            bits: (size * 8) as u8,
        };
        let mut char_id = TypeId(0);
        for t in TYPES {
            let (n, body) = match t {
                Ty::Int(size, signed) => (name, int(size as u32, u8::from(signed))),
                Ty::Bool => (name, int(1, 4)),
                Ty::Char => (name, int(1, 2)),
                Ty::Tristate => (
                    tristate,
                    Body::Enum {
                        size: 4,
                        values: &vals,
                    },
                ),
                Ty::Str => (
                    name,
                    Body::Array(Array {
                        elem_type: char_id,
                        index_type: TypeId(5),
                        nelems: 8,
                    }),
                ),
            };
            let id = e.add(&TypeRecord::named(n, body)).unwrap();
            if t == Ty::Char {
                char_id = id;
            }
        }
        e.finish().unwrap()
    })
}

fn size_of(t: Ty) -> usize {
    match t {
        Ty::Int(n, _) => n,
        Ty::Bool | Ty::Char => 1,
        Ty::Tristate => 4,
        Ty::Str => 8,
    }
}

fn read(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    if cfg!(target_endian = "big") {
        w[8 - b.len()..].copy_from_slice(b);
        u64::from_be_bytes(w)
    } else {
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    }
}

/// Whether `x` fits `bits` bits, as a signed or unsigned integer.
fn fits(x: u64, bits: u32, signed: bool) -> bool {
    if bits == 64 {
        true
    } else if signed {
        let s = x as i64;
        s >= -(1i64 << (bits - 1)) && s < (1i64 << (bits - 1))
    } else {
        x >> bits == 0
    }
}

/// Every value encoded for every type: deterministic, a refusal names
/// the value, and what is taken follows libbpf's rules (checked against
/// libbpf itself by tests/tests/kconfig_oracle.rs): a leading `y`/`n`/`m`
/// for bools (not `m`), chars (the letter) and tristates; a quoted string
/// for the char array; otherwise a number, as `strtoull` reads it, for
/// ints and chars that hold it.
fn encode_all(btf: &Btf<'_>, v: &str) {
    let mut out: Vec<Option<Vec<u8>>> = Vec::new();
    for (i, t) in TYPES.iter().enumerate() {
        let id = TypeId(i as u32 + 1);
        let mut a = vec![0u8; size_of(*t)];
        let mut b = vec![0u8; size_of(*t)];
        let ra = encode(btf, id, v, &mut a);
        let rb = encode(btf, id, v, &mut b);
        assert_eq!(ra, rb, "{t:?} {v:?}");
        assert_eq!(a, b);
        if let Err(e) = &ra {
            assert!(
                e.contains(v) || v.is_empty(),
                "the error names the value: {e}"
            );
        }
        out.push(ra.ok().map(|()| a));
    }
    let first = v.as_bytes().first().copied();
    let number = strtoull(v);
    for (t, got) in TYPES.iter().zip(&out) {
        let byte = matches!(t, Ty::Int(1, _) | Ty::Char);
        match first {
            None => assert!(got.is_none(), "{t:?}: no value"),
            Some(c @ (b'y' | b'n' | b'm')) => {
                let want = match t {
                    Ty::Bool if c != b'm' => Some(u64::from(c == b'y')),
                    Ty::Tristate => Some(match c {
                        b'y' => 1,
                        b'm' => 2,
                        _ => 0,
                    }),
                    _ if byte => Some(u64::from(c)),
                    _ => None,
                };
                assert_eq!(got.as_deref().map(read), want, "{t:?} {v:?}");
            }
            Some(b'"') => match (t, got) {
                (Ty::Str, Some(b)) => {
                    assert!(v.len() >= 2 && v.ends_with('"'));
                    let n = (v.len() - 2).min(7);
                    assert_eq!(&b[..n], &v.as_bytes()[1..1 + n]);
                    assert_eq!(b[n], 0, "the string keeps its NUL");
                }
                (Ty::Str, None) => assert!(v.len() < 2 || !v.ends_with('"')),
                (_, got) => assert!(got.is_none(), "{t:?} {v:?}"),
            },
            Some(_) => {
                let (bits, signed) = match t {
                    Ty::Int(n, signed) => (8 * *n as u32, *signed),
                    Ty::Char => (8, false),
                    _ => {
                        assert!(got.is_none(), "{t:?} {v:?}");
                        continue;
                    }
                };
                let want = number.filter(|&x| fits(x, bits, signed));
                let mask = if bits == 64 {
                    u64::MAX
                } else {
                    (1 << bits) - 1
                };
                assert_eq!(
                    got.as_deref().map(read),
                    want.map(|x| x & mask),
                    "{t:?} {v:?}"
                );
            }
        }
    }
}

/// C's `strtoull(v, &end, 0)` with `*end == '\0'` required, written out
/// digit by digit: the reference the encoder's numbers are checked
/// against (libbpf's `parse_u64`).
fn strtoull(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    let mut i = 0;
    while b
        .get(i)
        .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        i += 1;
    }
    let neg = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let radix = if matches!(b.get(i..i + 2), Some(b"0x" | b"0X")) {
        i += 2;
        16
    } else if b.get(i) == Some(&b'0') && i + 1 < b.len() {
        i += 1;
        8
    } else {
        10
    };
    if i >= b.len() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in &b[i..] {
        let d = char::from(c).to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

fn kconfig(text: &str) {
    let live = common::reset_peak();
    let parsed = parse_config(text);
    // Per option: key and value copied, and a map slot (two (String,
    // String) buckets at most per entry while the table grows); the
    // shortest option line is 10 bytes (`CONFIG_=x\n`).
    let peak = common::peak_since(live);
    assert!(
        peak <= 32 * text.len() + 4096,
        "parse allocated {peak} for {} bytes",
        text.len()
    );
    assert_eq!(parsed, parse_config(text), "the same map twice");
    // libbpf refuses a whole config for one CONFIG_ line without `=` or
    // without a value, and only then.
    // (The text ends at a NUL, as libbpf's C string does.)
    let malformed = text
        .split('\0')
        .next()
        .unwrap_or_default()
        .split('\n')
        .any(|l| l.starts_with("CONFIG_") && l.split_once('=').is_none_or(|(_, v)| v.is_empty()));
    let Ok(m) = parsed else {
        assert!(malformed, "refused a config with no malformed line");
        return;
    };
    assert!(!malformed, "took a config with a malformed line");
    for (k, v) in &m {
        assert!(k.starts_with("CONFIG_") && !k.contains('='), "{k:?}");
        assert!(!v.ends_with('\r') && !v.contains('\0'), "{v:?}");
    }
    // Written back one `K=V` line each (CRLF, so an empty value is still
    // a value), the options parse the same.
    let sorted: BTreeMap<_, _> = m.iter().collect();
    let back: String = sorted.iter().map(|(k, v)| format!("{k}={v}\r\n")).collect();
    assert_eq!(parse_config(&back), Ok(m.clone()), "written back");
    let btf = Btf::parse(btf_bytes()).expect("the fixed BTF parses");
    for v in sorted.values().take(16) {
        encode_all(&btf, v);
    }
}

fn cpu_list(text: &str) {
    let live = common::reset_peak();
    let a = parse_cpu_list(text);
    // At most MAX_CPU + 1 u32s, allocated while growing (old and new
    // buffer at once), whatever the input.
    let peak = common::peak_since(live);
    assert!(
        peak <= 3 * 4 * (MAX_CPU as usize + 1) + 64,
        "allocated {peak}"
    );
    assert_eq!(a, parse_cpu_list(text), "the same list twice");
    let Ok(cpus) = a else { return };
    assert!(cpus.len() <= MAX_CPU as usize + 1);
    assert!(cpus.iter().all(|&c| c <= MAX_CPU));
    let back = cpus
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(parse_cpu_list(&back).as_ref(), Ok(&cpus), "written back");
    let mut distinct = cpus.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let max = cpus.iter().copied().max().unwrap_or(0);
    match count_possible(text, max) {
        Ok(n) => assert_eq!(n as usize, cpus.len()),
        Err(_) => assert!(cpus.is_empty() || distinct.len() != cpus.len()),
    }
}

fn format_bit(text: &str) {
    let live = common::reset_peak();
    let bit = parse_config_bit(text);
    assert_eq!(common::peak_since(live), 0, "nothing allocated");
    assert_eq!(bit, parse_config_bit(text));
    if let Some(b) = bit {
        assert!(b < 64);
        assert!(text.trim().starts_with("config:"));
        assert_eq!(parse_config_bit(&format!("config:{b}\n")), Some(b));
        assert_eq!(parse_config_bit(&format!("config:{b}-63")), Some(b));
    }
}

fn release(text: &str) {
    let live = common::reset_peak();
    let v = kernel_version(text);
    assert_eq!(common::peak_since(live), 0, "nothing allocated");
    assert_eq!(v, kernel_version(text));
    assert!(v <= 0xff_ffff, "three bytes: {v:#x}");
    let (a, b, c) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
    assert_eq!(
        kernel_version(&format!("{a}.{b}.{c}-1-amd64")),
        v,
        "written back"
    );
    version_code(text);
}

/// libbpf's version code from the release, `uname -v` and Ubuntu's
/// version signature: the text's first three lines.
fn version_code(text: &str) {
    let mut lines = text.splitn(3, '\n');
    let release = lines.next().unwrap_or_default();
    let uname = lines.next().unwrap_or_default();
    let signature = lines.next();
    let live = common::reset_peak();
    let v = running_version_code(release, uname, signature);
    assert_eq!(common::peak_since(live), 0, "nothing allocated");
    assert_eq!(v, running_version_code(release, uname, signature));
    assert!(v <= 0xff_ffff, "three bytes: {v:#x}");
    if signature.is_none() && !uname.contains("Debian ") {
        assert_eq!(v, kernel_version(release), "the release alone");
    }
    // Written back as each source writes it, each wins over the release.
    let (a, b, c) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
    let ubuntu = format!("Ubuntu 5.4.0-12.15-generic {a}.{b}.{c}");
    assert_eq!(running_version_code(release, uname, Some(&ubuntu)), v);
    let debian = format!("#1 SMP PREEMPT_DYNAMIC Debian {a}.{b}.{c}-1 (2022-09-29)");
    assert_eq!(running_version_code(release, &debian, None), v);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = core::str::from_utf8(rest) else {
        return;
    };
    match which % 4 {
        0 => kconfig(text),
        1 => cpu_list(text),
        2 => format_bit(text),
        _ => release(text),
    }
});
