//! One safe function per bpf(2) command. Buffers the kernel writes to are
//! sized from what the caller passes, and checked against what the kernel
//! will write, so no command can write past a Rust slice.

extern crate alloc;

use alloc::vec::Vec;
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
    /// Wraps a map fd the caller believes has keys of `key_size` bytes and
    /// lookups of `value_len` bytes. Both are checked against the kernel's
    /// own description of the map, so a wrong belief is an error here and
    /// never a kernel write past a Rust slice later.
    ///
    /// # Errors
    /// `EINVAL` when `key_size` differs from the map's or `value_len` is
    /// shorter than what a lookup writes; the kernel's errno for
    /// `BPF_OBJ_GET_INFO_BY_FD`.
    pub fn new(fd: OwnedFd, key_size: u32, value_len: usize) -> Result<MapFd> {
        let m = MapFd::from_fd(fd)?;
        if m.key_size != key_size as usize || value_len < m.value_len {
            return Err(inval(INFO));
        }
        Ok(m)
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
        // Keyless maps (queue/stack peek, bloom filter) need a NULL key.
        self.elem(
            MAP_LOOKUP_ELEM,
            N,
            ptr_or_null(key),
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
/// `Default` leaves every field empty, so callers name only what they set
/// and new fields do not break them.
#[derive(Debug, Default)]
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
    /// `kern_version`: kprobe programs on kernels before 5.0 must carry
    /// the running kernel's `LINUX_VERSION_CODE`; 0 elsewhere.
    pub kern_version: u32,
    /// fds that instructions refer to by index: module BTF objects of
    /// kfunc calls (`insn.off` = index; 0 means vmlinux, so slot 0 is
    /// unused).
    pub fd_array: &'a [BorrowedFd<'a>],
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
    put32(
        &mut a,
        offset_of!(ProgLoadAttr, kern_version),
        p.kern_version,
    );
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
    // The kernel reads the fds as an array of s32; keep it alive across
    // the call. Slots are raw fd numbers of fds the caller keeps open.
    let fds: Vec<i32> = p.fd_array.iter().map(|f| f.as_raw_fd()).collect();
    if !fds.is_empty() {
        put64(
            &mut a,
            offset_of!(ProgLoadAttr, fd_array),
            ptr(fds.as_ptr()),
        );
    }
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

const PROG_ATTACH: u32 = 8;
const PROG_DETACH: u32 = 9;
const PROG_TEST_RUN: u32 = 10;
const PROG_GET_NEXT_ID: u32 = 11;
const MAP_GET_NEXT_ID: u32 = 12;
const PROG_GET_FD_BY_ID: u32 = 13;
const MAP_GET_FD_BY_ID: u32 = 14;
const OBJ_GET_INFO_BY_FD: u32 = 15;
const PROG_QUERY: u32 = 16;
const RAW_TRACEPOINT_OPEN: u32 = 17;
const BTF_GET_FD_BY_ID: u32 = 19;
const MAP_LOOKUP_AND_DELETE_ELEM: u32 = 21;
const BTF_GET_NEXT_ID: u32 = 23;
const MAP_LOOKUP_BATCH: u32 = 24;
const MAP_LOOKUP_AND_DELETE_BATCH: u32 = 25;
const MAP_UPDATE_BATCH: u32 = 26;
const MAP_DELETE_BATCH: u32 = 27;
const LINK_CREATE: u32 = 28;
const LINK_UPDATE: u32 = 29;
const LINK_GET_FD_BY_ID: u32 = 30;
const LINK_GET_NEXT_ID: u32 = 31;
const ENABLE_STATS: u32 = 32;
const LINK_DETACH: u32 = 34;

/// `BPF_F_REPLACE`.
const F_REPLACE: u32 = 1 << 2;

/// `BPF_STATS_RUN_TIME`: count run time and runs of every program (see
/// [`enable_stats`]).
pub const STATS_RUN_TIME: u32 = 0;

/// `BPF_LINK_TYPE_RAW_TRACEPOINT`.
pub const LINK_TYPE_RAW_TRACEPOINT: u32 = 1;
/// `BPF_LINK_TYPE_TRACING`.
pub const LINK_TYPE_TRACING: u32 = 2;
/// `BPF_LINK_TYPE_CGROUP`.
pub const LINK_TYPE_CGROUP: u32 = 3;
/// `BPF_LINK_TYPE_NETNS`.
pub const LINK_TYPE_NETNS: u32 = 5;

/// Longest BTF object name [`btf_info_full`] returns (module names are
/// shorter: `MODULE_NAME_LEN` is 56).
pub const BTF_NAME_MAX: usize = 64;

fn errno(cmd: &'static str, errno: Errno) -> SysError {
    SysError { cmd, errno }
}

/// A length the kernel reads: more than `u32::MAX` is refused (`E2BIG`).
fn len_in(cmd: &'static str, len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| errno(cmd, Errno::TOOBIG))
}

/// A length the kernel writes up to: clamped, which only makes it write
/// less than the buffer holds.
fn len_out(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A pointer for the kernel to read, NULL for an empty slice.
fn ptr_or_null(s: &[u8]) -> u64 {
    if s.is_empty() { 0 } else { ptr(s.as_ptr()) }
}

/// A NUL-padded kernel name, up to its first NUL (and its longest valid
/// UTF-8 prefix; kernel names are ASCII).
fn c_name(b: &[u8]) -> &str {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    let b = b.get(..end).unwrap_or_default();
    match core::str::from_utf8(b) {
        Ok(s) => s,
        Err(e) => b
            .get(..e.valid_up_to())
            .and_then(|v| core::str::from_utf8(v).ok())
            .unwrap_or_default(),
    }
}

/// Elements processed by a batch command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// Elements processed by this call (keys/values filled, for lookups).
    pub count: usize,
    /// The kernel said `ENOENT`: the iteration is over (the elements of this
    /// call, if any, are still valid).
    pub done: bool,
}

/// A failed batch command, with how many elements it processed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchError {
    /// The errno.
    pub error: SysError,
    /// Elements processed before the failure.
    pub count: usize,
}

impl core::fmt::Display for BatchError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} after {} elements", self.error, self.count)
    }
}

impl core::error::Error for BatchError {}

