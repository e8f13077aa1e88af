//! `ember btf minimize` (bpftool's `gen min_core_btf`): solving each
//! object against the minimized BTF gives exactly what it gives against
//! the full BTF — on this machine's vmlinux, on Debian 6.1's, and on every
//! CO-RE family target — except target type ids, which are renumbered
//! (there the same type must be named). The output is compared in size
//! with bpftool's, parsed by bpftool, and given to libbpf as
//! `btf_custom_path`, which must relocate exactly as with the full BTF.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::ember_core::btf::{Btf, TypeId};
use ember::ember_core::minimize::Minimizer;
use ember::ember_core::object::{Object, object_name};
use ember::ember_core::reloc::{Module, RelocKind, Targets, solve};
use ember_tests::{
    build_oracle, ember_bin, fixture, is_root, kernel_btf_dir, run_stdout, serial, skip, tool,
};

/// Every fixture object with CO-RE relocations (little-endian builds).
fn core_objects() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in ["", "core", "core16"] {
        for e in std::fs::read_dir(fixture(d)).expect("fixtures") {
            let p = e.expect("entry").path();
            if !p.to_string_lossy().ends_with(".bpf-el.o") {
                continue;
            }
            let bytes = std::fs::read(&p).expect("object");
            let name = p.file_name().and_then(|n| n.to_str()).expect("name");
            let Ok(obj) = Object::parse(&bytes, object_name(name)) else {
                continue;
            };
            if obj
                .btf_ext
                .is_some_and(|e| e.core_relos().map(|b| b.len()).sum::<usize>() > 0)
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Kind and name of a type, for ids that differ between the two BTFs.
fn describe(btf: &Btf<'_>, id: TypeId) -> String {
    match btf.get(id) {
        None => format!("#{}", id.0),
        Some(t) => format!("{} '{}'", t.kind(), btf.name(&t).unwrap_or("?")),
    }
}

/// One relocation's outcome, with target ids replaced by what they name.
fn outcomes(obj: &Object<'_>, btf: &Btf<'_>) -> Result<Vec<String>, String> {
    outcomes_in(obj, &Targets::single(btf))
}

/// As [`outcomes`], against vmlinux and modules; says which target matched.
fn outcomes_in(obj: &Object<'_>, targets: &Targets<'_>) -> Result<Vec<String>, String> {
    let plan = solve(obj, targets).map_err(|e| format!("{e}: {}", e.error))?;
    Ok(plan
        .iter()
        .map(|r| {
            let x = &r.res;
            let (which, btf) = match &r.target {
                Some((c, _)) => (targets.name(c.target), targets.btf(c.target)),
                None => ("-", None),
            };
            let btf = btf.unwrap_or(targets.main);
            let new = if r.kind == RelocKind::TypeIdTarget && x.new != 0 {
                describe(btf, TypeId(x.new as u32))
            } else {
                x.new.to_string()
            };
            format!(
                "#{} {:?} matched={which} orig={} new={new} poison={} validate={} memsz={} sz={}/{} \
                 type={}/{} bit_off={:?}",
                r.index,
                r.kind,
                x.orig,
                x.poison,
                x.validate,
                x.fail_memsz_adjust,
                x.orig_sz,
                x.new_sz,
                x.orig_type.0,
                describe(btf, x.new_type),
                r.target.as_ref().map(|(_, s)| s.bit_offset),
            )
        })
        .collect())
}

/// Minimizes `target` for `objs` and checks every object's solve is the
/// same against the result; returns the minimized blob.
fn minimize_and_check(target: &Btf<'_>, objs: &[&Object<'_>], what: &str) -> Vec<u8> {
    let mut m = Minimizer::new(target).expect("minimizer");
    for o in objs {
        m.add_object(o).expect("add object");
    }
    let out = m.finish().expect("emit");
    let min = Btf::parse(&out).expect("minimized BTF parses");
    for (i, o) in objs.iter().enumerate() {
        let full = outcomes(o, target);
        let small = outcomes(o, &min);
        assert_eq!(full, small, "{what}: object #{i}");
    }
    out
}

struct Loaded {
    path: PathBuf,
    bytes: Vec<u8>,
}

fn load_all(paths: &[PathBuf]) -> Vec<Loaded> {
    paths
        .iter()
        .map(|p| Loaded {
            path: p.clone(),
            bytes: std::fs::read(p).expect("object"),
        })
        .collect()
}

fn parse_obj(l: &Loaded) -> Object<'_> {
    let name = l.path.file_name().and_then(|n| n.to_str()).expect("name");
    Object::parse(&l.bytes, object_name(name)).expect("object parses")
}

