//! CO-RE relocations: ember's relocated instructions against libbpf's.
//!
//! The oracle (tests/oracle/libbpf_core.c) lets Debian's libbpf relocate an
//! object against a target BTF file (`btf_custom_path`) and prints every
//! program's instructions after relocation; ember solves and patches the
//! same object against the same file. Every instruction slot must be equal,
//! except the ones libbpf rewrites for reasons other than CO-RE (map and
//! global-data loads, which get fds; calls, whose targets move when
//! libbpf appends subprograms) — those are compared on opcode only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ember::ember_core::btf::Btf;
use ember::ember_core::insn::{Insn, decode_all};
use ember::ember_core::object::{FuncInsn, Object, RelocTarget, SectionInsn, object_name};
use ember::ember_core::reloc::{Targets, apply, solve};
use ember_tests::{fixture, kernel_btf_dir, skip, tool};

/// An error and its causes, as `top: cause: cause` (a CoreError's
/// message names the relocation; its source says what went wrong).
fn chain(e: &dyn core::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        s = format!("{s}: {c}");
        next = c.source();
    }
    s
}

fn oracle() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        // The oracle loads programs: it needs root.
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
            });
        if uid.as_deref() != Some("0") {
            skip("the libbpf CO-RE oracle loads programs and needs root");
            return None;
        }
        ember_tests::build_oracle("libbpf_core", Path::new(env!("CARGO_TARGET_TMPDIR")))
    })
    .as_deref()
}

/// libbpf's view: per program, its instructions after relocation; and
/// whether the relocation step itself failed.
struct Libbpf {
    progs: BTreeMap<String, Vec<Insn>>,
    relo_failed: bool,
    stderr: String,
}

fn libbpf(bin: &Path, obj: &Path, target: &Path) -> Libbpf {
    let out = Command::new(bin)
        .arg(obj)
        .arg(target)
        .output()
        .expect("run oracle");
    assert!(
        out.status.success(),
        "oracle: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut progs: BTreeMap<String, Vec<Insn>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] == "I" {
            let n = |i: usize| f[i].parse::<i64>().expect("number");
            progs.entry(f[1].to_owned()).or_default().push(Insn {
                code: n(3) as u8,
                dst: n(4) as u8,
                src: n(5) as u8,
                off: n(6) as i16,
                imm: n(7) as i32,
            });
        }
    }
    // libbpf reports CO-RE failures before any program reaches the kernel.
    let relo_failed =
        stderr.contains("failed to perform CO-RE") || stderr.contains("failed to relocate");
    Libbpf {
        progs,
        relo_failed,
        stderr,
    }
}

/// ember's result: per program, its instructions with subprograms appended
/// the way libbpf appends them (in order of first call, scanning the
/// growing program), or the solver's error.
fn ember(
    obj_path: &Path,
    target_path: &Path,
) -> Result<BTreeMap<String, Vec<(Insn, bool)>>, String> {
    let bytes = std::fs::read(obj_path).expect("read object");
    let name = obj_path.file_name().and_then(|n| n.to_str()).expect("name");
    let obj = Object::parse(&bytes, object_name(name)).expect("parse object");
    let tbytes = std::fs::read(target_path).expect("read target");
    let target = Btf::parse_any(&tbytes, None).expect("parse target");
    let targets = Targets::single(&target);
    let plan = solve(&obj, &targets).map_err(|e| chain(&e))?;
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    apply(&obj, &plan, &mut code).map_err(|e| chain(&e))?;
    let mut out = BTreeMap::new();
    for (pi, p) in obj
        .functions
        .iter()
        .enumerate()
        .filter(|(_, f)| f.is_program)
    {
        // (function index, its instructions, which slots are non-CO-RE relocated)
        // libbpf appends each subprogram when first referenced and walks
        // into it at once (depth first).
        let mut layout: Vec<usize> = vec![pi];
        append_subprogs(&obj, pi, &mut layout);
        let mut insns: Vec<(Insn, bool)> = Vec::new();
        for &fi in &layout {
            let f = &obj.functions[fi];
            let sec = &obj.code[f.section.index()];
            let body = &code[f.section.index()][f.start.byte_offset()..f.end().byte_offset()];
            for (i, insn) in decode_all(body, obj.endian).enumerate() {
                let i = i as u32;
                let at = f.section_insn(FuncInsn(i));
                // A relocated slot, or the second slot of a relocated LD_IMM64.
                let relocated = sec.relocs.iter().any(|r| {
                    r.insn == at
                        || (r.insn.plus(1) == at
                            && sec.bytes.get(r.insn.byte_offset()) == Some(&0x18))
                });
                let mask = relocated || call_target(&obj, fi, i).is_some();
                insns.push((insn, mask));
            }
        }
        out.insert(p.name.to_owned(), insns);
    }
    Ok(out)
}

