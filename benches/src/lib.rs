//! Shared pieces of ember's benches: the libbpf FFI peer and the bare-walk
//! floor.

use core::ffi::{CStr, c_char, c_int, c_long, c_void};
use std::ffi::CString;

#[allow(non_camel_case_types, reason = "mirrors libbpf's C name")]
/// libbpf's opaque `struct btf`.
#[repr(C)]
#[derive(Debug)]
pub struct btf {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn btf__parse(path: *const c_char, btf_ext: *mut *mut c_void) -> *mut btf;
    fn btf__new(data: *const c_void, size: u32) -> *mut btf;
    fn btf__free(btf: *mut btf);
    fn btf__find_by_name_kind(btf: *const btf, name: *const c_char, kind: u32) -> i32;
    fn btf__type_cnt(btf: *const btf) -> u32;
    fn libbpf_get_error(ptr: *const c_void) -> c_long;
}

/// An owned libbpf `struct btf`.
#[derive(Debug)]
pub struct LibbpfBtf(*mut btf);

impl LibbpfBtf {
    /// `btf__parse(path, NULL)`: reads and parses a raw or ELF BTF file.
    pub fn parse(path: &str) -> Option<LibbpfBtf> {
        let c = CString::new(path).ok()?;
        // SAFETY: `c` is a valid NUL-terminated string; a NULL btf_ext out
        // pointer is allowed by libbpf.
        let p = unsafe { btf__parse(c.as_ptr(), core::ptr::null_mut()) };
        Self::checked(p)
    }

    /// `btf__new(data, size)`: parses BTF from memory (libbpf copies it).
    pub fn from_bytes(data: &[u8]) -> Option<LibbpfBtf> {
        let len = u32::try_from(data.len()).ok()?;
        // SAFETY: the pointer and length describe `data`, which outlives the
        // call; libbpf copies the bytes.
        let p = unsafe { btf__new(data.as_ptr().cast(), len) };
        Self::checked(p)
    }

    fn checked(p: *mut btf) -> Option<LibbpfBtf> {
        // SAFETY: libbpf_get_error only inspects the pointer value.
        let bad = p.is_null() || unsafe { libbpf_get_error(p.cast()) } != 0;
        (!bad).then_some(LibbpfBtf(p))
    }

    /// `btf__find_by_name_kind`: the id, or a negative errno.
    pub fn find_by_name_kind(&self, name: &core::ffi::CStr, kind: u32) -> i32 {
        // SAFETY: self.0 is a live btf from libbpf; name is NUL-terminated.
        unsafe { btf__find_by_name_kind(self.0, name.as_ptr(), kind) }
    }

    /// `btf__type_cnt`.
    pub fn type_cnt(&self) -> u32 {
        // SAFETY: self.0 is a live btf from libbpf.
        unsafe { btf__type_cnt(self.0) }
    }
}

impl Drop for LibbpfBtf {
    fn drop(&mut self) {
        // SAFETY: self.0 came from btf__parse/btf__new and is freed once.
        unsafe { btf__free(self.0) }
    }
}

#[allow(non_camel_case_types, reason = "mirrors libbpf's C name")]
/// libbpf's opaque `struct bpf_object`.
#[repr(C)]
#[derive(Debug)]
pub struct bpf_object {
    _private: [u8; 0],
}

#[allow(non_camel_case_types, reason = "mirrors libbpf's C name")]
/// libbpf's opaque `struct bpf_map`.
#[repr(C)]
#[derive(Debug)]
pub struct bpf_map {
    _private: [u8; 0],
}

/// The leading fields of libbpf's `struct bpf_object_open_opts`. `sz`
/// says how many bytes libbpf may read, so a prefix is a valid opts
/// struct for every libbpf version (its documented ABI rule).
#[repr(C)]
struct OpenOpts {
    sz: usize,
    object_name: *const c_char,
}

unsafe extern "C" {
    fn bpf_object__open_mem(
        buf: *const c_void,
        sz: usize,
        opts: *const OpenOpts,
    ) -> *mut bpf_object;
    fn bpf_object__load(obj: *mut bpf_object) -> c_int;
    fn bpf_object__close(obj: *mut bpf_object);
    fn bpf_object__find_map_by_name(obj: *const bpf_object, name: *const c_char) -> *mut bpf_map;
    fn bpf_map__set_pin_path(map: *mut bpf_map, path: *const c_char) -> c_int;
    // The callback type has a `va_list` argument, which Rust cannot name;
    // only NULL (no output) is ever passed, so an untyped pointer will do.
    fn libbpf_set_print(f: *const c_void) -> *const c_void;
}

