//! One safe function per bpf(2) command. Buffers the kernel writes to are
//! sized from what the caller passes, and checked against what the kernel
//! will write, so no command can write past a Rust slice.

use core::ffi::CStr;
use core::mem::{offset_of, size_of};

use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use crate::attr::*;
use crate::error::{Result, SysError};
use crate::raw::{Syscall, owned_fd, syscall};

const MAP_CREATE: u32 = 0;
const MAP_LOOKUP_ELEM: u32 = 1;
const MAP_UPDATE_ELEM: u32 = 2;
const MAP_DELETE_ELEM: u32 = 3;
const MAP_GET_NEXT_KEY: u32 = 4;
const PROG_LOAD: u32 = 5;
const OBJ_PIN: u32 = 6;
const OBJ_GET: u32 = 7;
const BTF_LOAD: u32 = 18;
const MAP_FREEZE: u32 = 22;

fn fail(cmd: &'static str) -> impl Fn(Errno) -> SysError {
    move |errno| SysError { cmd, errno }
}

fn bpf(cmd: u32, name: &'static str, attr: &mut [u8]) -> Result<i64> {
    syscall(Syscall::Bpf { cmd, attr }).map_err(fail(name))
}

/// Moves an fd numbered 0..=2 above 2, so a closed stdin/stdout/stderr is
/// never mistaken for a BPF object (libbpf's `ensure_good_fd`).
fn good_fd(fd: OwnedFd, cmd: &'static str) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, 3).map_err(fail(cmd))
}

fn new_fd(ret: i64, cmd: &'static str) -> Result<OwnedFd> {
    good_fd(owned_fd(ret).map_err(fail(cmd))?, cmd)
}

fn raw(fd: BorrowedFd<'_>) -> u32 {
    fd.as_raw_fd() as u32
}

/// What `BPF_MAP_CREATE` needs.
#[derive(Debug, Default, Clone, Copy)]
pub struct MapCreate<'a> {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Flags.
    pub map_flags: u32,
    /// Name (truncated to 15 bytes).
    pub name: &'a str,
    /// Inner map template (map-in-map).
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// BTF describing key and value: (fd, key type id, value type id).
    pub btf: Option<(BorrowedFd<'a>, u32, u32)>,
    /// `map_extra`.
    pub map_extra: u64,
    /// NUMA node (with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
}

/// `BPF_MAP_CREATE`—Creates a map.
///
/// # Errors
/// The kernel's errno, as [`SysError`].
///
/// # References
/// bpf(2), `Documentation/bpf/maps.rst`.
#[doc(alias = "BPF_MAP_CREATE")]
pub fn map_create(m: &MapCreate<'_>) -> Result<OwnedFd> {
    let mut a = [0u8; size_of::<MapCreateAttr>()];
    put32(&mut a, offset_of!(MapCreateAttr, map_type), m.map_type);
    put32(&mut a, offset_of!(MapCreateAttr, key_size), m.key_size);
    put32(&mut a, offset_of!(MapCreateAttr, value_size), m.value_size);
    put32(
        &mut a,
        offset_of!(MapCreateAttr, max_entries),
        m.max_entries,
    );
    put32(&mut a, offset_of!(MapCreateAttr, map_flags), m.map_flags);
    put32(&mut a, offset_of!(MapCreateAttr, numa_node), m.numa_node);
    put_name(&mut a, offset_of!(MapCreateAttr, map_name), m.name);
    if let Some(fd) = m.inner_map_fd {
        put32(&mut a, offset_of!(MapCreateAttr, inner_map_fd), raw(fd));
    }
    if let Some((fd, k, v)) = m.btf {
        put32(&mut a, offset_of!(MapCreateAttr, btf_fd), raw(fd));
        put32(&mut a, offset_of!(MapCreateAttr, btf_key_type_id), k);
        put32(&mut a, offset_of!(MapCreateAttr, btf_value_type_id), v);
    }
    put64(&mut a, offset_of!(MapCreateAttr, map_extra), m.map_extra);
    let r = bpf(MAP_CREATE, "BPF_MAP_CREATE", &mut a)?;
    new_fd(r, "BPF_MAP_CREATE")
}

/// A map fd with the sizes the kernel reads and writes through it.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    key_size: usize,
    value_len: usize,
}