/// The function instruction `i` of function `fi` calls or takes the
/// address of: relocated references name it; plain calls are pc-relative.
fn call_target(obj: &Object<'_>, fi: usize, i: u32) -> Option<usize> {
    let f = &obj.functions[fi];
    let sec = &obj.code[f.section.index()];
    let si = f.section_insn(FuncInsn(i));
    let at = si.byte_offset();
    let insn = Insn::decode(sec.bytes[at..at + 8].try_into().expect("slot"), obj.endian);
    match sec.relocs.iter().find(|r| r.insn == si).map(|r| r.target) {
        Some(RelocTarget::Function(t)) => Some(t.index()),
        _ if insn.is_pseudo_call() => {
            let to = si.0 as i64 + insn.imm as i64 + 1;
            obj.function_starting_at(f.section, SectionInsn(to as u32))
                .map(|g| g.index())
        }
        _ => None,
    }
}

fn append_subprogs(obj: &Object<'_>, fi: usize, layout: &mut Vec<usize>) {
    for i in 0..obj.functions[fi].len {
        if let Some(t) = call_target(obj, fi, i) {
            if !layout.contains(&t) {
                layout.push(t);
                append_subprogs(obj, t, layout);
            }
        }
    }
}

/// Compares ember with libbpf; returns whether both relocated (rather
/// than both refusing).
fn compare(obj: &str, target: &Path) -> bool {
    let Some(bin) = oracle() else { return false };
    let obj_path = fixture(obj);
    let want = libbpf(bin, &obj_path, target);
    match ember(&obj_path, target) {
        Err(e) => {
            assert!(
                want.relo_failed,
                "{obj} on {}: ember failed ({e}) but libbpf relocated:\n{}",
                target.display(),
                want.stderr
            );
            false
        }
        Ok(got) => {
            assert!(
                !want.relo_failed,
                "{obj} on {}: libbpf failed to relocate but ember did:\n{}",
                target.display(),
                want.stderr
            );
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.progs.keys().collect::<Vec<_>>(),
                "{obj}: program sets differ"
            );
            for (name, ours) in &got {
                let theirs = &want.progs[name];
                assert_eq!(ours.len(), theirs.len(), "{obj}/{name}: length");
                for (i, ((o, masked), t)) in ours.iter().zip(theirs).enumerate() {
                    if *masked {
                        assert_eq!(o.code, t.code, "{obj}/{name} insn {i}: opcode");
                    } else {
                        assert_eq!(o, t, "{obj}/{name} insn {i} on {}", target.display());
                    }
                }
            }
            true
        }
    }
}

#[test]
fn kernel_types_on_this_kernel() {
    let v = Path::new("/sys/kernel/btf/vmlinux");
    if !v.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    assert!(compare("core_kernel.bpf-el.o", v) || oracle().is_none());
    assert!(compare("core16/kernel_match.bpf-el.o", v) || oracle().is_none());
    // Subprograms (with CO-RE inside), a callback, kfuncs, ksyms, kconfig.
    assert!(compare("globals.bpf-el.o", v) || oracle().is_none());
}

#[test]
fn bench_object_on_both_kernels() {
    let v = Path::new("/sys/kernel/btf/vmlinux");
    if !v.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    assert!(compare("core_bench.bpf-el.o", v) || oracle().is_none());
    if let Some(dir) = kernel_btf_dir() {
        assert!(compare("core_bench.bpf-el.o", &dir.join("vmlinux")) || oracle().is_none());
    }
}

#[test]
fn kernel_types_on_debian_61() {
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    assert!(compare("core_kernel.bpf-el.o", &dir.join("vmlinux")) || oracle().is_none());
    assert!(compare("core16/kernel_match.bpf-el.o", &dir.join("vmlinux")) || oracle().is_none());
    assert!(compare("globals.bpf-el.o", &dir.join("vmlinux")) || oracle().is_none());
}

