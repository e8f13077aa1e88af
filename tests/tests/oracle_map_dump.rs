//! `ember map dump` against `bpftool map dump`'s formatted view, entry by
//! entry, for a hash map whose key and value types have char arrays,
//! enums (named and unnamed values), nested arrays and structs,
//! bitfields, signed ints, a union and a bool (fixture attach/values).

use std::process::Command;

use ember::EbpfLoader;
use ember_tests::{ember_bin, fixture, kernel_ready, serial, skip, tool};
use serde_json::Value;

/// A value laid out as `struct value` (64 bytes), from a seed.
fn value(seed: u8) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    let s = i64::from(seed);
    v[0..8].copy_from_slice(&(s * 1_000_003).to_ne_bytes());
    // Named enumerators and one value the enum does not name.
    let color: u32 = [1, 2, 40, 7][usize::from(seed % 4)];
    v[8..12].copy_from_slice(&color.to_ne_bytes());
    for (i, x) in [-s, s, s * 3].iter().enumerate() {
        let at = 12 + 4 * i;
        v[at..at + 4].copy_from_slice(&(*x as i32).to_ne_bytes());
    }
    // flags:3 and mode:5 share byte 24.
    v[24] = (seed & 7) | ((seed.wrapping_mul(5) & 31) << 3);
    v[26..28].copy_from_slice(&(-(s as i16) - 1).to_ne_bytes());
    // The label fills all six bytes for odd seeds (no NUL).
    let label: &[u8] = match seed % 4 {
        1 | 3 => b"sixsix",
        2 => b"ab",
        // Text after the NUL, and a non-printable byte.
        _ => b"x\0y\x01",
    };
    v[28..28 + label.len()].copy_from_slice(label);
    for (i, x) in [s, -s, 2 * s, -2 * s].iter().enumerate() {
        let at = 34 + 2 * i;
        v[at..at + 2].copy_from_slice(&(*x as i16).to_ne_bytes());
    }
    v[44..48].copy_from_slice(&(0x0101_0101u32 * u32::from(seed)).to_ne_bytes());
    v[48..56].copy_from_slice(&(-s * 1_000_000_007).to_ne_bytes());
    v[56] = seed.wrapping_mul(37);
    v[57] = seed % 2;
    v
}

fn key(seed: u8) -> Vec<u8> {
    let mut k = vec![0u8; 12];
    k[0..4].copy_from_slice(&u32::from(seed).to_ne_bytes());
    let name: &[u8] = match seed % 3 {
        0 => b"",
        1 => b"k",
        _ => b"eightchr",
    };
    k[4..4 + name.len()].copy_from_slice(name);
    k
}

/// Entries sorted by their key's JSON text, so both sides line up.
fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|e| e["key"].to_string());
    v
}

#[test]
fn map_dump_matches_bpftool_formatted() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(bpftool) = tool("bpftool") else {
        skip("bpftool is not installed (apt-get install bpftool)");
        return;
    };
    let ebpf = EbpfLoader::new()
        .load_file(fixture("attach/values.bpf-el.o"))
        .expect("load");
    let map = ebpf.map("values").expect("values");
    for seed in 1..=4u8 {
        map.update(&key(seed), &value(seed), 0).expect("update");
    }
    let id = ember::ember_sys::map_info(map.fd()).expect("info").id.0;
    let out = Command::new(bpftool)
        .args(["-j", "map", "dump", "id", &id.to_string()])
        .output()
        .expect("bpftool");
    assert!(out.status.success(), "{out:?}");
    let theirs: Vec<Value> = serde_json::from_slice(&out.stdout).expect("bpftool json");
    let theirs: Vec<Value> = theirs.into_iter().map(|e| e["formatted"].clone()).collect();
    assert_eq!(theirs.len(), 4);

    let out = Command::new(ember_bin())
        .args(["map", "dump", &id.to_string()])
        .output()
        .expect("ember");
    assert!(out.status.success(), "{out:?}");
    let ours: Vec<Value> = serde_json::from_slice(&out.stdout).expect("ember json");
    let (ours, theirs) = (sorted(ours), sorted(theirs));
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o, t, "ember vs bpftool");
    }
    assert_eq!(ours.len(), theirs.len());
}
