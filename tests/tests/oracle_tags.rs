//! Program tags against libbpf (`tests/oracle/libbpf_load.c`): every
//! fixture is loaded whole, and each program it could not load that way
//! alone (the object's other programs' autoload off, on both sides), by
//! ember and by the system's libbpf, and
//! the kernel's tag of each (`BPF_OBJ_GET_INFO_BY_FD`: a hash of the
//! instructions the kernel was given, map fds zeroed) must be equal: the
//! same relocated, linked and patched instructions, in the same order.
//! A program one side loads and the other does not is a difference too.
//! Where ember differs from libbpf 1.1 by design, [`WEAK_KFUNC_POISON`]
//! lists it, and the test checks the difference is exactly that one.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::{EbpfLoader, ObjectSpec};
use ember_tests::{build_oracle, kernel_ready, open_fds, root, serial};

fn objects() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/fixtures"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".bpf-el.o"))
        .collect();
    v.sort();
    v
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// What libbpf loaded: each program's tag and the instructions it gave
/// the kernel, or why it loaded nothing.
#[derive(Debug, Default)]
struct Loaded {
    tags: Vec<(String, String)>,
    insns: Vec<(String, Insn)>,
}

/// One instruction slot as the oracle prints it: code, dst, src, off, imm.
type Insn = (u8, u8, u8, i16, i32);

/// Loads `obj` with libbpf, the programs in `off` left unloaded, the
/// program and attach types in `types` (`prog=type/attach`) set.
fn libbpf(oracle: &Path, obj: &Path, off: &[String], types: &[String]) -> Result<Loaded, String> {
    let mut cmd = Command::new(oracle);
    cmd.arg("-i");
    for o in off {
        cmd.arg("-x").arg(o);
    }
    for t in types {
        cmd.arg("-t").arg(t);
    }
    let out = cmd.arg(obj).output().expect("run oracle");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(stderr.lines().last().unwrap_or("").to_owned());
    }
    let mut l = Loaded::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            ["T", n, tag] => l.tags.push(((*n).to_owned(), (*tag).to_owned())),
            ["I", n, _, c, d, s, o, i] => l.insns.push((
                (*n).to_owned(),
                (
                    c.parse().expect("code"),
                    d.parse().expect("dst"),
                    s.parse().expect("src"),
                    o.parse().expect("off"),
                    i.parse().expect("imm"),
                ),
            )),
            _ => {}
        }
    }
    Ok(l)
}

/// Loads `obj` with ember, the programs in `off` left unloaded: each
/// loaded program's tag.
fn ember(obj: &Path, off: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut loader = EbpfLoader::new();
    for o in off {
        loader = loader.autoload(o, false);
    }
    let e = loader.load_file(obj).map_err(|e| e.to_string())?;
    e.programs()
        .iter()
        .map(|p| {
            let info = p.info().map_err(|e| e.to_string())?;
            Ok((p.name().to_owned(), hex(&info.tag)))
        })
        .collect()
}

/// SHA-256 (FIPS 180-4), for the kernel's program tag (its first 8
/// bytes; `bpf_prog_calc_tag`, SHA-256 since Linux 6.18, SHA-1 before).
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7]
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [
                t1.wrapping_add(t2),
                v[0],
                v[1],
                v[2],
                v[3].wrapping_add(t1),
                v[4],
                v[5],
                v[6],
            ];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 32];
    for (o, x) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// The tag the kernel gives `insns` (little-endian host): the hash of the
/// instructions with the immediates of map fd and map value loads zeroed,
/// as `bpf_prog_calc_tag` does.
/// The kernel's program tag hash: SHA-256 since 6.x, SHA-1 before.
#[derive(Debug, Clone, Copy)]
enum TagHash {
    Sha256,
    Sha1,
}

fn tag_with(insns: &[Insn], hash: TagHash) -> String {
    const LD_IMM64: u8 = 0x18;
    let mut bytes = Vec::with_capacity(insns.len() * 8);
    let mut was_ld_map = false;
    for &(code, dst, src, off, mut imm) in insns {
        if !was_ld_map && code == LD_IMM64 && (src == 1 || src == 2) {
            was_ld_map = true;
            imm = 0;
        } else if was_ld_map && code == 0 && dst == 0 && src == 0 && off == 0 {
            was_ld_map = false;
            imm = 0;
        } else {
            was_ld_map = false;
        }
        bytes.push(code);
        bytes.push(src << 4 | dst);
        bytes.extend_from_slice(&off.to_le_bytes());
        bytes.extend_from_slice(&imm.to_le_bytes());
    }
    match hash {
        TagHash::Sha256 => hex(&sha256(&bytes)[..8]),
        TagHash::Sha1 => hex(&sha1(&bytes)[..8]),
    }
}