/// The CO-RE families (tests/fixtures/core): each local program against
/// each of its target BTFs, compared instruction by instruction with
/// libbpf. Targets named `___err_*` that libbpf refuses outright must be
/// refused by ember too, with the same reason.
#[test]
fn families_match_libbpf() {
    let Some(_) = oracle() else { return };
    let dir = fixture("core");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("core fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let programs: Vec<&String> = names.iter().filter(|n| n.ends_with(".bpf-el.o")).collect();
    let (mut cases, mut relocated) = (0, 0);
    for p in &programs {
        let family = p.trim_end_matches(".bpf-el.o");
        for t in names.iter().filter(|n| {
            n.ends_with(".t-el.o")
                && (n.starts_with(&format!("{family}.t")) || n.starts_with(&format!("{family}___")))
        }) {
            relocated += usize::from(compare(&format!("core/{p}"), &dir.join(t)));
            cases += 1;
        }
    }
    assert!(cases >= 40, "only {cases} family cases found");
    assert!(
        relocated >= cases - 4,
        "only {relocated} of {cases} cases relocated"
    );
}

/// Hard errors come with the reason libbpf gives.
#[test]
fn family_hard_errors_name_their_reason() {
    let dir = fixture("core");
    let cases = [
        (
            "nesting",
            "nesting___err_dup_incompat_types",
            "field offset ambiguity",
        ),
        (
            "size",
            "size___err_ambiguous",
            "relocation decision ambiguity",
        ),
        (
            "bitfields",
            "bitfields___err_too_big_bitfield",
            "bitfield cannot be read with one 64-bit load",
        ),
        ("deep", "deep___err_too_deep", "deeper than 64"),
    ];
    for (prog, target, why) in cases {
        let e = ember(
            &dir.join(format!("{prog}.bpf-el.o")),
            &dir.join(format!("{target}.t-el.o")),
        )
        .err()
        .unwrap_or_else(|| panic!("{prog} on {target} must fail"));
        assert!(e.contains(why), "{prog} on {target}: {e}");
        if let Some(bin) = oracle() {
            let l = libbpf(
                bin,
                &dir.join(format!("{prog}.bpf-el.o")),
                &dir.join(format!("{target}.t-el.o")),
            );
            assert!(l.relo_failed, "libbpf relocated {prog} on {target}");
        }
    }
}

/// Poisoned instructions: the local field is missing or incompatible in
/// the target, so the load of it becomes a call to helper 0xbad2310.
#[test]
fn family_poisons() {
    let dir = fixture("core");
    for (prog, target) in [
        ("nesting", "nesting___err_missing_field"),
        ("nesting", "nesting___err_array_field"),
        ("nesting", "nesting___err_nonstruct_container"),
        ("nesting", "nesting___err_partial_match_dups"),
        ("arrays", "arrays___err_too_small"),
        ("arrays", "arrays___err_non_array"),
        ("arrays", "arrays___err_wrong_val_type"),
        ("arrays", "arrays___err_bad_zero_sz_arr"),
        ("primitives", "primitives___err_non_enum"),
        ("primitives", "primitives___err_non_int"),
        ("primitives", "primitives___err_non_ptr"),
        ("types", "types___err_enum_missing"),
    ] {
        let got = ember(
            &dir.join(format!("{prog}.bpf-el.o")),
            &dir.join(format!("{target}.t-el.o")),
        )
        .unwrap_or_else(|e| panic!("{prog} on {target}: {e}"));
        let poisoned = got
            .values()
            .flatten()
            .filter(|(i, _)| i.code == 0x85 && i.imm == ember::ember_core::reloc::POISON_IMM)
            .count();
        assert!(poisoned > 0, "{prog} on {target}: nothing poisoned");
    }
}

/// Candidates found by one scan per object and through the name index give
/// the same plan.
#[test]
fn scan_and_index_agree() {
    use ember::ember_core::reloc::{CandidateSearch, solve_with};
    let dir = fixture("core");
    let mut pairs: Vec<(PathBuf, PathBuf)> = vec![];
    if Path::new("/sys/kernel/btf/vmlinux").exists() {
        pairs.push((
            fixture("core_kernel.bpf-el.o"),
            PathBuf::from("/sys/kernel/btf/vmlinux"),
        ));
    }
    for p in [
        "flavors",
        "nesting",
        "arrays",
        "primitives",
        "mods",
        "misc",
        "bitfields",
        "size",
        "types",
    ] {
        for t in std::fs::read_dir(&dir)
            .expect("dir")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
        {
            let n = t
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            if n.ends_with(".t-el.o")
                && (n.starts_with(&format!("{p}.t")) || n.starts_with(&format!("{p}___")))
            {
                pairs.push((dir.join(format!("{p}.bpf-el.o")), t));
            }
        }
    }
    assert!(pairs.len() > 30);
    for (o, t) in pairs {
        let ob = std::fs::read(&o).expect("object");
        let obj = Object::parse(&ob, "x").expect("parse");
        let tb = std::fs::read(&t).expect("target");
        let a = Btf::parse_any(&tb, None).expect("btf");
        let b = Btf::parse_any(&tb, None).expect("btf");
        let (ta, tb2) = (Targets::single(&a), Targets::single(&b));
        let scan = solve_with(&obj, &ta, CandidateSearch::Scan);
        let index = solve_with(&obj, &tb2, CandidateSearch::Index);
        let key = |r: &ember::ember_core::reloc::Resolution<'_, '_>| {
            (r.index, r.kind, r.res, r.target.as_ref().map(|(c, _)| *c))
        };
        match (scan, index) {
            (Ok(s), Ok(i)) => assert_eq!(
                s.iter().map(key).collect::<Vec<_>>(),
                i.iter().map(key).collect::<Vec<_>>(),
                "{} on {}",
                o.display(),
                t.display()
            ),
            (Err(s), Err(i)) => assert_eq!(s, i),
            (s, i) => panic!(
                "{} on {}: scan {:?} vs index {:?}",
                o.display(),
                t.display(),
                s.err(),
                i.err()
            ),
        }
    }
}

/// A type only a module has: candidates come from the module's split BTF
/// (ids continuing vmlinux's), offsets as bpftool shows them; with the
/// main BTF marked as an override, modules are not searched (libbpf's
/// rule) and the loads are poisoned.
#[test]
fn module_only_type_uses_module_btf() {
    use ember::ember_core::reloc::Module;
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let Some(bpftool) = tool("bpftool") else {
        return skip("bpftool is not installed");
    };
    let (vpath, mpath) = (dir.join("vmlinux"), dir.join("modules/nf_conntrack.ko"));
    // The reference: bpftool's view of the module type.
    let dump = Command::new(bpftool)
        .arg("-B")
        .arg(&vpath)
        .args(["btf", "dump", "file"])
        .arg(&mpath)
        .output()
        .expect("bpftool");
    let dump = String::from_utf8(dump.stdout).expect("utf-8");
    let mut lines = dump
        .lines()
        .skip_while(|l| !l.contains("STRUCT 'nf_conn_tstamp'"));
    let head = lines.next().expect("nf_conn_tstamp in the module");
    let want_id: u32 = head[1..head.find(']').expect("]")].parse().expect("id");
    let bit = |field: &str| -> u64 {
        let l = dump
            .lines()
            .skip_while(|l| !l.contains("STRUCT 'nf_conn_tstamp'"))
            .find(|l| l.contains(&format!("'{field}'")))
            .expect("member");
        l.split("bits_offset=")
            .nth(1)
            .expect("offset")
            .trim()
            .parse()
            .expect("number")
    };
    let (stop, start) = (bit("stop") / 8, bit("start") / 8);

    let vb = std::fs::read(&vpath).expect("vmlinux");
    let mb = std::fs::read(&mpath).expect("module");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let module = Btf::parse_any(&mb, Some(&vmlinux)).expect("module BTF");
    let modules = [Module {
        name: "nf_conntrack",
        btf: &module,
    }];
    let ob = std::fs::read(fixture("core_module.bpf-el.o")).expect("object");
    let obj = Object::parse(&ob, "core_module").expect("object");
    let targets = Targets {
        main: &vmlinux,
        modules: &modules,
        is_override: false,
    };
    let plan = solve(&obj, &targets).expect("solve");
    assert_eq!(plan.len(), 2);
    let got: Vec<(u64, usize, u32)> = plan
        .iter()
        .map(|r| {
            let (c, _) = r.target.as_ref().expect("module candidate");
            (r.res.new, c.target, c.id.0)
        })
        .collect();
    assert_eq!(got, [(stop, 1, want_id), (start, 1, want_id)]);
    assert!(want_id >= vmlinux.type_count());

    let only_main = Targets {
        main: &vmlinux,
        modules: &modules,
        is_override: true,
    };
    let plan = solve(&obj, &only_main).expect("solve");
    assert!(plan.iter().all(|r| r.target.is_none() && r.res.poison));
}

/// Fuzzer finds, kept: inputs on which the two candidate strategies once
/// disagreed (the scan validated roots ahead of the relocations).
#[test]
fn fuzz_regressions_relocate() {
    use ember::ember_core::reloc::{CandidateSearch, solve_with};
    let dir = ember_tests::root().join("fuzz/regressions/relocate");
    let target_bytes = std::fs::read(fixture("core/nesting.t-el.o")).expect("target");
    let target = Btf::parse_any(&target_bytes, None).expect("target BTF");
    let targets = Targets::single(&target);
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("regressions") {
        let data = std::fs::read(e.expect("entry").path()).expect("read");
        let Ok(obj) = Object::parse(&data[1..], "fuzz") else {
            continue;
        };
        let a = solve_with(&obj, &targets, CandidateSearch::Scan).err();
        let b = solve_with(&obj, &targets, CandidateSearch::Index).err();
        assert_eq!(a, b);
        n += 1;
    }
    assert!(n > 0);
}

/// Families that need clang >= 15 (built with Debian's clang-16 into
/// tests/fixtures/core16): 64-bit enum values, and TYPE_MATCHES against
/// the type-based targets.
#[test]
fn clang16_families_match_libbpf() {
    let Some(_) = oracle() else { return };
    let (core, core16) = (fixture("core"), fixture("core16"));
    let list = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .expect("fixtures")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        v.sort();
        v
    };
    let mut cases = 0;
    for (prog, dir, family) in [("enum64", &core16, "enum64"), ("typematch", &core, "types")] {
        for t in list(dir).iter().filter(|n| {
            n.ends_with(".t-el.o")
                && (n.starts_with(&format!("{family}.t")) || n.starts_with(&format!("{family}___")))
        }) {
            assert!(compare(&format!("core16/{prog}.bpf-el.o"), &dir.join(t)));
            cases += 1;
        }
    }
    assert!(cases >= 9, "only {cases} cases");
}