impl MapFd {
    /// Wraps a map fd whose key size is `key_size` and whose lookups write
    /// `value_len` bytes (value size, or for per-CPU maps the value size
    /// rounded up to 8 times the number of possible CPUs).
    pub fn new(fd: OwnedFd, key_size: u32, value_len: usize) -> MapFd {
        MapFd {
            fd,
            key_size: key_size as usize,
            value_len,
        }
    }

    /// The fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Bytes a lookup writes.
    pub fn value_len(&self) -> usize {
        self.value_len
    }

    fn check(&self, cmd: &'static str, key: Option<&[u8]>, value: Option<usize>) -> Result<()> {
        let key_ok = key.is_none_or(|k| k.len() == self.key_size);
        let val_ok = value.is_none_or(|v| v >= self.value_len);
        if key_ok && val_ok {
            Ok(())
        } else {
            Err(SysError {
                cmd,
                errno: Errno::INVAL,
            })
        }
    }

    fn elem(&self, cmd: u32, name: &'static str, key: u64, value: u64, flags: u64) -> Result<i64> {
        let mut a = [0u8; size_of::<MapElemAttr>()];
        put32(&mut a, offset_of!(MapElemAttr, map_fd), raw(self.fd()));
        put64(&mut a, offset_of!(MapElemAttr, key), key);
        put64(&mut a, offset_of!(MapElemAttr, value), value);
        put64(&mut a, offset_of!(MapElemAttr, flags), flags);
        bpf(cmd, name, &mut a)
    }

    /// `BPF_MAP_LOOKUP_ELEM`—Reads the value of `key` into `value`.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map; `ENOENT` for a missing key.
    #[doc(alias = "BPF_MAP_LOOKUP_ELEM")]
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
        const N: &str = "BPF_MAP_LOOKUP_ELEM";
        self.check(N, Some(key), Some(value.len()))?;
        self.elem(
            MAP_LOOKUP_ELEM,
            N,
            ptr(key.as_ptr()),
            ptr(value.as_mut_ptr()),
            flags,
        )
        .map(drop)
    }

    /// `BPF_MAP_UPDATE_ELEM`—Sets `key` to `value` (`BPF_ANY` = 0,
    /// `BPF_NOEXIST` = 1, `BPF_EXIST` = 2). Keyless maps (queue, stack,
    /// bloom filter) take an empty key.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map, or the kernel's errno.
    #[doc(alias = "BPF_MAP_UPDATE_ELEM")]
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        const N: &str = "BPF_MAP_UPDATE_ELEM";
        self.check(N, Some(key), Some(value.len()))?;
        let k = if key.is_empty() { 0 } else { ptr(key.as_ptr()) };
        self.elem(MAP_UPDATE_ELEM, N, k, ptr(value.as_ptr()), flags)
            .map(drop)
    }

    /// `BPF_MAP_DELETE_ELEM`—Deletes `key`.
    ///
    /// # Errors
    /// `EINVAL` for a key of the wrong size, or the kernel's errno.
    #[doc(alias = "BPF_MAP_DELETE_ELEM")]
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        const N: &str = "BPF_MAP_DELETE_ELEM";
        self.check(N, Some(key), None)?;
        self.elem(MAP_DELETE_ELEM, N, ptr(key.as_ptr()), 0, 0)
            .map(drop)
    }

    /// `BPF_MAP_GET_NEXT_KEY`—The key after `key` (the first with `None`).
    ///
    /// # Errors
    /// `ENOENT` after the last key; `EINVAL` for slices of the wrong size.
    #[doc(alias = "BPF_MAP_GET_NEXT_KEY")]
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<()> {
        const N: &str = "BPF_MAP_GET_NEXT_KEY";
        self.check(N, key, None)?;
        if next.len() != self.key_size {
            return Err(SysError {
                cmd: N,
                errno: Errno::INVAL,
            });
        }
        let k = key.map_or(0, |k| ptr(k.as_ptr()));
        self.elem(MAP_GET_NEXT_KEY, N, k, ptr(next.as_mut_ptr()), 0)
            .map(drop)
    }

    /// `BPF_MAP_FREEZE`—Makes the map read-only for user space.
    ///
    /// # Errors
    /// The kernel's errno.
    #[doc(alias = "BPF_MAP_FREEZE")]
    pub fn freeze(&self) -> Result<()> {
        let mut a = [0u8; size_of::<MapElemAttr>()];
        put32(&mut a, offset_of!(MapElemAttr, map_fd), raw(self.fd()));
        bpf(MAP_FREEZE, "BPF_MAP_FREEZE", &mut a).map(drop)
    }
}

