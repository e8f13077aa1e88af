//! `ember object inspect` against libbpf: for every fixture, the programs
//! (name, section, type, expected attach type, instruction count) and maps
//! (name, type, key/value size, max_entries, flags) must equal what the
//! system's libbpf reports after an open-only `bpf_object__open_file`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ember::ember_core::object::{Object, object_name};
use ember::inspect::{Report, report};
use ember_tests::fixture;

/// Builds the C oracle once per test binary.
fn oracle() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        ember_tests::build_oracle("libbpf_inspect", Path::new(env!("CARGO_TARGET_TMPDIR")))
    })
    .as_deref()
}

struct Oracle {
    programs: Vec<Vec<String>>,
    maps: Vec<Vec<String>>,
}

fn libbpf(bin: &Path, obj: &Path) -> Result<Oracle, String> {
    let out = Command::new(bin).arg(obj).output().expect("run oracle");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut o = Oracle {
        programs: Vec::new(),
        maps: Vec::new(),
    };
    for line in text.lines() {
        let f: Vec<String> = line.split('\t').map(str::to_owned).collect();
        match f.first().map(String::as_str) {
            Some("P") => o.programs.push(f[1..].to_vec()),
            Some("M") => o.maps.push(f[1..].to_vec()),
            _ => panic!("unexpected oracle line {line:?}"),
        }
    }
    Ok(o)
}

fn ember(path: &Path) -> Report {
    let bytes = std::fs::read(path).expect("read fixture");
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let obj = Object::parse(&bytes, object_name(name))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    report(&obj, name)
}

/// libbpf's expected attach type for sections that imply none is 0.
fn attach_number(name: Option<&str>) -> u32 {
    use ember::ember_core::object::AttachType;
    match name {
        None => 0,
        Some(n) => (0..64)
            .map(AttachType)
            .find(|a| a.name() == Some(n))
            .map(|a| a.0)
            .expect("known attach type"),
    }
}

fn compare(fixture_name: &str) {
    let Some(bin) = oracle() else { return };
    let path = fixture(fixture_name);
    let want = libbpf(bin, &path).unwrap_or_else(|e| panic!("libbpf: {e}"));
    let got = ember(&path);
    let ours: Vec<Vec<String>> = got
        .programs
        .iter()
        .map(|p| {
            vec![
                p.name.clone(),
                p.section.clone(),
                p.prog_type.unwrap_or("unspec").to_owned(),
                attach_number(p.attach_type).to_string(),
                p.insns.to_string(),
            ]
        })
        .collect();
    assert_eq!(
        ours, want.programs,
        "{fixture_name}: programs differ from libbpf"
    );
    let ours: Vec<Vec<String>> = got
        .maps
        .iter()
        .map(|m| {
            vec![
                m.name.clone(),
                m.map_type.clone(),
                m.key_size.to_string(),
                m.value_size.to_string(),
                m.max_entries.to_string(),
                m.flags.to_string(),
            ]
        })
        .collect();
    assert_eq!(ours, want.maps, "{fixture_name}: maps differ from libbpf");
}

#[test]
fn maps_match_libbpf() {
    compare("maps.bpf-el.o");
}

#[test]
fn sections_match_libbpf() {
    compare("sections.bpf-el.o");
}

#[test]
fn globals_and_externs_match_libbpf() {
    compare("globals.bpf-el.o");
}

#[test]
fn btf_kinds_match_libbpf() {
    compare("btf_kinds.bpf-el.o");
}

#[test]
fn big_endian_objects_read_the_same() {
    // libbpf refuses foreign-endian objects; ember reads them, and must
    // see exactly what it sees in the little-endian build.
    for f in [
        "maps",
        "globals",
        "sections",
        "btf_kinds",
        "legacy_maps",
        "sections_new",
    ] {
        let mut el = ember(&fixture(&format!("{f}.bpf-el.o")));
        let mut eb = ember(&fixture(&format!("{f}.bpf-eb.o")));
        assert_eq!((el.endian, eb.endian), ("little", "big"));
        el.endian = "";
        eb.endian = "";
        el.object.clear();
        eb.object.clear();
        assert_eq!(el.to_json(), eb.to_json(), "{f}");
    }
}

#[test]
fn legacy_maps_libbpf_refuses_ember_reads() {
    let path = fixture("legacy_maps.bpf-el.o");
    if let Some(bin) = oracle() {
        let e = libbpf(bin, &path)
            .err()
            .expect("libbpf 1.x refuses legacy maps");
        assert!(e.contains("legacy map"), "{e}");
    }
    let r = ember(&path);
    // The values of the two `struct bpf_map_def`s in legacy_maps.bpf.c.
    let maps: Vec<_> = r
        .maps
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.map_type.as_str(),
                m.key_size,
                m.value_size,
                m.max_entries,
                m.flags,
                m.origin,
            )
        })
        .collect();
    assert_eq!(
        maps,
        [
            ("legacy_hash", "hash", 4, 8, 64, 1, "legacy"),
            ("legacy_array", "array", 4, 4, 2, 0, "legacy"),
        ]
    );
}

#[test]
fn sections_newer_than_the_oracle() {
    // Debian's libbpf 1.1 predates these names; the expected values are
    // libbpf 1.3+'s section table (tcx, netfilter, uprobe.multi).
    let r = ember(&fixture("sections_new.bpf-el.o"));
    let got: Vec<_> = r
        .programs
        .iter()
        .map(|p| (p.section.as_str(), p.prog_type, p.attach_type))
        .collect();
    assert_eq!(
        got,
        [
            ("tcx/ingress", Some("sched_cls"), Some("tcx_ingress")),
            ("tcx/egress", Some("sched_cls"), Some("tcx_egress")),
            ("netfilter", Some("netfilter"), Some("netfilter")),
            (
                "uprobe.multi//usr/bin/bash:read*",
                Some("kprobe"),
                Some("trace_uprobe_multi")
            ),
            ("tc/ingress", Some("sched_cls"), Some("tcx_ingress")),
        ]
    );
}