/// Each object alone, then all together, against one kernel's BTF.
fn check_kernel(vmlinux: &Path) {
    let vb = std::fs::read(vmlinux).expect("vmlinux");
    let target = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let loaded = load_all(&core_objects());
    assert!(loaded.len() >= 20, "only {} CO-RE objects", loaded.len());
    let objs: Vec<Object<'_>> = loaded.iter().map(parse_obj).collect();
    // Objects this kernel cannot relocate (a hard error) cannot be minimized.
    let ok: Vec<&Object<'_>> = objs
        .iter()
        .filter(|o| solve(o, &Targets::single(&target)).is_ok())
        .collect();
    for o in &ok {
        minimize_and_check(&target, &[o], &vmlinux.display().to_string());
    }
    let all = minimize_and_check(&target, &ok, "all objects");
    eprintln!(
        "{}: {} of {} objects solvable; all together minimized {} -> {} bytes",
        vmlinux.display(),
        ok.len(),
        objs.len(),
        target.data().len(),
        all.len()
    );
}

#[test]
fn same_results_on_this_kernel() {
    let _s = serial();
    let v = Path::new("/sys/kernel/btf/vmlinux");
    if !v.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    check_kernel(v);
}

#[test]
fn same_results_on_debian_61() {
    let _s = serial();
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    check_kernel(&dir.join("vmlinux"));
}

/// Each CO-RE family program against each of its targets (the
/// `*.t-el.o` files: arrays, bitfields, flavors, nesting, enums, type
/// matches...), where the full target relocates without a hard error.
#[test]
fn same_results_on_every_family_target() {
    let _s = serial();
    let mut cases = 0;
    for (dir, progs) in [("core", "core"), ("core16", "core16"), ("core", "core16")] {
        let pdir = fixture(progs);
        let tdir = fixture(dir);
        let mut names: Vec<String> = std::fs::read_dir(&tdir)
            .expect("fixtures")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".t-el.o"))
            .collect();
        names.sort();
        for p in std::fs::read_dir(&pdir).expect("fixtures") {
            let p = p.expect("entry").path();
            let pname = p.file_name().and_then(|n| n.to_str()).expect("name");
            let Some(family) = pname.strip_suffix(".bpf-el.o") else {
                continue;
            };
            let family = match (progs, family) {
                (_, "typematch") => "types",
                (_, f) => f,
            };
            let ob = std::fs::read(&p).expect("object");
            let obj = Object::parse(&ob, object_name(pname)).expect("object");
            for t in names.iter().filter(|n| {
                n.starts_with(&format!("{family}.t")) || n.starts_with(&format!("{family}___"))
            }) {
                let tb = std::fs::read(tdir.join(t)).expect("target");
                let target = Btf::parse_any(&tb, None).expect("target BTF");
                if solve(&obj, &Targets::single(&target)).is_err() {
                    continue;
                }
                minimize_and_check(&target, &[&obj], t);
                cases += 1;
            }
        }
    }
    eprintln!("{cases} program/target pairs minimized with identical results");
    assert!(cases >= 50, "only {cases} cases");
}

/// Sizes next to bpftool's on the same inputs, through the CLI.
#[test]
fn size_against_bpftool() {
    let _s = serial();
    let Some(bpftool) = tool("bpftool") else {
        return skip("bpftool is not installed (apt-get install bpftool)");
    };
    let mut targets = vec![PathBuf::from("/sys/kernel/btf/vmlinux")];
    targets.extend(kernel_btf_dir().map(|d| d.join("vmlinux")));
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let objs = core_objects();
    for (i, v) in targets.iter().enumerate() {
        if !v.exists() {
            skip(&format!("{} is absent", v.display()));
            continue;
        }
        // bpftool refuses objects it cannot relocate: give both the same set.
        let vb = std::fs::read(v).expect("vmlinux");
        let full = Btf::parse_any(&vb, None).expect("BTF");
        let ok: Vec<&PathBuf> = objs
            .iter()
            .filter(|p| {
                let b = std::fs::read(p).expect("object");
                let name = p.file_name().and_then(|n| n.to_str()).expect("name");
                let o = Object::parse(&b, object_name(name)).expect("object");
                solve(&o, &Targets::single(&full)).is_ok()
            })
            .collect();
        let (ours, theirs) = (
            tmp.join(format!("ember-{i}.btf")),
            tmp.join(format!("bpftool-{i}.btf")),
        );
        run_stdout(
            Command::new(ember_bin())
                .args(["btf", "minimize"])
                .args(&ok)
                .arg("--btf")
                .arg(v)
                .arg("-o")
                .arg(&ours),
        );
        run_stdout(
            Command::new(&bpftool)
                .args(["gen", "min_core_btf"])
                .arg(v)
                .arg(&theirs)
                .args(&ok),
        );
        let (a, b) = (
            std::fs::metadata(&ours).expect("ours").len(),
            std::fs::metadata(&theirs).expect("bpftool's").len(),
        );
        let ratio = a as f64 / b as f64;
        eprintln!(
            "{}: {} objects; full BTF {} bytes; ember {a} bytes, bpftool {b} bytes, ratio {ratio:.3}",
            v.display(),
            ok.len(),
            full.data().len()
        );
        assert!(ratio <= 1.5, "ember's output is {ratio:.2}x bpftool's");
        // bpftool parses ours.
        let dump = run_stdout(
            Command::new(&bpftool)
                .args(["btf", "dump", "file"])
                .arg(&ours),
        );
        assert!(dump.starts_with(b"[1] "));
    }
}

