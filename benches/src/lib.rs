//! Shared pieces of ember's benches: the libbpf FFI peer and the bare-walk
//! floor.

use core::ffi::{c_char, c_long, c_void};
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
