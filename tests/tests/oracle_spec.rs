//! [`ObjectSpec`] against libbpf's open object (`tests/oracle/libbpf_spec.c`):
//! for every fixture, after the same setter calls on both sides, the maps
//! (name, type, key and value size, max_entries, flags, autocreate, inner
//! template, initial value) and programs (name, section, type, expected
//! attach type, autoload, flags, instruction count) are what libbpf
//! reports, in libbpf's order. A setter one side refuses and the other
//! takes is a difference too. Where ember differs from the system's
//! libbpf (Debian's 1.1) by design, the allow-lists below say why; nothing
//! is skipped silently.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ember::ObjectSpec;
use ember::ember_core::object::{AttachType, MapKind, ProgType};
use ember::spec::{F_SLEEPABLE, F_XDP_HAS_FRAGS};
use ember_tests::{build_oracle, fixture, root};

fn oracle() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| build_oracle("libbpf_spec", Path::new(env!("CARGO_TARGET_TMPDIR"))))
        .as_deref()
}

/// Every fixture object: the top level, and the ones libbpf refuses
/// (`bad/`, `nobtf/`).
fn objects() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["", "bad", "nobtf"] {
        let d = root().join("tests/fixtures").join(dir);
        v.extend(
            std::fs::read_dir(d)
                .expect("fixtures")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".bpf-el.o")),
        );
    }
    v.sort();
    v
}

/// One setter call: `what:name=value`, as the oracle takes it.
#[derive(Debug, Clone)]
struct Setting {
    what: &'static str,
    name: String,
    value: String,
}

impl Setting {
    fn new(what: &'static str, name: &str, value: impl ToString) -> Setting {
        Setting {
            what,
            name: name.to_owned(),
            value: value.to_string(),
        }
    }

    fn arg(&self) -> String {
        format!("{}:{}={}", self.what, self.name, self.value)
    }

