//! `ember core check`: the portability matrix over a tree of kernel BTFs —
//! this machine's vmlinux, Debian 6.1's (ELF), and variants of this
//! machine's made with the BTF encoder (a field removed, renamed, resized;
//! a type missing; an attach target and a kfunc missing; one packed as
//! btfhub's `.btf.tar.xz`). Every expected failure is asserted exactly,
//! the poisoned relocations are cross-checked against `ember core
//! explain` (the same solver, another path through it) and against
//! libbpf (the oracle, `btf_custom_path`), and the CLI's `--json` rows
//! must equal the library's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ember::btf_tree::{TreeBtf, scan};
use ember::check::{CheckObject, Row, check_btf};
use ember::ember_core::btf::encode::{Body, Encoder, Scratch};
use ember::ember_core::btf::{Btf, Kind, Member};
use ember::ember_core::object::{Object, object_name};
use ember_tests::{build_oracle, ember_bin, fixture, is_root, kernel_btf_dir, serial, skip, tool};

const SYSFS: &str = "/sys/kernel/btf/vmlinux";

/// A scratch directory, removed when dropped (also when a test fails).
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("check-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Tmp(d)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One change to a BTF, made through the encoder.
enum Edit<'s> {
    /// Drop member `.1` of struct `.0`.
    RemoveMember(&'s str, &'s str),
    /// Rename member `.1` of struct `.0` to `.2`.
    RenameMember(&'s str, &'s str, &'s str),
    /// Give member `.1` of struct `.0` the INT type named `.2`.
    RetypeMember(&'s str, &'s str, &'s str),
    /// Rename the type of that name and kind.
    RenameType(&'s str, Kind, &'s str),
}

/// `btf` re-encoded with `edits` applied (type ids unchanged).
fn variant(btf: &Btf<'_>, edits: &[Edit<'_>]) -> Vec<u8> {
    let mut enc = Encoder::with_strings_of(btf);
    let mut scratch = Scratch::default();
    for t in btf.types() {
        let name = btf.name(&t).unwrap_or("");
        let mut r = t.to_record(&mut scratch).expect("record");
        let mut owned: Option<Vec<Member>> = None;
        for e in edits {
            match *e {
                Edit::RenameType(n, k, to) if n == name && t.kind() == k => {
                    r.name = enc.add_str(to).expect("name");
                }
                Edit::RemoveMember(s, m)
                | Edit::RenameMember(s, m, _)
                | Edit::RetypeMember(s, m, _)
                    if s == name && t.kind() == Kind::Struct =>
                {
                    let v = owned.get_or_insert_with(|| match r.body {
                        Body::Struct { members, .. } => members.to_vec(),
                        _ => unreachable!("a struct"),
                    });
                    let i = v
                        .iter()
                        .position(|x| btf.str_at(x.name_off) == Ok(m))
                        .unwrap_or_else(|| panic!("struct {s} has no member {m}"));
                    match *e {
                        Edit::RemoveMember(..) => {
                            v.remove(i);
                        }
                        Edit::RenameMember(.., to) => {
                            v[i].name_off = enc.add_str(to).expect("name");
                        }
                        Edit::RetypeMember(.., ty) => {
                            v[i].type_id = btf.find_by_name_kind(ty, Kind::Int).expect("int");
                        }
                        Edit::RenameType(..) => unreachable!(),
                    }
                }
                _ => {}
            }
        }
        if let (Some(v), Body::Struct { size, .. }) = (&owned, r.body) {
            r.body = Body::Struct { size, members: v };
        }
        enc.add(&r).expect("add");
    }
    enc.finish().expect("finish")
}

/// The test tree: real BTFs plus variants of this machine's. Returns the
/// tree and whether Debian 6.1's BTF is in it.
fn build_tree(dir: &Path, sysfs: &[u8]) -> bool {
    let this = Btf::parse(sysfs).expect("vmlinux BTF");
    let real = dir.join("real");
    std::fs::create_dir_all(&real).expect("mkdir");
    std::fs::write(real.join("this.btf"), sysfs).expect("write");
    let debian = match kernel_btf_dir() {
        Some(d) => {
            std::fs::copy(d.join("vmlinux"), real.join("debian-6.1-vmlinux")).expect("copy");
            true
        }
        None => {
            skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
            false
        }
    };
    let v = dir.join("variants");
    std::fs::create_dir_all(&v).expect("mkdir");
    let write = |name: &str, edits: &[Edit<'_>]| {
        std::fs::write(v.join(name), variant(&this, edits)).expect("write variant");
    };
    write("no_tgid.btf", &[Edit::RemoveMember("task_struct", "tgid")]);
    write(
        "pid_renamed.btf",
        &[Edit::RenameMember("task_struct", "pid", "pid_renamed")],
    );
    write(
        "prio_long.btf",
        &[Edit::RetypeMember("task_struct", "prio", "long int")],
    );
    write(
        "no_attach_no_kfunc.btf",
        &[
            Edit::RenameType("btf_trace_task_newtask", Kind::Typedef, "btf_trace_gone"),
            Edit::RenameType("bpf_task_release", Kind::Func, "bpf_task_release_gone"),
        ],
    );
    // A missing type, packed as btfhub ships it (by the system's tar).
    write(
        "no_task_struct.btf",
        &[Edit::RenameType(
            "task_struct",
            Kind::Struct,
            "task_struct_gone",
        )],
    );
    let tar = tool("tar").expect("tar");
    let st = Command::new(tar)
        .current_dir(&v)
        .args(["-cJf", "no_task_struct.btf.tar.xz", "no_task_struct.btf"])
        .status()
        .expect("tar");
    assert!(st.success());
    std::fs::remove_file(v.join("no_task_struct.btf")).expect("rm");
    std::fs::write(dir.join("README"), "not BTF: skipped\n").expect("write");
    debian
}

struct Objs {
    paths: Vec<PathBuf>,
    bytes: Vec<Vec<u8>>,
}

fn objs() -> Objs {
    let paths = vec![
        fixture("kernel_ids.bpf-el.o"),
        fixture("core_kernel.bpf-el.o"),
    ];
    let bytes = paths
        .iter()
        .map(|p| std::fs::read(p).expect("object"))
        .collect();
    Objs { paths, bytes }
}

fn parse_objs(o: &Objs) -> Vec<Object<'_>> {
    o.paths
        .iter()
        .zip(&o.bytes)
        .map(|(p, b)| {
            let n = p.file_name().and_then(|n| n.to_str()).expect("name");
            Object::parse(b, object_name(n)).expect("object")
        })
        .collect()
}

