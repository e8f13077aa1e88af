//! The C header writer (`ember btf dump --format c`, i.e.
//! `dump::c::dump`) on real BTF:
//! - the header for this machine's vmlinux compiles with clang for BPF,
//!   next to a small program that uses it;
//! - clang agrees with the BTF on the size of every named struct and union
//!   and the offset of every named non-bitfield member (members of
//!   anonymous struct/union members included), checked by `_Static_assert`s
//!   generated from the BTF itself;
//! - the header equals bpftool's `format c` output byte for byte (this
//!   vmlinux, the Debian 6.1 vmlinux and two modules' split BTF over it,
//!   and the fixture object in both byte orders).
//!
//! Types whose name is shared with another tag (the header calls them
//! `name___2`, ...) are left out of the layout check, since which id gets
//! which suffix depends on emission order; the test prints how many.

use core::fmt::Write as _;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ember::ember_core::btf::{Btf, Kind, Type, TypeId, dump};
use ember_tests::{first_difference, fixture, kernel_btf_dir, run_stdout, skip, tool};

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

fn ember_c(btf: &Btf<'_>) -> String {
    let mut s = String::new();
    dump::c::dump(btf, &mut s).expect("C dump");
    s
}

/// Opens `file` (over `base` for split BTF) and hands it to `f`.
fn with_btf<R>(file: &Path, base: Option<&Path>, f: impl FnOnce(&Btf<'_>) -> R) -> R {
    let base_bytes = base.map(|b| std::fs::read(b).expect("read base"));
    let base_btf = base_bytes
        .as_deref()
        .map(|b| Btf::parse_any(b, None).expect("parse base"));
    let bytes = std::fs::read(file).expect("read BTF file");
    let btf = Btf::parse_any(&bytes, base_btf.as_ref()).expect("parse BTF");
    f(&btf)
}

fn ember_c_file(file: &Path, base: Option<&Path>) -> String {
    with_btf(file, base, ember_c)
}

fn bpftool_c(file: &Path, base: Option<&Path>) -> Option<String> {
    let Some(bpftool) = tool("bpftool") else {
        skip("bpftool is not installed (apt-get install bpftool)");
        return None;
    };
    let mut cmd = Command::new(bpftool);
    if let Some(b) = base {
        cmd.arg("-B").arg(b);
    }
    cmd.args(["btf", "dump", "file"])
        .arg(file)
        .args(["format", "c"]);
    Some(String::from_utf8(run_stdout(&mut cmd)).expect("bpftool output is UTF-8"))
}

/// The one deliberate difference: bpftool 7.1 predates the `mode(byte)` /
/// `mode(word)` attributes that give 1-byte enums and 8-byte enums with
/// 32-bit values their size, so its header lays out e.g. `struct inode`
/// wrongly on 6.x kernels. Strips them and returns how many there were.
fn without_enum_modes(header: &str) -> (String, usize) {
    let mut n = 0;
    let mut out = String::with_capacity(header.len());
    for line in header.split_inclusive('\n') {
        let mut l = line.to_owned();
        for attr in [
            " __attribute__((mode(byte)))",
            " __attribute__((mode(word)))",
        ] {
            if let Some(i) = l.find(attr) {
                l.replace_range(i..i + attr.len(), "");
                n += 1;
            }
        }
        out.push_str(&l);
    }
    (out, n)
}

fn assert_same_as_bpftool(file: &Path, base: Option<&Path>, got: &str) {
    let Some(want) = bpftool_c(file, base) else {
        return;
    };
    let (got, modes) = without_enum_modes(got);
    let got = got.as_str();
    eprintln!(
        "{}: identical to bpftool but for {modes} enum mode attribute(s)",
        file.display()
    );
    if let Some((line, w, g)) = first_difference(&want, got) {
        panic!(
            "{}: line {line} differs\n bpftool: {w}\n ember:   {g}",
            file.display()
        );
    }
    // `lines()` ignores a final newline; compare the bytes too.
    assert_eq!(want, got, "{}: trailing bytes differ", file.display());
}

fn clang() -> Option<PathBuf> {
    let c = tool("clang").or_else(|| Some(PathBuf::from("/usr/bin/clang")).filter(|p| p.is_file()));
    if c.is_none() {
        skip("clang is not installed (apt-get install clang)");
    }
    c
}

/// Compiles `src` (which includes `vmlinux.h` from `dir`) for BPF.
fn compile(clang: &Path, dir: &Path, name: &str, src: &str) {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).expect("write C source");
    let out = Command::new(clang)
        .args(["-target", "bpf", "-O2", "-g", "-c"])
        .arg(&c)
        .arg("-o")
        .arg(dir.join(format!("{name}.o")))
        .arg("-ferror-limit=20")
        .output()
        .expect("run clang");
    assert!(
        out.status.success(),
        "clang failed on {}:\n{}",
        c.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("btf_dump_c-{name}"));
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

const PROGRAM: &str = r#"#include "vmlinux.h"

/* Field reads become CO-RE relocations under the header's pragma. */
__attribute__((section("kprobe/ember_test"), used))
int probe(struct list_head *l)
{
	struct list_head *n = l->next;

	return n == l ? 0 : (int)(sizeof(struct task_struct) & 0x7f);
}

char LICENSE[] __attribute__((section("license"), used)) = "GPL";
"#;

fn name<'a>(btf: &Btf<'a>, t: &Type<'_>) -> &'a str {
    btf.str_at(t.name_off()).unwrap_or("")
}

/// Whether a member is a bitfield, in either encoding.
fn is_bitfield(btf: &Btf<'_>, m: &ember::ember_core::btf::Member) -> bool {
    if m.bitfield_size != 0 {
        return true;
    }
    let Ok(id) = btf.skip_mods_and_typedefs(m.type_id) else {
        return false;
    };
    match btf.get(id).and_then(|t| t.as_int()) {
        Some(i) => i.offset() != 0 || i.bits() != i.size * 8,
        None => false,
    }
}

/// The anonymous struct or union a member embeds, if it does.
fn anon_composite<'a>(btf: &Btf<'a>, id: TypeId) -> Option<Type<'a>> {
    let t = btf.get(btf.skip_mods(id).ok()?)?;
    (t.kind().is_composite() && t.name_off().0 == 0).then_some(t)
}