    fn num(&self) -> u32 {
        let v = &self.value;
        match v.strip_prefix("0x") {
            Some(h) => u32::from_str_radix(h, 16).expect("hex"),
            None => v.parse().expect("number"),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// What one side reports: setter results (0 taken, otherwise refused),
/// then `P`, `M`, `I` and `D` lines in the oracle's format.
#[derive(Debug, Default)]
struct View {
    results: Vec<(String, bool)>,
    lines: Vec<String>,
}

fn libbpf(bin: &Path, obj: &Path, settings: &[Setting]) -> Result<View, String> {
    let out = Command::new(bin)
        .arg(obj)
        .args(settings.iter().map(Setting::arg))
        .output()
        .expect("run oracle");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut v = View::default();
    for line in String::from_utf8(out.stdout).expect("utf-8").lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["S", what, name, value, rc] => v
                .results
                .push((format!("{what}:{name}={value}"), *rc == "0")),
            _ => v.lines.push(line.to_owned()),
        }
    }
    Ok(v)
}

/// Applies one setting to the spec; `false` when ember refuses it.
fn apply(spec: &mut ObjectSpec<'_>, s: &Setting) -> bool {
    let name = s.name.as_str();
    match s.what {
        "max_entries" => spec
            .map_mut(name)
            .and_then(|mut m| m.set_max_entries(s.num()).map(|_| ()))
            .is_ok(),
        "key_size" => spec
            .map_mut(name)
            .and_then(|mut m| m.set_key_size(s.num()).map(|_| ()))
            .is_ok(),
        "value_size" => spec
            .map_mut(name)
            .and_then(|mut m| m.set_value_size(s.num()).map(|_| ()))
            .is_ok(),
        "flags" => spec
            .map_mut(name)
            .map(|mut m| _ = m.set_flags(s.num()))
            .is_ok(),
        "autocreate" => spec
            .map_mut(name)
            .map(|mut m| _ = m.set_autocreate(s.num() != 0))
            .is_ok(),
        "data" => {
            let Ok(def) = spec.map(name) else {
                return false;
            };
            let MapKind::Data(i) = def.kind else {
                return false;
            };
            let section = spec.object().data[i].name.to_owned();
            let bytes = unhex(&s.value);
            match spec.section_data_mut(&section) {
                Ok(img) if img.len() == bytes.len() => {
                    img.copy_from_slice(&bytes);
                    true
                }
                _ => false,
            }
        }
        "autoload" => spec
            .program_mut(name)
            .map(|mut p| _ = p.set_autoload(s.num() != 0))
            .is_ok(),
        "type" => spec
            .program_mut(name)
            .map(|mut p| _ = p.set_prog_type(ProgType(s.num())))
            .is_ok(),
        "attach" => spec
            .program_mut(name)
            .map(|mut p| _ = p.set_expected_attach_type(Some(AttachType(s.num()))))
            .is_ok(),
        "pflags" => spec
            .program_mut(name)
            .map(|mut p| _ = p.set_flags(s.num()))
            .is_ok(),
        w => panic!("unknown setting {w}"),
    }
}

/// ember's view in the oracle's format.
fn ember_view(spec: &mut ObjectSpec<'_>, settings: &[Setting]) -> View {
    let mut v = View::default();
    for s in settings {
        let ok = apply(spec, s);
        v.results.push((s.arg(), ok));
    }
    let progs: Vec<(String, String, u32)> = spec
        .object()
        .programs()
        .map(|f| {
            let sec = spec
                .object()
                .code_section(f.section)
                .map_or("", |c| c.name)
                .to_owned();
            (f.name.to_owned(), sec, f.len)
        })
        .collect();
    for (name, sec, len) in progs {
        let p = spec.program_mut(&name).expect("program");
        v.lines.push(format!(
            "P\t{name}\t{sec}\t{}\t{}\t{}\t{}\t{len}",
            p.prog_type().unwrap_or(ProgType::UNSPEC).0,
            p.expected_attach_type().map_or(0, |a| a.0),
            u8::from(p.autoload()),
            p.flags(),
        ));
    }
    for name in spec.map_names() {
        let autocreate = spec.map_mut(&name).expect("map").autocreate();
        let m = spec.map(&name).expect("map");
        v.lines.push(format!(
            "M\t{name}\t{}\t{}\t{}\t{}\t{}\t{}",
            m.map_type.0,
            m.key_size,
            m.value_size,
            m.max_entries,
            m.map_flags,
            u8::from(autocreate)
        ));
        if let Some(i) = &m.inner {
            v.lines.push(format!(
                "I\t{name}\t{}\t{}\t{}\t{}\t{}",
                i.map_type.0, i.key_size, i.value_size, i.max_entries, i.map_flags
            ));
        }
        match m.kind {
            MapKind::Data(i) => {
                let section = spec.object().data[i].name;
                let img = spec.section_data(section).expect("image");
                v.lines.push(format!("D\t{name}\t{}", hex(img)));
            }
            // Filled at load; zeros until then, as in libbpf.
            MapKind::Kconfig => v.lines.push(format!(
                "D\t{name}\t{}",
                hex(&vec![0; m.value_size as usize])
            )),
            MapKind::Btf | MapKind::Legacy => {}
        }
    }
    v
}

/// The setter calls for one object, chosen from what it has so that every
/// fixture exercises map and program setters. All of them are ones both
/// libbpf and ember take.
fn settings(spec: &ObjectSpec<'_>) -> Vec<Setting> {
    let maps = &spec.object().maps;
    let user: Vec<_> = maps.iter().filter(|m| !m.kind.is_internal()).collect();
    let internal: Vec<_> = maps.iter().filter(|m| m.kind.is_internal()).collect();
    let mut s = Vec::new();
    if let Some(m) = user.first() {
        s.push(Setting::new("max_entries", &m.name, 77));
    }
    if let Some(m) = user.iter().find(|m| m.value_type.is_none()) {
        s.push(Setting::new("value_size", &m.name, 8 * 127));
    }
    if let Some(m) = user
        .iter()
        .find(|m| m.key_type.is_none() && m.key_size != 0)
    {
        s.push(Setting::new("key_size", &m.name, m.key_size));
    }
    if user.len() > 1
        && let Some(m) = user.last()
    {
        s.push(Setting::new("flags", &m.name, 1));
        s.push(Setting::new("autocreate", &m.name, 0));
    }
    if let Some(m) = internal.iter().find(|m| matches!(m.kind, MapKind::Data(_))) {
        let n = m.value_size as usize;
        let bytes: Vec<u8> = (0..n).map(|i| (i * 7 + 1) as u8).collect();
        s.push(Setting::new("data", &m.name, hex(&bytes)));
    }
    let progs = spec.program_names();
    // All on the first program, so the others show the section's view.
    if let Some(p) = progs.first() {
        s.push(Setting::new("autoload", p, 0));
        s.push(Setting::new("pflags", p, 4));
        s.push(Setting::new("type", p, ProgType::SOCKET_FILTER.0));
        s.push(Setting::new("attach", p, 2));
    }
    s
}

/// Sections the system's libbpf (1.1) does not know and ember does,
/// following libbpf 1.7's SEC() table: 1.1 leaves such programs
/// `unspec` with no expected attach type.
const NEWER_SECTIONS: &[&str] = &["tcx/", "tc/", "netfilter", "uprobe.multi"];

/// Program flags a section implies (`.s`: `BPF_F_SLEEPABLE`, `xdp.frags`:
/// `BPF_F_XDP_HAS_FRAGS`, `syscall`: sleepable).
const SECTION_FLAGS: u32 = F_SLEEPABLE | F_XDP_HAS_FRAGS;

/// Why ember's line may differ from libbpf's, if it is one of the known,
/// designed differences; `None` otherwise.
fn known_difference(ours: &str, theirs: &str) -> Option<&'static str> {
    let a: Vec<&str> = ours.split('\t').collect();
    let b: Vec<&str> = theirs.split('\t').collect();
    match (a.as_slice(), b.as_slice()) {
        // P name section type attach autoload flags insns
        (["P", n, sec, t, at, al, f, i], ["P", n2, sec2, "0", "0", al2, f2, i2])
            if (n, sec, al, f, i) == (n2, sec2, al2, f2, i2)
                && NEWER_SECTIONS.iter().any(|p| sec.starts_with(p))
                && (*t, *at) != ("0", "0") =>
        {
            Some("section added to libbpf's SEC() table after 1.1; ember follows 1.7")
        }
        (["P", n, sec, t, at, al, f, i], ["P", n2, sec2, t2, at2, al2, f2, i2])
            if (n, sec, t, at, al, i) == (n2, sec2, t2, at2, al2, i2) =>
        {
            let (f, f2): (u32, u32) = (f.parse().ok()?, f2.parse().ok()?);
            // libbpf's bpf_program__flags reports the flags that were
            // set; the section's are ORed in at load
            // (libbpf_prepare_prog_load, 1.1 to 1.7). ember's
            // ProgramSpec::flags reports the flags it will load with, the
            // section's included. (So ember's set_flags replaces the
            // section's, and can drop BPF_F_SLEEPABLE; libbpf's cannot.)
            (f & !SECTION_FLAGS == f2 && f & SECTION_FLAGS != 0).then_some(
                "ember reports the section's program flags before load, libbpf adds them at load",
            )
        }
        _ => None,
    }
}

