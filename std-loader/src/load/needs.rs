//! What a load needs from the kernel: its BTF at all, module BTF, and
//! where tracing programs attach.

use super::*;

/// What a load needs kernel BTF for.
#[derive(Debug, Default)]
pub(super) struct Needs {
    /// CO-RE relocations: any target BTF serves, the running kernel's or
    /// an external file.
    pub(super) core: usize,
    /// What needs the running kernel's own type ids, which the kernel
    /// checks against its BTF (`kfunc 'x'`, `typed ksym 'y'`,
    /// `program 'z' (tp_btf/...)`): no external file can stand in.
    pub(super) ids: Vec<String>,
}

impl Needs {
    pub(super) fn of(obj: &Object<'_>) -> Needs {
        let core = obj
            .btf_ext
            .map_or(0, |e| e.core_relos().map(|b| b.len()).sum::<usize>());
        let mut ids = Vec::new();
        for x in &obj.externs {
            match x.kind {
                ExternKind::Kfunc => ids.push(format!("kfunc '{}'", x.name)),
                ExternKind::TypedVar => ids.push(format!("typed ksym '{}'", x.name)),
                _ => {}
            }
        }
        for f in obj.programs() {
            if f.sec_def
                .is_some_and(|d| needs_attach_btf(d.prog_type, d.attach_type))
            {
                let sec = obj.code_section(f.section).map_or("", |c| c.name);
                ids.push(format!("program '{}' ({sec})", f.name));
            }
        }
        for m in &obj.struct_ops {
            ids.push(format!(
                "struct_ops map '{}' (struct {})",
                m.name, m.type_name
            ));
        }
        Needs { core, ids }
    }

    /// `3 CO-RE relocations`.
    pub(super) fn core_text(&self) -> String {
        let n = self.core;
        format!("{n} CO-RE relocation{}", if n == 1 { "" } else { "s" })
    }
}

pub(crate) use ember_core::load::{attach_name, needs_attach_btf};

/// Every (name, kind) this load looks up in the running kernel's BTF:
/// kfuncs, typed ksyms, attach targets and struct_ops types.
fn kernel_names(obj: &Object<'_>) -> Vec<(String, Kind)> {
    let mut out = Vec::new();
    for x in &obj.externs {
        let kind = match x.kind {
            ExternKind::Kfunc => Kind::Func,
            ExternKind::TypedVar => Kind::Var,
            _ => continue,
        };
        out.push((ember_core::btf::essential_name(x.name).to_owned(), kind));
    }
    for f in obj.programs() {
        if let Some(d) = f.sec_def {
            if needs_attach_btf(d.prog_type, d.attach_type) {
                out.push(attach_name(
                    d.attach_type.unwrap_or(AttachType(0)),
                    f.attach_target.unwrap_or(""),
                ));
            }
        }
    }
    for m in &obj.struct_ops {
        out.push((m.type_name.to_owned(), Kind::Struct));
        out.push((format!("bpf_struct_ops_{}", m.type_name), Kind::Struct));
    }
    out
}

/// Finds every name this load needs in `main` with one pass over its
/// types (or binary search on sorted BTF) instead of building its name
/// index; later lookups of those names are answered from the result.
pub(super) fn prefetch_kernel_names(main: &Btf<'_>, obj: &Object<'_>) {
    let names = kernel_names(obj);
    let wants: Vec<(&str, Kind)> = names.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    // Out of memory here only means slower lookups later.
    let _ = main.prefetch(&wants);
}

impl Loading<'_, '_> {
    /// Whether module BTF must be read at all: only when the running
    /// kernel's vmlinux `main` lacks a kfunc, typed ksym or attach target,
    /// or (when `core`: it is also the CO-RE target) a CO-RE root type.
    /// Module BTF is then parsed, as libbpf searches it, only for what
    /// vmlinux does not have.
    pub(super) fn needs_modules(&mut self, main: &Btf<'_>, core: bool) -> bool {
        let obj = self.obj;
        let Some(local) = obj.btf.as_ref() else {
            return false;
        };
        prefetch_kernel_names(main, obj);
        let externs = obj.externs.iter().any(|x| {
            let kind = match x.kind {
                ExternKind::Kfunc => Kind::Func,
                ExternKind::TypedVar => Kind::Var,
                _ => return false,
            };
            main.find_by_name_kind(ember_core::btf::essential_name(x.name), kind)
                .is_none()
        });
        let attach = obj.programs().any(|f| {
            f.sec_def.is_some_and(|d| {
                needs_attach_btf(d.prog_type, d.attach_type) && {
                    let (name, kind) = attach_name(
                        d.attach_type.unwrap_or(AttachType(0)),
                        f.attach_target.unwrap_or(""),
                    );
                    main.find_by_name_kind(&name, kind).is_none()
                }
            })
        });
        let alone = Targets::single(main);
        let core = core
            && match ember_core::reloc::solve(obj, &alone) {
                Ok(plan) => plan.iter().any(|r| {
                    r.target.is_none()
                        && r.kind != ember_core::reloc::RelocKind::TypeIdLocal
                        && ember_core::reloc::find_candidates(local, r.relo.type_id, &alone)
                            .is_ok_and(|c| c.is_empty())
                }),
                // Let the full solve report it, with modules in view.
                Err(_) => true,
            };
        if externs || core || attach {
            self.notes.push(
                "vmlinux lacks a type, kfunc or attach target the object needs: reading module BTF"
                    .into(),
            );
        }
        externs || core || attach
    }
}

/// Whether the running kernel may have module BTF: sysfs lists a file
/// besides vmlinux, or hides the directory (then bpf(2) may still list
/// modules). False on kernels without modules, where asking
/// [`Loading::needs_modules`] would solve CO-RE once more for nothing.
pub(super) fn any_module_btf() -> bool {
    match std::fs::read_dir("/sys/kernel/btf") {
        Ok(dir) => dir.flatten().any(|e| e.file_name() != "vmlinux"),
        Err(_) => true,
    }
}
