//! Per-command `bpf_attr` layouts, mirroring `uapi/linux/bpf.h`.
//!
//! Each struct documents the layout the kernel expects and is checked at
//! compile time; requests are encoded field by field into a byte buffer at
//! `offset_of!` positions, so no unsafe transmute is needed and padding is
//! always zero.

use core::mem::{offset_of, size_of};

/// `BPF_OBJ_NAME_LEN`.
pub const OBJ_NAME_LEN: usize = 16;

/// `BPF_MAP_CREATE`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MapCreateAttr {
    /// Map type.
    pub map_type: u32,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// Flags.
    pub map_flags: u32,
    /// Inner map template fd (map-in-map).
    pub inner_map_fd: u32,
    /// NUMA node.
    pub numa_node: u32,
    /// Name, NUL-padded.
    pub map_name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub map_ifindex: u32,
    /// BTF fd describing key and value.
    pub btf_fd: u32,
    /// Key type id.
    pub btf_key_type_id: u32,
    /// Value type id.
    pub btf_value_type_id: u32,
    /// Kernel struct type id (struct_ops).
    pub btf_vmlinux_value_type_id: u32,
    /// `map_extra`.
    pub map_extra: u64,
}
const _: () = assert!(size_of::<MapCreateAttr>() == 72);
const _: () = assert!(offset_of!(MapCreateAttr, map_name) == 28);
const _: () = assert!(offset_of!(MapCreateAttr, map_extra) == 64);

/// `BPF_MAP_{LOOKUP,UPDATE,DELETE}_ELEM`, `BPF_MAP_GET_NEXT_KEY`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct MapElemAttr {
    /// Map fd.
    pub map_fd: u32,
    /// Padding.
    pub pad: u32,
    /// Key pointer.
    pub key: u64,
    /// Value (or next key) pointer.
    pub value: u64,
    /// Flags.
    pub flags: u64,
}
const _: () = assert!(size_of::<MapElemAttr>() == 32);
const _: () = assert!(offset_of!(MapElemAttr, key) == 8);

/// `BPF_PROG_LOAD`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ProgLoadAttr {
    /// Program type.
    pub prog_type: u32,
    /// Instruction count.
    pub insn_cnt: u32,
    /// Instructions pointer.
    pub insns: u64,
    /// License string pointer.
    pub license: u64,
    /// Verifier log level.
    pub log_level: u32,
    /// Log buffer size.
    pub log_size: u32,
    /// Log buffer pointer.
    pub log_buf: u64,
    /// Kernel version (kprobes on old kernels).
    pub kern_version: u32,
    /// Program flags.
    pub prog_flags: u32,
    /// Name, NUL-padded.
    pub prog_name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub prog_ifindex: u32,
    /// Expected attach type.
    pub expected_attach_type: u32,
    /// Program BTF fd.
    pub prog_btf_fd: u32,
    /// func_info record size.
    pub func_info_rec_size: u32,
    /// func_info pointer.
    pub func_info: u64,
    /// func_info count.
    pub func_info_cnt: u32,
    /// line_info record size.
    pub line_info_rec_size: u32,
    /// line_info pointer.
    pub line_info: u64,
    /// line_info count.
    pub line_info_cnt: u32,
    /// Attach BTF id.
    pub attach_btf_id: u32,
    /// Attach program fd or BTF object fd.
    pub attach_fd: u32,
    /// CO-RE relocation count (kernel-side CO-RE).
    pub core_relo_cnt: u32,
    /// fd_array pointer.
    pub fd_array: u64,
    /// CO-RE relocations pointer.
    pub core_relos: u64,
    /// CO-RE relocation record size.
    pub core_relo_rec_size: u32,
    /// Log size the kernel needed (written back).
    pub log_true_size: u32,
}
const _: () = assert!(size_of::<ProgLoadAttr>() == 144);
const _: () = assert!(offset_of!(ProgLoadAttr, prog_name) == 48);
const _: () = assert!(offset_of!(ProgLoadAttr, fd_array) == 120);
const _: () = assert!(offset_of!(ProgLoadAttr, log_true_size) == 140);

/// `BPF_BTF_LOAD`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BtfLoadAttr {
    /// BTF blob pointer.
    pub btf: u64,
    /// Log buffer pointer.
    pub btf_log_buf: u64,
    /// Blob size.
    pub btf_size: u32,
    /// Log buffer size.
    pub btf_log_size: u32,
    /// Log level.
    pub btf_log_level: u32,
    /// Log size the kernel needed (written back).
    pub btf_log_true_size: u32,
}
const _: () = assert!(size_of::<BtfLoadAttr>() == 32);

/// `BPF_OBJ_PIN`, `BPF_OBJ_GET`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ObjAttr {
    /// Path pointer (NUL-terminated).
    pub pathname: u64,
    /// fd to pin.
    pub bpf_fd: u32,
    /// Open flags.
    pub file_flags: u32,
    /// Directory fd for relative paths.
    pub path_fd: i32,
    /// Padding.
    pub pad: u32,
}
const _: () = assert!(size_of::<ObjAttr>() == 24);

/// Writes `v` at `off` in native byte order (the kernel's).
pub(crate) fn put32(buf: &mut [u8], off: usize, v: u32) {
    if let Some(d) = buf.get_mut(off..off.saturating_add(4)) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

/// Writes `v` at `off` in native byte order.
pub(crate) fn put64(buf: &mut [u8], off: usize, v: u64) {
    if let Some(d) = buf.get_mut(off..off.saturating_add(8)) {
        d.copy_from_slice(&v.to_ne_bytes());
    }
}

/// Reads a `u32` written back by the kernel.
pub(crate) fn get32(buf: &[u8], off: usize) -> u32 {
    buf.get(off..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |b| u32::from_ne_bytes(*b))
}

/// Copies a name into a NUL-padded kernel name field (truncating to 15).
pub(crate) fn put_name(buf: &mut [u8], off: usize, name: &str) {
    let n = name.len().min(OBJ_NAME_LEN - 1);
    if let (Some(d), Some(s)) = (
        buf.get_mut(off..off.saturating_add(n)),
        name.as_bytes().get(..n),
    ) {
        d.copy_from_slice(s);
    }
}

/// A pointer as the kernel's `__aligned_u64`.
pub(crate) fn ptr<T>(p: *const T) -> u64 {
    p as usize as u64
}