/// libbpf relocates every object against ember's minimized BTF exactly
/// as against the full vmlinux (slots patched by TYPE_ID_TARGET
/// relocations excepted: the ids are renumbered).
#[test]
fn libbpf_relocates_the_same() {
    let _s = serial();
    if !is_root() {
        return;
    }
    let Some(oracle) = build_oracle("libbpf_core", Path::new(env!("CARGO_TARGET_TMPDIR"))) else {
        return;
    };
    let v = Path::new("/sys/kernel/btf/vmlinux");
    if !v.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let vb = std::fs::read(v).expect("vmlinux");
    let full = Btf::parse_any(&vb, None).expect("BTF");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (mut same, mut checked) = (0, 0);
    for p in core_objects() {
        let b = std::fs::read(&p).expect("object");
        let name = p.file_name().and_then(|n| n.to_str()).expect("name");
        let o = Object::parse(&b, object_name(name)).expect("object");
        let Ok(plan) = solve(&o, &Targets::single(&full)) else {
            continue;
        };
        let type_ids = plan
            .iter()
            .filter(|r| r.kind == RelocKind::TypeIdTarget)
            .count();
        let out = tmp.join(format!("{name}.min.btf"));
        let mut m = Minimizer::new(&full).expect("minimizer");
        m.add_object(&o).expect("add");
        std::fs::write(&out, m.finish().expect("emit")).expect("write");
        let run = |t: &Path| run_stdout(Command::new(&oracle).arg(&p).arg(t));
        let (a, b) = (
            String::from_utf8(run(v)).expect("utf-8"),
            String::from_utf8(run(&out)).expect("utf-8"),
        );
        let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        assert_eq!(la.len(), lb.len(), "{name}: instruction counts differ");
        let differ = la.iter().zip(&lb).filter(|(x, y)| x != y).count();
        assert!(
            differ <= type_ids,
            "{name}: {differ} slots differ, {type_ids} TYPE_ID_TARGET relocations\n{a}\n---\n{b}"
        );
        same += usize::from(differ == 0);
        checked += 1;
    }
    eprintln!("libbpf: {checked} objects relocated against minimized BTF, {same} identical");
    assert!(checked >= 20, "only {checked} objects");
}

