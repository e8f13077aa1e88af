//! Loading an object into the kernel: [`EbpfLoader`] configures, [`Ebpf`]
//! owns what was created.
//!
//! The steps, in order: parse; find kernel BTF only if something needs it;
//! solve and apply CO-RE; resolve ksyms; load the object's BTF (fixed up
//! and sanitized for this kernel; dropped with a warning when the kernel
//! refuses it and nothing requires it); create maps (inner templates,
//! internal maps filled, `.rodata`/`.kconfig` frozen); link and load each
//! program; fill prog arrays and map-in-map slots; pin. Every fd is owned
//! by a value that is dropped on the way out, so a failed load leaves
//! nothing open, and maps this load pinned are unpinned again.

mod create;
mod error;
mod externs;
mod kconfig;
mod needs;
mod program;
mod relocation;

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ember_core::btf::{Btf, Kind, TypeId};
use ember_core::insn::INSN_SIZE;
use ember_core::ksym::{self, POISON_KFUNC_BASE, Resolved};
use ember_core::load::{self as prep, FUNC_INFO_SIZE, LINE_INFO_SIZE};
use ember_core::object::{
    AttachType, ExternKind, Map as MapDef, MapKind, MapType, MapValues, Object, Pinning, ProgType,
    object_name,
};
use ember_core::reloc::{Module, Targets};
use ember_sys::{
    AsFd, BorrowedFd, Errno, MapCreate, OwnedFd, ProgBtf, ProgLoad, btf_load, map_create, obj_get,
    obj_pin, prog_load,
};

pub use self::error::LoadError;
use self::needs::kernel_btf_needs;
pub use self::relocation::Relocation;
use crate::btf_source::{BtfSearch, KernelBtf, find_kernel_btf, module_btfs};
use crate::features::{self, Features};
use crate::kallsyms::Kallsyms;
use crate::maps::Map;

/// Configures a load.
///
/// ```no_run
/// use ember::EbpfLoader;
/// let mut ebpf = EbpfLoader::new()
///     .set_global("debug_level", &1u32.to_ne_bytes())
///     .pin_dir("/sys/fs/bpf/myapp")
///     .load_file("prog.bpf.o")?;
/// let counts = ebpf.map("counts").expect("map");
/// println!("{} entries", counts.keys().count());
/// # Ok::<(), ember::LoadError>(())
/// ```
#[derive(Debug, Clone)]
pub struct EbpfLoader {
    search: BtfSearch,
    pin_dir: Option<PathBuf>,
    globals: Vec<(String, Vec<u8>)>,
    log_level: u32,
    log_size: usize,
    autoload: HashMap<String, bool>,
    btf_features: Option<features::Features>,
}

impl Default for EbpfLoader {
    fn default() -> Self {
        EbpfLoader::new()
    }
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    /// Its name (the function's).
    pub name: String,
    /// Its ELF section.
    pub section: String,
    /// Program type.
    pub prog_type: ProgType,
    /// Expected attach type.
    pub attach_type: Option<AttachType>,
    /// Attach target BTF id, for tracing and LSM programs.
    pub attach_btf_id: u32,
    /// Instructions loaded.
    pub insn_count: usize,
    fd: OwnedFd,
    /// The verifier log, when a log level was asked for.
    pub log: String,
}

impl Program {
    /// The program fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Pins the program at `path` (in a bpffs).
    ///
    /// # Errors
    /// The kernel's error.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), ember_sys::SysError> {
        obj_pin(self.fd(), &cpath(path.as_ref()))
    }
}

/// A loaded object: its maps and programs. Dropping it closes every fd
/// (pinned objects stay pinned).
#[derive(Debug)]
pub struct Ebpf {
    maps: Vec<Map>,
    programs: Vec<Program>,
    btf_fd: Option<OwnedFd>,
    /// Paths this load pinned maps at.
    pub pinned: Vec<PathBuf>,
    /// What happened along the way (fallbacks, reused pins), for
    /// `--verbose`.
    pub notes: Vec<String>,
    /// The CO-RE relocations applied, with their outcomes.
    pub relocations: Vec<Relocation>,
}

impl Ebpf {
    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.name() == name)
    }

    /// Every map, in object order.
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Every loaded program.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The loaded object BTF, when the kernel took it.
    pub fn btf_fd(&self) -> Option<BorrowedFd<'_>> {
        self.btf_fd.as_ref().map(AsFd::as_fd)
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default()
}

/// The largest verifier or BTF log the kernel accepts (`UINT_MAX >> 2`).
const MAX_LOG: usize = (u32::MAX >> 2) as usize;

/// Number of possible CPUs (per-CPU map values hold one slot per CPU);
/// 1 when `/sys/devices/system/cpu/possible` cannot be read.
pub fn possible_cpus() -> usize {
    ember_sys::cmd::possible_cpus().map_or(1, |n| n.max(1) as usize)
}

