//! Loading an object into the kernel: [`EbpfLoader`] configures, [`Ebpf`]
//! owns what was created.
//!
//! The steps, in order: parse; find kernel BTF only if something needs it
//! (two jobs: the CO-RE target, an external file when given, and the
//! running kernel's own BTF for attach targets, kfuncs and typed ksyms);
//! solve and apply CO-RE; resolve ksyms; load the object's BTF (fixed up
//! and sanitized for this kernel; dropped with a warning when the kernel
//! refuses it and nothing requires it); create maps (inner templates,
//! internal maps filled, `.rodata`/`.kconfig` frozen); link and load each
//! program (struct_ops programs at their kernel struct and member,
//! extensions against their target program); fill prog arrays and
//! map-in-map slots; create, fill and register struct_ops maps
//! (`struct_ops.rs`); pin. Every fd is owned
//! by a value that is dropped on the way out, so a failed load leaves
//! nothing open, and maps this load pinned are unpinned again.

pub(crate) mod create;
mod error;
mod externs;
pub mod kconfig;
mod loaded;
pub(crate) mod needs;
pub mod poison;
mod program;
mod relocation;
pub mod spec;
mod struct_ops;

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};

use ember_core::btf::{Btf, Kind};
use ember_core::insn::INSN_SIZE;
use ember_core::ksym::{self, Resolved};
use ember_core::load::{self as prep, FUNC_INFO_SIZE, LINE_INFO_SIZE};
use ember_core::object::{
    AttachType, ExternKind, Map as MapDef, MapKind, MapType, MapValues, Object, Pinning, ProgType,
};
use ember_core::reloc::{Module, Targets};
use ember_sys::{
    AsFd, BorrowedFd, Errno, MapCreate, OwnedFd, ProgBtf, ProgLoad, btf_load, map_create, obj_get,
    obj_pin, prog_load,
};

pub use self::error::LoadError;
pub use self::loaded::{Ebpf, Program};
use self::needs::{Needs, any_module_btf};
pub use self::relocation::{Relocation, relocate_all};
pub use self::struct_ops::StructOpsMap;
use crate::btf_source::{BtfSearch, KernelBtf, ModuleBtf, find_kernel_btf_to_parse, module_btfs};
use crate::features::{self, Features};
use crate::kallsyms::Kallsyms;
use crate::load::spec::ObjectSpec;
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
pub struct EbpfLoader<'k> {
    search: BtfSearch,
    /// The running kernel's vmlinux BTF, parsed once by the caller and
    /// shared across loads.
    kernel_btf: Option<&'k Btf<'k>>,
    /// A CO-RE target parsed by the caller (instead of `search.file`).
    core_btf: Option<&'k Btf<'k>>,
    pin_dir: Option<PathBuf>,
    globals: Vec<(String, Vec<u8>)>,
    log_level: u32,
    log_size: usize,
    autoload: HashMap<String, bool>,
    btf_features: Option<features::Features>,
    ksym_source: crate::ksym_lookup::Source,
    /// Config text looked up before the running kernel's (`kconfig`).
    kconfig: Option<String>,
}

impl Default for EbpfLoader<'_> {
    fn default() -> Self {
        EbpfLoader::new()
    }
}

fn parse_kernel_btf(k: &KernelBtf) -> Result<Btf<'_>, LoadError> {
    k.btf().map_err(|source| LoadError::KernelBtf {
        path: k.path.clone(),
        source,
    })
}

/// Whether two paths name the same file (`--btf /sys/kernel/btf/vmlinux`
/// is the running kernel's BTF: parsed once, used for both jobs).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub(crate) fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap_or_default()
}

/// The largest verifier or BTF log the kernel accepts (`UINT_MAX >> 2`).
const MAX_LOG: usize = (u32::MAX >> 2) as usize;