/// Rows of every file of the tree, by the library, keyed (btf, program).
fn library_rows(
    files: &[TreeBtf],
    objs: &[CheckObject<'_, '_>],
) -> BTreeMap<(String, String), Row> {
    let mut out = BTreeMap::new();
    for f in files {
        let bytes = f.read().expect("tree file");
        let btf = Btf::parse_any(&bytes, None).expect("BTF");
        for r in check_btf(objs, &btf, &f.rel.display().to_string()) {
            out.insert((r.btf.clone(), r.program.clone()), r);
        }
    }
    out
}

fn poisoned(prog: &str, insn: u32, path: &str, why: &str) -> String {
    format!("poisoned: {prog} insn {insn}: field_byte_offset {path}: {why}")
}

const NO_FIELD: &str = "no candidate in the target BTF has this field/enumerator";
const NO_TYPE: &str = "no type in the target BTF has this name and kind";

#[test]
fn matrix_shows_the_expected_failures() {
    let _s = serial();
    let Ok(sysfs) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let tmp = Tmp::new("matrix");
    let debian = build_tree(&tmp.0, &sysfs);
    let (files, skipped) = scan(&tmp.0).expect("scan");
    assert_eq!(skipped, [tmp.0.join("README")]);
    let names: Vec<String> = files.iter().map(|f| f.rel.display().to_string()).collect();
    let mut want = vec![
        "real/this.btf",
        "variants/no_attach_no_kfunc.btf",
        "variants/no_task_struct.btf.tar.xz",
        "variants/no_tgid.btf",
        "variants/pid_renamed.btf",
        "variants/prio_long.btf",
    ];
    if debian {
        want.insert(0, "real/debian-6.1-vmlinux");
    }
    assert_eq!(names, want);

    let o = objs();
    let parsed = parse_objs(&o);
    let checked: Vec<CheckObject<'_, '_>> = o
        .paths
        .iter()
        .zip(&parsed)
        .map(|(p, ob)| CheckObject::new(p.display().to_string(), ob))
        .collect();
    let rows = library_rows(&files, &checked);
    let get = |btf: &str, prog: &str| {
        rows.get(&(btf.to_owned(), prog.to_owned()))
            .unwrap_or_else(|| panic!("no row for {btf} {prog}"))
    };
    let ids = "on_newtask_ids";
    let expect = |btf: &str, poisoned: usize, errors: &[String]| {
        let r = get(btf, ids);
        assert_eq!(r.errors, errors, "{btf}");
        assert_eq!(r.poisoned, poisoned, "{btf}");
        assert_eq!(r.ok, errors.is_empty(), "{btf}");
        assert_eq!(r.relocations, 2, "{btf}");
    };
    let task = "struct task_struct";
    expect("real/this.btf", 0, &[]);
    expect(
        "variants/no_tgid.btf",
        1,
        &[poisoned(ids, 11, &format!("{task}.tgid"), NO_FIELD)],
    );
    expect(
        "variants/pid_renamed.btf",
        1,
        &[poisoned(ids, 4, &format!("{task}.pid"), NO_FIELD)],
    );
    expect(
        "variants/no_task_struct.btf.tar.xz",
        2,
        &[
            poisoned(ids, 4, &format!("{task}.pid"), NO_TYPE),
            poisoned(ids, 11, &format!("{task}.tgid"), NO_TYPE),
        ],
    );
    expect(
        "variants/no_attach_no_kfunc.btf",
        0,
        &[
            "attach target missing: typedef btf_trace_task_newtask".into(),
            "kfunc missing: func bpf_task_release".into(),
        ],
    );
    expect("variants/prio_long.btf", 0, &[]);
    if debian {
        // bpf_task_acquire/release arrived in 6.2.
        expect(
            "real/debian-6.1-vmlinux",
            0,
            &[
                "kfunc missing: func bpf_task_acquire".into(),
                "kfunc missing: func bpf_task_release".into(),
            ],
        );
    }
    // core_kernel: resizing a signed int field poisons its load, and only
    // that: the variant's errors are this machine's plus that one.
    let base = get("real/this.btf", "core_kernel");
    let long = get("variants/prio_long.btf", "core_kernel");
    let added: Vec<&String> = long
        .errors
        .iter()
        .filter(|e| !base.errors.contains(e))
        .collect();
    assert_eq!(added.len(), 1, "{:?}", long.errors);
    assert!(
        added[0].contains("struct task_struct.prio")
            && added[0].ends_with("the field changed size and the load cannot be resized safely"),
        "{}",
        added[0]
    );
    assert_eq!(long.poisoned, base.poisoned + 1);
    assert!(!long.ok);
}

