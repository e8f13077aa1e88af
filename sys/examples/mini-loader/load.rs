//! Loading one object: refuse what the thin loader does not do, CO-RE
//! against vmlinux BTF, the object's sanitized BTF, maps (global data
//! filled, `.rodata` frozen), then every program, linked with its
//! subprograms and func/line info. Mirrors `ember::EbpfLoader`'s steps
//! (std-loader/src/load/) without fallbacks for old kernels.

use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ember_core::btf::Btf;
use ember_core::id::FuncIndex;
use ember_core::load::{self as prep, BtfFeatures, FUNC_INFO_SIZE, LINE_INFO_SIZE};
use ember_core::object::maps::BPF_F_RDONLY_PROG;
use ember_core::object::section::SecDef;
use ember_core::object::{
    AttachType, ExternKind, Map, MapKind, MapType, Object, Pinning, ProgType, object_name,
};
use ember_core::reloc::{Targets, apply, solve};
use ember_sys::{
    AsFd, BorrowedFd, Errno, MapCreate, MapFd, OwnedFd, ProgBtf, ProgLoad, btf_load, map_create,
    prog_load,
};
use rustix::fd::AsRawFd;

use crate::files::{self, errno, sys};
use crate::{Out, say};

/// Where the running kernel's BTF is (the CO-RE target and where
/// tracing programs find their attach targets).
const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// `BPF_F_SLEEPABLE`.
const F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`.
const F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// A verifier log this large holds the end of any rejection worth reading.
const MAX_LOG: usize = 16 << 20;

/// The call a CO-RE relocation with no match leaves (`call 0xbad2310`).
const POISON: &str = "unknown#195896080";

/// A created map.
pub(crate) struct LoadedMap {
    /// Its name in the object.
    pub(crate) name: String,
    /// The map.
    pub(crate) fd: MapFd,
}

/// A loaded program and what attaching it needs.
pub(crate) struct Prog {
    /// Its name (the function's).
    pub(crate) name: String,
    /// Its ELF section.
    pub(crate) section: String,
    /// The section definition it was loaded by.
    pub(crate) def: &'static SecDef,
    /// The BTF id of its kernel attach target (tracing, LSM), else 0.
    pub(crate) attach_btf_id: u32,
    /// The program.
    pub(crate) fd: OwnedFd,
}

/// What a load created; dropping it closes every fd.
pub(crate) struct Loaded {
    /// Maps, in object order.
    pub(crate) maps: Vec<LoadedMap>,
    /// Programs, in object order.
    pub(crate) progs: Vec<Prog>,
    /// The object's BTF, held while programs and maps are made.
    _btf: Option<OwnedFd>,
}

/// Loads the object `data` read from file `file` (its name, for messages
/// and internal map names).
pub(crate) fn load(data: &[u8], file: &str) -> Result<Loaded, String> {
    let obj = Object::parse(data, object_name(file)).map_err(|e| format!("{file}: {e}"))?;
    if obj.endian != ember_core::Endian::NATIVE {
        return Err(format!("{file}: built for the other byte order"));
    }
    refuse(&obj).map_err(|what| format!("{file}: {what} not supported; use the `ember` CLI"))?;

    // The running kernel's BTF, when CO-RE or an attach target needs it.
    let relos = obj
        .btf_ext
        .map_or(0, |e| e.core_relos().map(|b| b.len()).sum::<usize>());
    let by_id = obj.programs().any(|f| {
        f.sec_def
            .is_some_and(|d| prep::needs_attach_btf(d.prog_type, d.attach_type))
    });
    let vmlinux = if relos > 0 || by_id {
        files::read(VMLINUX).map_err(|e| {
            format!(
                "{file}: {VMLINUX} (needed for CO-RE and BTF attach targets): {}",
                errno(e)
            )
        })?
    } else {
        Vec::new()
    };
    // Read only when needed, and then parsed even if empty: an empty
    // file is an error, never a reason to skip CO-RE.
    let kernel = if relos > 0 || by_id {
        Some(Btf::parse(&vmlinux).map_err(|e| format!("{VMLINUX}: {e}"))?)
    } else {
        None
    };

    // CO-RE: solved and applied to a copy of each code section.
    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    if let (Some(k), true) = (&kernel, relos > 0) {
        let fail = |e: ember_core::reloc::CoreError| {
            let prog = e.func.and_then(|f| obj.function(f)).map_or("", |f| f.name);
            format!("{file}: program {prog}: CO-RE: {e}")
        };
        let targets = Targets::single(k);
        let plan = solve(&obj, &targets).map_err(fail)?;
        apply(&obj, &plan, &mut code).map_err(fail)?;
    }

    let btf = load_btf(&obj, file)?;
    let btf_fd = btf.as_ref().map(AsFd::as_fd);
    let mut maps = Vec::with_capacity(obj.maps.len());
    for m in &obj.maps {
        let fd = create_map(&obj, m, btf_fd).map_err(|e| format!("{file}: map {}: {e}", m.name))?;
        maps.push(LoadedMap {
            name: String::from(&*m.name),
            fd,
        });
    }
    let mut progs = Vec::new();
    for (fi, f) in obj.functions.iter().enumerate() {
        if !f.is_program {
            continue;
        }
        let section = obj.code_section(f.section).map_or("", |c| c.name);
        let p = load_program(&obj, fi, &code, &maps, btf_fd, kernel.as_ref())
            .map_err(|e| format!("{file}: program {} (section '{section}'): {e}", f.name))?;
        progs.push(p);
    }
    Ok(Loaded {
        maps,
        progs,
        _btf: btf,
    })
}

/// The first feature of `obj` this loader does not do, named with its
/// symbol.
fn refuse(obj: &Object<'_>) -> Result<(), String> {
    if let Some(x) = obj.externs.first() {
        let what = match x.kind {
            ExternKind::Kconfig { .. } => "kconfig extern",
            ExternKind::Kfunc => "kfunc",
            ExternKind::TypedVar => "typed ksym",
            ExternKind::UntypedVar => "ksym",
        };
        return Err(format!("{what} '{}'", x.name));
    }
    if let Some(s) = obj.struct_ops.first() {
        return Err(format!("struct_ops map '{}'", s.name));
    }
    for m in &obj.maps {
        let of_maps = matches!(m.map_type, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS);
        if of_maps || m.inner.is_some() {
            return Err(format!("map-in-map '{}'", m.name));
        }
        if !m.init.is_empty() {
            return Err(format!("initial slots of prog array '{}'", m.name));
        }
    }
    // The std loader reuses an existing pin; a fresh private map here
    // would leave programs quietly using the wrong one.
    if let Some(m) = obj.maps.iter().find(|m| m.pinning == Pinning::ByName) {
        return Err(format!("map '{}' pinned by name", m.name));
    }
    for f in obj.programs() {
        match f.sec_def.map(|d| d.prog_type) {
            Some(ProgType::STRUCT_OPS) => return Err(format!("struct_ops program '{}'", f.name)),
            Some(ProgType::EXT) => return Err(format!("freplace program '{}'", f.name)),
            _ => {}
        }
    }
    Ok(())
}

/// Loads the object's BTF as this kernel takes it; without it (and a
/// warning) when the kernel refuses it, as libbpf does.
fn load_btf(obj: &Object<'_>, file: &str) -> Result<Option<OwnedFd>, String> {
    if obj.btf.is_none() {
        return Ok(None);
    }
    let blob = prep::kernel_btf(obj, &BtfFeatures::default())
        .map_err(|e| format!("{file}: object BTF: {e}"))?;
    match btf_load(&blob, None) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) => {
            say(
                Out::Stderr,
                &format!(
                    "mini-loader: {file}: kernel refused the object's BTF ({}); loading without it",
                    sys(&e)
                ),
            );
            Ok(None)
        }
    }
}

/// Creates map `m`, without BTF if the kernel refuses its BTF, and fills
/// a global-data map with its initial value (frozen when read-only).
fn create_map(obj: &Object<'_>, m: &Map<'_>, btf: Option<BorrowedFd<'_>>) -> Result<MapFd, String> {
    let mut max_entries = m.max_entries;
    if m.map_type == MapType::PERF_EVENT_ARRAY && max_entries == 0 {
        max_entries = ember_sys::cpu::possible_cpus().map_err(|e| sys(&e))?;
    }
    if matches!(m.map_type, MapType::RINGBUF | MapType::USER_RINGBUF) {
        let page = ember_sys::mmap::page_size();
        max_entries = prep::ring_size(max_entries, page).ok_or_else(|| {
            format!("ring buffer size {max_entries} has no power-of-two page multiple in 32 bits")
        })?;
    }
    let ids = btf
        .filter(|_| prep::map_takes_btf(m.map_type))
        .and_then(|fd| match m.kind {
            MapKind::Btf => m
                .value_type
                .map(|v| (fd, m.key_type.map_or(0, |k| k.0), v.0)),
            MapKind::Data(_) | MapKind::Kconfig => m.btf_id.map(|d| (fd, 0, d.0)),
            MapKind::Legacy => None,
        });
    let attr = MapCreate {
        map_type: m.map_type.0,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries,
        map_flags: m.map_flags,
        name: &m.name,
        inner_map_fd: None,
        btf: ids,
        map_extra: m.map_extra,
        numa_node: m.numa_node,
        btf_vmlinux_value_type_id: 0,
    };
    let fd = match map_create(&attr) {
        Ok(fd) => fd,
        Err(e) if attr.btf.is_some() => {
            map_create(&MapCreate { btf: None, ..attr }).map_err(|_| sys(&e))?
        }
        Err(e) => return Err(sys(&e)),
    };
    let map = MapFd::from_fd(fd).map_err(|e| sys(&e))?;
    if let MapKind::Data(i) = m.kind {
        let size = usize::try_from(m.value_size).map_err(|_| String::from("value too large"))?;
        let mut value = Vec::new();
        value
            .try_reserve_exact(size)
            .map_err(|_| format!("a {size}-byte value cannot be allocated"))?;
        value.resize(size, 0);
        if let Some(init) = obj.data.get(i).and_then(|d| d.init) {
            let n = init.len().min(size);
            if let (Some(to), Some(from)) = (value.get_mut(..n), init.get(..n)) {
                to.copy_from_slice(from);
            }
        }
        let fail = |what: &str, e| format!("{what}: {}", sys(&e));
        map.update(&0u32.to_ne_bytes(), &value, 0)
            .map_err(|e| fail("write initial value", e))?;
        if m.map_flags & BPF_F_RDONLY_PROG != 0 {
            map.freeze().map_err(|e| fail("freeze", e))?;
        }
    }
    Ok(map)
}

/// Links and loads program `fi`.
fn load_program(
    obj: &Object<'_>,
    fi: usize,
    code: &[Vec<u8>],
    maps: &[LoadedMap],
    btf: Option<BorrowedFd<'_>>,
    kernel: Option<&Btf<'_>>,
) -> Result<Prog, String> {
    let f = obj
        .functions
        .get(fi)
        .ok_or_else(|| String::from("no such function"))?;
    let section = obj.code_section(f.section).map_or("", |c| c.name);
    let def = f
        .sec_def
        .ok_or_else(|| String::from("the section names no program type"))?;
    let map_fd = |m: ember_core::id::MapIndex| maps.get(m.index()).map(|m| m.fd.fd().as_raw_fd());
    let linked =
        prep::link_program(obj, code, FuncIndex(fi), &map_fd).map_err(|e| format!("{e}"))?;

    let mut attach_btf_id = 0;
    if prep::needs_attach_btf(def.prog_type, def.attach_type) {
        let (name, kind) = prep::attach_name(
            def.attach_type.unwrap_or(AttachType(0)),
            f.attach_target.unwrap_or(""),
        );
        attach_btf_id = kernel
            .and_then(|k| k.find_by_name_kind(&name, kind))
            .ok_or_else(|| {
                format!("attach target '{name}' is not in {VMLINUX} (modules: use the `ember` CLI)")
            })?
            .0;
    }
    let license = CString::new(obj.license.unwrap_or("")).unwrap_or_default();
    // Kernels before 5.0 check a kprobe's version against their own.
    let kern_version = if def.prog_type == ProgType::KPROBE {
        obj.kern_version.unwrap_or_else(running_version)
    } else {
        0
    };
    let mut flags = 0;
    if def.sleepable {
        flags |= F_SLEEPABLE;
    }
    if def.xdp_frags {
        flags |= F_XDP_HAS_FRAGS;
    }
    let prog_btf = btf.map(|fd| ProgBtf {
        fd,
        func_info: &linked.func_info,
        func_info_rec_size: FUNC_INFO_SIZE,
        line_info: &linked.line_info,
        line_info_rec_size: LINE_INFO_SIZE,
    });
    let attempt = |log: Option<&mut [u8]>| {
        let level = u32::from(log.is_some());
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
            attach_btf_obj_fd: None,
            kern_version,
            fd_array: &[],
            ifindex: 0,
        })
    };
    let fd = match attempt(None) {
        Ok(fd) => fd,
        // Again with the verifier's log, grown until it fits.
        Err(first) => {
            let mut size = 1 << 20;
            loop {
                let mut log = alloc::vec![0u8; size];
                let e = match attempt(Some(&mut log)) {
                    Ok(fd) => break fd,
                    Err(e) => e,
                };
                if e.error.errno == Errno::NOSPC && size < MAX_LOG {
                    size = size.saturating_mul(4).min(MAX_LOG);
                    continue;
                }
                return Err(verifier_error(&first.error, &log));
            }
        }
    };
    Ok(Prog {
        name: String::from(f.name),
        section: String::from(section),
        def,
        attach_btf_id,
        fd,
    })
}

/// The load error with the verifier log's last line, and what a poisoned
/// CO-RE call means.
fn verifier_error(e: &ember_sys::SysError, log: &[u8]) -> String {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    // Lossy: one bad byte (a source line echoed from line info, a cut at
    // the size cap) must not lose the verdict.
    let text = alloc::string::String::from_utf8_lossy(log.get(..end).unwrap_or(&[]));
    // The verdict: the last line before the statistics the log ends with.
    let last = text
        .lines()
        .rev()
        .find(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time")
        })
        .unwrap_or("");
    let poison = if text.contains(POISON) {
        " (a CO-RE relocation found no match in the kernel's BTF)"
    } else {
        ""
    };
    if last.is_empty() {
        return sys(e);
    }
    format!("{}: verifier: {last}{poison}", sys(e))
}

/// `KERNEL_VERSION` of the running kernel; 0 when unreadable.
fn running_version() -> u32 {
    files::read("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|b| {
            core::str::from_utf8(&b)
                .ok()
                .map(|s| prep::kernel_version(s.trim()))
        })
        .unwrap_or(0)
}
