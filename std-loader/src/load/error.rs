//! Why a load failed, with what the user needs to fix it.

use core::fmt;
use std::path::PathBuf;

use ember_sys::SysError;

use crate::btf_source::NoKernelBtf;
use crate::privilege::EpermReason;

/// A failed load. Every variant names the object part at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// The object file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The object is malformed.
    Object(ember_core::Error),
    /// The object cannot be parsed: what is wrong, naming the section and
    /// the symbol, function or map.
    Parse(crate::error::ObjectError),
    /// The object needs its own BTF (BTF-defined maps, CO-RE, kfuncs,
    /// typed ksyms) but was built without `-g`.
    NoObjectBtf {
        /// The object.
        object: String,
    },
    /// Kernel BTF is needed and none was found.
    NoKernelBtf {
        /// The object.
        object: String,
        /// What needs it (`12 CO-RE relocations`, `program 'x' (tp_btf)`).
        needs: String,
        /// Every place searched and why each failed.
        source: NoKernelBtf,
    },
    /// Something needs the running kernel's own BTF ids (an attach
    /// target, a kfunc, a typed ksym) and the kernel exposes no BTF. An
    /// external BTF (`btf_file`, `btf_dir`, `--btf`) is a CO-RE target
    /// only: its ids are not the kernel's, which checks them.
    NoKernelIdBtf {
        /// The object.
        object: String,
        /// What needs the ids (`program 'x' (tp_btf/...)`,
        /// `kfunc 'bpf_task_acquire'`, `typed ksym 'y'`).
        needs: String,
        /// Every place searched for the running kernel's BTF and why each
        /// failed.
        source: NoKernelBtf,
    },
    /// The kernel BTF that was found cannot be parsed.
    KernelBtf {
        /// Where it came from.
        path: PathBuf,
        /// The rule it broke.
        source: ember_core::Error,
    },
    /// A CO-RE relocation could not be solved or applied.
    Core {
        /// The program holding it.
        program: String,
        /// The relocation and why.
        source: ember_core::reloc::CoreError,
    },
    /// A `__ksym` extern could not be resolved.
    Ksym {
        /// The extern's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A `.kconfig` extern could not be given a value.
    Kconfig {
        /// The extern's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A value set with `set_global` does not fit the object.
    Global {
        /// The variable.
        name: String,
        /// Why.
        reason: String,
    },
    /// A program's attach target is not in the kernel BTF.
    AttachTarget {
        /// The program.
        program: String,
        /// The type or function looked for.
        target: String,
    },
    /// A module's BTF object (for a kfunc, typed ksym or attach target
    /// in it) cannot be opened.
    ModuleBtf {
        /// The module.
        module: String,
        /// Who needs it (`program 'x'`, `extern 'y'`).
        needed_by: String,
        /// The bpf(2) error.
        source: ember_sys::SysError,
    },
    /// Something this loader does not load yet.
    Unsupported {
        /// The program.
        program: String,
        /// What is missing.
        what: String,
    },
    /// A struct_ops map this kernel cannot take: its struct is missing, a
    /// member does not fit, or creating or registering it failed.
    StructOps {
        /// The map (the struct_ops variable).
        map: String,
        /// What is wrong, naming the member when one is at fault.
        what: String,
        /// The bpf(2) error, when the kernel refused.
        source: Option<SysError>,
    },
    /// A program that needs a target program (freplace, or fentry/fexit
    /// on a BPF program) has none, or the target cannot serve.
    TargetProgram {
        /// The program.
        program: String,
        /// What is wrong.
        what: String,
        /// The bpf(2) error, when reading the target failed.
        source: Option<SysError>,
    },
    /// A program's section name does not say what it is.
    UnknownSection {
        /// The program.
        program: String,
        /// Its section.
        section: String,
    },
    /// The kernel refused to create a map.
    MapCreate {
        /// The map.
        map: String,
        /// The bpf(2) error.
        source: SysError,
        /// When the error is EPERM: why, if ember can tell.
        eperm: Option<Box<EpermReason>>,
    },
    /// A setting given before load was refused (an unknown map, program
    /// or global, or a value of the wrong size).
    Spec(crate::load::spec::SpecError),
    /// A program uses a map that was left uncreated
    /// ([`MapSpec::set_autocreate`](crate::MapSpec::set_autocreate)).
    MapNotCreated {
        /// The program.
        program: String,
        /// The map.
        map: String,
    },
    /// A map's definition cannot be turned into a kernel map (a size
    /// that has no valid rounding, for example).
    MapDefinition {
        /// The map.
        map: String,
        /// What is wrong.
        reason: String,
    },
    /// Filling, freezing or pinning a map failed.
    Map {
        /// The map.
        map: String,
        /// What was being done.
        action: &'static str,
        /// The bpf(2) error.
        source: SysError,
    },
    /// A pinned map exists at the pin path but differs from the object's.
    PinMismatch {
        /// The map.
        map: String,
        /// The pin path.
        path: PathBuf,
        /// What differs.
        detail: String,
    },
    /// The kernel rejected the object's BTF and something needs it.
    BtfLoad {
        /// The kernel's BTF log.
        log: String,
        /// The bpf(2) error.
        source: SysError,
    },
    /// The verifier (or the kernel) rejected a program.
    ProgLoad {
        /// The program.
        program: String,
        /// The bpf(2) error.
        source: SysError,
        /// The complete verifier log.
        log: String,
        /// When the failure is a poisoned CO-RE relocation or an absent
        /// weak kfunc: which one, with its source line; or a helper that
        /// kernel lockdown withholds.
        cause: Option<String>,
        /// When the error is EPERM with an empty log: why (lockdown,
        /// capabilities, `unprivileged_bpf_disabled`, RLIMIT_MEMLOCK), if
        /// ember can tell.
        eperm: Option<Box<EpermReason>>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, .. } => write!(f, "cannot read {}", path.display()),
            LoadError::Object(e) if e.kind() == ember_core::ErrorKind::ForeignEndian => write!(
                f,
                "the object's byte order is not this machine's; build it with -target bpf (host order) or -target bpfel/bpfeb to match"
            ),
            LoadError::Object(_) => f.write_str("malformed object"),
            LoadError::Parse(e) => write!(f, "unusable object: {e}"),
            LoadError::NoObjectBtf { object } => write!(
                f,
                "{object} has no .BTF section but needs one (BTF-defined maps, CO-RE, kfuncs or typed ksyms); \
                 rebuild it with debug info: clang -g -O2 -target bpf -c prog.bpf.c"
            ),
            LoadError::NoKernelBtf { object, needs, .. } => {
                write!(f, "{object} needs kernel BTF for {needs}")
            }
            LoadError::NoKernelIdBtf { object, needs, .. } => write!(
                f,
                "{object} needs the running kernel's own BTF for {needs}; \
                 an external BTF (--btf) can stand in for CO-RE relocations \
                 but not for the kernel's own type ids"
            ),
            LoadError::KernelBtf { path, .. } => {
                write!(f, "kernel BTF {} is malformed", path.display())
            }
            LoadError::Core { program, .. } => {
                write!(f, "program '{program}' cannot be relocated")
            }
            LoadError::Ksym { name, reason } => write!(f, "extern '{name}': {reason}"),
            LoadError::Kconfig { name, reason } => write!(f, "kconfig extern '{name}': {reason}"),
            LoadError::Global { name, reason } => write!(f, "global '{name}': {reason}"),
            LoadError::AttachTarget { program, target } => write!(
                f,
                "program '{program}': attach target '{target}' is not in the kernel BTF"
            ),
            LoadError::ModuleBtf {
                module, needed_by, ..
            } => write!(
                f,
                "{needed_by} needs module '{module}', whose BTF object cannot be opened"
            ),
            LoadError::Unsupported { program, what } => write!(
                f,
                "program '{program}': ember does not load {what} yet; skip it with autoload(\"{program}\", false)"
            ),
            LoadError::StructOps { map, what, .. } => {
                write!(f, "struct_ops map '{map}': {what}")
            }
            LoadError::TargetProgram { program, what, .. } => {
                write!(f, "program '{program}': {what}")
            }
            LoadError::UnknownSection { program, section } => write!(
                f,
                "program '{program}': section '{section}' does not name a program type"
            ),
            LoadError::MapCreate { map, eperm, .. } => {
                write!(f, "map '{map}' cannot be created")?;
                if let Some(why) = eperm {
                    write!(f, "\n  cause: {why}")?;
                }
                Ok(())
            }
            LoadError::MapDefinition { map, reason } => write!(f, "map '{map}': {reason}"),
            LoadError::Spec(_) => f.write_str("invalid setting"),
            LoadError::MapNotCreated { program, map } => write!(
                f,
                "program '{program}' uses map '{map}', which was set not to be created"
            ),
            LoadError::Map { map, action, .. } => write!(f, "map '{map}': {action} failed"),
            LoadError::PinMismatch { map, path, detail } => write!(
                f,
                "map '{map}': the map pinned at {} differs ({detail})",
                path.display()
            ),
            LoadError::BtfLoad { log, .. } => {
                f.write_str("the kernel rejected the object's BTF")?;
                if !log.is_empty() {
                    write!(f, "\n  BTF log:\n{}", log.trim_end())?;
                }
                Ok(())
            }
            LoadError::ProgLoad {
                program,
                log,
                cause,
                eperm,
                ..
            } => {
                write!(f, "program '{program}' was rejected")?;
                if let Some(c) = cause {
                    write!(f, "\n  cause: {c}")?;
                }
                if let Some(why) = eperm {
                    write!(f, "\n  cause: {why}")?;
                }
                if !log.is_empty() {
                    write!(f, "\n  verifier log:\n{}", log.trim_end())?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            LoadError::Io { source, .. } => Some(source),
            LoadError::Parse(_) => None,
            LoadError::Object(e) | LoadError::KernelBtf { source: e, .. } => Some(e),
            LoadError::Spec(e) => Some(e),
            LoadError::NoKernelBtf { source, .. } | LoadError::NoKernelIdBtf { source, .. } => {
                Some(source)
            }
            LoadError::MapCreate { source, .. }
            | LoadError::Map { source, .. }
            | LoadError::BtfLoad { source, .. }
            | LoadError::ModuleBtf { source, .. }
            | LoadError::ProgLoad { source, .. } => Some(source),
            LoadError::Core { source, .. } => Some(source),
            LoadError::StructOps {
                source: Some(source),
                ..
            }
            | LoadError::TargetProgram {
                source: Some(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use core::error::Error as _;
    use std::path::PathBuf;

    use ember_core::btf::{StrOffset, TypeId};
    use ember_core::reloc::CoreError;
    use ember_core::{Error as CoreErr, ErrorKind};
    use ember_sys::{Errno, SysError};

    use super::LoadError;
    use crate::btf_source::{NoKernelBtf, Why};
    use crate::privilege::{Capability, EpermReason, Lockdown, Operation};
    use ember_core::object::{AttachType, MapType, ProgType};

    /// Every level of `e`'s chain says its own part only: no message holds
    /// its source's text, so printing the chain repeats nothing.
    fn assert_no_repeats(e: &(dyn core::error::Error + 'static)) {
        let mut levels = 1;
        let mut cur = e;
        while let Some(src) = cur.source() {
            let (msg, cause) = (cur.to_string(), src.to_string());
            assert!(
                !msg.contains(&cause),
                "message repeats its source:\n  message: {msg}\n  source:  {cause}"
            );
            cur = src;
            levels += 1;
        }
        assert!(levels > 1, "no source: {e}");
    }

    fn sys() -> SysError {
        SysError {
            cmd: "BPF_MAP_CREATE",
            errno: Errno::PERM,
        }
    }

    fn core_error() -> CoreError {
        CoreError {
            index: 3,
            func: Some(ember_core::id::FuncIndex(0)),
            insn: ember_core::id::FuncInsn(12),
            local_type: TypeId(5),
            access: StrOffset(7),
            kind: 0,
            error: ErrorKind::CoreBitfieldTooBig,
        }
    }

    #[test]
    fn load_error_chains_do_not_repeat() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let bad = CoreErr::new(ErrorKind::BadMagic(0x1234), 0);
        let errors = [
            LoadError::Io {
                path: PathBuf::from("x.o"),
                source: io(),
            },
            LoadError::Object(bad),
            LoadError::KernelBtf {
                path: PathBuf::from("/sys/kernel/btf/vmlinux"),
                source: bad,
            },
            LoadError::NoKernelBtf {
                object: "x.o".into(),
                needs: "3 CO-RE relocations".into(),
                source: NoKernelBtf {
                    release: "6.18.0".into(),
                    searched: vec![(PathBuf::from("/sys/kernel/btf/vmlinux"), Why::Absent)],
                    external_helps: true,
                },
            },
            LoadError::NoKernelIdBtf {
                object: "x.o".into(),
                needs: "kfunc 'bpf_task_acquire'".into(),
                source: NoKernelBtf {
                    release: "6.18.0".into(),
                    searched: vec![(PathBuf::from("/sys/kernel/btf/vmlinux"), Why::Absent)],
                    external_helps: false,
                },
            },
            LoadError::Core {
                program: "prog".into(),
                source: core_error(),
            },
            LoadError::ModuleBtf {
                module: "nf_conntrack".into(),
                needed_by: "program 'p'".into(),
                source: sys(),
            },
            LoadError::MapCreate {
                map: "m".into(),
                source: sys(),
                eperm: None,
            },
            LoadError::MapCreate {
                map: "m".into(),
                source: sys(),
                eperm: Some(Box::new(EpermReason::MissingCapabilities {
                    op: Operation::MapCreate {
                        map_type: MapType::LRU_HASH,
                    },
                    missing: vec![Capability::Bpf],
                    root: true,
                })),
            },
            LoadError::Map {
                map: "m".into(),
                action: "pin",
                source: sys(),
            },
            LoadError::BtfLoad {
                log: "magic: 0xeb9f\n[1] bad".into(),
                source: sys(),
            },
            LoadError::ProgLoad {
                program: "p".into(),
                source: SysError {
                    cmd: "BPF_PROG_LOAD",
                    errno: Errno::ACCESS,
                },
                log: "0: (85) call unknown#195896080\ninvalid func unknown#195896080".into(),
                cause: Some("p: insn 0: field offset of struct t.f: POISONED (x)".into()),
                eperm: None,
            },
            LoadError::ProgLoad {
                program: "p".into(),
                source: SysError {
                    cmd: "BPF_PROG_LOAD",
                    errno: Errno::PERM,
                },
                log: String::new(),
                cause: None,
                eperm: Some(Box::new(EpermReason::Lockdown {
                    op: Operation::ProgLoad {
                        prog_type: ProgType::TRACING,
                        attach_type: Some(AttachType::TRACE_FENTRY),
                        empty_log: true,
                    },
                    mode: Lockdown::Integrity,
                })),
            },
        ];
        for e in &errors {
            assert_no_repeats(e);
        }
        // The CO-RE chain goes down to the rule that was broken.
        let core = &errors[5];
        let cause = core.source().and_then(|s| s.source()).unwrap();
        assert_eq!(cause.to_string(), ErrorKind::CoreBitfieldTooBig.to_string());
    }

    #[test]
    fn kernel_ids_error_does_not_offer_an_external_file() {
        let searched = || vec![(PathBuf::from("/sys/kernel/btf/vmlinux"), Why::Absent)];
        let ids = LoadError::NoKernelIdBtf {
            object: "x.o".into(),
            needs: "program 'p' (tp_btf/task_newtask)".into(),
            source: NoKernelBtf {
                release: "6.18.0".into(),
                searched: searched(),
                external_helps: false,
            },
        };
        let top = ids.to_string();
        assert!(top.contains("needs the running kernel's own BTF for program 'p'"));
        assert!(top.contains("not for the kernel's own type ids"), "{top}");
        let cause = ids.source().unwrap().to_string();
        assert!(cause.contains("/sys/kernel/btf/vmlinux: absent"), "{cause}");
        assert!(!cause.contains("--btf"), "{cause}");
        let core = NoKernelBtf {
            release: "6.18.0".into(),
            searched: searched(),
            external_helps: true,
        };
        assert!(
            core.to_string().ends_with("RELEASE.btf[.tar.xz])"),
            "{core}"
        );
    }

    #[test]
    fn crate_error_chains_do_not_repeat() {
        let bad = CoreErr::new(ErrorKind::BadMagic(0x1234), 0);
        let errors = [
            crate::Error::Io {
                path: PathBuf::from("x"),
                source: std::io::Error::other("boom"),
            },
            crate::Error::Btf {
                path: PathBuf::from("x"),
                source: bad,
            },
            crate::Error::Object {
                path: PathBuf::from("x"),
                source: ember_core::object::ObjectError::from(bad).into(),
            },
        ];
        for e in &errors {
            assert_no_repeats(e);
        }
        assert_no_repeats(&core_error());
        assert_no_repeats(&ember_core::btf::dump::c::DumpError::Btf(bad));
    }
}
