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

mod error;
mod kconfig;

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
    AsFd, BorrowedFd, Errno, MapCreate, MapFd, OwnedFd, ProgBtf, ProgLoad, btf_load, map_create,
    obj_get, obj_pin, prog_load,
};

pub use self::error::LoadError;
use crate::btf_source::{BtfSearch, KernelBtf, find_kernel_btf, module_btfs};
use crate::explain::{Explained, explain};
use crate::features::{self, Features};
use crate::kallsyms::Kallsyms;
use crate::maps::Map;

/// The poison CO-RE writes into instructions it cannot relocate
/// (`call 0xbad2310`).
const POISON_CALL: i64 = 0x0bad_2310;

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
    /// The CO-RE relocations applied, described.
    pub relocations: Vec<Explained>,
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

/// Number of possible CPUs (per-CPU map values hold one slot per CPU).
pub fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => Some(b.parse::<usize>().ok()? + 1 - a.parse::<usize>().ok()?),
                    None => r.parse::<usize>().ok().map(|_| 1),
                })
                .sum::<Option<usize>>()
        })
        .unwrap_or(1)
        .max(1)
}

fn per_cpu(t: MapType) -> bool {
    matches!(t.0, 5 | 6 | 10 | 21)
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
}

/// What needs kernel BTF, for the error when there is none.
fn kernel_btf_needs(obj: &Object<'_>) -> Option<String> {
    let mut why = Vec::new();
    let relos = obj
        .btf_ext
        .map_or(0, |e| e.core_relos().map(|b| b.len()).sum::<usize>());
    if relos > 0 {
        why.push(format!(
            "{relos} CO-RE relocation{}",
            if relos == 1 { "" } else { "s" }
        ));
    }
    for x in &obj.externs {
        match x.kind {
            ExternKind::Kfunc => why.push(format!("kfunc '{}'", x.name)),
            ExternKind::TypedVar => why.push(format!("typed ksym '{}'", x.name)),
            _ => {}
        }
    }
    for f in obj.programs() {
        if f.sec_def
            .is_some_and(|d| needs_attach_btf(d.prog_type, d.attach_type))
        {
            let sec = obj.code.get(f.section).map_or("", |c| c.name);
            why.push(format!("program '{}' ({sec})", f.name));
        }
    }
    (!why.is_empty()).then(|| why.join(", "))
}

fn needs_attach_btf(p: ProgType, a: Option<AttachType>) -> bool {
    (p == ProgType::TRACING || p == ProgType::LSM) && a.is_some()
}

/// The kernel BTF name and kind a tracing program attaches to.
fn attach_name(a: AttachType, target: &str) -> (String, Kind) {
    match a {
        AttachType::TRACE_RAW_TP => (format!("btf_trace_{target}"), Kind::Typedef),
        AttachType::LSM_MAC | AttachType::LSM_CGROUP => (format!("bpf_lsm_{target}"), Kind::Func),
        AttachType::TRACE_ITER => (format!("bpf_iter_{target}"), Kind::Func),
        _ => (target.to_owned(), Kind::Func),
    }
}