/// The poisoned relocations of every (file, object) equal what `ember core
/// explain --btf FILE --json` says, relocation for relocation.
#[test]
fn poisoned_agrees_with_explain() {
    let _s = serial();
    let Ok(sysfs) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let tmp = Tmp::new("explain");
    build_tree(&tmp.0, &sysfs);
    let (files, _) = scan(&tmp.0).expect("scan");
    let o = objs();
    let parsed = parse_objs(&o);
    let mut compared = 0;
    for f in files
        .iter()
        .filter(|f| !f.rel.to_string_lossy().ends_with(".xz"))
    {
        let bytes = f.read().expect("file");
        let btf = Btf::parse_any(&bytes, None).expect("BTF");
        for (p, ob) in o.paths.iter().zip(&parsed) {
            let c = [CheckObject::new("o", ob)];
            let ours: Vec<String> = check_btf(&c, &btf, "b")
                .into_iter()
                .flat_map(|r| r.errors)
                .filter(|e| e.starts_with("poisoned: "))
                .collect();
            let out = Command::new(ember_bin())
                .args(["core", "explain", "--json", "--btf"])
                .arg(&f.path)
                .arg(p)
                .output()
                .expect("ember");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let theirs: Vec<String> = String::from_utf8(out.stdout)
                .expect("utf-8")
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
                .filter(|v| v["outcome"] == "poisoned")
                .map(|v| {
                    format!(
                        "poisoned: {} insn {}: {} {}: {}",
                        v["program"].as_str().expect("program"),
                        v["insn"],
                        v["kind"].as_str().expect("kind"),
                        v["path"].as_str().expect("path"),
                        v["reason"].as_str().expect("reason"),
                    )
                })
                .collect();
            assert_eq!(ours, theirs, "{} on {}", p.display(), f.rel.display());
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} pairs");
}

/// libbpf (`btf_custom_path`) poisons the same number of instructions in
/// each variant as the matrix reports: `call 0xbad2310` is its poison.
#[test]
fn poisoned_agrees_with_libbpf() {
    let _s = serial();
    if !is_root() {
        return skip("the libbpf oracle loads objects: needs root");
    }
    let Ok(sysfs) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let Some(oracle) = build_oracle("libbpf_core", Path::new(env!("CARGO_TARGET_TMPDIR"))) else {
        return;
    };
    let tmp = Tmp::new("libbpf");
    build_tree(&tmp.0, &sysfs);
    let o = objs();
    let parsed = parse_objs(&o);
    let mut seen = Vec::new();
    for v in [
        "real/this.btf",
        "variants/no_tgid.btf",
        "variants/pid_renamed.btf",
        "variants/prio_long.btf",
    ] {
        let path = tmp.0.join(v);
        let bytes = std::fs::read(&path).expect("variant");
        let btf = Btf::parse(&bytes).expect("BTF");
        for (p, ob) in o.paths.iter().zip(&parsed) {
            let c = [CheckObject::new("o", ob)];
            let ours: usize = check_btf(&c, &btf, v).iter().map(|r| r.poisoned).sum();
            let out = Command::new(&oracle)
                .arg(p)
                .arg(&path)
                .output()
                .expect("oracle");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                !text.contains("\nE\t") && !text.starts_with("E\t"),
                "libbpf refused {v}: {text}"
            );
            let theirs = text
                .lines()
                .filter(|l| l.starts_with("I\t"))
                .filter(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    f.get(3) == Some(&"133") && f.get(7) == Some(&"195896080")
                })
                .count();
            assert_eq!(ours, theirs, "{} on {v}", p.display());
            seen.push(theirs);
        }
    }
    // (kernel_ids, core_kernel) per file: core_kernel's guarded
    // task_struct___old.state everywhere; tgid is read once by each; pid
    // three times by core_kernel (two loads and a byte size); prio once.
    assert_eq!(seen, [0, 1, 1, 2, 1, 4, 0, 2], "libbpf's poison counts");
}