#[test]
fn every_fixture_opens_and_configures_as_with_libbpf() {
    let Some(bin) = oracle() else { return };
    let mut compared = 0;
    for obj in objects() {
        let name = obj
            .strip_prefix(root().join("tests/fixtures"))
            .expect("under fixtures")
            .to_string_lossy()
            .into_owned();
        let bytes = std::fs::read(&obj).expect("read fixture");
        let file = obj
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let spec = ObjectSpec::parse(&bytes, &file);
        let mut spec = match (spec, libbpf(bin, &obj, &[])) {
            (Ok(spec), Ok(_)) => spec,
            (Err(e), Err(_)) => {
                eprintln!("{name}: both refuse; ember: {e}");
                continue;
            }
            // By design: libbpf >= 1.0 refuses the legacy `maps` section
            // (-EOPNOTSUPP); ember still reads `struct bpf_map_def`s.
            (Ok(spec), Err(why)) if why.contains("legacy map definitions") => {
                assert!(
                    spec.object().maps.iter().any(|m| m.kind == MapKind::Legacy),
                    "{name}: libbpf refuses it for legacy maps, ember found none"
                );
                eprintln!("{name}: legacy maps: libbpf >= 1.0 refuses, ember opens");
                continue;
            }
            (Ok(_), Err(why)) => panic!("{name}: libbpf refuses it, ember opens it: {why}"),
            (Err(e), Ok(_)) => panic!("{name}: libbpf opens it, ember refuses: {e}"),
        };
        let set = settings(&spec);
        let mut want = libbpf(bin, &obj, &set).expect("libbpf with settings");
        let mut got = ember_view(&mut spec, &set);
        // By design, for now: the spec does not list struct_ops maps (the
        // object keeps them in `Object::struct_ops`, and the loader
        // registers them), and struct_ops programs get their expected
        // attach type (the kernel struct's member index) at load, where
        // libbpf reports the local member index when it opens.
        if !spec.object().struct_ops.is_empty() {
            let struct_ops_map =
                |l: &String| l.starts_with("M\t") && l.split('\t').nth(2) == Some("26");
            want.lines.retain(|l| !struct_ops_map(l));
            for l in want.lines.iter_mut().chain(got.lines.iter_mut()) {
                let mut f: Vec<&str> = l.split('\t').collect();
                if f.first() == Some(&"P") && f.get(3) == Some(&"27") {
                    if let Some(a) = f.get_mut(4) {
                        *a = "member";
                    }
                    *l = f.join("\t");
                }
            }
            eprintln!("{name}: struct_ops maps and member indices compared at load, not here");
        }
        assert_eq!(got.results, want.results, "{name}: setter results differ");
        assert_eq!(
            got.lines.len(),
            want.lines.len(),
            "{name}: ember\n{:#?}\nlibbpf\n{:#?}",
            got.lines,
            want.lines
        );
        // Line by line, so the order (libbpf's: programs in section and
        // symbol order; `.maps` by offset, then global data by section,
        // then .kconfig) is compared too.
        for (ours, theirs) in got.lines.iter().zip(&want.lines) {
            if ours == theirs {
                continue;
            }
            match known_difference(ours, theirs) {
                Some(why) => eprintln!(
                    "{name}: known difference ({why}):\n  ember  {ours}\n  libbpf {theirs}"
                ),
                None => panic!(
                    "{name}: ember and libbpf differ after {:?}\n  ember  {ours}\n  libbpf {theirs}",
                    set.iter().map(Setting::arg).collect::<Vec<_>>()
                ),
            }
        }
        compared += 1;
    }
    assert!(compared >= 15, "too few fixtures compared: {compared}");
}