/// SHA-1 (FIPS 180-4), the kernel's tag hash before SHA-256.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes(c.try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (o, x) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Where ember's tag of a program differs from libbpf 1.1's by design:
/// (fixture, program, absent weak kfunc it calls, why).
const WEAK_KFUNC_POISON: &[(&str, &str, &str)] =
    &[("load.bpf-el.o", "on_newtask", "ember_no_such_kfunc")];

/// Checks that ember's tag is that of libbpf's instructions with each
/// call to an absent weak kfunc poisoned as libbpf 1.7 poisons it
/// (`poison_kfunc_call`: `call 2002000000 + extern index`, src_reg 0),
/// where libbpf 1.1 leaves a kfunc call with BTF id 0. The extern index
/// is libbpf's: kconfig externs first, then ksyms by name, which is the
/// order of ember's extern table. Returns the explanation, or `None` when
/// the difference is not this one.
fn weak_kfunc_poisoned(
    spec: &ObjectSpec<'_>,
    file: &str,
    prog: &str,
    theirs: &Loaded,
    libbpf_tag: &str,
    ours: &str,
) -> Option<String> {
    let &(_, _, kfunc) = WEAK_KFUNC_POISON
        .iter()
        .find(|(f, p, _)| *f == file && *p == prog)?;
    let index = spec
        .object()
        .externs
        .iter()
        .position(|x| x.name == kfunc && x.weak)
        .expect("the weak kfunc is an extern");
    let mut insns: Vec<Insn> = theirs
        .insns
        .iter()
        .filter(|(n, _)| n == prog)
        .map(|(_, i)| *i)
        .collect();
    // The kernel's hash is the one that reproduces libbpf's own tag; if
    // neither does, the difference is not explained.
    let hash = [TagHash::Sha256, TagHash::Sha1]
        .into_iter()
        .find(|&h| tag_with(&insns, h) == libbpf_tag)?;
    let base = ember::ember_core::ksym::POISON_KFUNC_BASE;
    let mut poisoned = 0;
    for i in insns.iter_mut() {
        // libbpf 1.1's absent weak kfunc call: BPF_PSEUDO_KFUNC_CALL, id 0.
        if *i == (0x85, 0, 2, 0, 0) {
            *i = (0x85, 0, 0, 0, base + index as i32);
            poisoned += 1;
        }
    }
    (poisoned > 0 && tag_with(&insns, hash) == ours).then(|| {
        format!(
            "{poisoned} call(s) to absent weak kfunc {kfunc} poisoned as libbpf 1.7 does \
             (call {}); libbpf 1.1 emits a kfunc call with BTF id 0; every other \
             instruction is libbpf's",
            base + index as i32
        )
    })
}

/// Sections libbpf 1.1 does not know and ember does (following 1.7's
/// SEC() table); 1.1 cannot load them without being told the type.
const NEWER_SECTIONS: &[&str] = &["tcx/", "tc/", "netfilter", "uprobe.multi"];

/// `prog=type/attach` for each program in a section libbpf 1.1 does not
/// know, as ember's spec resolves it, so libbpf loads it the same way.
fn newer_section_types(spec: &mut ObjectSpec<'_>) -> Vec<String> {
    let progs: Vec<(String, String)> = spec
        .object()
        .programs()
        .map(|f| {
            let sec = spec.object().code_section(f.section).map_or("", |c| c.name);
            (f.name.to_owned(), sec.to_owned())
        })
        .filter(|(_, sec)| NEWER_SECTIONS.iter().any(|p| sec.starts_with(p)))
        .collect();
    progs
        .into_iter()
        .map(|(name, _)| {
            let p = spec.program_mut(&name).expect("program");
            format!(
                "{name}={}/{}",
                p.prog_type().map_or(0, |t| t.0),
                p.expected_attach_type().map_or(0, |a| a.0)
            )
        })
        .collect()
}

