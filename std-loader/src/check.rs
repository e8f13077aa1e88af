//! `ember core check`: will each program of an object load on a given
//! kernel, as far as its BTF can tell? For one kernel BTF and each
//! program: do all its CO-RE relocations resolve (solved by the same
//! engine as the loader and `ember core explain`), which would be poisoned
//! and why, and do its attach target, kfuncs, typed ksyms and struct_ops
//! type exist.
//!
//! A program owns the relocations and extern references of every function
//! it reaches (itself and the subprograms it calls, as the loader links
//! them), so a poisoned relocation in a shared subprogram counts against
//! each caller. A poisoned relocation is listed even where the program
//! guards it with `bpf_core_field_exists()` (the verifier then drops it as
//! dead code): BTF alone cannot tell a guarded access from a real one.

use std::collections::{BTreeSet, HashSet};

use ember_core::btf::{Btf, Kind, essential_name};
use ember_core::id::FuncIndex;
use ember_core::load::link_program;
use ember_core::object::{AttachType, ExternKind, Object, ProgType};
use ember_core::reloc::{Outcome, Targets, relocate};
use serde::Serialize;

use crate::load::needs::{attach_name, needs_attach_btf};

/// One kernel type a program needs by name.
#[derive(Debug, Clone)]
struct Need {
    /// How an error names it: `kfunc`, `attach target`...
    what: &'static str,
    name: String,
    kind: Kind,
}

/// One program of a prepared object.
#[derive(Debug)]
struct Prog {
    name: String,
    /// Every function it reaches (itself first).
    reach: BTreeSet<FuncIndex>,
    needs: Vec<Need>,
}

/// An object ready to be checked against many BTFs: its programs, what
/// each reaches and needs by name, worked out once.
#[derive(Debug)]
pub struct CheckObject<'o, 'a> {
    /// How reports name it (usually its path).
    pub name: String,
    obj: &'o Object<'a>,
    relocs: usize,
    progs: Vec<Prog>,
}

impl<'o, 'a> CheckObject<'o, 'a> {
    /// Works out each program's functions and named needs.
    pub fn new(name: impl Into<String>, obj: &'o Object<'a>) -> CheckObject<'o, 'a> {
        let code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
        let mut progs = Vec::new();
        for (i, f) in obj.functions.iter().enumerate() {
            if !f.is_program {
                continue;
            }
            let fi = FuncIndex(i);
            // Linking only reads the code: map fds do not matter here. An
            // object that cannot be linked is checked on its own code.
            // Inserted one by one: collecting into a `BTreeSet` would sort,
            // and bring one more copy of the standard sort (`ember_core::order`).
            let mut reach = BTreeSet::new();
            match link_program(obj, &code, fi, &|_| Some(-1)) {
                Ok(l) => l.pieces.iter().for_each(|p| {
                    reach.insert(p.func);
                }),
                Err(_) => {
                    reach.insert(fi);
                }
            }
            let mut needs = Vec::new();
            if let Some(d) = f.sec_def
                && needs_attach_btf(d.prog_type, d.attach_type)
                && let Some(t) = f.attach_target.filter(|t| !t.is_empty())
            {
                let (name, kind) = attach_name(d.attach_type.unwrap_or(AttachType(0)), t);
                needs.push(Need {
                    what: "attach target",
                    name,
                    kind,
                });
            }
            for x in &obj.externs {
                let (what, kind) = match x.kind {
                    ExternKind::Kfunc => ("kfunc", Kind::Func),
                    ExternKind::TypedVar => ("typed ksym", Kind::Var),
                    _ => continue,
                };
                // A weak extern may be absent: it resolves to zero.
                let used = x.refs.iter().any(|&(sec, insn)| {
                    obj.locate(sec, insn)
                        .is_some_and(|(func, _)| reach.contains(&func))
                });
                if used && !x.weak {
                    needs.push(Need {
                        what,
                        name: essential_name(x.name).to_owned(),
                        kind,
                    });
                }
            }
            if f.sec_def
                .is_some_and(|d| d.prog_type == ProgType::STRUCT_OPS)
            {
                for m in obj
                    .struct_ops
                    .iter()
                    .filter(|m| m.progs.iter().any(|p| p.func == fi))
                {
                    needs.push(Need {
                        what: "struct_ops type",
                        name: m.type_name.to_owned(),
                        kind: Kind::Struct,
                    });
                }
            }
            progs.push(Prog {
                name: f.name.to_owned(),
                reach,
                needs,
            });
        }
        let relocs = obj
            .btf_ext
            .map_or(0, |e| e.core_relos().map(|b| b.len()).sum());
        CheckObject {
            name: name.into(),
            obj,
            relocs,
            progs,
        }
    }
}

/// One cell of the matrix: one program of one object on one kernel BTF.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The object, as [`CheckObject::name`].
    pub object: String,
    /// The kernel BTF, as the caller names it (a path in the tree).
    pub btf: String,
    /// The program.
    pub program: String,
    /// No poisoned relocation and nothing missing.
    pub ok: bool,
    /// CO-RE relocations in the program's functions.
    pub relocations: usize,
    /// How many of them would be poisoned.
    pub poisoned: usize,
    /// Every problem, one line each, told apart by how it starts:
    /// `poisoned: ` (a poisoned relocation: where, what, why), `CO-RE
    /// failed: ` (a hard solver error for the whole object), and
    /// `<what> missing: ` (attach targets, kfuncs, typed ksyms,
    /// struct_ops types), or `unusable BTF: `.
    pub errors: Vec<String>,
}

