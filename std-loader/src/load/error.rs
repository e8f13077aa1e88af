//! Why a load failed, with what the user needs to fix it.

use core::fmt;
use std::path::PathBuf;

use ember_sys::SysError;

use crate::btf_source::NoKernelBtf;

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
        /// The relocation, its access path and why.
        detail: String,
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
        /// weak kfunc: which one, with its source line.
        cause: Option<String>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            LoadError::Object(e) if e.kind() == ember_core::ErrorKind::ForeignEndian => write!(
                f,
                "the object's byte order is not this machine's; build it with -target bpf (host order) or -target bpfel/bpfeb to match"
            ),
            LoadError::Object(e) => write!(f, "malformed object: {e}"),
            LoadError::Parse(e) => write!(f, "unusable object: {e}"),
            LoadError::NoObjectBtf { object } => write!(
                f,
                "{object} has no .BTF section but needs one (BTF-defined maps, CO-RE, kfuncs or typed ksyms); \
                 rebuild it with debug info: clang -g -O2 -target bpf -c prog.bpf.c"
            ),
            LoadError::NoKernelBtf {
                object,
                needs,
                source,
            } => write!(f, "{object} needs kernel BTF for {needs}, but {source}"),
            LoadError::KernelBtf { path, source } => {
                write!(f, "kernel BTF {}: {source}", path.display())
            }
            LoadError::Core { program, detail } => {
                write!(f, "program '{program}': CO-RE relocation failed: {detail}")
            }
            LoadError::Ksym { name, reason } => write!(f, "extern '{name}': {reason}"),
            LoadError::Kconfig { name, reason } => write!(f, "kconfig extern '{name}': {reason}"),
            LoadError::Global { name, reason } => write!(f, "global '{name}': {reason}"),
            LoadError::AttachTarget { program, target } => write!(
                f,
                "program '{program}': attach target '{target}' is not in the kernel BTF"
            ),
            LoadError::ModuleBtf {
                module,
                needed_by,
                source,
            } => write!(
                f,
                "{needed_by} needs module '{module}', whose BTF object cannot be opened: {source}"
            ),
            LoadError::Unsupported { program, what } => write!(
                f,
                "program '{program}': ember does not load {what} yet; skip it with autoload(\"{program}\", false)"
            ),
            LoadError::UnknownSection { program, section } => write!(
                f,
                "program '{program}': section '{section}' does not name a program type"
            ),
            LoadError::MapCreate { map, source } => write!(f, "map '{map}': {source}"),
            LoadError::Map {
                map,
                action,
                source,
            } => write!(f, "map '{map}': {action}: {source}"),
            LoadError::PinMismatch { map, path, detail } => write!(
                f,
                "map '{map}': the map pinned at {} differs ({detail})",
                path.display()
            ),
            LoadError::BtfLoad { log, source } => {
                write!(f, "the kernel rejected the object's BTF: {source}\n{log}")
            }
            LoadError::ProgLoad {
                program,
                source,
                log,
                cause,
            } => {
                write!(f, "program '{program}': {source}")?;
                if let Some(c) = cause {
                    write!(f, "\n  cause: {c}")?;
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
            LoadError::NoKernelBtf { source, .. } => Some(source),
            LoadError::MapCreate { source, .. }
            | LoadError::Map { source, .. }
            | LoadError::BtfLoad { source, .. }
            | LoadError::ModuleBtf { source, .. }
            | LoadError::ProgLoad { source, .. } => Some(source),
            _ => None,
        }
    }
}