/// The CLI prints the library's rows (`--json`, any `-j`), a table, and
/// fails exactly when some cell is not ok.
#[test]
fn cli_json_table_and_status() {
    let _s = serial();
    let Ok(sysfs) = std::fs::read(SYSFS) else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let tmp = Tmp::new("cli");
    build_tree(&tmp.0, &sysfs);
    let (files, _) = scan(&tmp.0).expect("scan");
    let o = objs();
    let parsed = parse_objs(&o);
    let checked: Vec<CheckObject<'_, '_>> = o
        .paths
        .iter()
        .zip(&parsed)
        .map(|(p, ob)| CheckObject::new(p.display().to_string(), ob))
        .collect();
    let want = library_rows(&files, &checked);
    for j in ["1", "3"] {
        let out = Command::new(ember_bin())
            .args(["core", "check", "--json", "-j", j, "--btf-dir"])
            .arg(&tmp.0)
            .args(&o.paths)
            .output()
            .expect("ember");
        assert_eq!(out.status.code(), Some(1), "some cells fail");
        let got: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(got.len(), want.len());
        for v in &got {
            let key = (
                v["btf"].as_str().expect("btf").to_owned(),
                v["program"].as_str().expect("p").to_owned(),
            );
            let r = &want[&key];
            assert_eq!(v, &serde_json::to_value(r).expect("row"), "-j {j}");
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let bad = want.values().filter(|r| !r.ok).count();
        assert!(
            stderr.contains(&format!(
                "{bad} of {} (object, BTF, program) cells are not ok",
                want.len()
            )),
            "{stderr}"
        );
    }
    let out = Command::new(ember_bin())
        .args(["core", "check", "--btf-dir"])
        .arg(&tmp.0)
        .args(&o.paths)
        .output()
        .expect("ember");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("BTF "), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("variants/no_tgid.btf") && l.contains("on_newtask_ids"))
        .expect("row");
    assert!(line.ends_with("FAIL (1 of 2 poisoned, 0 other)"), "{line}");
    assert!(
        text.contains("    kfunc missing: func bpf_task_release"),
        "{text}"
    );
    // A tree where everything resolves: success.
    let only = Tmp::new("ok");
    std::fs::write(only.0.join("this.btf"), &sysfs).expect("write");
    let out = Command::new(ember_bin())
        .args(["core", "check", "--stats", "--btf-dir"])
        .arg(&only.0)
        .arg(fixture("kernel_ids.bpf-el.o"))
        .output()
        .expect("ember");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("BTF/s"));
}