/// Module split BTF (beyond bpftool): minimizing Debian 6.1's vmlinux with
/// two modules gives a base plus split pieces over it; every object solves
/// against them as against the full BTFs, and the module-only type of
/// `core_module` still resolves in its module.
#[test]
fn module_split_btf_minimized() {
    let _s = serial();
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let names = ["nf_conntrack", "nf_conntrack_netlink"];
    let mbytes: Vec<Vec<u8>> = names
        .iter()
        .map(|m| std::fs::read(dir.join(format!("modules/{m}.ko"))).expect("module"))
        .collect();
    let mbtfs: Vec<Btf<'_>> = mbytes
        .iter()
        .map(|b| Btf::parse_any(b, Some(&vmlinux)).expect("module BTF"))
        .collect();
    let mods: Vec<Module<'_>> = names
        .iter()
        .zip(&mbtfs)
        .map(|(name, btf)| Module { name, btf })
        .collect();
    let full = Targets {
        main: &vmlinux,
        modules: &mods,
        is_override: false,
    };
    let loaded = load_all(&core_objects());
    let objs: Vec<Object<'_>> = loaded.iter().map(parse_obj).collect();
    let ok: Vec<&Object<'_>> = objs.iter().filter(|o| solve(o, &full).is_ok()).collect();
    let mut m = Minimizer::with_targets(full).expect("minimizer");
    for o in &ok {
        m.add_object(o).expect("add object");
    }
    let min = m.finish_split().expect("emit");
    let base = Btf::parse(&min.base).expect("minimized base parses");
    let pieces: Vec<Btf<'_>> = min
        .modules
        .iter()
        .map(|p| {
            let p = p.as_deref().expect("both modules define nf_conn_tstamp");
            Btf::parse_split(p, &base).expect("minimized module parses")
        })
        .collect();
    let small_mods: Vec<Module<'_>> = names
        .iter()
        .zip(&pieces)
        .map(|(name, btf)| Module { name, btf })
        .collect();
    let small = Targets {
        main: &base,
        modules: &small_mods,
        is_override: false,
    };
    let mut in_module = 0;
    for (i, o) in ok.iter().enumerate() {
        let (a, b) = (outcomes_in(o, &full), outcomes_in(o, &small));
        assert_eq!(a, b, "object #{i}");
        in_module += b
            .expect("solves")
            .iter()
            .filter(|l| l.contains("matched=nf_conntrack "))
            .count();
    }
    assert!(in_module >= 1, "no relocation resolved in a module");
    eprintln!(
        "{} objects; vmlinux {} -> {} bytes; modules {:?} -> {:?} bytes",
        ok.len(),
        vmlinux.data().len(),
        min.base.len(),
        mbtfs.iter().map(|b| b.data().len()).collect::<Vec<_>>(),
        min.modules
            .iter()
            .map(|p| p.as_ref().map_or(0, Vec::len))
            .collect::<Vec<_>>()
    );
    // bpftool reads the pieces as split BTF over the minimized base.
    if let Some(bpftool) = tool("bpftool") {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let (bp, mp) = (tmp.join("min-vmlinux"), tmp.join("min-nf_conntrack"));
        std::fs::write(&bp, &min.base).expect("write");
        std::fs::write(&mp, min.modules[0].as_ref().expect("piece")).expect("write");
        let dump = run_stdout(
            Command::new(bpftool)
                .arg("-B")
                .arg(&bp)
                .args(["btf", "dump", "file"])
                .arg(&mp),
        );
        assert!(String::from_utf8_lossy(&dump).contains("'nf_conn_tstamp'"));
    }
}

/// Raw BTF holding a base and its split BTF as one blob (split ids and
/// string offsets already continue the base's): what libbpf takes as
/// `btf_custom_path` where it cannot take split BTF.
fn merged(base: &Btf<'_>, split: &Btf<'_>) -> Vec<u8> {
    let section = |b: &Btf<'_>, which: usize| -> Vec<u8> {
        let d = b.data();
        let w = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().expect("u32")) as usize;
        let hdr = w(4);
        let (off, len) = (w(8 + which * 8), w(12 + which * 8));
        d[hdr + off..hdr + off + len].to_vec()
    };
    let types = [section(base, 0), section(split, 0)].concat();
    let strs = [section(base, 1), section(split, 1)].concat();
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