impl EbpfLoader {
    /// A loader with the defaults: kernel BTF from the standard places,
    /// no pinning, verifier log only on failure.
    pub fn new() -> EbpfLoader {
        EbpfLoader {
            search: BtfSearch::default(),
            pin_dir: None,
            globals: Vec::new(),
            log_level: 0,
            log_size: 0,
            autoload: HashMap::new(),
            btf_features: None,
        }
    }

    /// Uses this BTF file (raw or ELF) as the kernel's, instead of
    /// searching.
    pub fn btf_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.search.file = Some(path.into());
        self
    }

    /// Also searches this btfhub-style directory.
    pub fn btf_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.search.hub_dir = Some(path.into());
        self
    }

    /// Replaces the whole kernel BTF search (tests, custom sysfs paths).
    pub fn btf_search(mut self, search: BtfSearch) -> Self {
        self.search = search;
        self
    }

    /// Pins maps declared `__uint(pinning, LIBBPF_PIN_BY_NAME)` here,
    /// reusing maps already pinned there.
    pub fn pin_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.pin_dir = Some(path.into());
        self
    }

    /// Sets a global variable (`.rodata`, `.data`, `.bss`) before load,
    /// e.g. a `const volatile` configuration value. `value` must be the
    /// variable's exact size.
    pub fn set_global(mut self, name: &str, value: &[u8]) -> Self {
        self.globals.push((name.to_owned(), value.to_vec()));
        self
    }

    /// Verifier log level for successful loads too (1 = basic, 2 =
    /// verbose); rejected programs always carry their log.
    pub fn verifier_log_level(mut self, level: u32) -> Self {
        self.log_level = level;
        self
    }

    /// Initial verifier log buffer size (it grows as the kernel asks).
    pub fn verifier_log_size(mut self, size: usize) -> Self {
        self.log_size = size;
        self
    }

    /// Whether program `name` is loaded (all are by default).
    pub fn autoload(mut self, name: &str, load: bool) -> Self {
        self.autoload.insert(name.to_owned(), load);
        self
    }

    /// Pretends the kernel lacks some features (tests of the fallbacks).
    pub fn features(mut self, f: Features) -> Self {
        self.btf_features = Some(f);
        self
    }

    /// Reads and loads the object at `path`.
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Ebpf, LoadError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.load(&data, &name)
    }

    /// Loads an object from its bytes; `file_name` names internal maps the
    /// way libbpf does.
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load(&self, data: &[u8], file_name: &str) -> Result<Ebpf, LoadError> {
        let obj = Object::parse(data, object_name(file_name)).map_err(|e| {
            if e.kind() == ember_core::ErrorKind::MissingBtf {
                LoadError::NoObjectBtf {
                    object: file_name.to_owned(),
                }
            } else {
                LoadError::Object(e)
            }
        })?;
        // Once per process, and only on kernels that charge RLIMIT_MEMLOCK;
        // a failure is named if a load is then refused with EPERM.
        let _ = crate::privilege::raise_memlock();
        Loading::new(self, &obj, file_name).run()
    }
}

/// One load in progress.
struct Loading<'l, 'o> {
    cfg: &'l EbpfLoader,
    obj: &'l Object<'o>,
    file: &'l str,
    feat: Features,
    notes: Vec<String>,
    /// Whether kallsyms lists the syscall wrapper (`.kconfig`
    /// `LINUX_HAS_SYSCALL_WRAPPER`), found while reading kallsyms for ksyms.
    syscall_wrapper: bool,
    /// Maps this load pinned, unpinned again if the load fails.
    pins: create::Pins,
}

impl<'l, 'o> Loading<'l, 'o> {
    fn new(cfg: &'l EbpfLoader, obj: &'l Object<'o>, file: &'l str) -> Self {
        Loading {
            cfg,
            obj,
            file,
            feat: cfg.btf_features.unwrap_or_else(features::probe),
            notes: Vec::new(),
            syscall_wrapper: false,
            pins: create::Pins::default(),
        }
    }