/// Relocations that cannot be solved at all (libbpf refuses the object):
/// every program of the object fails with the solver's error, as `ember
/// core explain` words it, and nothing is counted as poisoned.
#[test]
fn hard_errors_fail_every_program() {
    let _s = serial();
    let mut seen = 0;
    for (obj, target) in [
        ("bitfields", "bitfields___err_too_big_bitfield"),
        ("deep", "deep___err_too_deep"),
        ("nesting", "nesting___err_dup_incompat_types"),
        ("size", "size___err_ambiguous"),
    ] {
        let op = fixture(&format!("core/{obj}.bpf-el.o"));
        let tp = fixture(&format!("core/{target}.t-el.o"));
        let (ob, tb) = (
            std::fs::read(&op).expect("object"),
            std::fs::read(&tp).expect("target"),
        );
        let o = Object::parse(&ob, obj).expect("object");
        let t = Btf::parse_any(&tb, None).expect("target BTF");
        let rows = check_btf(&[CheckObject::new(obj, &o)], &t, target);
        assert!(!rows.is_empty(), "{obj}: no programs");
        let out = Command::new(ember_bin())
            .args(["core", "explain", "--btf"])
            .arg(&tp)
            .arg(&op)
            .output()
            .expect("ember");
        assert!(!out.status.success(), "{obj} on {target} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        for r in &rows {
            assert!(!r.ok && r.poisoned == 0, "{r:?}");
            assert_eq!(r.errors.len(), 1, "{r:?}");
            // The same text as `core explain`'s failure, behind the
            // prefix that marks a hard error.
            let hard = r.errors[0]
                .strip_prefix("CO-RE failed: ")
                .unwrap_or_else(|| panic!("not marked hard: {r:?}"));
            let want = format!("ember: {} in {hard}\n", op.display());
            assert_eq!(err, want);
            seen += 1;
        }
    }
    assert_eq!(seen, 4);
}

/// Fuzzer finds, kept: `core_check` rows stay classifiable by how each
/// error line starts. The kept input names a function `poisoned: _ids`
/// whose hard CO-RE error once read as a poisoned relocation; hard
/// errors now start `CO-RE failed: `.
#[test]
fn fuzz_regressions_core_check() {
    let dir = ember_tests::root().join("fuzz/regressions/core_check");
    let targets: Vec<Vec<u8>> = [
        "core/nesting.t-el.o",
        "core/arrays___diff_arr_val_sz.t-el.o",
        "core/types___diff.t-el.o",
        "core16/enum64.t-el.o",
    ]
    .iter()
    .map(|t| std::fs::read(fixture(t)).expect("target"))
    .collect();
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("regressions") {
        let data = std::fs::read(e.expect("entry").path()).expect("read");
        let Some((&pick, obj_bytes)) = data.split_first() else {
            continue;
        };
        let Ok(obj) = Object::parse(obj_bytes, "fuzz") else {
            continue;
        };
        let tb = &targets[usize::from(pick) % targets.len()];
        let target = Btf::parse_elf(tb, None).expect("fixture target");
        let objs = [CheckObject::new("fuzz", &obj)];
        for r in check_btf(&objs, &target, "t") {
            assert_eq!(r.ok, r.errors.is_empty(), "{r:?}");
            assert!(r.poisoned <= r.relocations, "{r:?}");
            let lines = r
                .errors
                .iter()
                .filter(|e| e.starts_with("poisoned: "))
                .count();
            assert_eq!(lines, r.poisoned, "{r:?}");
            assert!(
                r.errors.iter().all(|e| e.starts_with("poisoned: ")
                    || e.starts_with("CO-RE failed: ")
                    || e.starts_with("unusable BTF: ")
                    || e.contains(" missing: ")),
                "{r:?}"
            );
        }
        n += 1;
    }
    assert!(n > 0);
}