/// Raw BTF holding a base and its split BTF as one blob: split ids and
/// string offsets already continue the base's, so the sections simply
/// concatenate. libbpf takes this as `btf_custom_path` where it cannot
/// take split BTF.
fn merged_btf(base: &Btf<'_>, split: &Btf<'_>) -> Vec<u8> {
    let section = |b: &Btf<'_>, which: usize| -> Vec<u8> {
        let d = b.data();
        let w = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().expect("u32")) as usize;
        let hdr = w(4);
        let (off, len) = (w(8 + which * 8), w(12 + which * 8));
        d[hdr + off..hdr + off + len].to_vec()
    };
    let (bt, mt, bs, ms) = (
        section(base, 0),
        section(split, 0),
        section(base, 1),
        section(split, 1),
    );
    let types = [bt, mt].concat();
    let strs = [bs, ms].concat();
    let mut out = vec![0x9f, 0xeb, 1, 0];
    for v in [
        24u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strs.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&types);
    out.extend_from_slice(&strs);
    out
}

/// Module split BTF against libbpf: ember searches the module (vmlinux has
/// no candidate); libbpf gets vmlinux and the module merged into one file.
/// Every relocated instruction must be equal.
#[test]
fn module_split_btf_matches_libbpf() {
    use ember::ember_core::reloc::Module;
    let Some(bin) = oracle() else { return };
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let mb = std::fs::read(dir.join("modules/nf_conntrack.ko")).expect("module");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let module = Btf::parse_any(&mb, Some(&vmlinux)).expect("module BTF");
    let merged = merged_btf(&vmlinux, &module);
    assert_eq!(
        Btf::parse(&merged).expect("merged parses").type_count(),
        module.type_count()
    );
    let merged_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("vmlinux+nf_conntrack.btf");
    std::fs::write(&merged_path, &merged).expect("write merged");

    let obj_path = fixture("core_module.bpf-el.o");
    let want = libbpf(bin, &obj_path, &merged_path);
    assert!(!want.relo_failed, "{}", want.stderr);

    let ob = std::fs::read(&obj_path).expect("object");
    let obj = Object::parse(&ob, "core_module").expect("object");
    let modules = [Module {
        name: "nf_conntrack",
        btf: &module,
    }];
    let targets = Targets {
        main: &vmlinux,
        modules: &modules,
        is_override: false,
    };
    let plan = solve(&obj, &targets).expect("solve");
    assert!(
        plan.iter()
            .all(|r| r.target.as_ref().is_some_and(|(c, _)| c.target == 1))
    );
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    apply(&obj, &plan, &mut code).expect("apply");
    let f = obj.programs().next().expect("program");
    let ours: Vec<Insn> = decode_all(&code[f.section.index()], obj.endian).collect();
    let theirs = &want.progs[f.name];
    assert_eq!(ours.len(), theirs.len());
    let masked: Vec<u32> = obj.code[f.section.index()]
        .relocs
        .iter()
        .flat_map(|r| [r.insn.0, r.insn.0 + 1])
        .collect();
    for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
        if masked.contains(&(i as u32)) {
            assert_eq!(o.code, t.code, "insn {i}");
        } else {
            assert_eq!(o, t, "insn {i}");
        }
    }
}