/// Appends offset asserts for `t`'s named members, descending into
/// anonymous struct/union members (whose fields C lets `offsetof` name).
fn member_asserts(
    btf: &Btf<'_>,
    t: &Type<'_>,
    tag: &str,
    base_bits: u32,
    out: &mut String,
    n: &mut usize,
) {
    for m in t.members() {
        let mname = btf.str_at(m.name_off).unwrap_or("");
        let off = base_bits + m.bit_offset;
        if mname.is_empty() {
            if let Some(inner) = anon_composite(btf, m.type_id) {
                member_asserts(btf, &inner, tag, off, out, n);
            }
            continue;
        }
        if is_bitfield(btf, &m) {
            continue;
        }
        assert_eq!(
            off % 8,
            0,
            "{tag}.{mname}: non-bitfield member off a byte boundary"
        );
        writeln!(
            out,
            "_Static_assert(__builtin_offsetof({tag}, {mname}) == {}, \"{tag}.{mname}\");",
            off / 8
        )
        .expect("write to String");
        *n += 1;
    }
}

/// Whether `id` embeds (not via a pointer) the compiler's
/// `__builtin_va_list`, which the header leaves to the compiler: it is
/// `struct __va_list_tag[1]` (24 bytes) for x86-64, where the kernel was
/// built, but a plain pointer for BPF, so such layouts cannot match.
fn embeds_va_list(btf: &Btf<'_>, id: TypeId, memo: &mut HashMap<TypeId, bool>, depth: u32) -> bool {
    if let Some(&v) = memo.get(&id) {
        return v;
    }
    let Some(t) = btf.get(id) else {
        return false;
    };
    assert!(depth < 64, "type nesting too deep at [{id}]");
    let v = match t.kind() {
        Kind::Typedef if name(btf, &t) == "__builtin_va_list" => true,
        Kind::Typedef | Kind::Const | Kind::Volatile | Kind::Restrict | Kind::TypeTag => {
            embeds_va_list(btf, t.type_id(), memo, depth + 1)
        }
        Kind::Array => t
            .as_array()
            .is_some_and(|a| embeds_va_list(btf, a.elem_type, memo, depth + 1)),
        Kind::Struct | Kind::Union => t
            .members()
            .any(|m| embeds_va_list(btf, m.type_id, memo, depth + 1)),
        _ => false,
    };
    memo.insert(id, v);
    v
}

