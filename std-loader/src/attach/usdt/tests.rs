//! SDT notes and argument specs, from hand-built bytes; malformed input
//! gives errors, never panics.

use super::*;

/// One SDT note (ELF64 little-endian) with these fields.
fn note(pc: u64, base: u64, sema: u64, strs: &[&str]) -> Vec<u8> {
    let mut desc = Vec::new();
    for a in [pc, base, sema] {
        desc.extend_from_slice(&a.to_le_bytes());
    }
    for s in strs {
        desc.extend_from_slice(s.as_bytes());
        desc.push(0);
    }
    let mut n = Vec::new();
    n.extend_from_slice(&8u32.to_le_bytes());
    n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    n.extend_from_slice(&NT_STAPSDT.to_le_bytes());
    n.extend_from_slice(b"stapsdt\0");
    n.extend_from_slice(&desc);
    n.resize(n.len().next_multiple_of(4), 0);
    n
}

#[test]
fn notes_parse() {
    let mut sec = note(0x1130, 0x2000, 0x4010, &["ember", "probe", "8@%rdi -4@$5"]);
    // A note of another owner in between is skipped.
    sec.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    sec.extend_from_slice(b"GNU\0");
    sec.extend(note(0x1200, 0, 0, &["ember", "other", ""]));
    let n = parse_notes(&sec, true, true).unwrap();
    assert_eq!(n.len(), 2);
    assert_eq!(
        n[0],
        UsdtNote {
            provider: "ember",
            name: "probe",
            args: "8@%rdi -4@$5",
            pc: 0x1130,
            base: 0x2000,
            semaphore: 0x4010,
        }
    );
    assert_eq!((n[1].name, n[1].args, n[1].semaphore), ("other", "", 0));
}

#[test]
fn malformed_notes_are_errors() {
    let good = note(0x1130, 0x2000, 0, &["p", "n", "8@%rax"]);
    assert!(parse_notes(&[], true, true).unwrap().is_empty());
    assert!(parse_notes(&[1, 2, 3], true, true).is_err());
    // Missing strings, empty provider, sizes past the end.
    assert!(parse_notes(&note(1, 2, 3, &["p"]), true, true).is_err());
    assert!(parse_notes(&note(1, 2, 3, &["", "n", ""]), true, true).is_err());
    let mut huge = good.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse_notes(&huge, true, true).is_err());
    huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(parse_notes(&huge, true, true).is_err());
    for len in 0..good.len() {
        let _ = parse_notes(&good[..len], true, true);
    }
    for i in 0..good.len() {
        let mut m = good.clone();
        m[i] ^= 0xff;
        let _ = parse_notes(&m, true, true);
        let _ = parse_notes(&m, false, false);
    }
}

#[test]
fn x86_64_arguments() {
    if !cfg!(target_arch = "x86_64") {
        assert!(parse_args("8@%rax").is_err());
        return;
    }
    let a = parse_args("-4@-20(%rbp) 8@%rax 2@$-9 1@(%rdi) 8@0x10(%rsp)").unwrap();
    assert_eq!(
        a[0],
        ArgSpec {
            val_off: (-20i64) as u64,
            kind: ArgKind::RegDeref,
            reg_off: 32,
            signed: true,
            bitshift: 32,
        }
    );
    assert_eq!(
        (a[1].kind, a[1].reg_off, a[1].bitshift),
        (ArgKind::Reg, 80, 0)
    );
    assert_eq!(
        (a[2].kind, a[2].val_off, a[2].bitshift),
        (ArgKind::Const, (-9i64) as u64, 48)
    );
    assert_eq!(
        (a[3].kind, a[3].val_off, a[3].reg_off),
        (ArgKind::RegDeref, 0, 112)
    );
    assert_eq!((a[4].val_off, a[4].reg_off), (0x10, 152));
    assert!(parse_args("").unwrap().is_empty());
    for bad in [
        "8",
        "3@%rax",
        "8@%xmm0",
        "8@foo(%rip)",
        "8@8(%rsp,%rdx,4)",
        "8@$",
        "8@-(%rax)",
        "@%rax",
        "99999999999999999999@%rax",
    ] {
        assert!(parse_args(bad).is_err(), "{bad}");
    }
    let many = vec!["8@%rax"; MAX_ARGS + 1].join(" ");
    assert!(parse_args(&many).is_err());
}

#[test]
fn spec_bytes() {
    let a = [ArgSpec {
        val_off: 7,
        kind: ArgKind::RegDeref,
        reg_off: 112,
        signed: true,
        bitshift: 32,
    }];
    let b = encode_spec(&a, 0xabc);
    assert_eq!(u64::from_ne_bytes(b[0..8].try_into().unwrap()), 7);
    assert_eq!(u32::from_ne_bytes(b[8..12].try_into().unwrap()), 2);
    assert_eq!(i16::from_ne_bytes(b[12..14].try_into().unwrap()), 112);
    assert_eq!((b[14], b[15]), (1, 32));
    assert_eq!(u64::from_ne_bytes(b[192..200].try_into().unwrap()), 0xabc);
    assert_eq!(i16::from_ne_bytes(b[200..202].try_into().unwrap()), 1);
    assert!(b[16..192].iter().all(|&x| x == 0));
}

#[test]
fn spec_ids_are_not_shared_until_released() {
    let a = take_ids(u32::MAX, 3, 4).unwrap();
    assert_eq!(a, [0, 1, 2]);
    assert!(take_ids(u32::MAX, 2, 4).is_none());
    let mut r = SpecIds {
        map_id: u32::MAX,
        ids: vec![1],
    };
    r.detach().unwrap();
    assert_eq!(take_ids(u32::MAX, 2, 4).unwrap(), [1, 3]);
}

#[test]
fn section_targets() {
    let t = UsdtTarget::parse("/usr/lib/libc.so.6:libc:setjmp").unwrap();
    assert_eq!(
        (t.binary.as_str(), t.provider.as_str(), t.name.as_str()),
        ("/usr/lib/libc.so.6", "libc", "setjmp")
    );
    assert_eq!(t.to_string(), "usdt '/usr/lib/libc.so.6:libc:setjmp'");
    for bad in ["", "a:b", "::", "a::c", ":b:c", "a:b:"] {
        assert!(UsdtTarget::parse(bad).is_err(), "{bad}");
    }
}