/// Setters libbpf takes and ember refuses, each by design: ember refuses
/// at configure time what would give a map other than the object
/// describes, where libbpf takes the number and leaves the rest to load.
#[test]
fn setters_ember_refuses_where_libbpf_takes_them() {
    let Some(bin) = oracle() else { return };
    let cases = [
        (
            "max_entries:load.bss=3",
            "a global-data map holds exactly one entry, the section; libbpf \
             takes any number (and creates an array that large)",
        ),
        (
            "key_size:load.bss=8",
            "a global-data map's key is its 4-byte index",
        ),
        (
            "value_size:load.bss=32",
            "resizing a global-data section is not supported yet (libbpf 1.1 \
             only sets the number; 1.7 also resizes the section and its BTF)",
        ),
        (
            "value_size:runs=16",
            "the map's value has an 8-byte BTF type; libbpf takes the size \
             and, when the kernel refuses the mismatch, creates the map \
             without BTF",
        ),
        (
            "key_size:runs=8",
            "the map's key has a 4-byte BTF type (as for value_size)",
        ),
    ];
    let obj = fixture("load.bpf-el.o");
    let bytes = std::fs::read(&obj).expect("read fixture");
    for (arg, why) in cases {
        let (what, rest) = arg.split_once(':').expect("what");
        let (name, value) = rest.split_once('=').expect("value");
        let what = ["max_entries", "key_size", "value_size"]
            .into_iter()
            .find(|w| *w == what)
            .expect("known setting");
        let s = Setting::new(what, name, value);
        let want = libbpf(bin, &obj, core::slice::from_ref(&s)).expect("libbpf opens");
        assert_eq!(
            want.results,
            [(arg.to_owned(), true)],
            "libbpf refused {arg}"
        );
        let mut spec = ObjectSpec::parse(&bytes, "load.bpf-el.o").expect("parse");
        assert!(!apply(&mut spec, &s), "ember took {arg}, yet: {why}");
        eprintln!("{arg}: libbpf takes it, ember refuses: {why}");
    }
}