/// What `BPF_PROG_LOAD` needs.
#[derive(Debug)]
pub struct ProgLoad<'a> {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// Expected attach type.
    pub expected_attach_type: u32,
    /// Instructions (8 bytes each).
    pub insns: &'a [u8],
    /// License.
    pub license: &'a CStr,
    /// Name (truncated to 15 bytes).
    pub name: &'a str,
    /// Verifier log buffer (the kernel writes at most its length).
    pub log: Option<&'a mut [u8]>,
    /// Verifier log level (1 = on failure, 2 = verbose).
    pub log_level: u32,
    /// Program flags (`BPF_F_SLEEPABLE`, ...).
    pub prog_flags: u32,
    /// Program BTF and its func_info / line_info records.
    pub btf: Option<ProgBtf<'a>>,
    /// BTF id of the attach target (tracing, LSM, struct_ops).
    pub attach_btf_id: u32,
    /// BTF object fd of the attach target, for module targets.
    pub attach_btf_obj_fd: Option<BorrowedFd<'a>>,
}

/// A program's BTF and its `.BTF.ext` records, in the kernel's layout.
#[derive(Debug, Clone, Copy)]
pub struct ProgBtf<'a> {
    /// The loaded object BTF.
    pub fd: BorrowedFd<'a>,
    /// `struct bpf_func_info` records.
    pub func_info: &'a [u8],
    /// Their size.
    pub func_info_rec_size: u32,
    /// `struct bpf_line_info` records.
    pub line_info: &'a [u8],
    /// Their size.
    pub line_info_rec_size: u32,
}

/// A failed `BPF_PROG_LOAD`, with how much log the kernel wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgLoadError {
    /// The errno.
    pub error: SysError,
    /// The log size the kernel needed (0 when it does not say).
    pub log_true_size: u32,
}

impl core::fmt::Display for ProgLoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.error, f)
    }
}

impl core::error::Error for ProgLoadError {}