impl<'k> EbpfLoader<'k> {
    /// A loader with the defaults: kernel BTF from the standard places,
    /// no pinning, verifier log only on failure.
    pub fn new() -> EbpfLoader<'k> {
        EbpfLoader {
            search: BtfSearch::default(),
            kernel_btf: None,
            core_btf: None,
            pin_dir: None,
            globals: Vec::new(),
            log_level: 0,
            log_size: 0,
            autoload: HashMap::new(),
            btf_features: None,
            ksym_source: crate::ksym_lookup::Source::Auto,
            kconfig: None,
        }
    }

    /// Uses this BTF file (raw or ELF) as the CO-RE target instead of the
    /// running kernel's BTF, as libbpf's `btf_custom_path` does. Attach
    /// targets, kfuncs and typed ksyms still resolve against the running
    /// kernel's own BTF (vmlinux and modules), whose ids the kernel checks;
    /// when it has none, a load that needs them fails with
    /// [`LoadError::NoKernelIdBtf`].
    pub fn btf_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.search.file = Some(path.into());
        self
    }

    /// Uses `btf`, the running kernel's vmlinux BTF parsed by the caller,
    /// instead of reading and parsing `/sys/kernel/btf/vmlinux` for each
    /// load: one parse (and one lazily built name index) serves every
    /// object. It is the kernel-id BTF (attach targets, kfuncs, typed
    /// ksyms) and, unless a CO-RE target is given, the CO-RE target.
    /// Module BTF is still read as needed, split over it.
    ///
    /// ```no_run
    /// use ember::ember_core::btf::Btf;
    /// let bytes = ember::FileBytes::open("/sys/kernel/btf/vmlinux".as_ref())?;
    /// let vmlinux = Btf::parse(&bytes)?;
    /// for obj in ["a.bpf.o", "b.bpf.o"] {
    ///     let _ebpf = ember::EbpfLoader::new().kernel_btf(&vmlinux).load_file(obj)?;
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kernel_btf(mut self, btf: &'k Btf<'k>) -> Self {
        self.kernel_btf = Some(btf);
        self
    }

    /// Uses `btf` (parsed by the caller, from any file or bytes) as the
    /// CO-RE target only, as [`EbpfLoader::btf_file`] does for a file.
    pub fn core_btf(mut self, btf: &'k Btf<'k>) -> Self {
        self.core_btf = Some(btf);
        self
    }

    /// Also searches this btfhub-style directory for a CO-RE target, when
    /// the running kernel has no BTF of its own (attach targets, kfuncs and
    /// typed ksyms still need the kernel's own, as with
    /// [`btf_file`](Self::btf_file)).
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

    /// Resolves untyped ksyms by scanning `/proc/kallsyms` even where
    /// the kernel offers `bpf_kallsyms_lookup_name`: slower (the kernel
    /// formats every symbol), but a name listed twice is refused as
    /// ambiguous instead of taking the kernel's first match. See
    /// [`crate::ksym_lookup`].
    pub fn kallsyms_scan(mut self, scan: bool) -> Self {
        self.ksym_source = if scan {
            crate::ksym_lookup::Source::Kallsyms
        } else {
            crate::ksym_lookup::Source::Auto
        };
        self
    }

    /// Kernel config text (`CONFIG_X=value` lines, as in `/proc/config.gz`)
    /// whose options `.kconfig` externs take before the running kernel's,
    /// as libbpf's `kconfig` open option: for kernels built without
    /// `CONFIG_IKCONFIG_PROC` and with no `/boot/config-*` (an initramfs),
    /// or to override an option. The kernel's own config is read only if
    /// an extern is not found here. Values follow libbpf's rules (see
    /// [`kconfig::encode`]).
    pub fn kconfig(mut self, text: impl Into<String>) -> Self {
        self.kconfig = Some(text.into());
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
        let mut spec = ObjectSpec::parse(data, file_name)?;
        // The shorthand setters of this loader apply to the spec; an
        // unknown name is an error, as in the spec's own setters.
        for (name, value) in &self.globals {
            spec.set_global_bytes(name, value)
                .map_err(LoadError::Spec)?;
        }
        for (name, load) in &self.autoload {
            spec.program_mut(name)
                .map_err(LoadError::Spec)?
                .set_autoload(*load);
        }
        self.load_spec(spec)
    }

    /// Loads an object opened and configured as an [`ObjectSpec`].
    ///
    /// # Errors
    /// See [`LoadError`].
    pub fn load_spec(&self, spec: ObjectSpec<'_>) -> Result<Ebpf, LoadError> {
        // Once per process, and only on kernels that charge RLIMIT_MEMLOCK;
        // a failure is named if a load is then refused with EPERM.
        let _ = crate::privilege::raise_memlock();
        Loading::new(self, &spec).run()
    }
}