    fn run(mut self) -> Result<Ebpf, LoadError> {
        let obj = self.obj;
        if obj.endian != ember_core::Endian::NATIVE {
            return Err(LoadError::Object(ember_core::Error::new(
                ember_core::ErrorKind::ForeignEndian,
                0,
            )));
        }
        // A mistyped set_global would silently keep the default.
        for (name, _) in &self.cfg.globals {
            let known = obj
                .data_symbols
                .iter()
                .any(|d| d.name == name && ember_core::object::is_data_section(d.section));
            if !known {
                return Err(LoadError::Global {
                    name: name.clone(),
                    reason: "no such variable in .data, .rodata or .bss".into(),
                });
            }
        }
        let kernel = match kernel_btf_needs(obj) {
            Some(needs) => Some(find_kernel_btf(&self.cfg.search).map_err(|source| {
                LoadError::NoKernelBtf {
                    object: self.file.to_owned(),
                    needs,
                    source,
                }
            })?),
            None => None,
        };
        match &kernel {
            Some(k) => {
                let main = k.btf().map_err(|source| LoadError::KernelBtf {
                    path: k.path.clone(),
                    source,
                })?;
                let from_sysfs = self.cfg.search.file.is_none()
                    && k.path == Path::new("/sys/kernel/btf/vmlinux");
                let mods = if from_sysfs && self.needs_modules(&main) {
                    let (found, failed) = module_btfs(None);
                    let hidden = std::fs::read_dir("/sys/kernel/btf").is_err();
                    if hidden || !failed.is_empty() {
                        // sysfs hides (some) module BTF: ask the kernel.
                        match crate::kernel_btf_objects::module_btfs_from_kernel() {
                            Ok(m) => {
                                self.notes.push(format!(
                                    "module BTF read through bpf(2): {} modules",
                                    m.len()
                                ));
                                m
                            }
                            Err(e) => {
                                self.notes
                                    .push(format!("module BTF via bpf(2) failed: {e}"));
                                found
                            }
                        }
                    } else {
                        found
                    }
                } else {
                    Vec::new()
                };
                let mut parsed = Vec::new();
                for m in &mods {
                    match m.btf(&main) {
                        Ok(b) => parsed.push((m.name.as_str(), b)),
                        Err(e) => self
                            .notes
                            .push(format!("module BTF {} skipped: {e}", m.path.display())),
                    }
                }
                let modules: Vec<Module<'_>> = parsed
                    .iter()
                    .map(|(name, btf)| Module { name, btf })
                    .collect();
                let targets = Targets {
                    main: &main,
                    modules: &modules,
                    is_override: !from_sysfs,
                };
                self.with_targets(Some((&targets, k)))
            }
            None => self.with_targets(None),
        }
    }

    fn with_targets(
        mut self,
        targets: Option<(&Targets<'_>, &KernelBtf)>,
    ) -> Result<Ebpf, LoadError> {
        let obj = self.obj;
        // CO-RE.
        let (mut code, relocations) = match targets {
            Some((t, _)) => relocation::relocate_all(obj, t).map_err(|source| LoadError::Core {
                program: source
                    .func
                    .and_then(|f| obj.functions.get(f))
                    .map_or_else(String::new, |f| f.name.to_owned()),
                source,
            })?,
            None => (
                obj.code.iter().map(|c| c.bytes.to_vec()).collect(),
                Vec::new(),
            ),
        };
        for r in &relocations {
            self.notes.push(format!("CO-RE {}", r.text));
        }
        // ksyms.
        let resolved = self.resolve_externs(targets.map(|(t, _)| t))?;
        let module_fds = self.module_fds(&resolved, targets.map(|(t, _)| t))?;
        let raw_of = |t: usize| {
            module_fds
                .iter()
                .find(|(m, _)| *m == t)
                .map_or(0, |(_, fd)| std::os::fd::AsRawFd::as_raw_fd(fd))
        };
        let slot_of = |t: usize| {
            module_fds
                .iter()
                .position(|(m, _)| *m == t)
                .map_or(0, |i| (i + 1) as i16)
        };
        ksym::patch(obj, &resolved, &mut code, &raw_of, &slot_of).map_err(LoadError::Object)?;
        // Slot 0 stands for vmlinux and is never read; fill it anyway.
        let fd_array: Vec<BorrowedFd<'_>> = module_fds
            .first()
            .into_iter()
            .chain(&module_fds)
            .map(|(_, fd)| fd.as_fd())
            .collect();

        // Object BTF.
        let btf_fd = self.load_object_btf()?;

        // Maps.
        let maps = self.create_maps(btf_fd.as_ref())?;
        let map_fd = |i: usize| maps.get(i).map(Map::raw_fd);

        // Programs.
        let mut programs = Vec::new();
        let mut prog_of_func = HashMap::new();
        for (fi, f) in obj.functions.iter().enumerate() {
            if !f.is_program || !self.cfg.autoload.get(f.name).copied().unwrap_or(true) {
                continue;
            }
            let p = self.load_program(
                fi,
                &code,
                &map_fd,
                btf_fd.as_ref(),
                targets.map(|(t, _)| t),
                &relocations,
                &resolved,
                &fd_array,
            )?;
            prog_of_func.insert(fi, programs.len());
            programs.push(p);
        }

        // Slots of prog arrays and maps of maps.
        self.fill_slots(&maps, &programs, &prog_of_func)?;
        let pinned = self.pins.keep();
        Ok(Ebpf {
            maps,
            programs,
            btf_fd,
            pinned,
            notes: self.notes,
            relocations,
        })
    }
}