/// An opened libbpf `struct bpf_object` over `'a` bytes; closing it
/// (on drop) closes every fd its load created.
#[derive(Debug)]
pub struct LibbpfObject<'a> {
    obj: *mut bpf_object,
    _data: core::marker::PhantomData<&'a [u8]>,
}

impl<'a> LibbpfObject<'a> {
    /// `bpf_object__open_mem(data, len, {.object_name = name})`.
    pub fn open_mem(data: &'a [u8], name: &CStr) -> Option<LibbpfObject<'a>> {
        let opts = OpenOpts {
            sz: size_of::<OpenOpts>(),
            object_name: name.as_ptr(),
        };
        // SAFETY: `data` outlives the object (the `'a` marker), `opts` is a
        // valid prefix of bpf_object_open_opts with its size in `sz`, and
        // `name` is NUL-terminated and outlives the call (libbpf copies it).
        let p = unsafe { bpf_object__open_mem(data.as_ptr().cast(), data.len(), &opts) };
        // SAFETY: libbpf_get_error only inspects the pointer value.
        let bad = p.is_null() || unsafe { libbpf_get_error(p.cast()) } != 0;
        (!bad).then_some(LibbpfObject {
            obj: p,
            _data: core::marker::PhantomData,
        })
    }

    /// `bpf_map__set_pin_path(map, NULL)`: keeps map `name` unpinned
    /// even if it asks to be pinned by name (libbpf would otherwise pin it
    /// under /sys/fs/bpf and reuse it on the next load). False when the
    /// object has no such map.
    pub fn no_pin(&mut self, name: &CStr) -> bool {
        // SAFETY: self.obj is a live object; name is NUL-terminated.
        let map = unsafe { bpf_object__find_map_by_name(self.obj, name.as_ptr()) };
        // SAFETY: `map` belongs to self.obj; a NULL path is allowed.
        !map.is_null() && unsafe { bpf_map__set_pin_path(map, core::ptr::null()) } == 0
    }

    /// `bpf_object__load`: creates maps and loads programs; a negative
    /// errno on failure.
    pub fn load(&mut self) -> Result<(), i32> {
        // SAFETY: self.obj is a live, opened, not yet loaded object.
        match unsafe { bpf_object__load(self.obj) } {
            0 => Ok(()),
            e => Err(e),
        }
    }
}

impl Drop for LibbpfObject<'_> {
    fn drop(&mut self) {
        // SAFETY: self.obj came from bpf_object__open_mem and is closed once.
        unsafe { bpf_object__close(self.obj) }
    }
}

/// `libbpf_set_print(NULL)`: silences libbpf's messages.
pub fn libbpf_silence() {
    // SAFETY: NULL is libbpf's documented "no output" value.
    unsafe { libbpf_set_print(core::ptr::null()) };
}