/// libbpf relocates `core_module` (a type only nf_conntrack has) against
/// the minimized vmlinux + nf_conntrack, merged into one file, exactly as
/// against the full ones merged.
#[test]
fn libbpf_relocates_module_type_the_same() {
    let _s = serial();
    if !is_root() {
        return;
    }
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let Some(oracle) = build_oracle("libbpf_core", Path::new(env!("CARGO_TARGET_TMPDIR"))) else {
        return;
    };
    let vb = std::fs::read(dir.join("vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse_any(&vb, None).expect("vmlinux BTF");
    let mb = std::fs::read(dir.join("modules/nf_conntrack.ko")).expect("module");
    let module = Btf::parse_any(&mb, Some(&vmlinux)).expect("module BTF");
    let mods = [Module {
        name: "nf_conntrack",
        btf: &module,
    }];
    let full = Targets {
        main: &vmlinux,
        modules: &mods,
        is_override: false,
    };
    let obj_path = fixture("core_module.bpf-el.o");
    let ob = std::fs::read(&obj_path).expect("object");
    let obj = Object::parse(&ob, "core_module").expect("object");
    let mut m = Minimizer::with_targets(full).expect("minimizer");
    m.add_object(&obj).expect("add");
    let min = m.finish_split().expect("emit");
    let base = Btf::parse(&min.base).expect("base");
    let piece = min.modules[0].as_deref().expect("module piece");
    let split = Btf::parse_split(piece, &base).expect("piece");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (fp, sp) = (tmp.join("full-merged.btf"), tmp.join("min-merged.btf"));
    std::fs::write(&fp, merged(&vmlinux, &module)).expect("write");
    std::fs::write(&sp, merged(&base, &split)).expect("write");
    let run = |t: &Path| {
        String::from_utf8(run_stdout(Command::new(&oracle).arg(&obj_path).arg(t))).expect("utf-8")
    };
    let (a, b) = (run(&fp), run(&sp));
    assert!(a.lines().count() > 2, "{a}");
    assert_eq!(a, b);
}

/// Big-endian: this machine's vmlinux re-encoded big-endian (by the
/// encoder), minimized for the big-endian builds of the objects, solves
/// them as the full swapped BTF does; the output stays big-endian.
#[test]
fn big_endian_target() {
    use ember::ember_core::Endian;
    use ember::ember_core::btf::encode::reencode_as;
    let _s = serial();
    let Ok(vb) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return skip("/sys/kernel/btf/vmlinux is absent");
    };
    let le = Btf::parse(&vb).expect("vmlinux");
    let swapped = reencode_as(&le, Endian::Big).expect("swap");
    let target = Btf::parse(&swapped).expect("big-endian vmlinux");
    let paths: Vec<PathBuf> = core_objects()
        .iter()
        .map(|p| PathBuf::from(p.to_string_lossy().replace("-el.o", "-eb.o")))
        .filter(|p| p.exists())
        .collect();
    let loaded = load_all(&paths);
    let objs: Vec<Object<'_>> = loaded.iter().map(parse_obj).collect();
    let ok: Vec<&Object<'_>> = objs
        .iter()
        .filter(|o| solve(o, &Targets::single(&target)).is_ok())
        .collect();
    assert!(ok.len() >= 20, "only {} big-endian objects", ok.len());
    let out = minimize_and_check(&target, &ok, "big-endian vmlinux");
    assert_eq!(Btf::parse(&out).expect("parses").endian(), Endian::Big);
}

/// The CLI names the file at fault and exits non-zero: a target that is
/// not BTF, an object that is not ELF.
#[test]
fn cli_errors_name_the_file() {
    let _s = serial();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let junk = tmp.join("junk.btf");
    std::fs::write(&junk, b"not BTF at all").expect("write");
    let obj = fixture("core_kernel.bpf-el.o");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = Command::new(ember_bin())
            .args(["btf", "minimize"])
            .args(args)
            .output()
            .expect("run ember");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let o = tmp.join("never.btf");
    let e = run(&[
        obj.as_os_str(),
        "--btf".as_ref(),
        junk.as_os_str(),
        "-o".as_ref(),
        o.as_os_str(),
    ]);
    assert!(e.contains("junk.btf") && e.contains("malformed BTF"), "{e}");
    let v = fixture("core/nesting.t-el.o");
    let e = run(&[
        junk.as_os_str(),
        "--btf".as_ref(),
        v.as_os_str(),
        "-o".as_ref(),
        o.as_os_str(),
    ]);
    assert!(
        e.contains("junk.btf") && e.contains("malformed object"),
        "{e}"
    );
    assert!(!o.exists());
}

/// Fuzzer finds, kept: objects whose minimized BTF once solved differently
/// (a pointer kept first as a member's type lost the pointee a later
/// TYPE_SIZE needed). The first byte picks the target as the
/// `btf_minimize` fuzz target does.
#[test]
fn fuzz_regressions_btf_minimize() {
    let targets = [
        "core/nesting.t-el.o",
        "core/arrays___diff_arr_val_sz.t-el.o",
        "core/bitfields___bit_sz_change.t-el.o",
        "core/types___diff.t-el.o",
        "core/flavors.t-el.o",
        "core16/enum64.t-el.o",
    ];
    let dir = ember_tests::root().join("fuzz/regressions/btf_minimize");
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("regressions") {
        let data = std::fs::read(e.expect("entry").path()).expect("read");
        let Some((&pick, obj_bytes)) = data.split_first() else {
            continue;
        };
        let obj = Object::parse(obj_bytes, "fuzz").expect("the kept object parses");
        let tb =
            std::fs::read(fixture(targets[usize::from(pick) % targets.len()])).expect("target");
        let target = Btf::parse_elf(&tb, None).expect("target BTF");
        minimize_and_check(&target, &[&obj], "fuzz regression");
        n += 1;
    }
    assert!(n > 0);
}