#[test]
fn sha1_matches_the_standard() {
    // FIPS 180 test vector "abc".
    assert_eq!(
        hex(&sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
}

#[test]
fn every_fixture_program_has_libbpfs_tag() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Some(oracle) = build_oracle("libbpf_load", dir) else {
        return;
    };
    let (mut same, mut by_design, mut neither) = (0, 0, 0);
    for obj in objects() {
        let file = obj
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&obj).expect("read fixture");
        let mut spec = match ObjectSpec::parse(&bytes, &file) {
            Ok(spec) => spec,
            Err(e) => panic!("{file}: ember cannot open it: {e}"),
        };
        // By design: libbpf 1.1 cannot load struct_ops objects whole (it
        // ignores `.struct_ops.link` and loads unused struct_ops programs
        // without a target: -524), and alone a struct_ops program needs
        // its map; their attach ids and registration are checked in
        // struct_ops.rs instead.
        if !spec.object().struct_ops.is_empty() {
            eprintln!("{file}: struct_ops object: tags not comparable with libbpf 1.1");
            continue;
        }
        let programs = spec.program_names();
        let types = newer_section_types(&mut spec);
        // The whole object first, then each program not compared yet on
        // its own, the others' autoload off on both sides.
        let mut runs: Vec<(Option<&String>, Vec<String>)> = vec![(None, Vec::new())];
        runs.extend(programs.iter().map(|p| {
            let off = programs.iter().filter(|o| *o != p).cloned().collect();
            (Some(p), off)
        }));
        let mut done: Vec<String> = Vec::new();
        for (alone, off) in runs {
            if alone.is_some_and(|p| done.contains(p)) {
                continue;
            }
            let what = alone.map_or_else(|| "all programs".to_owned(), |p| format!("{p} alone"));
            let before = open_fds();
            let theirs = libbpf(&oracle, &obj, &off, &types);
            let ours = ember(&obj, &off);
            assert_eq!(open_fds(), before, "{file} ({what}): fds leaked");
            match (ours, theirs) {
                (Ok(ours), Ok(theirs)) => {
                    let names = |v: &[(String, String)]| -> Vec<String> {
                        v.iter().map(|(n, _)| n.clone()).collect()
                    };
                    assert_eq!(
                        names(&ours),
                        names(&theirs.tags),
                        "{file} ({what}): loaded programs differ"
                    );
                    for ((prog, a), (_, b)) in ours.iter().zip(&theirs.tags) {
                        done.push(prog.clone());
                        if a == b {
                            same += 1;
                            continue;
                        }
                        match weak_kfunc_poisoned(&spec, &file, prog, &theirs, b, a) {
                            Some(why) => {
                                by_design += 1;
                                eprintln!(
                                    "{file}: {prog}: tag {a}, libbpf 1.1's {b}, by design: {why}"
                                );
                            }
                            None => {
                                panic!("{file} ({what}): {prog}: ember's tag {a}, libbpf's {b}")
                            }
                        }
                    }
                }
                (Err(a), Err(b)) => {
                    if alone.is_some() {
                        neither += 1;
                    }
                    eprintln!(
                        "{file} ({what}): neither loads; ember: {}; libbpf: {b}",
                        a.lines().next().unwrap_or("")
                    );
                }
                // By design: libbpf >= 1.0 refuses the legacy `maps`
                // section; ember loads it (its counts are compared in
                // load.rs).
                (Ok(_), Err(b)) if b.contains("cannot open") && file.starts_with("legacy_maps") => {
                    eprintln!("{file} ({what}): legacy maps: libbpf >= 1.0 refuses, ember loads");
                }
                // By design: libbpf 1.1 loads a struct_ops program that
                // no struct_ops map uses without a target, and gets
                // ENOTSUPP (-524); ember skips it, as libbpf >= 1.4 does
                // (1.1 also ignores `.struct_ops.link`). So the tags of
                // struct_ops objects cannot be compared with 1.1; the
                // struct_ops test checks their attach ids instead.
                (Ok(_), Err(b))
                    if b.contains("-524")
                        && spec.object().programs().any(|f| {
                            f.sec_def.is_some_and(|d| {
                                d.prog_type == ember::ember_core::object::ProgType::STRUCT_OPS
                            })
                        }) =>
                {
                    eprintln!("{file} ({what}): struct_ops: libbpf 1.1 fails (-524), ember loads");
                }
                (a, b) => panic!("{file} ({what}): ember {a:?}, libbpf {b:?}"),
            }
        }
    }
    eprintln!(
        "{same} programs with libbpf's tag, {by_design} different by design, {neither} loaded by neither"
    );
    assert!(same >= 10, "too few programs compared: {same}");
}

/// A prog array whose initializer names a program left unloaded: libbpf
/// (1.1, and 1.7 the same way) fails the load when it fills the slot
/// (EBADF); ember refuses too, naming the map, slot and program, rather
/// than leaving the slot silently empty.
#[test]
fn a_slot_naming_an_unloaded_program_fails_as_with_libbpf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let Some(oracle) = build_oracle("libbpf_load", dir) else {
        return;
    };
    let obj = root().join("tests/fixtures/pinned_slots.bpf-el.o");
    let off = ["slot_target".to_owned()];
    let before = open_fds();
    let theirs = libbpf(&oracle, &obj, &off, &[]).expect_err("libbpf loads it");
    assert!(theirs.contains("Bad file descriptor"), "{theirs}");
    let ours = ember(&obj, &off).expect_err("ember loads it");
    assert!(
        ours.contains("slot_jumps") && ours.contains("slot 0 holds program 'slot_target'"),
        "{ours}"
    );
    assert_eq!(open_fds(), before, "fds leaked");
}