/// `BPF_MAP_TYPE_{PERCPU_HASH,PERCPU_ARRAY,LRU_PERCPU_HASH,PERCPU_CGROUP_STORAGE}`.
const PERCPU_MAP_TYPES: [u32; 4] = [5, 6, 10, 21];

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`): how
/// many slots a per-CPU map value has.
///
/// # Errors
/// Reading or parsing the file.
pub fn possible_cpus() -> Result<u32> {
    const N: &str = "possible cpus";
    let fd = rustix::fs::open(
        "/sys/devices/system/cpu/possible",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(fail(N))?;
    // Read to the end: a short read must not undercount CPUs, or per-CPU
    // lookups would get buffers the kernel overruns.
    let mut buf = [0u8; 4096];
    let mut n = 0;
    loop {
        let rest = buf.get_mut(n..).ok_or(inval(N))?;
        if rest.is_empty() {
            return Err(inval(N));
        }
        match rustix::io::read(&fd, rest).map_err(fail(N))? {
            0 => break,
            k => n = n.saturating_add(k),
        }
    }
    let text = buf
        .get(..n)
        .and_then(|b| core::str::from_utf8(b).ok())
        .ok_or(inval(N))?;
    let cpus = crate::perf::parse_cpu_list(text.trim())?;
    u32::try_from(cpus.len()).map_err(|_| inval(N))
}

impl MapFd {
    /// Wraps a map fd, taking the key and value sizes from the kernel
    /// ([`map_info`]) rather than from the caller. For per-CPU maps a lookup
    /// writes the value size rounded up to 8 times the number of possible
    /// CPUs, read from `/sys/devices/system/cpu/possible`.
    ///
    /// # Errors
    /// The kernel's errno for `BPF_OBJ_GET_INFO_BY_FD`; the error reading
    /// the possible CPUs of a per-CPU map; `EINVAL` for a value length that
    /// overflows.
    pub fn from_fd(fd: OwnedFd) -> Result<MapFd> {
        let info = map_info(fd.as_fd())?;
        let value = usize::try_from(info.value_size).map_err(|_| inval(INFO))?;
        let value_len = if PERCPU_MAP_TYPES.contains(&info.map_type) {
            let cpus = possible_cpus()?;
            value
                .checked_next_multiple_of(8)
                .and_then(|v| v.checked_mul(usize::try_from(cpus).ok()?))
                .ok_or(inval(INFO))?
        } else {
            value
        };
        Ok(MapFd {
            fd,
            key_size: info.key_size as usize,
            value_len,
        })
    }

    /// Key size.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Bytes of the resume token the batch commands read and write: hash
    /// maps use a `u32` bucket index, other maps a key.
    pub fn batch_token_len(&self) -> usize {
        self.key_size.max(4)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`—Reads the value of `key` into
    /// `value` and deletes it; queue and stack maps take an empty key and
    /// pop their head.
    ///
    /// # Errors
    /// `EINVAL` when the slices do not fit the map; `ENOENT` for a missing
    /// key or an empty queue.
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_ELEM")]
    pub fn lookup_and_delete(&self, key: &[u8], value: &mut [u8], flags: u64) -> Result<()> {
        const N: &str = "BPF_MAP_LOOKUP_AND_DELETE_ELEM";
        self.check(N, Some(key), Some(value.len()))?;
        self.elem(
            MAP_LOOKUP_AND_DELETE_ELEM,
            N,
            ptr_or_null(key),
            ptr(value.as_mut_ptr()),
            flags,
        )
        .map(drop)
    }

    /// Checks a batch's buffers: `keys` holds a whole number `n` of keys,
    /// and `values` (when given) at least `n` values. Returns `n`.
    fn batch_count(
        &self,
        cmd: &'static str,
        keys: usize,
        values: Option<usize>,
    ) -> Result<u32, BatchError> {
        let bad = |e| BatchError {
            error: errno(cmd, e),
            count: 0,
        };
        let n = keys.checked_div(self.key_size).ok_or(bad(Errno::INVAL))?;
        if keys.checked_rem(self.key_size) != Some(0) {
            return Err(bad(Errno::INVAL));
        }
        if let Some(v) = values {
            let need = n.checked_mul(self.value_len).ok_or(bad(Errno::INVAL))?;
            if v < need {
                return Err(bad(Errno::INVAL));
            }
        }
        u32::try_from(n).map_err(|_| bad(Errno::TOOBIG))
    }

    #[expect(clippy::too_many_arguments, reason = "one per attr field")]
    fn batch(
        &self,
        (cmd, name): (u32, &'static str),
        in_batch: u64,
        out_batch: u64,
        keys: u64,
        values: u64,
        count: u32,
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        let mut a = [0u8; size_of::<BatchAttr>()];
        put64(&mut a, offset_of!(BatchAttr, in_batch), in_batch);
        put64(&mut a, offset_of!(BatchAttr, out_batch), out_batch);
        put64(&mut a, offset_of!(BatchAttr, keys), keys);
        put64(&mut a, offset_of!(BatchAttr, values), values);
        put32(&mut a, offset_of!(BatchAttr, count), count);
        put32(&mut a, offset_of!(BatchAttr, map_fd), raw(self.fd()));
        put64(&mut a, offset_of!(BatchAttr, elem_flags), elem_flags);
        let r = syscall(Syscall::Bpf { cmd, attr: &mut a });
        // The kernel never reports more than it was given room for; clamp
        // anyway so callers can slice with it.
        let done = get32(&a, offset_of!(BatchAttr, count)).min(count);
        let done = usize::try_from(done).unwrap_or(usize::MAX);
        match r {
            Ok(_) => Ok(Batch {
                count: done,
                done: false,
            }),
            // ENOENT ends an iteration (lookups, which pass `out_batch`);
            // for updates and deletes it is a missing key.
            Err(e) if e == Errno::NOENT && out_batch != 0 => Ok(Batch {
                count: done,
                done: true,
            }),
            Err(e) => Err(BatchError {
                error: errno(name, e),
                count: done,
            }),
        }
    }

    fn lookup_batch_cmd(
        &self,
        (cmd, name): (u32, &'static str),
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        let n = self.batch_count(name, keys.len(), Some(values.len()))?;
        let tok = self.batch_token_len();
        if out_batch.len() < tok || in_batch.is_some_and(|b| b.len() < tok) {
            return Err(BatchError {
                error: inval(name),
                count: 0,
            });
        }
        self.batch(
            (cmd, name),
            in_batch.map_or(0, |b| ptr(b.as_ptr())),
            ptr(out_batch.as_mut_ptr()),
            ptr(keys.as_mut_ptr()),
            ptr(values.as_mut_ptr()),
            n,
            elem_flags,
        )
    }

    /// `BPF_MAP_LOOKUP_BATCH`—Reads up to `keys.len() / key_size` elements,
    /// resuming after `in_batch` (`None`: from the start), and leaves the
    /// token for the next call in `out_batch`.
    ///
    /// `keys` must hold a whole number of keys and `values` at least as
    /// many values ([`MapFd::value_len`] each); both batch tokens need
    /// [`MapFd::batch_token_len`] bytes. The returned count says how many
    /// leading keys and values were filled; `done` is set when the kernel
    /// reported the end (`ENOENT`).
    ///
    /// # Errors
    /// `EINVAL` when a buffer does not fit; the kernel's errno (`ENOSPC`
    /// when a hash bucket holds more elements than the buffers), with the
    /// elements processed before it.
    #[doc(alias = "BPF_MAP_LOOKUP_BATCH")]
    pub fn lookup_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        self.lookup_batch_cmd(
            (MAP_LOOKUP_BATCH, "BPF_MAP_LOOKUP_BATCH"),
            in_batch,
            out_batch,
            keys,
            values,
            elem_flags,
        )
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`—As [`MapFd::lookup_batch`], and
    /// deletes what it read.
    ///
    /// # Errors
    /// As [`MapFd::lookup_batch`].
    #[doc(alias = "BPF_MAP_LOOKUP_AND_DELETE_BATCH")]
    pub fn lookup_and_delete_batch(
        &self,
        in_batch: Option<&[u8]>,
        out_batch: &mut [u8],
        keys: &mut [u8],
        values: &mut [u8],
        elem_flags: u64,
    ) -> Result<Batch, BatchError> {
        self.lookup_batch_cmd(
            (
                MAP_LOOKUP_AND_DELETE_BATCH,
                "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
            ),
            in_batch,
            out_batch,
            keys,
            values,
            elem_flags,
        )
    }

    /// `BPF_MAP_UPDATE_BATCH`—Sets each of the `keys.len() / key_size` keys
    /// to the value at the same index of `values`; returns how many were
    /// set.
    ///
    /// # Errors
    /// `EINVAL` when the buffers do not fit; the kernel's errno, with the
    /// elements updated before it.
    #[doc(alias = "BPF_MAP_UPDATE_BATCH")]
    pub fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        elem_flags: u64,
    ) -> Result<usize, BatchError> {
        const N: &str = "BPF_MAP_UPDATE_BATCH";
        let n = self.batch_count(N, keys.len(), Some(values.len()))?;
        self.batch(
            (MAP_UPDATE_BATCH, N),
            0,
            0,
            ptr(keys.as_ptr()),
            ptr(values.as_ptr()),
            n,
            elem_flags,
        )
        .map(|b| b.count)
    }

    /// `BPF_MAP_DELETE_BATCH`—Deletes each of the `keys.len() / key_size`
    /// keys; returns how many were deleted.
    ///
    /// # Errors
    /// `EINVAL` when `keys` is not a whole number of keys; the kernel's
    /// errno (`ENOENT` for a missing key), with the elements deleted before
    /// it.
    #[doc(alias = "BPF_MAP_DELETE_BATCH")]
    pub fn delete_batch(&self, keys: &[u8], elem_flags: u64) -> Result<usize, BatchError> {
        const N: &str = "BPF_MAP_DELETE_BATCH";
        let n = self.batch_count(N, keys.len(), None)?;
        self.batch(
            (MAP_DELETE_BATCH, N),
            0,
            0,
            ptr(keys.as_ptr()),
            0,
            n,
            elem_flags,
        )
        .map(|b| b.count)
    }
}

fn inval(cmd: &'static str) -> SysError {
    errno(cmd, Errno::INVAL)
}

/// The kinds of BPF object that have ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjKind {
    /// Programs.
    Prog,
    /// Maps.
    Map,
    /// BTF objects (vmlinux, modules, loaded BTF).
    Btf,
    /// Links.
    Link,
}

impl ObjKind {
    const fn next_id_cmd(self) -> (u32, &'static str) {
        match self {
            ObjKind::Prog => (PROG_GET_NEXT_ID, "BPF_PROG_GET_NEXT_ID"),
            ObjKind::Map => (MAP_GET_NEXT_ID, "BPF_MAP_GET_NEXT_ID"),
            ObjKind::Btf => (BTF_GET_NEXT_ID, "BPF_BTF_GET_NEXT_ID"),
            ObjKind::Link => (LINK_GET_NEXT_ID, "BPF_LINK_GET_NEXT_ID"),
        }
    }

    const fn fd_by_id_cmd(self) -> (u32, &'static str) {
        match self {
            ObjKind::Prog => (PROG_GET_FD_BY_ID, "BPF_PROG_GET_FD_BY_ID"),
            ObjKind::Map => (MAP_GET_FD_BY_ID, "BPF_MAP_GET_FD_BY_ID"),
            ObjKind::Btf => (BTF_GET_FD_BY_ID, "BPF_BTF_GET_FD_BY_ID"),
            ObjKind::Link => (LINK_GET_FD_BY_ID, "BPF_LINK_GET_FD_BY_ID"),
        }
    }
}

/// `BPF_{PROG,MAP,BTF,LINK}_GET_NEXT_ID`—The smallest id of a `kind`
/// object above `start_id`, or `None` after the last.
///
/// # Errors
/// The kernel's errno (`EPERM` without `CAP_SYS_ADMIN`).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_PROG_GET_NEXT_ID")]
#[doc(alias = "BPF_MAP_GET_NEXT_ID")]
#[doc(alias = "BPF_BTF_GET_NEXT_ID")]
#[doc(alias = "BPF_LINK_GET_NEXT_ID")]
pub fn get_next_id(kind: ObjKind, start_id: u32) -> Result<Option<u32>> {
    let (cmd, name) = kind.next_id_cmd();
    let mut a = [0u8; size_of::<GetIdAttr>()];
    put32(&mut a, offset_of!(GetIdAttr, start_id), start_id);
    match syscall(Syscall::Bpf { cmd, attr: &mut a }) {
        Ok(_) => Ok(Some(get32(&a, offset_of!(GetIdAttr, next_id)))),
        Err(e) if e == Errno::NOENT => Ok(None),
        Err(e) => Err(errno(name, e)),
    }
}

/// Every id of one kind of object, ascending (from [`obj_ids`]). Yields one
/// `Err` at most, then ends.
#[derive(Debug, Clone)]
pub struct ObjIds {
    kind: ObjKind,
    last: u32,
    done: bool,
}

impl Iterator for ObjIds {
    type Item = Result<u32>;

    fn next(&mut self) -> Option<Result<u32>> {
        if self.done {
            return None;
        }
        match get_next_id(self.kind, self.last) {
            // Ids only grow; anything else would loop forever.
            Ok(Some(id)) if id > self.last => {
                self.last = id;
                Some(Ok(id))
            }
            Ok(_) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl core::iter::FusedIterator for ObjIds {}

/// Walks the ids of every `kind` object with [`get_next_id`].
pub fn obj_ids(kind: ObjKind) -> ObjIds {
    ObjIds {
        kind,
        last: 0,
        done: false,
    }
}

/// `BPF_{PROG,MAP,BTF,LINK}_GET_FD_BY_ID`—Opens the `kind` object `id`.
/// `open_flags` (`BPF_F_RDONLY`, `BPF_F_WRONLY`) apply to maps; the others
/// take 0.
///
/// # Errors
/// The kernel's errno (`ENOENT` for no such object, `EPERM` without
/// `CAP_SYS_ADMIN`).
#[doc(alias = "BPF_PROG_GET_FD_BY_ID")]
#[doc(alias = "BPF_MAP_GET_FD_BY_ID")]
#[doc(alias = "BPF_BTF_GET_FD_BY_ID")]
#[doc(alias = "BPF_LINK_GET_FD_BY_ID")]
pub fn get_fd_by_id(kind: ObjKind, id: u32, open_flags: u32) -> Result<OwnedFd> {
    let (cmd, name) = kind.fd_by_id_cmd();
    let mut a = [0u8; size_of::<GetIdAttr>()];
    put32(&mut a, offset_of!(GetIdAttr, start_id), id);
    put32(&mut a, offset_of!(GetIdAttr, open_flags), open_flags);
    let r = bpf(cmd, name, &mut a)?;
    new_fd(r, name)
}

const INFO: &str = "BPF_OBJ_GET_INFO_BY_FD";

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`. Every pointer field in `info` must
/// be NULL unless the caller knows what kind of object `fd` is: the kernel
/// picks the struct layout from the fd, not from us.
fn obj_info(fd: BorrowedFd<'_>, info: &mut [u8]) -> Result<()> {
    let mut a = [0u8; size_of::<InfoAttr>()];
    put32(&mut a, offset_of!(InfoAttr, bpf_fd), raw(fd));
    put32(&mut a, offset_of!(InfoAttr, info_len), len_out(info.len()));
    put64(&mut a, offset_of!(InfoAttr, info), ptr(info.as_mut_ptr()));
    bpf(OBJ_GET_INFO_BY_FD, INFO, &mut a).map(drop)
}

/// What the kernel reports about a program (`struct bpf_prog_info`,
/// without the arrays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgInfo {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// Id.
    pub id: u32,
    /// Tag: the first 8 bytes of the SHA-1 of the instructions.
    pub tag: [u8; 8],
    /// JITed image bytes (0 when not JITed or not visible).
    pub jited_prog_len: u32,
    /// Translated instruction bytes.
    pub xlated_prog_len: u32,
    /// Load time, ns since boot.
    pub load_time: u64,
    /// The loader's uid.
    pub created_by_uid: u32,
    /// Maps the program uses.
    pub nr_map_ids: u32,
    name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// GPL-compatible license.
    pub gpl_compatible: bool,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    /// JITed symbols (subprograms).
    pub nr_jited_ksyms: u32,
    /// JITed function lengths.
    pub nr_jited_func_lens: u32,
    /// Program BTF id (0: none).
    pub btf_id: u32,
    /// func_info record size.
    pub func_info_rec_size: u32,
    /// func_info records.
    pub nr_func_info: u32,
    /// line_info records.
    pub nr_line_info: u32,
    /// JITed line_info records.
    pub nr_jited_line_info: u32,
    /// line_info record size.
    pub line_info_rec_size: u32,
    /// JITed line_info record size.
    pub jited_line_info_rec_size: u32,
    /// Tags (one per subprogram).
    pub nr_prog_tags: u32,
    /// Run time, ns (counted while [`enable_stats`] is on).
    pub run_time_ns: u64,
    /// Runs (counted while [`enable_stats`] is on).
    pub run_cnt: u64,
    /// Runs skipped by recursion protection.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// Attach target's BTF object id.
    pub attach_btf_obj_id: u32,
    /// Attach target's BTF type id.
    pub attach_btf_id: u32,
}

impl ProgInfo {
    /// The name given at load (at most 15 bytes).
    pub fn name(&self) -> &str {
        c_name(&self.name)
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD`—What the kernel reports about the program
/// `fd`.
///
/// # Errors
/// The kernel's errno (`EINVAL` for a non-BPF fd, `EBADF` for no fd).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    let mut b = [0u8; size_of::<BpfProgInfo>()];
    obj_info(fd, &mut b)?;
    macro_rules! u32_ {
        ($f:ident) => {
            get32(&b, offset_of!(BpfProgInfo, $f))
        };
    }
    macro_rules! u64_ {
        ($f:ident) => {
            get64(&b, offset_of!(BpfProgInfo, $f))
        };
    }
    Ok(ProgInfo {
        prog_type: u32_!(type_),
        id: u32_!(id),
        tag: get_bytes(&b, offset_of!(BpfProgInfo, tag)),
        jited_prog_len: u32_!(jited_prog_len),
        xlated_prog_len: u32_!(xlated_prog_len),
        load_time: u64_!(load_time),
        created_by_uid: u32_!(created_by_uid),
        nr_map_ids: u32_!(nr_map_ids),
        name: get_bytes(&b, offset_of!(BpfProgInfo, name)),
        ifindex: u32_!(ifindex),
        gpl_compatible: u32_!(gpl_compatible) & 1 != 0,
        netns_dev: u64_!(netns_dev),
        netns_ino: u64_!(netns_ino),
        nr_jited_ksyms: u32_!(nr_jited_ksyms),
        nr_jited_func_lens: u32_!(nr_jited_func_lens),
        btf_id: u32_!(btf_id),
        func_info_rec_size: u32_!(func_info_rec_size),
        nr_func_info: u32_!(nr_func_info),
        nr_line_info: u32_!(nr_line_info),
        nr_jited_line_info: u32_!(nr_jited_line_info),
        line_info_rec_size: u32_!(line_info_rec_size),
        jited_line_info_rec_size: u32_!(jited_line_info_rec_size),
        nr_prog_tags: u32_!(nr_prog_tags),
        run_time_ns: u64_!(run_time_ns),
        run_cnt: u64_!(run_cnt),
        recursion_misses: u64_!(recursion_misses),
        verified_insns: u32_!(verified_insns),
        attach_btf_obj_id: u32_!(attach_btf_obj_id),
        attach_btf_id: u32_!(attach_btf_id),
    })
}

/// What the kernel reports about a map (`struct bpf_map_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapInfo {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Id.
    pub id: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Flags.
    pub map_flags: u32,
    name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// Kernel struct type id (struct_ops).
    pub btf_vmlinux_value_type_id: u32,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    /// Map BTF id (0: none).
    pub btf_id: u32,
    /// Key type id.
    pub btf_key_type_id: u32,
    /// Value type id.
    pub btf_value_type_id: u32,
    /// `map_extra`.
    pub map_extra: u64,
}

impl MapInfo {
    /// The name given at creation (at most 15 bytes).
    pub fn name(&self) -> &str {
        c_name(&self.name)
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD`—What the kernel reports about the map `fd`.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo> {
    let mut b = [0u8; size_of::<BpfMapInfo>()];
    obj_info(fd, &mut b)?;
    macro_rules! u32_ {
        ($f:ident) => {
            get32(&b, offset_of!(BpfMapInfo, $f))
        };
    }
    Ok(MapInfo {
        map_type: u32_!(type_),
        id: u32_!(id),
        key_size: u32_!(key_size),
        value_size: u32_!(value_size),
        max_entries: u32_!(max_entries),
        map_flags: u32_!(map_flags),
        name: get_bytes(&b, offset_of!(BpfMapInfo, name)),
        ifindex: u32_!(ifindex),
        btf_vmlinux_value_type_id: u32_!(btf_vmlinux_value_type_id),
        netns_dev: get64(&b, offset_of!(BpfMapInfo, netns_dev)),
        netns_ino: get64(&b, offset_of!(BpfMapInfo, netns_ino)),
        btf_id: u32_!(btf_id),
        btf_key_type_id: u32_!(btf_key_type_id),
        btf_value_type_id: u32_!(btf_value_type_id),
        map_extra: get64(&b, offset_of!(BpfMapInfo, map_extra)),
    })
}

/// What the kernel reports about a BTF object (`struct bpf_btf_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfInfo {
    /// Id.
    pub id: u32,
    /// Size of the raw BTF.
    pub btf_size: u32,
    /// Kernel BTF (vmlinux or a module), not loaded by user space.
    pub kernel_btf: bool,
    /// Length of the name (without NUL).
    pub name_len: u32,
    name: [u8; BTF_NAME_MAX],
}

impl BtfInfo {
    /// The name (`vmlinux`, a module name, or empty for user BTF). Filled
    /// by [`btf_info_full`] only; [`btf_info`] leaves it empty.
    pub fn name(&self) -> &str {
        c_name(&self.name)
    }
}

fn decode_btf_info(b: &[u8], name: [u8; BTF_NAME_MAX]) -> BtfInfo {
    BtfInfo {
        id: get32(b, offset_of!(BpfBtfInfo, id)),
        btf_size: get32(b, offset_of!(BpfBtfInfo, btf_size)),
        kernel_btf: get32(b, offset_of!(BpfBtfInfo, kernel_btf)) != 0,
        name_len: get32(b, offset_of!(BpfBtfInfo, name_len)),
        name,
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD`—What the kernel reports about the BTF object
/// `fd`: id, size, whether it is kernel BTF, and the name's length.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info(fd: BorrowedFd<'_>) -> Result<BtfInfo> {
    let mut b = [0u8; size_of::<BpfBtfInfo>()];
    obj_info(fd, &mut b)?;
    Ok(decode_btf_info(&b, [0; BTF_NAME_MAX]))
}

/// `BPF_OBJ_GET_INFO_BY_FD`—As [`btf_info`], with the name and, when
/// `data` is given, the raw BTF: `data` is cleared and grown to
/// `btf_size` bytes.
///
/// The kernel chooses the info layout from the fd, so pointers must only
/// ever go to a fd known to be BTF: this reads the id from `fd`, reopens
/// it with `BPF_BTF_GET_FD_BY_ID` (which can only return BTF), checks that
/// both report the same object, and fetches through the reopened fd. That
/// needs `CAP_SYS_ADMIN`.
///
/// # Errors
/// `EINVAL` when `fd` is not a BTF object; `ENOMEM` when `data` cannot
/// grow; the kernel's errno.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info_full(fd: BorrowedFd<'_>, data: Option<&mut Vec<u8>>) -> Result<BtfInfo> {
    let first = btf_info(fd)?;
    let own = match get_fd_by_id(ObjKind::Btf, first.id, 0) {
        Err(e) if e.errno == Errno::NOENT => return Err(inval(INFO)),
        r => r?,
    };
    if btf_info(own.as_fd())? != first {
        return Err(inval(INFO));
    }
    let mut b = [0u8; size_of::<BpfBtfInfo>()];
    let mut name = [0u8; BTF_NAME_MAX];
    put64(&mut b, offset_of!(BpfBtfInfo, name), ptr(name.as_mut_ptr()));
    put32(
        &mut b,
        offset_of!(BpfBtfInfo, name_len),
        len_out(name.len()),
    );
    if let Some(v) = data {
        let size = usize::try_from(first.btf_size).map_err(|_| errno(INFO, Errno::NOMEM))?;
        v.clear();
        v.try_reserve_exact(size)
            .map_err(|_| errno(INFO, Errno::NOMEM))?;
        v.resize(size, 0);
        let room = len_out(v.len());
        put64(&mut b, offset_of!(BpfBtfInfo, btf), ptr(v.as_mut_ptr()));
        put32(&mut b, offset_of!(BpfBtfInfo, btf_size), room);
        obj_info(own.as_fd(), &mut b)?;
        // BTF objects are immutable; should the size still differ, keep
        // only what the kernel wrote.
        let got = get32(&b, offset_of!(BpfBtfInfo, btf_size)).min(room);
        v.truncate(usize::try_from(got).unwrap_or(usize::MAX));
    } else {
        obj_info(own.as_fd(), &mut b)?;
    }
    Ok(decode_btf_info(&b, name))
}

/// What the kernel reports about a link (`struct bpf_link_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// `enum bpf_link_type` (`LINK_TYPE_*`).
    pub link_type: u32,
    /// Id.
    pub id: u32,
    /// Id of the program it holds.
    pub prog_id: u32,
    /// The type-dependent union, as the kernel wrote it (pointer fields
    /// are zero: none were passed).
    pub data: [u8; 32],
}

impl LinkInfo {
    fn at32(&self, off: usize) -> u32 {
        get32(&self.data, off)
    }

    /// For a cgroup link, the cgroup's id (its inode number in cgroupfs).
    pub fn cgroup_id(&self) -> Option<u64> {
        (self.link_type == LINK_TYPE_CGROUP).then(|| get64(&self.data, 0))
    }

    /// The attach type of a cgroup, tracing or netns link.
    pub fn attach_type(&self) -> Option<u32> {
        match self.link_type {
            LINK_TYPE_CGROUP => Some(self.at32(8)),
            LINK_TYPE_TRACING => Some(self.at32(0)),
            LINK_TYPE_NETNS => Some(self.at32(4)),
            _ => None,
        }
    }

    /// For a raw tracepoint link, the length of the tracepoint's name
    /// including its NUL.
    pub fn raw_tracepoint_name_len(&self) -> Option<u32> {
        (self.link_type == LINK_TYPE_RAW_TRACEPOINT).then(|| self.at32(8))
    }
}

/// `BPF_OBJ_GET_INFO_BY_FD`—What the kernel reports about the link `fd`.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn link_info(fd: BorrowedFd<'_>) -> Result<LinkInfo> {
    let mut b = [0u8; size_of::<BpfLinkInfo>()];
    obj_info(fd, &mut b)?;
    Ok(LinkInfo {
        link_type: get32(&b, offset_of!(BpfLinkInfo, type_)),
        id: get32(&b, offset_of!(BpfLinkInfo, id)),
        prog_id: get32(&b, offset_of!(BpfLinkInfo, prog_id)),
        data: get_bytes(&b, offset_of!(BpfLinkInfo, data)),
    })
}

/// Where a link attaches.
#[derive(Debug, Clone, Copy)]
pub enum LinkTarget<'a> {
    /// No target object (tracing, `tp_btf`, LSM, iterators).
    None,
    /// A cgroup, netns, program (freplace) or other object fd.
    Fd(BorrowedFd<'a>),
    /// A network device (XDP, tcx, netkit).
    Ifindex(u32),
}

/// The type-dependent tail of `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkExtra {
    /// Nothing.
    #[default]
    None,
    /// `target_btf_id` (freplace: the BTF id of the replaced function).
    TargetBtfId(u32),
    /// `perf_event.bpf_cookie` (attach type `BPF_PERF_EVENT`, with a
    /// perf event fd as target).
    PerfEvent {
        /// Value for `bpf_get_attach_cookie()`.
        bpf_cookie: u64,
    },
    /// `tracing` (fentry, fexit, fmod_ret, LSM).
    Tracing {
        /// Target BTF id (0: the program's `attach_btf_id`).
        target_btf_id: u32,
        /// Value for `bpf_get_attach_cookie()`.
        cookie: u64,
    },
}

/// What `BPF_LINK_CREATE` needs.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreate<'a> {
    /// The program.
    pub prog: BorrowedFd<'a>,
    /// Where it attaches.
    pub target: LinkTarget<'a>,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// Flags.
    pub flags: u32,
    /// Type-dependent tail.
    pub extra: LinkExtra,
}

/// `BPF_LINK_CREATE`—Attaches a program through a link; closing the last
/// fd of the link (and unpinning it) detaches it.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `Documentation/bpf/`.
#[doc(alias = "BPF_LINK_CREATE")]
pub fn link_create(l: &LinkCreate<'_>) -> Result<OwnedFd> {
    const N: &str = "BPF_LINK_CREATE";
    let mut a = [0u8; size_of::<LinkCreateAttr>()];
    put32(&mut a, offset_of!(LinkCreateAttr, prog_fd), raw(l.prog));
    let target = match l.target {
        LinkTarget::None => 0,
        LinkTarget::Fd(fd) => raw(fd),
        LinkTarget::Ifindex(i) => i,
    };
    put32(&mut a, offset_of!(LinkCreateAttr, target_fd), target);
    put32(
        &mut a,
        offset_of!(LinkCreateAttr, attach_type),
        l.attach_type,
    );
    put32(&mut a, offset_of!(LinkCreateAttr, flags), l.flags);
    match l.extra {
        LinkExtra::None => {}
        LinkExtra::TargetBtfId(id) => put32(&mut a, offset_of!(LinkCreateAttr, target_btf_id), id),
        LinkExtra::PerfEvent { bpf_cookie } => {
            put64(
                &mut a,
                offset_of!(LinkCreateAttr, target_btf_id),
                bpf_cookie,
            );
        }
        LinkExtra::Tracing {
            target_btf_id,
            cookie,
        } => {
            put32(
                &mut a,
                offset_of!(LinkCreateAttr, target_btf_id),
                target_btf_id,
            );
            put64(&mut a, offset_of!(LinkCreateAttr, cookie), cookie);
        }
    }
    let r = bpf(LINK_CREATE, N, &mut a)?;
    new_fd(r, N)
}

/// `BPF_LINK_UPDATE`—Swaps the program of `link` for `new_prog`; with
/// `old_prog`, only if that is the current one (`BPF_F_REPLACE` is set
/// for you).
///
/// # Errors
/// The kernel's errno (`EPERM` when `old_prog` is not current).
#[doc(alias = "BPF_LINK_UPDATE")]
pub fn link_update(
    link: BorrowedFd<'_>,
    new_prog: BorrowedFd<'_>,
    old_prog: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut a = [0u8; size_of::<LinkUpdateAttr>()];
    put32(&mut a, offset_of!(LinkUpdateAttr, link_fd), raw(link));
    put32(
        &mut a,
        offset_of!(LinkUpdateAttr, new_prog_fd),
        raw(new_prog),
    );
    if let Some(old) = old_prog {
        put32(&mut a, offset_of!(LinkUpdateAttr, flags), F_REPLACE);
        put32(&mut a, offset_of!(LinkUpdateAttr, old_prog_fd), raw(old));
    }
    bpf(LINK_UPDATE, "BPF_LINK_UPDATE", &mut a).map(drop)
}

/// `BPF_LINK_DETACH`—Detaches `link` now; the fd stays open but defunct.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_LINK_DETACH")]
pub fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    let mut a = [0u8; size_of::<OneAttr>()];
    put32(&mut a, offset_of!(OneAttr, value), raw(link));
    bpf(LINK_DETACH, "BPF_LINK_DETACH", &mut a).map(drop)
}

/// `BPF_RAW_TRACEPOINT_OPEN`—Attaches a raw tracepoint program to the
/// tracepoint `name`; `None` for a BTF-typed (`tp_btf`) tracing program,
/// whose target was fixed at load. Returns the link.
///
/// # Errors
/// The kernel's errno (`ENOENT` for an unknown tracepoint).
#[doc(alias = "BPF_RAW_TRACEPOINT_OPEN")]
pub fn raw_tracepoint_open(prog: BorrowedFd<'_>, name: Option<&CStr>) -> Result<OwnedFd> {
    const N: &str = "BPF_RAW_TRACEPOINT_OPEN";
    let mut a = [0u8; size_of::<RawTracepointAttr>()];
    put64(
        &mut a,
        offset_of!(RawTracepointAttr, name),
        name.map_or(0, |n| ptr(n.as_ptr())),
    );
    put32(&mut a, offset_of!(RawTracepointAttr, prog_fd), raw(prog));
    let r = bpf(RAW_TRACEPOINT_OPEN, N, &mut a)?;
    new_fd(r, N)
}

/// `BPF_PROG_ATTACH`—Attaches `prog` to `target` (a cgroup, netns, sockmap
/// or device fd) the legacy way, which outlives the fd. With `replace`,
/// that program is replaced (`BPF_F_REPLACE` is set for you).
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_PROG_ATTACH")]
pub fn prog_attach(
    prog: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd<'_>>,
) -> Result<()> {
    let mut a = [0u8; size_of::<ProgAttachAttr>()];
    put32(&mut a, offset_of!(ProgAttachAttr, target_fd), raw(target));
    put32(&mut a, offset_of!(ProgAttachAttr, attach_bpf_fd), raw(prog));
    put32(&mut a, offset_of!(ProgAttachAttr, attach_type), attach_type);
    let flags = match replace {
        Some(old) => {
            put32(&mut a, offset_of!(ProgAttachAttr, replace_bpf_fd), raw(old));
            flags | F_REPLACE
        }
        None => flags,
    };
    put32(&mut a, offset_of!(ProgAttachAttr, attach_flags), flags);
    bpf(PROG_ATTACH, "BPF_PROG_ATTACH", &mut a).map(drop)
}

/// `BPF_PROG_DETACH`—Detaches `prog` (or, with `None`, the one program
/// attached without `BPF_F_ALLOW_MULTI`) from `target`.
///
/// # Errors
/// The kernel's errno (`ENOENT` when nothing matches).
#[doc(alias = "BPF_PROG_DETACH")]
pub fn prog_detach(
    prog: Option<BorrowedFd<'_>>,
    target: BorrowedFd<'_>,
    attach_type: u32,
) -> Result<()> {
    let mut a = [0u8; size_of::<ProgAttachAttr>()];
    put32(&mut a, offset_of!(ProgAttachAttr, target_fd), raw(target));
    if let Some(p) = prog {
        put32(&mut a, offset_of!(ProgAttachAttr, attach_bpf_fd), raw(p));
    }
    put32(&mut a, offset_of!(ProgAttachAttr, attach_type), attach_type);
    bpf(PROG_DETACH, "BPF_PROG_DETACH", &mut a).map(drop)
}

/// What `BPF_PROG_QUERY` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgQuery {
    /// The container's attach flags (`BPF_F_ALLOW_MULTI`, ...).
    pub attach_flags: u32,
    /// Programs attached, which may exceed what the slice held.
    pub prog_cnt: u32,
    /// Leading ids (and flags) written to the caller's slices.
    pub written: usize,
    /// Attachment revision (kernels with multi-program attachment; else 0).
    pub revision: u64,
}

/// `BPF_PROG_QUERY`—Lists the ids of programs attached to `target` for
/// `attach_type` into `prog_ids` (and their attach flags into
/// `prog_attach_flags`; the kernel fills the shorter length of the two).
/// `query_flags` may be `BPF_F_QUERY_EFFECTIVE` (1) for the programs that
/// actually run, inherited ones included (the kernel then refuses
/// `prog_attach_flags`).
///
/// When the slice is too short the kernel fills it and says `ENOSPC`;
/// that is not an error here: `prog_cnt > written` tells.
///
/// # Errors
/// The kernel's errno.
#[doc(alias = "BPF_PROG_QUERY")]
pub fn prog_query(
    target: BorrowedFd<'_>,
    attach_type: u32,
    query_flags: u32,
    prog_ids: &mut [u32],
    prog_attach_flags: Option<&mut [u32]>,
) -> Result<ProgQuery> {
    const N: &str = "BPF_PROG_QUERY";
    let room = prog_attach_flags
        .as_deref()
        .map_or(prog_ids.len(), |f| f.len().min(prog_ids.len()));
    let room = len_out(room);
    let mut a = [0u8; size_of::<QueryAttr>()];
    put32(&mut a, offset_of!(QueryAttr, target_fd), raw(target));
    put32(&mut a, offset_of!(QueryAttr, attach_type), attach_type);
    put32(&mut a, offset_of!(QueryAttr, query_flags), query_flags);
    if room > 0 {
        put64(
            &mut a,
            offset_of!(QueryAttr, prog_ids),
            ptr(prog_ids.as_mut_ptr()),
        );
        put32(&mut a, offset_of!(QueryAttr, prog_cnt), room);
        if let Some(f) = prog_attach_flags {
            put64(
                &mut a,
                offset_of!(QueryAttr, prog_attach_flags),
                ptr(f.as_mut_ptr()),
            );
        }
    }
    match syscall(Syscall::Bpf {
        cmd: PROG_QUERY,
        attr: &mut a,
    }) {
        Ok(_) => {}
        Err(e) if e == Errno::NOSPC => {}
        Err(e) => return Err(errno(N, e)),
    }
    let prog_cnt = get32(&a, offset_of!(QueryAttr, prog_cnt));
    Ok(ProgQuery {
        attach_flags: get32(&a, offset_of!(QueryAttr, attach_flags)),
        prog_cnt,
        written: usize::try_from(prog_cnt.min(room)).unwrap_or(usize::MAX),
        revision: get64(&a, offset_of!(QueryAttr, revision)),
    })
}

/// `BPF_ENABLE_STATS`—Turns on run-time statistics of `stats_type`
/// ([`STATS_RUN_TIME`]) for every program until the returned fd is closed.
///
/// # Errors
/// The kernel's errno (`EPERM` without `CAP_SYS_ADMIN`, `EINVAL` for an
/// unknown type).
#[doc(alias = "BPF_ENABLE_STATS")]
pub fn enable_stats(stats_type: u32) -> Result<OwnedFd> {
    const N: &str = "BPF_ENABLE_STATS";
    let mut a = [0u8; size_of::<OneAttr>()];
    put32(&mut a, offset_of!(OneAttr, value), stats_type);
    let r = bpf(ENABLE_STATS, N, &mut a)?;
    new_fd(r, N)
}

/// What `BPF_PROG_TEST_RUN` needs.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Input packet (or other data).
    pub data_in: &'a [u8],
    /// Room for the output packet (the kernel writes at most its length).
    pub data_out: Option<&'a mut [u8]>,
    /// Input context (`struct __sk_buff`, ...).
    pub ctx_in: Option<&'a [u8]>,
    /// Room for the output context.
    pub ctx_out: Option<&'a mut [u8]>,
    /// Runs (0 counts as 1).
    pub repeat: u32,
    /// `BPF_F_TEST_RUN_ON_CPU`, `BPF_F_TEST_XDP_LIVE_FRAMES`.
    pub flags: u32,
    /// CPU (with `BPF_F_TEST_RUN_ON_CPU`).
    pub cpu: u32,
    /// XDP live-frames batch size.
    pub batch_size: u32,
}