#[test]
fn json_has_the_documented_fields() {
    let r = ember(&fixture("globals.bpf-el.o"));
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
    let p = &v["programs"][0];
    for k in [
        "name",
        "section",
        "type",
        "attach_type",
        "insns",
        "core_relos",
    ] {
        assert!(p.get(k).is_some(), "program lacks {k}");
    }
    assert_eq!(p["core_relos"], 3);
    let m = &v["maps"][0];
    for k in [
        "name",
        "type",
        "key_size",
        "value_size",
        "max_entries",
        "flags",
    ] {
        assert!(m.get(k).is_some(), "map lacks {k}");
    }
    let ext: Vec<&str> = v["externs"]
        .as_array()
        .expect("externs")
        .iter()
        .map(|x| x["name"].as_str().expect("name"))
        .collect();
    assert!(ext.contains(&"bpf_task_acquire") && ext.contains(&"CONFIG_HZ"));
}

#[test]
fn btf_ext_records_resolve_to_functions() {
    let bytes = std::fs::read(fixture("globals.bpf-el.o")).expect("read");
    let obj = Object::parse(&bytes, "globals").expect("parse");
    let ext = obj.btf_ext.expect(".BTF.ext");
    let relos = obj.resolve(ext.core_relos()).expect("core relos");
    let names: Vec<&str> = relos
        .iter()
        .map(|(f, _, _)| obj.functions[f.index()].name)
        .collect();
    // Three in the program (pid, exists, type size), two in parent_tgid
    // (real_parent, tgid), as inspect counts them.
    assert_eq!(names.iter().filter(|n| **n == "on_newtask").count(), 3);
    assert_eq!(names.iter().filter(|n| **n == "parent_tgid").count(), 2);
    for (f, insn, _) in &relos {
        assert!(insn.0 < obj.functions[f.index()].len);
    }
    let lines = obj.resolve(ext.line_info()).expect("line info");
    let btf = obj.btf.as_ref().expect("btf");
    assert!(lines.iter().any(|(_, _, l)| {
        btf.str_at(l.line_off)
            .is_ok_and(|s| s.contains("bpf_task_acquire(t)"))
    }));
    let funcs = obj.resolve(ext.func_info()).expect("func info");
    assert!(
        funcs.iter().all(|(_, insn, _)| insn.0 == 0),
        "func_info marks function starts"
    );
    assert_eq!(funcs.len(), obj.functions.len());
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    for f in ["maps.bpf-el.o", "globals.bpf-eb.o"] {
        let bytes = std::fs::read(fixture(f)).expect("read");
        for n in (0..bytes.len()).step_by(3) {
            let _ = Object::parse(&bytes[..n], "t");
        }
        // Flip bytes across the file: still no panic.
        for i in (0..bytes.len()).step_by(5) {
            let mut b = bytes.clone();
            b[i] ^= 0xff;
            let _ = Object::parse(&b, "t");
        }
    }
}

#[test]
fn corrupt_btf_in_an_object_is_reported_at_its_file_offset() {
    let mut bytes = std::fs::read(fixture("maps.bpf-el.o")).expect("read");
    // Find .BTF's magic and break the version byte after it.
    let at = bytes
        .windows(4)
        .position(|w| w == [0x9f, 0xeb, 1, 0])
        .expect(".BTF magic");
    bytes[at + 2] = 9;
    let e = Object::parse(&bytes, "maps").expect_err("bad version");
    assert_eq!(e.section, Some(".BTF"));
    let e = e.malformed().expect("malformed .BTF");
    assert_eq!(e.kind(), ember::ember_core::ErrorKind::BadVersion(9));
    assert_eq!(e.offset(), at + 2);
}

/// Objects both ember and libbpf refuse: the CLI and the loader name what
/// is at fault (section, symbol, function or map), never a bare index or a
/// meaningless byte offset, and nothing panics.
#[test]
fn refused_objects_are_reported_by_name() {
    let cases: [(&str, &[&str]); 3] = [
        (
            "extern_memcmp",
            &["section 'socket'", "function 'cmp'", "'memcmp'", "__ksym"],
        ),
        (
            "static_prog",
            &[
                "section 'kprobe/do_unlinkat'",
                "program 'hidden_probe' is static",
            ],
        ),
        (
            "map_def",
            &[
                "section '.maps'",
                "map 'events'",
                "attribute 'max_entries'",
                "found INT",
            ],
        ),
    ];
    for (name, want) in cases {
        for e in ["el", "eb"] {
            let path = fixture(&format!("bad/{name}.bpf-{e}.o"));
            let out = Command::new(ember_tests::ember_bin())
                .args(["object", "inspect"])
                .arg(&path)
                .output()
                .expect("run ember");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}-{e}: {stderr}");
            for w in want {
                assert!(stderr.contains(w), "{name}-{e}: no {w:?} in {stderr}");
            }
            assert!(
                !stderr.contains("at byte") && !stderr.contains("panicked"),
                "{stderr}"
            );
            // The loader refuses it the same way, before any system call.
            if e == "el" {
                let err = ember::EbpfLoader::new()
                    .load_file(&path)
                    .expect_err("load refused");
                let msg = err.to_string();
                for w in want {
                    assert!(msg.contains(w), "{name}: no {w:?} in {msg}");
                }
            }
            // libbpf refuses it too.
            if let Some(bin) = oracle() {
                assert!(libbpf(bin, &path).is_err(), "{name}-{e}: libbpf accepts it");
            }
        }
    }
}