impl<'l, 'o> Loading<'l, 'o> {
    fn new(cfg: &'l EbpfLoader, obj: &'l Object<'o>, file: &'l str) -> Self {
        Loading {
            cfg,
            obj,
            file,
            feat: cfg.btf_features.unwrap_or_else(features::probe),
            notes: Vec::new(),
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

    /// Whether module BTF must be read at all: only when vmlinux lacks a
    /// CO-RE root type or a kfunc/typed ksym (module BTF is then parsed,
    /// as libbpf searches it, only for what vmlinux does not have).
    fn needs_modules(&mut self, main: &Btf<'_>) -> bool {
        let obj = self.obj;
        let Some(local) = obj.btf.as_ref() else {
            return false;
        };
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
        let core = match ember_core::reloc::solve(obj, &alone) {
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

    fn with_targets(
        mut self,
        targets: Option<(&Targets<'_>, &KernelBtf)>,
    ) -> Result<Ebpf, LoadError> {
        let obj = self.obj;
        // CO-RE.
        let (mut code, relocations) = match targets {
            Some((t, _)) => {
                let ex = explain(obj, t).map_err(|e| LoadError::Core {
                    program: e
                        .func
                        .and_then(|f| obj.functions.get(f))
                        .map_or_else(String::new, |f| f.name.to_owned()),
                    detail: format!("relocation #{} at insn {}: {}", e.index, e.insn, e.error),
                })?;
                (ex.code, ex.relocs)
            }
            None => (
                obj.code.iter().map(|c| c.bytes.to_vec()).collect(),
                Vec::new(),
            ),
        };
        for r in &relocations {
            self.notes.push(format!("CO-RE {}", r.to_text()));
        }
        // ksyms.
        let resolved = self.resolve_externs(targets.map(|(t, _)| t))?;
        // Module BTF objects the instructions must name: typed ksyms carry
        // the fd, kfunc calls an index into the program's fd_array.
        let mut module_fds: Vec<(usize, OwnedFd)> = Vec::new();
        for (x, r) in obj.externs.iter().zip(&resolved) {
            let (Resolved::Kfunc { target, .. } | Resolved::Var { target, .. }) = *r else {
                continue;
            };
            if target == 0 || module_fds.iter().any(|(t, _)| *t == target) {
                continue;
            }
            let m = targets.map_or("?", |(t, _)| t.name(target));
            let fd = crate::kernel_btf_objects::module_btf_fd(m).map_err(|source| {
                LoadError::ModuleBtf {
                    module: m.to_owned(),
                    needed_by: format!("extern '{}'", x.name),
                    source,
                }
            })?;
            self.notes
                .push(format!("extern '{}' resolved in module '{m}'", x.name));
            module_fds.push((target, fd));
        }
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
        let map_fd = |i: usize| maps.get(i).and_then(|m| m.as_ref()).map(|m| m.raw_fd());

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

        let mut maps: Vec<Map> = maps.into_iter().flatten().collect();
        // Slots of prog arrays and maps of maps.
        self.fill_slots(&mut maps, &programs, &prog_of_func)?;
        let pinned = self.pin(&maps)?;
        Ok(Ebpf {
            maps,
            programs,
            btf_fd,
            pinned,
            notes: self.notes,
            relocations,
        })
    }

    fn resolve_externs(
        &mut self,
        targets: Option<&Targets<'_>>,
    ) -> Result<Vec<Resolved>, LoadError> {
        let obj = self.obj;
        if obj.externs.is_empty() {
            return Ok(Vec::new());
        }
        let untyped: Vec<&str> = obj
            .externs
            .iter()
            .filter(|x| x.kind == ExternKind::UntypedVar)
            .map(|x| ember_core::btf::essential_name(x.name))
            .collect();
        let kallsyms = if untyped.is_empty() {
            Kallsyms::default()
        } else {
            match Kallsyms::read(&untyped) {
                Ok(Ok(k)) => k,
                Ok(Err(e)) => {
                    return Err(LoadError::Ksym {
                        name: untyped.join(", "),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    return Err(LoadError::Ksym {
                        name: untyped.join(", "),
                        reason: format!("/proc/kallsyms: {e}"),
                    });
                }
            }
        };
        let lookup = |n: &str| kallsyms.get(n).map(|k| k.addr);
        let res = match targets {
            Some(t) => ksym::resolve(obj, t, &lookup),
            None => {
                // Only untyped and kconfig externs: no kernel BTF needed.
                let empty = Btf::parse(EMPTY_BTF).map_err(LoadError::Object)?;
                ksym::resolve(obj, &Targets::single(&empty), &lookup)
            }
        };
        let res = res.map_err(|e| {
            let name = match e.kind() {
                ember_core::ErrorKind::ExternUnresolved(i)
                | ember_core::ErrorKind::ExternTypeMismatch(i) => obj
                    .externs
                    .get(i as usize)
                    .map_or_else(String::new, |x| x.name.to_owned()),
                _ => String::new(),
            };
            let reason = match e.kind() {
                ember_core::ErrorKind::ExternUnresolved(_) => {
                    "not found in the kernel (kallsyms / kernel BTF) and not declared __weak"
                        .to_owned()
                }
                ember_core::ErrorKind::ExternTypeMismatch(_) => {
                    "its declared type does not match the kernel's".to_owned()
                }
                _ => e.to_string(),
            };
            LoadError::Ksym { name, reason }
        })?;
        for (x, r) in obj.externs.iter().zip(&res) {
            if *r == Resolved::Absent {
                self.notes
                    .push(format!("weak extern '{}' is absent: 0", x.name));
            }
        }
        Ok(res)
    }

    fn load_object_btf(&mut self) -> Result<Option<OwnedFd>, LoadError> {
        let obj = self.obj;
        if obj.btf.is_none() {
            return Ok(None);
        }
        if !self.feat.btf {
            self.notes
                .push("kernel has no BTF support: loading without object BTF".into());
            return Ok(None);
        }
        let blob = prep::kernel_btf(obj, &self.feat.btf_kinds).map_err(LoadError::Object)?;
        let mut log = vec![0u8; 64 * 1024];
        match btf_load(&blob, Some(&mut log)) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) => {
                let text = log_text(&log);
                // Nothing this loader loads requires BTF (struct_ops would):
                // go on without it, as libbpf does, and say so.
                log::warn!("kernel rejected object BTF ({e}); loading without it");
                self.notes.push(format!(
                    "kernel rejected object BTF ({e}); loading without it:\n{text}"
                ));
                Ok(None)
            }
        }
    }

    fn map_create_attr<'a>(
        &self,
        m: &'a MapDef<'_>,
        btf: Option<BorrowedFd<'a>>,
        inner: Option<BorrowedFd<'a>>,
    ) -> MapCreate<'a> {
        let mut flags = m.map_flags;
        if m.kind.is_internal() && !self.feat.mmapable_arrays {
            flags &= !ember_core::object::maps::BPF_F_MMAPABLE;
        }
        let mut max_entries = m.max_entries;
        if m.map_type == MapType::PERF_EVENT_ARRAY && max_entries == 0 {
            max_entries = possible_cpus() as u32;
        }
        let btf_ids = btf.and_then(|fd| match m.kind {
            MapKind::Btf => match (m.key_type, m.value_type) {
                (Some(k), Some(v)) => Some((fd, k.0, v.0)),
                (None, Some(v)) => Some((fd, 0, v.0)),
                _ => None,
            },
            MapKind::Data(_) | MapKind::Kconfig => m.btf_id.map(|d| (fd, 0, d.0)),
            MapKind::Legacy => None,
        });
        MapCreate {
            map_type: m.map_type.0,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries,
            map_flags: flags,
            name: &m.name,
            inner_map_fd: inner,
            btf: btf_ids,
            map_extra: m.map_extra,
            numa_node: m.numa_node,
        }
    }

    /// Creates one map, retrying without BTF when the kernel refuses the
    /// BTF description (as libbpf does).
    fn create_one(
        &mut self,
        m: &MapDef<'_>,
        btf: Option<BorrowedFd<'_>>,
    ) -> Result<OwnedFd, LoadError> {
        let inner = match &m.inner {
            Some(i) => Some(self.create_one(i, btf)?),
            None => None,
        };
        let attr = self.map_create_attr(m, btf, inner.as_ref().map(AsFd::as_fd));
        match map_create(&attr) {
            Ok(fd) => Ok(fd),
            Err(e) if attr.btf.is_some() => {
                let plain = MapCreate { btf: None, ..attr };
                let fd = map_create(&plain).map_err(|_| LoadError::MapCreate {
                    map: m.name.to_string(),
                    source: e,
                })?;
                self.notes
                    .push(format!("map '{}': created without BTF ({e})", m.name));
                Ok(fd)
            }
            Err(source) => Err(LoadError::MapCreate {
                map: m.name.to_string(),
                source,
            }),
        }
    }

    fn create_maps(&mut self, btf: Option<&OwnedFd>) -> Result<Vec<Option<Map>>, LoadError> {
        let obj = self.obj;
        let btf = btf.map(AsFd::as_fd);
        let mut out = Vec::with_capacity(obj.maps.len());
        for m in &obj.maps {
            let name = m.name.to_string();
            let value_len = if per_cpu(m.map_type) {
                (m.value_size as usize).next_multiple_of(8) * possible_cpus()
            } else {
                m.value_size as usize
            };
            // Reuse a pinned map.
            if let (Pinning::ByName, Some(dir)) = (m.pinning, &self.cfg.pin_dir) {
                let path = dir.join(name.replace('.', "_"));
                if path.exists() {
                    let fd = obj_get(&cpath(&path)).map_err(|source| LoadError::Map {
                        map: name.clone(),
                        action: "open pinned map",
                        source,
                    })?;
                    let fd = MapFd::new(fd, m.key_size, value_len).map_err(|_| {
                        LoadError::PinMismatch {
                            map: name.clone(),
                            path: path.clone(),
                            detail: format!(
                                "the object wants {}-byte keys and {}-byte values",
                                m.key_size, m.value_size
                            ),
                        }
                    })?;
                    let map = Map::new(name, m, fd, true);
                    map.check_compatible(m, &path)?;
                    self.notes
                        .push(format!("map '{}': reused {}", map.name(), path.display()));
                    out.push(Some(map));
                    continue;
                }
            }
            let fd = self.create_one(m, btf)?;
            let max = self.map_create_attr(m, None, None).max_entries;
            let fd = MapFd::new(fd, m.key_size, value_len).map_err(|source| LoadError::Map {
                map: name.clone(),
                action: "describe created map",
                source,
            })?;
            let map = Map::new(name, m, fd, false).with_max_entries(max);
            self.init_internal(m, &map)?;
            out.push(Some(map));
        }
        Ok(out)
    }

    /// Fills a global-data or `.kconfig` map and freezes read-only ones.
    fn init_internal(&self, m: &MapDef<'_>, map: &Map) -> Result<(), LoadError> {
        let obj = self.obj;
        let mut value = match m.kind {
            MapKind::Data(i) => {
                let Some(d) = obj.data.get(i) else {
                    return Ok(());
                };
                let mut v = vec![0u8; d.size as usize];
                if let Some(init) = d.init {
                    let n = init.len().min(v.len());
                    v[..n].copy_from_slice(&init[..n]);
                }
                self.apply_globals(d.name, d.datasec, &mut v)?;
                v
            }
            MapKind::Kconfig => kconfig::fill(obj, m.value_size)?,
            _ => return Ok(()),
        };
        value.resize(m.value_size as usize, 0);
        let fail = |action, source| LoadError::Map {
            map: map.name().to_owned(),
            action,
            source,
        };
        map.fd_raw()
            .update(&0u32.to_ne_bytes(), &value, 0)
            .map_err(|e| fail("write initial value", e))?;
        if m.map_flags & ember_core::object::maps::BPF_F_RDONLY_PROG != 0 {
            map.fd_raw().freeze().map_err(|e| fail("freeze", e))?;
        }
        Ok(())
    }

    /// Writes values given with `set_global` into section `sec`'s image.
    fn apply_globals(
        &self,
        sec: &str,
        datasec: Option<TypeId>,
        image: &mut [u8],
    ) -> Result<(), LoadError> {
        let obj = self.obj;
        for (name, value) in &self.cfg.globals {
            let Some(sym) = obj
                .data_symbols
                .iter()
                .find(|s| s.section == sec && s.name == *name)
            else {
                continue;
            };
            let size = datasec
                .and_then(|d| {
                    let btf = obj.btf.as_ref()?;
                    btf.get(d)?.datasec_entries().find_map(|e| {
                        let v = btf.get(e.type_id)?;
                        (btf.name(&v).ok()? == name).then(|| btf.resolve_size(v.type_id()).ok())?
                    })
                })
                .map(|s| s as usize);
            if let Some(s) = size {
                if s != value.len() {
                    return Err(LoadError::Global {
                        name: name.clone(),
                        reason: format!("is {s} bytes, value is {}", value.len()),
                    });
                }
            }
            let start = sym.offset as usize;
            let dst = image
                .get_mut(start..start.saturating_add(value.len()))
                .ok_or_else(|| LoadError::Global {
                    name: name.clone(),
                    reason: format!("value of {} bytes overruns section {sec}", value.len()),
                })?;
            dst.copy_from_slice(value);
        }
        Ok(())
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the pieces of a load"
    )]
    fn load_program(
        &self,
        fi: usize,
        code: &[Vec<u8>],
        map_fd: &dyn Fn(usize) -> Option<i32>,
        btf_fd: Option<&OwnedFd>,
        kernel: Option<&Targets<'_>>,
        relocations: &[Explained],
        resolved: &[Resolved],
        fd_array: &[BorrowedFd<'_>],
    ) -> Result<Program, LoadError> {
        let obj = self.obj;
        let f = obj
            .functions
            .get(fi)
            .ok_or(LoadError::Object(ember_core::Error::new(
                ember_core::ErrorKind::BadCallTarget(0),
                0,
            )))?;
        let section = obj.code.get(f.section).map_or("", |c| c.name).to_owned();
        let def = f.sec_def.ok_or_else(|| LoadError::UnknownSection {
            program: f.name.to_owned(),
            section: section.clone(),
        })?;
        let linked = prep::link_program(obj, code, fi, map_fd).map_err(LoadError::Object)?;
        let mut attach_btf_id = 0;
        let mut attach_module: Option<OwnedFd> = None;
        if needs_attach_btf(def.prog_type, def.attach_type) {
            let target = f.attach_target.unwrap_or("");
            let (name, kind) = attach_name(def.attach_type.unwrap_or(AttachType(0)), target);
            // vmlinux first, then modules (a module function's BTF id is
            // only meaningful with that module's BTF object fd).
            let found = kernel.and_then(|t| {
                (0..=t.modules.len()).find_map(|i| {
                    let id = t.btf(i)?.find_by_name_kind(&name, kind)?;
                    // Split BTF finds base ids too: take the module's own.
                    (i == 0 || id >= t.btf(i)?.start_id()).then(|| (i, t.name(i), id))
                })
            });
            let (target, module, id) = found.ok_or_else(|| LoadError::AttachTarget {
                program: f.name.to_owned(),
                target: name.clone(),
            })?;
            attach_btf_id = id.0;
            if target != 0 {
                let fd = crate::kernel_btf_objects::module_btf_fd(module).map_err(|source| {
                    LoadError::ModuleBtf {
                        module: module.to_owned(),
                        needed_by: format!("program '{}'", f.name),
                        source,
                    }
                })?;
                attach_module = Some(fd);
            }
        }
        let license = CString::new(obj.license.unwrap_or("")).unwrap_or_default();
        let mut flags = 0;
        if def.sleepable {
            flags |= 1 << 4; // BPF_F_SLEEPABLE
        }
        if def.xdp_frags {
            flags |= 1 << 5; // BPF_F_XDP_HAS_FRAGS
        }
        let prog_btf = btf_fd.map(|fd| ProgBtf {
            fd: fd.as_fd(),
            func_info: &linked.func_info,
            func_info_rec_size: FUNC_INFO_SIZE,
            line_info: &linked.line_info,
            line_info_rec_size: LINE_INFO_SIZE,
        });
        let attempt = |log: Option<&mut [u8]>, level: u32| {
            prog_load(&mut ProgLoad {
                prog_type: def.prog_type.0,
                expected_attach_type: def.attach_type.map_or(0, |a| a.0),
                insns: &linked.insns,
                license: &license,
                name: f.name,
                log,
                log_level: level,
                prog_flags: flags,
                btf: prog_btf,
                attach_btf_id,
                attach_btf_obj_fd: attach_module.as_ref().map(AsFd::as_fd),
                fd_array,
            })
        };
        let program = |fd, log| Program {
            name: f.name.to_owned(),
            section: section.clone(),
            prog_type: def.prog_type,
            attach_type: def.attach_type,
            attach_btf_id,
            insn_count: linked.insns.len() / INSN_SIZE,
            fd,
            log,
        };
        // Fast path: no log unless asked for.
        let mut size = self.cfg.log_size.max(64 * 1024);
        let level = self.cfg.log_level;
        if level == 0 {
            if let Ok(fd) = attempt(None, 0) {
                return Ok(program(fd, String::new()));
            }
        }
        // With a log, growing the buffer until the whole log fits.
        loop {
            let mut buf = vec![0u8; size];
            match attempt(Some(&mut buf), level.max(1)) {
                Ok(fd) => return Ok(program(fd, log_text(&buf))),
                Err(e) => {
                    let want = e.log_true_size as usize;
                    let truncated = e.error.errno == Errno::NOSPC || want > size;
                    if truncated && size < (1 << 30) {
                        size = if want > size { want } else { size * 4 };
                        continue;
                    }
                    let log = log_text(&buf);
                    let cause = self.poison_cause(&log, &linked, fi, relocations, resolved);
                    return Err(LoadError::ProgLoad {
                        program: f.name.to_owned(),
                        source: e.error,
                        log,
                        cause,
                    });
                }
            }
        }
    }

    /// Maps `call unknown#195896080` (a poisoned CO-RE relocation) or a
    /// poisoned weak kfunc in the verifier log back to its origin.
    fn poison_cause(
        &self,
        log: &str,
        linked: &prep::Linked,
        _prog: usize,
        relocations: &[Explained],
        resolved: &[Resolved],
    ) -> Option<String> {
        let obj = self.obj;
        for line in log.lines() {
            let Some((pc, rest)) = line.split_once(": ") else {
                continue;
            };
            let Ok(pc) = pc.trim().parse::<u32>() else {
                continue;
            };
            let Some(num) = rest
                .split("unknown#")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse::<i64>().ok())
            else {
                continue;
            };
            let (func, insn) = linked.origin(pc)?;
            let fname = obj.functions.get(func).map_or("", |f| f.name);
            if num == POISON_CALL {
                let r = relocations
                    .iter()
                    .find(|r| r.program == fname && r.insn == insn && r.outcome == "poisoned");
                return Some(match r {
                    Some(r) => r.to_text(),
                    None => format!("{fname}: insn {insn}: poisoned CO-RE relocation"),
                });
            }
            let xi = num - i64::from(POISON_KFUNC_BASE);
            if let Some(x) = usize::try_from(xi).ok().and_then(|i| obj.externs.get(i)) {
                if resolved.get(xi as usize) == Some(&Resolved::Absent) {
                    return Some(format!(
                        "{fname}: insn {insn}: call to weak kfunc '{}', which this kernel lacks; guard it with bpf_ksym_exists()",
                        x.name
                    ));
                }
            }
        }
        None
    }

    fn fill_slots(
        &self,
        maps: &mut [Map],
        programs: &[Program],
        prog_of_func: &HashMap<usize, usize>,
    ) -> Result<(), LoadError> {
        let obj = self.obj;
        for (mi, m) in obj.maps.iter().enumerate() {
            for &(slot, v) in &m.init {
                let fd = match v {
                    MapValues::Map(t) => maps.get(t).map(Map::raw_fd),
                    MapValues::Program(f) => prog_of_func
                        .get(&f)
                        .and_then(|&p| programs.get(p))
                        .map(|p| std::os::fd::AsRawFd::as_raw_fd(&p.fd)),
                };
                let (Some(fd), Some(target)) = (fd, maps.get(mi)) else {
                    continue;
                };
                target
                    .fd_raw()
                    .update(&slot.to_ne_bytes(), &(fd as u32).to_ne_bytes(), 0)
                    .map_err(|source| LoadError::Map {
                        map: target.name().to_owned(),
                        action: "fill slot",
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Pins by-name maps; on failure unpins what this load pinned.
    fn pin(&mut self, maps: &[Map]) -> Result<Vec<PathBuf>, LoadError> {
        let obj = self.obj;
        let Some(dir) = &self.cfg.pin_dir else {
            return Ok(Vec::new());
        };
        let mut pinned = Vec::new();
        for (m, def) in maps.iter().zip(&obj.maps) {
            if def.pinning != Pinning::ByName || m.reused() {
                continue;
            }
            let path = dir.join(m.pin_name());
            if let Err(source) = obj_pin(m.fd(), &cpath(&path)) {
                for p in &pinned {
                    let _ = std::fs::remove_file(p);
                }
                return Err(LoadError::Map {
                    map: m.name().to_owned(),
                    action: "pin",
                    source,
                });
            }
            pinned.push(path);
        }
        Ok(pinned)
    }
}

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A valid BTF with no types (for resolving externs without kernel BTF).
const EMPTY_BTF: &[u8] = &{
    let mut b = [0u8; 25];
    let m = 0xeb9f_u16.to_ne_bytes();
    b[0] = m[0];
    b[1] = m[1];
    b[2] = 1;
    let h = 24u32.to_ne_bytes();
    b[4] = h[0];
    b[5] = h[1];
    b[6] = h[2];
    b[7] = h[3];
    let s = 1u32.to_ne_bytes();
    b[20] = s[0];
    b[21] = s[1];
    b[22] = s[2];
    b[23] = s[3];
    b
};