/// What `BPF_PROG_TEST_RUN` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (of the last run).
    pub retval: u32,
    /// Mean run time, ns.
    pub duration: u32,
    /// Bytes of output data written to `data_out`.
    pub data_size_out: u32,
    /// Bytes of output context written to `ctx_out`.
    pub ctx_size_out: u32,
}

/// `BPF_PROG_TEST_RUN`—Runs `prog` on `t.data_in` (and `t.ctx_in`) in the
/// kernel without attaching it.
///
/// # Errors
/// `E2BIG` for inputs over 4 GiB; the kernel's errno (`ENOSPC` when an
/// output buffer is too short, `EINVAL` for data the program type refuses,
/// `ENOTSUPP` (524) for types without test runs).
#[doc(alias = "BPF_PROG_TEST_RUN")]
#[doc(alias = "BPF_PROG_RUN")]
pub fn prog_test_run(prog: BorrowedFd<'_>, t: &mut TestRun<'_>) -> Result<TestRunResult> {
    const N: &str = "BPF_PROG_TEST_RUN";
    let mut a = [0u8; size_of::<TestRunAttr>()];
    put32(&mut a, offset_of!(TestRunAttr, prog_fd), raw(prog));
    put32(
        &mut a,
        offset_of!(TestRunAttr, data_size_in),
        len_in(N, t.data_in.len())?,
    );
    put64(
        &mut a,
        offset_of!(TestRunAttr, data_in),
        ptr_or_null(t.data_in),
    );
    // An output pointer with size 0 would let the kernel write the whole
    // result: empty buffers go as NULL.
    if let Some(out) = t.data_out.as_deref_mut().filter(|o| !o.is_empty()) {
        put32(
            &mut a,
            offset_of!(TestRunAttr, data_size_out),
            len_out(out.len()),
        );
        put64(
            &mut a,
            offset_of!(TestRunAttr, data_out),
            ptr(out.as_mut_ptr()),
        );
    }
    if let Some(ctx) = t.ctx_in.filter(|c| !c.is_empty()) {
        put32(
            &mut a,
            offset_of!(TestRunAttr, ctx_size_in),
            len_in(N, ctx.len())?,
        );
        put64(&mut a, offset_of!(TestRunAttr, ctx_in), ptr(ctx.as_ptr()));
    }
    if let Some(out) = t.ctx_out.as_deref_mut().filter(|o| !o.is_empty()) {
        put32(
            &mut a,
            offset_of!(TestRunAttr, ctx_size_out),
            len_out(out.len()),
        );
        put64(
            &mut a,
            offset_of!(TestRunAttr, ctx_out),
            ptr(out.as_mut_ptr()),
        );
    }
    put32(&mut a, offset_of!(TestRunAttr, repeat), t.repeat);
    put32(&mut a, offset_of!(TestRunAttr, flags), t.flags);
    put32(&mut a, offset_of!(TestRunAttr, cpu), t.cpu);
    put32(&mut a, offset_of!(TestRunAttr, batch_size), t.batch_size);
    bpf(PROG_TEST_RUN, N, &mut a)?;
    Ok(TestRunResult {
        retval: get32(&a, offset_of!(TestRunAttr, retval)),
        duration: get32(&a, offset_of!(TestRunAttr, duration)),
        data_size_out: get32(&a, offset_of!(TestRunAttr, data_size_out)),
        ctx_size_out: get32(&a, offset_of!(TestRunAttr, ctx_size_out)),
    })
}