/// Number of fds this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// The floor: walk the type records of a little-endian BTF blob and build
/// the offset table, checking nothing but record bounds.
pub fn bare_walk(data: &[u8]) -> Vec<u32> {
    let rd = |o: usize| -> u32 {
        data.get(o..o + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let hdr_len = rd(4) as usize;
    let start = hdr_len + rd(8) as usize;
    let end = start + rd(12) as usize;
    let mut offs = Vec::with_capacity((end - start) / 40 + 16);
    let mut off = start;
    while off + 12 <= end {
        let info = rd(off + 4);
        let vlen = (info & 0xffff) as usize;
        let len = 12
            + match (info >> 24) & 0x1f {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                _ => 0,
            };
        offs.push(off as u32);
        off += len;
    }
    offs
}

/// The ids bench lookups use: libbpf's BTF_KIND_STRUCT.
pub const BTF_KIND_STRUCT: u32 = 4;

/// glibc's `struct mallinfo2`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct Mallinfo2 {
    arena: usize,
    ordblks: usize,
    smblks: usize,
    hblks: usize,
    hblkhd: usize,
    usmblks: usize,
    fsmblks: usize,
    uordblks: usize,
    fordblks: usize,
    keepcost: usize,
}

unsafe extern "C" {
    fn mallinfo2() -> Mallinfo2;
}

/// Bytes currently allocated through malloc (small chunks plus mmapped
/// blocks), from glibc's `mallinfo2`: the same measure for Rust's and
/// libbpf's allocations, since both go through malloc.
pub fn malloc_in_use() -> usize {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct.
    let m = unsafe { mallinfo2() };
    m.uordblks + m.hblkhd
}

/// The C floor's table (`struct floor_index` in src/index_floor.c).
#[repr(C)]
#[derive(Debug)]
struct FloorIndexRaw {
    slots: *mut u32,
    mask: u32,
    len: u32,
}

unsafe extern "C" {
    fn floor_index_build(
        ix: *mut FloorIndexRaw,
        data: *const u8,
        offsets: *const u32,
        count: u32,
        start_id: u32,
        strs: *const u8,
        str_len: u32,
    ) -> c_int;
    fn floor_index_free(ix: *mut FloorIndexRaw);
}

/// The name index written plainly in C (open addressing, linear probing,
/// a word-at-a-time hash of kind + essential name, ids only): the floor
/// ember's `NameIndex::build` is measured against. Its table is allocated
/// with malloc once per build, as ember's is.
#[derive(Debug)]
pub struct FloorIndex(FloorIndexRaw);

impl FloorIndex {
    /// Builds the C index over a little-endian BTF blob given its record
    /// offsets (ids `start_id..`) and its string section (which must end
    /// in a NUL, as a validated BTF's does).
    pub fn build(data: &[u8], offsets: &[u32], start_id: u32, strs: &[u8]) -> Option<FloorIndex> {
        assert!(offsets.iter().all(|&o| o as usize + 12 <= data.len()));
        assert_eq!(strs.last(), Some(&0));
        let mut raw = FloorIndexRaw {
            slots: core::ptr::null_mut(),
            mask: 0,
            len: 0,
        };
        // SAFETY: every offset leaves a whole 12-byte record header inside
        // `data` (asserted), and every string read stops at the string
        // section's final NUL (asserted); the pointers outlive the call.
        let rc = unsafe {
            floor_index_build(
                &mut raw,
                data.as_ptr(),
                offsets.as_ptr(),
                u32::try_from(offsets.len()).ok()?,
                start_id,
                strs.as_ptr(),
                u32::try_from(strs.len()).ok()?,
            )
        };
        (rc == 0).then_some(FloorIndex(raw))
    }

    /// Number of indexed types.
    pub fn len(&self) -> usize {
        self.0.len as usize
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }
}

impl Drop for FloorIndex {
    fn drop(&mut self) {
        // SAFETY: the table came from floor_index_build and is freed once.
        unsafe { floor_index_free(&mut self.0) }
    }
}

/// glibc's `M_TRIM_THRESHOLD`.
const M_TRIM_THRESHOLD: c_int = -1;
/// glibc's `M_MMAP_THRESHOLD`.
const M_MMAP_THRESHOLD: c_int = -3;
/// glibc's largest mmap threshold on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`).
const MMAP_THRESHOLD_MAX: c_int = 32 << 20;

unsafe extern "C" {
    fn mallopt(param: c_int, value: c_int) -> c_int;
}

/// Puts the process's allocator in one steady state for both peers of an
/// in-process bench: every block below 32 MiB comes from the heap (none
/// from a fresh `mmap`) and freed memory is never trimmed, so after the
/// first iteration neither ember nor libbpf page-faults in buffers it
/// allocates (libbpf's 5.5 MB copy of vmlinux BTF did on every iteration
/// under glibc's default dynamic threshold, which flattered ember 5×).
/// In-process ratios are therefore warm-allocator ratios; the
/// whole-process harness (benches/whole-process.sh) measures each tool in
/// a fresh process. False if glibc refused a setting.
pub fn steady_allocator() -> bool {
    // SAFETY: mallopt takes two ints and only changes malloc's tunables;
    // both values are within glibc's documented ranges.
    let mmap = unsafe { mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) };
    // SAFETY: as above.
    let trim = unsafe { mallopt(M_TRIM_THRESHOLD, c_int::MAX) };
    mmap == 1 && trim == 1
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

/// `CLOCK_THREAD_CPUTIME_ID`.
const CLOCK_THREAD_CPUTIME_ID: c_int = 3;

unsafe extern "C" {
    fn clock_gettime(clock: c_int, ts: *mut Timespec) -> c_int;
}

/// CPU time this thread has used, user and system (the kernel's work in
/// its system calls included): unlike wall time, it does not count
/// waiting for a CPU on a shared or virtual machine.
pub fn thread_cpu() -> core::time::Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a
    // constant every Linux since 2.6.12 knows.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    core::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// [`thread_cpu`] in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    u64::try_from(thread_cpu().as_nanos()).unwrap_or(u64::MAX)
}