/// What [`layout_asserts`] produced.
struct Layout {
    src: String,
    asserts: usize,
    renamed: usize,
    va_list: usize,
}

/// `_Static_assert`s for the size and member offsets of every named
/// struct/union whose tag is unique (so the header uses it unchanged),
/// except those embedding `__builtin_va_list` (see [`embeds_va_list`]).
fn layout_asserts(btf: &Btf<'_>, header: &str) -> Layout {
    // The tags libbpf counts for `___N` renaming share one namespace.
    let mut tags: HashMap<&str, u32> = HashMap::new();
    // Split BTF: the base's tags are in the header too.
    for t in (1..btf.type_count()).filter_map(|i| btf.get(TypeId(i))) {
        let counted = match t.kind() {
            Kind::Struct | Kind::Union | Kind::Enum64 | Kind::Int => true,
            Kind::Enum => t.vlen() != 0,
            _ => false,
        };
        if counted && t.name_off().0 != 0 {
            *tags.entry(name(btf, &t)).or_default() += 1;
        }
    }
    let defined: HashSet<&str> = header
        .lines()
        .filter_map(|l| l.strip_suffix(" {").or_else(|| l.strip_suffix(" {};")))
        .filter(|l| l.starts_with("struct ") || l.starts_with("union "))
        .collect();
    let mut src = String::from("#include \"vmlinux.h\"\n\n");
    let (mut n, mut renamed, mut va_list) = (0, 0, 0);
    let mut memo = HashMap::new();
    for t in btf.types() {
        let kw = match t.kind() {
            Kind::Struct => "struct",
            Kind::Union => "union",
            _ => continue,
        };
        let nm = name(btf, &t);
        if nm.is_empty() {
            continue;
        }
        if tags.get(nm).copied().unwrap_or(0) > 1 {
            renamed += 1;
            continue;
        }
        let tag = format!("{kw} {nm}");
        assert!(
            defined.contains(tag.as_str()),
            "header does not define {tag}"
        );
        if embeds_va_list(btf, t.id(), &mut memo, 0) {
            va_list += 1;
            continue;
        }
        writeln!(
            src,
            "_Static_assert(sizeof({tag}) == {}, \"{tag}\");",
            t.size()
        )
        .expect("write to String");
        n += 1;
        member_asserts(btf, &t, &tag, 0, &mut src, &mut n);
    }
    Layout {
        src,
        asserts: n,
        renamed,
        va_list,
    }
}

/// (b) and (c): `header` compiles next to a small program, and clang's
/// layout of `btf`'s own structs and unions agrees with the BTF. Returns
/// the number of asserts checked.
fn compiles_and_lays_out(btf: &Btf<'_>, header: &str, clang: &Path, name: &str) -> usize {
    let dir = scratch_dir(name);
    std::fs::write(dir.join("vmlinux.h"), header).expect("write vmlinux.h");

    let t0 = Instant::now();
    compile(clang, &dir, "program", PROGRAM);
    eprintln!("{name}: program compiled ({:.1?})", t0.elapsed());

    let layout = layout_asserts(btf, header);
    let n = layout.asserts;
    assert!(
        n > 10,
        "{name}: only {n} layout asserts: is the BTF this small?"
    );
    let t0 = Instant::now();
    compile(clang, &dir, "layout", &layout.src);
    eprintln!(
        "{name}: {n} layout asserts hold ({:.1?}); not checked: {} structs/unions with \
         ___N names, {} embedding __builtin_va_list",
        t0.elapsed(),
        layout.renamed,
        layout.va_list
    );
    n
}