fn u16_at(d: &[u8], o: usize) -> usize {
    u16::from_le_bytes([d[o], d[o + 1]]) as usize
}

fn u32_at(d: &[u8], o: usize) -> usize {
    u32::from_le_bytes(d[o..o + 4].try_into().expect("4 bytes")) as usize
}

fn u64_at(d: &[u8], o: usize) -> usize {
    u64::from_le_bytes(d[o..o + 8].try_into().expect("8 bytes")) as usize
}

/// `obj` (little-endian ELF64) with the first two entries of its `.maps`
/// DATASEC swapped: the BTF order no longer follows the symbols' offsets.
fn swap_first_maps(obj: &[u8]) -> Vec<u8> {
    let mut d = obj.to_vec();
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(&d, 0x28),
        u16_at(&d, 0x3a),
        u16_at(&d, 0x3c),
        u16_at(&d, 0x3e),
    );
    let sh = |i: usize| shoff + i * shentsize;
    let cstr = |d: &[u8], o: usize| -> String {
        let end = d[o..].iter().position(|&b| b == 0).expect("NUL") + o;
        String::from_utf8_lossy(&d[o..end]).into_owned()
    };
    let shstr = u64_at(&d, sh(shstrndx) + 0x18);
    let btf = (0..shnum)
        .find(|&i| cstr(&d, shstr + u32_at(&d, sh(i))) == ".BTF")
        .map(|i| u64_at(&d, sh(i) + 0x18))
        .expect(".BTF section");
    let hdr = u32_at(&d, btf + 4);
    let (types, types_len) = (btf + hdr + u32_at(&d, btf + 8), u32_at(&d, btf + 12));
    let strs = btf + hdr + u32_at(&d, btf + 16);
    let mut p = types;
    while p < types + types_len {
        let (name, info) = (u32_at(&d, p), u32_at(&d, p + 4));
        let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
        p += 12;
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => 12 * vlen,
            6 | 13 => 8 * vlen,
            _ => 0,
        };
        if kind == 15 && cstr(&d, strs + name) == ".maps" {
            assert!(vlen >= 2, "fewer than two maps");
            let (a, b) = (d[p..p + 12].to_vec(), d[p + 12..p + 24].to_vec());
            d[p..p + 12].copy_from_slice(&b);
            d[p + 12..p + 24].copy_from_slice(&a);
            return d;
        }
        p += extra;
    }
    panic!("no .maps DATASEC");
}

/// libbpf lists `.maps` maps in the order of their symbols' offsets
/// (btf_fixup_datasec sorts the DATASEC before the maps are read), not in
/// the DATASEC's order; clang emits both the same way, so the object is
/// edited to tell them apart.
#[test]
fn maps_are_listed_by_offset_as_with_libbpf() {
    let Some(bin) = oracle() else { return };
    let orig = std::fs::read(fixture("runtime_sizes.bpf-el.o")).expect("read fixture");
    let swapped = swap_first_maps(&orig);
    assert_ne!(swapped, orig);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("maps_swapped.bpf-el.o");
    std::fs::write(&path, &swapped).expect("write");
    let want: Vec<String> = libbpf(bin, &path, &[])
        .expect("libbpf opens it")
        .lines
        .iter()
        .filter_map(|l| l.strip_prefix("M\t"))
        .map(|l| l.split('\t').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(want, ["stack_ids", "counts", "events"], "libbpf's order");
    let spec = ObjectSpec::parse(&swapped, "maps_swapped.bpf-el.o").expect("parse");
    assert_eq!(spec.map_names(), want);
}