/// `BPF_PROG_LOAD`—Loads (verifies) a program.
///
/// # Errors
/// The kernel's errno and, for a rejected program, its log in `p.log`.
#[doc(alias = "BPF_PROG_LOAD")]
pub fn prog_load(p: &mut ProgLoad<'_>) -> core::result::Result<OwnedFd, ProgLoadError> {
    const N: &str = "BPF_PROG_LOAD";
    let err = |errno| ProgLoadError {
        error: SysError { cmd: N, errno },
        log_true_size: 0,
    };
    if !p.insns.len().is_multiple_of(8) {
        return Err(err(Errno::INVAL));
    }
    let mut a = [0u8; size_of::<ProgLoadAttr>()];
    put32(&mut a, offset_of!(ProgLoadAttr, prog_type), p.prog_type);
    put32(
        &mut a,
        offset_of!(ProgLoadAttr, insn_cnt),
        (p.insns.len() / 8) as u32,
    );
    put64(
        &mut a,
        offset_of!(ProgLoadAttr, insns),
        ptr(p.insns.as_ptr()),
    );
    put64(
        &mut a,
        offset_of!(ProgLoadAttr, license),
        ptr(p.license.as_ptr()),
    );
    put32(&mut a, offset_of!(ProgLoadAttr, prog_flags), p.prog_flags);
    put_name(&mut a, offset_of!(ProgLoadAttr, prog_name), p.name);
    put32(
        &mut a,
        offset_of!(ProgLoadAttr, expected_attach_type),
        p.expected_attach_type,
    );
    put32(
        &mut a,
        offset_of!(ProgLoadAttr, attach_btf_id),
        p.attach_btf_id,
    );
    if let Some(fd) = p.attach_btf_obj_fd {
        put32(&mut a, offset_of!(ProgLoadAttr, attach_fd), raw(fd));
    }
    if let Some(ProgBtf {
        fd,
        func_info: fi,
        func_info_rec_size: fi_sz,
        line_info: li,
        line_info_rec_size: li_sz,
    }) = p.btf
    {
        put32(&mut a, offset_of!(ProgLoadAttr, prog_btf_fd), raw(fd));
        if fi_sz != 0 && !fi.is_empty() {
            put32(&mut a, offset_of!(ProgLoadAttr, func_info_rec_size), fi_sz);
            put64(
                &mut a,
                offset_of!(ProgLoadAttr, func_info),
                ptr(fi.as_ptr()),
            );
            put32(
                &mut a,
                offset_of!(ProgLoadAttr, func_info_cnt),
                (fi.len() / fi_sz as usize) as u32,
            );
        }
        if li_sz != 0 && !li.is_empty() {
            put32(&mut a, offset_of!(ProgLoadAttr, line_info_rec_size), li_sz);
            put64(
                &mut a,
                offset_of!(ProgLoadAttr, line_info),
                ptr(li.as_ptr()),
            );
            put32(
                &mut a,
                offset_of!(ProgLoadAttr, line_info_cnt),
                (li.len() / li_sz as usize) as u32,
            );
        }
    }
    if let Some(log) = p.log.as_deref_mut() {
        if !log.is_empty() {
            put32(
                &mut a,
                offset_of!(ProgLoadAttr, log_level),
                p.log_level.max(1),
            );
            put32(
                &mut a,
                offset_of!(ProgLoadAttr, log_size),
                log.len().min(u32::MAX as usize) as u32,
            );
            put64(
                &mut a,
                offset_of!(ProgLoadAttr, log_buf),
                ptr(log.as_mut_ptr()),
            );
        }
    }
    match syscall(Syscall::Bpf {
        cmd: PROG_LOAD,
        attr: &mut a,
    }) {
        Ok(r) => new_fd(r, N).map_err(|e| ProgLoadError {
            error: e,
            log_true_size: 0,
        }),
        Err(errno) => Err(ProgLoadError {
            error: SysError { cmd: N, errno },
            log_true_size: get32(&a, offset_of!(ProgLoadAttr, log_true_size)),
        }),
    }
}

/// `BPF_BTF_LOAD`—Loads BTF into the kernel; `log` receives the kernel's
/// complaints.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_BTF_LOAD")]
pub fn btf_load(btf: &[u8], log: Option<&mut [u8]>) -> Result<OwnedFd> {
    const N: &str = "BPF_BTF_LOAD";
    let mut a = [0u8; size_of::<BtfLoadAttr>()];
    put64(&mut a, offset_of!(BtfLoadAttr, btf), ptr(btf.as_ptr()));
    put32(
        &mut a,
        offset_of!(BtfLoadAttr, btf_size),
        btf.len().min(u32::MAX as usize) as u32,
    );
    if let Some(log) = log {
        if !log.is_empty() {
            put64(
                &mut a,
                offset_of!(BtfLoadAttr, btf_log_buf),
                ptr(log.as_mut_ptr()),
            );
            put32(
                &mut a,
                offset_of!(BtfLoadAttr, btf_log_size),
                log.len().min(u32::MAX as usize) as u32,
            );
            put32(&mut a, offset_of!(BtfLoadAttr, btf_log_level), 1);
        }
    }
    let r = bpf(BTF_LOAD, N, &mut a)?;
    new_fd(r, N)
}

/// `BPF_OBJ_PIN`—Pins `fd` at `path` in a bpffs.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_OBJ_PIN")]
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> Result<()> {
    let mut a = [0u8; size_of::<ObjAttr>()];
    put64(&mut a, offset_of!(ObjAttr, pathname), ptr(path.as_ptr()));
    put32(&mut a, offset_of!(ObjAttr, bpf_fd), raw(fd));
    bpf(OBJ_PIN, "BPF_OBJ_PIN", &mut a).map(drop)
}

/// `BPF_OBJ_GET`—Opens the object pinned at `path`.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_OBJ_GET")]
pub fn obj_get(path: &CStr) -> Result<OwnedFd> {
    let mut a = [0u8; size_of::<ObjAttr>()];
    put64(&mut a, offset_of!(ObjAttr, pathname), ptr(path.as_ptr()));
    let r = bpf(OBJ_GET, "BPF_OBJ_GET", &mut a)?;
    new_fd(r, "BPF_OBJ_GET")
}