#[test]
fn this_kernel_vmlinux_compiles_lays_out_and_matches_bpftool() {
    let p = Path::new(VMLINUX);
    if !p.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let Some(clang) = clang() else {
        return;
    };
    let bytes = std::fs::read(p).expect("read vmlinux BTF");
    let btf = Btf::parse(&bytes).expect("parse vmlinux BTF");

    let t0 = Instant::now();
    let header = ember_c(&btf);
    eprintln!(
        "dump: {:.1?}, {} lines",
        t0.elapsed(),
        header.lines().count()
    );

    let n = compiles_and_lays_out(&btf, &header, &clang, "vmlinux");
    assert!(n > 1000, "only {n} layout asserts for a whole kernel");

    let t0 = Instant::now();
    assert_same_as_bpftool(p, None, &header);
    eprintln!("bpftool comparison: {:.1?}", t0.elapsed());
}

#[test]
fn layout_check_catches_a_wrong_layout() {
    // The layout test is only worth something if clang rejects a lie.
    let Some(clang) = clang() else {
        return;
    };
    let dir = scratch_dir("negative");
    std::fs::write(dir.join("vmlinux.h"), "struct s { int a; long b; };\n").expect("write");
    let c = dir.join("bad.c");
    std::fs::write(
        &c,
        "#include \"vmlinux.h\"\n_Static_assert(__builtin_offsetof(struct s, b) == 4, \"s.b\");\n",
    )
    .expect("write");
    let ok = Command::new(clang)
        .args(["-target", "bpf", "-c", "-o", "/dev/null"])
        .arg(&c)
        .output()
        .expect("run clang")
        .status
        .success();
    assert!(!ok, "clang accepted a false offset assert");
}

#[test]
fn debian_61_vmlinux_and_modules_match_bpftool() {
    let Some(dir) = kernel_btf_dir() else {
        return skip("no Debian 6.1 kernel BTF: run tests/scripts/kernel-btf.sh");
    };
    let vmlinux = dir.join("vmlinux");
    let clang = clang();
    with_btf(&vmlinux, None, |btf| {
        let header = ember_c(btf);
        assert_same_as_bpftool(&vmlinux, None, &header);
        if let Some(clang) = &clang {
            compiles_and_lays_out(btf, &header, clang, "debian-6.1");
        }
    });
    for m in ["nf_conntrack.ko", "nf_conntrack_netlink.ko"] {
        let m = dir.join("modules").join(m);
        with_btf(&m, Some(&vmlinux), |btf| {
            let header = ember_c(btf);
            assert_same_as_bpftool(&m, Some(&vmlinux), &header);
            if let (Some(clang), true) = (&clang, m.ends_with("nf_conntrack.ko")) {
                compiles_and_lays_out(btf, &header, clang, "debian-6.1-nf_conntrack");
            }
        });
    }
}

#[test]
fn fixture_object_compiles_and_matches_bpftool() {
    for e in ["el", "eb"] {
        let f = fixture(&format!("btf_kinds.bpf-{e}.o"));
        let header = ember_c_file(&f, None);
        assert_same_as_bpftool(&f, None, &header);
        if e == "el" {
            let Some(clang) = clang() else {
                return;
            };
            let dir = scratch_dir("fixture");
            std::fs::write(dir.join("vmlinux.h"), &header).expect("write vmlinux.h");
            compile(&clang, &dir, "fixture", "#include \"vmlinux.h\"\n");
        }
    }
}

#[test]
fn mutated_blobs_never_panic() {
    // Cheap deterministic fuzzing: flip bytes of a real blob; whatever still
    // parses must dump to Ok or Err, never panic or hang.
    let obj = std::fs::read(fixture("btf_kinds.bpf-el.o")).expect("read fixture");
    let btf = Btf::parse_any(&obj, None).expect("parse fixture");
    let orig = btf.data().to_vec();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut parsed, mut dumped) = (0, 0);
    for _ in 0..20_000 {
        let mut b = orig.clone();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        if let Ok(btf) = Btf::parse(&b) {
            parsed += 1;
            let mut s = String::new();
            if dump::c::dump(&btf, &mut s).is_ok() {
                dumped += 1;
            }
        }
    }
    eprintln!("mutations: {parsed} parsed, {dumped} dumped");
    assert!(parsed > 100, "too few mutations parsed to mean anything");
}