/// Checks every program of `objs` against one kernel BTF (a CO-RE target
/// override, as libbpf's `btf_custom_path`: no module BTF).
pub fn check_btf(objs: &[CheckObject<'_, '_>], btf: &Btf<'_>, btf_name: &str) -> Vec<Row> {
    let targets = Targets {
        main: btf,
        modules: &[],
        is_override: true,
    };
    // One object: a scan per lookup pass is cheapest. Several: one name
    // index serves them all (each solve would scan the types again; with
    // three objects on vmlinux, indexing first takes 0.4x the time:
    // `cargo bench --bench core_check`).
    if objs.len() > 1 {
        btf.index();
    }
    // Which named needs this BTF has: through the index when built, else
    // in one pass over its types.
    let want: HashSet<(&str, Kind)> = objs
        .iter()
        .flat_map(|o| &o.progs)
        .flat_map(|p| &p.needs)
        .map(|n| (n.name.as_str(), n.kind))
        .collect();
    let mut have: HashSet<(&str, Kind)> = HashSet::new();
    if btf.has_index() {
        have.extend(
            want.iter()
                .filter(|&&(n, k)| btf.find_by_name_kind(n, k).is_some()),
        );
    } else if !want.is_empty() {
        let kinds: Vec<Kind> = want.iter().map(|w| w.1).collect();
        for t in btf.types() {
            let k = t.kind();
            if !kinds.contains(&k) {
                continue;
            }
            if let Some(w) = btf.name(&t).ok().and_then(|n| want.get(&(n, k))) {
                have.insert(*w);
            }
        }
    }
    let mut rows = Vec::new();
    for o in objs {
        let obj = o.obj;
        // (function, error) for each poisoned relocation; or one error for
        // the whole object when the solve itself fails.
        let solved = if o.relocs == 0 {
            Ok(Vec::new())
        } else {
            let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
            relocate(obj, &targets, &mut code)
        };
        let (poisoned, fatal) = match &solved {
            Ok(reports) => {
                let list: Vec<(FuncIndex, String)> = reports
                    .iter()
                    .filter_map(|r| match r.outcome {
                        Outcome::Poisoned(why) => {
                            let path = r
                                .local_path(obj)
                                .map_or_else(|| r.access.to_owned(), |p| p.to_string());
                            Some((
                                r.func,
                                format!(
                                    "poisoned: {} insn {}: {} {path}: {why}",
                                    r.func_name(obj),
                                    r.insn.0,
                                    r.kind.name()
                                ),
                            ))
                        }
                        _ => None,
                    })
                    .collect();
                (list, None)
            }
            // Not a poison but a hard error (ambiguity, a bitfield no
            // load can hold): libbpf refuses the whole object too. The
            // fixed prefix keeps every error line classifiable by its
            // start, whatever the object names its functions.
            Err(e) => {
                let func = e.func.and_then(|f| obj.function(f)).map_or("?", |f| f.name);
                (
                    Vec::new(),
                    Some(format!("CO-RE failed: {func}: {e}: {}", e.error)),
                )
            }
        };
        for p in &o.progs {
            let relocations = o.relocs_in(p);
            let mut errors: Vec<String> = poisoned
                .iter()
                .filter(|(f, _)| p.reach.contains(f))
                .map(|(_, e)| e.clone())
                .collect();
            let n_poisoned = errors.len();
            if let Some(f) = &fatal {
                errors.push(f.clone());
            }
            for n in &p.needs {
                if !have.contains(&(n.name.as_str(), n.kind)) {
                    errors.push(format!(
                        "{} missing: {} {}",
                        n.what,
                        n.kind.name().to_lowercase(),
                        n.name
                    ));
                }
            }
            rows.push(Row {
                object: o.name.clone(),
                btf: btf_name.to_owned(),
                program: p.name.clone(),
                ok: errors.is_empty(),
                relocations,
                poisoned: n_poisoned,
                errors,
            });
        }
    }
    rows
}

impl CheckObject<'_, '_> {
    /// CO-RE relocations in the functions program `p` reaches.
    fn relocs_in(&self, p: &Prog) -> usize {
        p.reach
            .iter()
            .filter_map(|&f| self.obj.function(f))
            .map(|f| self.obj.core_relo_count(f))
            .sum()
    }
}

/// A row that says a BTF file could not be used at all (unreadable,
/// not BTF): one per object, program `-`.
pub fn unusable(objs: &[CheckObject<'_, '_>], btf_name: &str, why: &str) -> Vec<Row> {
    objs.iter()
        .map(|o| Row {
            object: o.name.clone(),
            btf: btf_name.to_owned(),
            program: "-".into(),
            ok: false,
            relocations: o.relocs,
            poisoned: 0,
            errors: vec![format!("unusable BTF: {why}")],
        })
        .collect()
}