/// One load in progress.
struct Loading<'l, 'o> {
    cfg: &'l EbpfLoader<'l>,
    spec: &'l ObjectSpec<'o>,
    obj: &'l Object<'o>,
    file: &'l str,
    feat: Features,
    notes: Vec<String>,
    /// Whether kallsyms lists the syscall wrapper (`.kconfig`
    /// `LINUX_HAS_SYSCALL_WRAPPER`), found while reading kallsyms for ksyms.
    syscall_wrapper: bool,
    /// Maps this load pinned, unpinned again if the load fails.
    pins: create::Pins,
    /// Where struct_ops programs attach, and the kernel types of the
    /// struct_ops maps.
    struct_ops: struct_ops::Plan,
}

impl<'l, 'o> Loading<'l, 'o> {
    fn new(cfg: &'l EbpfLoader<'l>, spec: &'l ObjectSpec<'o>) -> Self {
        Loading {
            cfg,
            spec,
            obj: &spec.obj,
            file: &spec.file,
            feat: cfg.btf_features.unwrap_or_else(features::probe),
            notes: Vec::new(),
            syscall_wrapper: false,
            pins: create::Pins::default(),
            struct_ops: struct_ops::Plan::default(),
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
        let needs = Needs::of(obj);
        let search = &self.cfg.search;
        // Two BTFs, two jobs. The kernel-id BTF is the running kernel's own
        // (attach targets, kfuncs and typed ksyms carry ids the kernel
        // checks against it); the CO-RE target is an external file when
        // one is given, else the same running kernel's BTF. The running
        // kernel's is read only when one of the two needs it.
        // BTF the caller parsed stands in for reading and parsing files.
        let (given_kernel, given_core) = (self.cfg.kernel_btf, self.cfg.core_btf);
        let core_given = search.file.is_some() || given_core.is_some();
        let running_needed =
            given_kernel.is_none() && (!needs.ids.is_empty() || (needs.core > 0 && !core_given));
        let mut running_missing = None;
        let running = if running_needed {
            match find_kernel_btf_to_parse(&search.running_kernel()) {
                Ok(k) => Some(k),
                Err(mut source) if !needs.ids.is_empty() => {
                    source.external_helps = false;
                    return Err(LoadError::NoKernelIdBtf {
                        object: self.file.to_owned(),
                        needs: needs.ids.join(", "),
                        source,
                    });
                }
                Err(source) => {
                    running_missing = Some(source);
                    None
                }
            }
        } else {
            None
        };
        // The CO-RE target when it is not the running kernel's BTF.
        let external = if needs.core == 0
            || given_core.is_some()
            || (given_kernel.is_some() && search.file.is_none())
        {
            None
        } else {
            match (&search.file, &running) {
                (Some(f), Some(k)) if same_file(f, &k.path) => None,
                (None, Some(_)) => None,
                _ => {
                    // An explicit file, or btfhub after the standard places.
                    let found = match (&search.file, &search.hub_dir, running_missing) {
                        (None, None, Some(source)) => Err(source),
                        _ => find_kernel_btf_to_parse(search),
                    };
                    Some(found.map_err(|source| LoadError::NoKernelBtf {
                        object: self.file.to_owned(),
                        needs: needs.core_text(),
                        source,
                    })?)
                }
            }
        };
        let running_main = running.as_ref().map(parse_kernel_btf).transpose()?;
        let external_main = external.as_ref().map(parse_kernel_btf).transpose()?;
        if let Some(k) = &external {
            self.notes.push(format!(
                "CO-RE target: {} (external; kernel ids from the running kernel)",
                k.path.display()
            ));
            self.notes.extend(selection_notes(k));
        } else if let Some(k) = running.as_ref().filter(|_| needs.core > 0) {
            self.notes
                .push(format!("CO-RE target: {}", k.path.display()));
            self.notes.extend(selection_notes(k));
            if let Some(d) = &search.hub_dir {
                self.notes.push(format!(
                    "  {} not consulted: btfhub files stand in only when the kernel has no BTF",
                    d.display()
                ));
            }
        }
        // The caller's parsed vmlinux, or the one found and parsed here.
        let main_btf: Option<&Btf<'_>> = given_kernel.or(running_main.as_ref());
        if given_kernel.is_some() {
            self.notes
                .push("kernel BTF: the caller's parsed vmlinux (no file read)".into());
        }
        if given_core.is_some() && needs.core > 0 {
            self.notes
                .push("CO-RE target: the caller's parsed BTF".into());
        }
        let running_path = match (&running, given_kernel) {
            (_, Some(_)) => Some(Path::new("/sys/kernel/btf/vmlinux")),
            (Some(k), None) => Some(k.path.as_path()),
            (None, None) => None,
        };
        let (mods, from_sysfs) = match (running_path, main_btf) {
            (Some(path), Some(main)) => {
                let from_sysfs = path == Path::new("/sys/kernel/btf/vmlinux");
                let core_too = external.is_none() && given_core.is_none() && needs.core > 0;
                let mods = if from_sysfs && any_module_btf() && self.needs_modules(main, core_too) {
                    self.read_modules()
                } else {
                    Vec::new()
                };
                (mods, from_sysfs)
            }
            _ => (Vec::new(), false),
        };
        let mut parsed = Vec::new();
        if let Some(main) = main_btf {
            for m in &mods {
                match m.btf(main) {
                    Ok(b) => parsed.push((m.name.as_str(), b)),
                    Err(e) => self
                        .notes
                        .push(format!("module BTF {} skipped: {e}", m.path.display())),
                }
            }
        }
        let modules: Vec<Module<'_>> = parsed
            .iter()
            .map(|(name, btf)| Module { name, btf })
            .collect();
        let kernel = main_btf.map(|main| Targets {
            main,
            modules: &modules,
            // Found elsewhere than sysfs: libbpf's fallback paths.
            is_override: !from_sysfs,
        });
        let core = match (given_core, &external_main) {
            (Some(main), _) | (None, Some(main)) => Some(Targets {
                main,
                modules: &[],
                is_override: true,
            }),
            (None, None) => kernel.filter(|_| needs.core > 0),
        };
        self.with_targets(core.as_ref(), kernel.as_ref())
    }

    /// Every module BTF of the running kernel: from sysfs, or through
    /// bpf(2) when sysfs hides (some of) it.
    fn read_modules(&mut self) -> Vec<ModuleBtf> {
        let (found, failed) = module_btfs(None);
        let hidden = std::fs::read_dir("/sys/kernel/btf").is_err();
        if !hidden && failed.is_empty() {
            return found;
        }
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
    }

    /// Loads with `core` as the CO-RE target and `kernel` (the running
    /// kernel's BTF) for attach targets, kfuncs and typed ksyms; either is
    /// `None` when nothing needs it.
    fn with_targets(
        mut self,
        core: Option<&Targets<'_>>,
        kernel: Option<&Targets<'_>>,
    ) -> Result<Ebpf, LoadError> {
        let obj = self.obj;
        // CO-RE.
        let (mut code, relocations) = match core {
            Some(t) => relocation::relocate_all(obj, t).map_err(|source| LoadError::Core {
                program: source
                    .func
                    .and_then(|f| obj.function(f))
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
        let resolved = self.resolve_externs(kernel)?;
        let module_fds = self.module_fds(&resolved, kernel)?;
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
        let map_fd = |i: usize| maps.get(i).and_then(Option::as_ref).map(Map::raw_fd);

        // Programs.
        self.struct_ops = self.plan_struct_ops(kernel)?;
        let mut programs = Vec::new();
        let mut prog_of_func = HashMap::new();
        for (fi, f) in obj.functions.iter().enumerate() {
            let autoload = self.spec.programs.get(fi).is_none_or(|o| o.autoload);
            if !f.is_program || !autoload {
                continue;
            }
            if self.unused_struct_ops(fi) {
                self.notes.push(format!(
                    "struct_ops program '{}' is used by no struct_ops map: not loaded",
                    f.name
                ));
                continue;
            }
            let p = self.load_program(
                fi,
                &code,
                &map_fd,
                btf_fd.as_ref(),
                kernel,
                &relocations,
                &resolved,
                &fd_array,
            )?;
            prog_of_func.insert(fi, programs.len());
            programs.push(p);
        }

        // Slots of prog arrays and maps of maps.
        self.fill_slots(&maps, &programs, &prog_of_func)?;
        let plan = core::mem::take(&mut self.struct_ops);
        let struct_ops =
            self.register_struct_ops(&plan, kernel, btf_fd.as_ref(), &programs, &prog_of_func)?;
        let pinned = self.pins.keep();
        Ok(Ebpf {
            struct_ops,
            maps: maps.into_iter().flatten().collect(),
            programs,
            btf_fd,
            pinned,
            notes: self.notes,
            relocations,
        })
    }
}

/// `--verbose` lines saying why a kernel BTF file was picked and what was
/// tried before it.
fn selection_notes(k: &KernelBtf) -> impl Iterator<Item = String> + '_ {
    core::iter::once(format!("  picked because: {}", k.reason)).chain(
        k.tried
            .iter()
            .map(|(p, why)| format!("  tried {}: {why}", p.display())),
    )
}