/// `ember core explain` renders ember-core's typed reports: a poisoned
/// relocation says why (here: the target's `struct task_struct` lacks the
/// field) in text and JSON, with its source line.
#[test]
fn cli_explain_renders_poisoned_relocations() {
    let obj = fixture("reject.bpf-el.o");
    let target = fixture("core_kernel.bpf-el.o");
    let run = |json: bool| {
        let mut cmd = Command::new(ember_tests::ember_bin());
        cmd.args(["core", "explain", "--btf"])
            .arg(&target)
            .arg(&obj);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        run(false),
        "poisoned: insn 1: field offset of struct task_struct.ember_field_that_does_not_exist: \
         POISONED (no candidate in the target BTF has this field/enumerator)\n    \
         reject.bpf.c:23: return t->ember_field_that_does_not_exist;\n"
    );
    let v: serde_json::Value = serde_json::from_str(run(true).trim()).unwrap();
    assert_eq!(v["outcome"], "poisoned");
    assert_eq!(
        v["reason"],
        "no candidate in the target BTF has this field/enumerator"
    );
    assert_eq!(v["target_type_id"], serde_json::Value::Null);
    assert_eq!(
        v["line"],
        "reject.bpf.c:23: return t->ember_field_that_does_not_exist;"
    );
}

/// `ember core explain --btf FILE` names the target as that file, not as
/// the kernel's vmlinux: it is a CO-RE target only.
#[test]
fn cli_explain_names_an_external_target_as_a_file() {
    let target = fixture("core_kernel.bpf-el.o");
    let out = Command::new(ember_tests::ember_bin())
        .args(["core", "explain", "--json", "--btf"])
        .arg(&target)
        .arg(fixture("core_only.bpf-el.o"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["outcome"], "patched", "{line}");
        assert_eq!(v["target_btf"], target.display().to_string(), "{line}");
        n += 1;
    }
    assert_eq!(n, 2, "{text}");
}

/// A CLI error prints its whole chain, each level once: where, which
/// relocation, and the rule it broke.
#[test]
fn cli_errors_print_the_whole_chain() {
    let dir = fixture("core");
    let obj = dir.join("bitfields.bpf-el.o");
    let out = Command::new(ember_tests::ember_bin())
        .args(["core", "explain", "--btf"])
        .arg(dir.join("bitfields___err_too_big_bitfield.t-el.o"))
        .arg(&obj)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "ember: {} in bitfields: CO-RE relocation #5 (kind field_byte_offset, insn 12, \
             local type [5]): bitfield cannot be read with one 64-bit load\n",
            obj.display()
        )
    );
    let missing = Command::new(ember_tests::ember_bin())
        .args(["core", "explain", "/nonexistent/x.o"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "ember: cannot read /nonexistent/x.o: No such file or directory (os error 2)\n"
    );
}
