//! `ember object inspect`: what a BPF object holds, as one stable JSON
//! document or as text. The JSON schema is documented in README.md.

use core::fmt::Write as _;

use ember_core::object::{ExternKind, Function, Map, MapKind, MapValues, Object, Pinning};
use serde::Serialize;

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The file name given.
    pub object: String,
    /// `SEC("license")`.
    pub license: Option<String>,
    /// `SEC("version")`.
    pub kern_version: Option<u32>,
    /// `little` or `big`.
    pub endian: &'static str,
    /// Entry programs.
    pub programs: Vec<ProgramReport>,
    /// Functions in `.text`.
    pub subprograms: Vec<SubprogramReport>,
    /// Maps, user-defined then internal.
    pub maps: Vec<MapReport>,
    /// Global-data sections.
    pub data: Vec<DataReport>,
    /// Externs to resolve at load time.
    pub externs: Vec<ExternReport>,
}

/// One program.
#[derive(Debug, Serialize)]
pub struct ProgramReport {
    /// Function name.
    pub name: String,
    /// ELF section name.
    pub section: String,
    /// Program type as `libbpf_bpf_prog_type_str` spells it; `null` for a
    /// section name libbpf's conventions do not know.
    #[serde(rename = "type")]
    pub prog_type: Option<&'static str>,
    /// Expected attach type as `libbpf_bpf_attach_type_str` spells it, or
    /// `null` when the section implies none.
    pub attach_type: Option<&'static str>,
    /// The attach target written in the section name.
    pub attach_target: Option<String>,
    /// Sleepable (`.s` sections, `syscall`).
    pub sleepable: bool,
    /// Instruction slots of the function itself (subprograms not appended).
    pub insns: u32,
    /// CO-RE relocations inside the function.
    pub core_relos: usize,
    /// Why the section is not understood, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One `.text` function.
#[derive(Debug, Serialize)]
pub struct SubprogramReport {
    /// Function name.
    pub name: String,
    /// Instruction slots.
    pub insns: u32,
    /// Global (callable across objects, verified on its own) or static.
    pub global: bool,
    /// CO-RE relocations inside the function.
    pub core_relos: usize,
}

/// One map.
#[derive(Debug, Serialize)]
pub struct MapReport {
    /// Map name.
    pub name: String,
    /// Map type as `libbpf_bpf_map_type_str` spells it.
    #[serde(rename = "type")]
    pub map_type: String,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `map_flags`.
    pub flags: u32,
    /// `none` or `by_name`.
    pub pinning: &'static str,
    /// NUMA node.
    pub numa_node: u32,
    /// `map_extra`.
    pub map_extra: u64,
    /// `btf`, `legacy`, `data` or `kconfig`.
    pub origin: &'static str,
    /// Inner map template of a map-in-map.
    pub inner: Option<Box<MapReport>>,
    /// Slots filled at load time.
    pub init: Vec<InitReport>,
}

/// One initialized slot.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// Slot index.
    pub slot: u32,
    /// `map` or `program`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

/// One global-data section.
#[derive(Debug, Serialize)]
pub struct DataReport {
    /// Section name.
    pub section: String,
    /// Size in bytes.
    pub size: u32,
    /// Whether it has initial bytes (`.bss` has none).
    pub initialized: bool,
}

/// One extern.
#[derive(Debug, Serialize)]
pub struct ExternReport {
    /// Symbol name.
    pub name: String,
    /// `kconfig`, `kfunc`, `typed_var` or `untyped_var`.
    pub kind: &'static str,
    /// Weak: absent is fine.
    pub weak: bool,
    /// What resolves it at load: `kconfig`, `kernel BTF`, `kallsyms`.
    pub resolution: &'static str,
    /// Instructions that refer to it.
    pub refs: usize,
}

fn map_report(o: &Object<'_>, m: &Map<'_>) -> MapReport {
    MapReport {
        name: m.name.to_string(),
        map_type: m.map_type.to_string(),
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
        flags: m.map_flags,
        pinning: match m.pinning {
            Pinning::None => "none",
            Pinning::ByName => "by_name",
        },
        numa_node: m.numa_node,
        map_extra: m.map_extra,
        origin: match m.kind {
            MapKind::Btf => "btf",
            MapKind::Legacy => "legacy",
            MapKind::Data(_) => "data",
            MapKind::Kconfig => "kconfig",
        },
        inner: m.inner.as_deref().map(|i| Box::new(map_report(o, i))),
        init: m
            .init
            .iter()
            .map(|&(slot, v)| match v {
                MapValues::Map(i) => InitReport {
                    slot,
                    kind: "map",
                    name: o.map(i).map_or_else(String::new, |m| m.name.to_string()),
                },
                MapValues::Program(i) => InitReport {
                    slot,
                    kind: "program",
                    name: o
                        .function(i)
                        .map_or_else(String::new, |f| f.name.to_owned()),
                },
            })
            .collect(),
    }
}

fn program_report(o: &Object<'_>, f: &Function<'_>) -> ProgramReport {
    let section = o.code_section(f.section).map_or("", |c| c.name);
    ProgramReport {
        name: f.name.to_owned(),
        section: section.to_owned(),
        prog_type: f.sec_def.and_then(|d| d.prog_type.name()),
        attach_type: f.sec_def.and_then(|d| d.attach_type).and_then(|a| a.name()),
        attach_target: f.attach_target.map(str::to_owned),
        sleepable: f.sec_def.is_some_and(|d| d.sleepable),
        insns: f.len,
        core_relos: o.core_relo_count(f),
        error: f.sec_def.is_none().then(|| {
            format!("section '{section}' matches no known program type (see libbpf's SEC() names)")
        }),
    }
}

/// Builds the report of `obj`, read from `file`.
pub fn report(obj: &Object<'_>, file: &str) -> Report {
    Report {
        object: file.to_owned(),
        license: obj.license.map(str::to_owned),
        kern_version: obj.kern_version,
        endian: match obj.endian {
            ember_core::Endian::Little => "little",
            ember_core::Endian::Big => "big",
        },
        programs: obj.programs().map(|f| program_report(obj, f)).collect(),
        subprograms: obj
            .functions
            .iter()
            .filter(|f| !f.is_program)
            .map(|f| SubprogramReport {
                name: f.name.to_owned(),
                insns: f.len,
                global: f.global,
                core_relos: obj.core_relo_count(f),
            })
            .collect(),
        maps: obj.maps.iter().map(|m| map_report(obj, m)).collect(),
        data: obj
            .data
            .iter()
            .map(|d| DataReport {
                section: d.name.to_owned(),
                size: d.size,
                initialized: d.init.is_some(),
            })
            .collect(),
        externs: obj
            .externs
            .iter()
            .map(|x| {
                let (kind, resolution) = match x.kind {
                    ExternKind::Kconfig { .. } => ("kconfig", "kconfig"),
                    ExternKind::Kfunc => ("kfunc", "kernel BTF"),
                    ExternKind::TypedVar => ("typed_var", "kernel BTF"),
                    ExternKind::UntypedVar => ("untyped_var", "kallsyms"),
                };
                ExternReport {
                    name: x.name.to_owned(),
                    kind,
                    weak: x.weak,
                    resolution,
                    refs: x.refs.len(),
                }
            })
            .collect(),
    }
}

impl Report {
    /// The report as one JSON document.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The report as text for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "object {} ({}-endian), license {}, version {}",
            self.object,
            self.endian,
            self.license.as_deref().unwrap_or("(none)"),
            self.kern_version
                .map_or_else(|| "(none)".to_owned(), |v| format!("{v:#x}"))
        );
        let _ = writeln!(s, "programs ({}):", self.programs.len());
        for p in &self.programs {
            let _ = writeln!(
                s,
                "  {:<24} {:<36} type {} attach {} target {} insns {} core_relos {}{}",
                p.name,
                p.section,
                p.prog_type.unwrap_or("UNKNOWN"),
                p.attach_type.unwrap_or("-"),
                p.attach_target.as_deref().unwrap_or("-"),
                p.insns,
                p.core_relos,
                if p.sleepable { " sleepable" } else { "" }
            );
            if let Some(e) = &p.error {
                let _ = writeln!(s, "    warning: {e}");
            }
        }
        let _ = writeln!(s, "subprograms ({}):", self.subprograms.len());
        for f in &self.subprograms {
            let _ = writeln!(
                s,
                "  {:<24} insns {} {} core_relos {}",
                f.name,
                f.insns,
                if f.global { "global" } else { "static" },
                f.core_relos
            );
        }
        let _ = writeln!(s, "maps ({}):", self.maps.len());
        for m in &self.maps {
            map_text(&mut s, m, 2);
        }
        let _ = writeln!(s, "global data ({}):", self.data.len());
        for d in &self.data {
            let _ = writeln!(
                s,
                "  {:<24} {} bytes{}",
                d.section,
                d.size,
                if d.initialized { "" } else { " (zeroed)" }
            );
        }
        let _ = writeln!(s, "externs ({}):", self.externs.len());
        for x in &self.externs {
            let _ = writeln!(
                s,
                "  {:<24} {:<12} {}needs {} ({} refs)",
                x.name,
                x.kind,
                if x.weak { "weak, " } else { "" },
                x.resolution,
                x.refs
            );
        }
        s
    }
}

fn map_text(s: &mut String, m: &MapReport, indent: usize) {
    let _ = writeln!(
        s,
        "{:indent$}{:<24} {:<16} key {} value {} max {} flags {:#x}{}{}",
        "",
        m.name,
        m.map_type,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.flags,
        if m.pinning == "by_name" {
            " pinned"
        } else {
            ""
        },
        if m.origin == "btf" {
            String::new()
        } else {
            format!(" ({})", m.origin)
        },
    );
    for i in &m.init {
        let _ = writeln!(
            s,
            "{:indent$}  [{}] = {} {}",
            "",
            i.slot,
            i.kind,
            i.name,
            indent = indent
        );
    }
    if let Some(inner) = &m.inner {
        let _ = writeln!(s, "{:indent$}  inner:", "", indent = indent);
        map_text(s, inner, indent + 4);
    }
}
