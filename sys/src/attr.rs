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

/// `BPF_MAP_*_BATCH` (`batch` in the union).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchAttr {
    /// Token to resume from (NULL: from the start).
    pub in_batch: u64,
    /// Token to resume the next call from (written back).
    pub out_batch: u64,
    /// Keys pointer.
    pub keys: u64,
    /// Values pointer.
    pub values: u64,
    /// In: elements the buffers hold; out: elements processed.
    pub count: u32,
    /// Map fd.
    pub map_fd: u32,
    /// Per-element flags (`BPF_F_LOCK`).
    pub elem_flags: u64,
    /// Command flags (must be 0).
    pub flags: u64,
}
const _: () = assert!(size_of::<BatchAttr>() == 56);
const _: () = assert!(offset_of!(BatchAttr, count) == 32);
const _: () = assert!(offset_of!(BatchAttr, map_fd) == 36);
const _: () = assert!(offset_of!(BatchAttr, flags) == 48);

/// `BPF_PROG_ATTACH`, `BPF_PROG_DETACH`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ProgAttachAttr {
    /// Container to attach to (cgroup, netns, map, device).
    pub target_fd: u32,
    /// Program fd.
    pub attach_bpf_fd: u32,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// `BPF_F_ALLOW_OVERRIDE`, `BPF_F_ALLOW_MULTI`, `BPF_F_REPLACE`.
    pub attach_flags: u32,
    /// Program to replace (with `BPF_F_REPLACE`).
    pub replace_bpf_fd: u32,
}
const _: () = assert!(size_of::<ProgAttachAttr>() == 20);
const _: () = assert!(offset_of!(ProgAttachAttr, replace_bpf_fd) == 16);

/// `BPF_PROG_TEST_RUN` (`test` in the union).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct TestRunAttr {
    /// Program fd.
    pub prog_fd: u32,
    /// The program's return value (written back).
    pub retval: u32,
    /// Length of `data_in`.
    pub data_size_in: u32,
    /// In: room in `data_out`; out: bytes of output data.
    pub data_size_out: u32,
    /// Input packet pointer.
    pub data_in: u64,
    /// Output packet pointer.
    pub data_out: u64,
    /// Runs (0 counts as 1).
    pub repeat: u32,
    /// Mean run time in ns (written back).
    pub duration: u32,
    /// Length of `ctx_in`.
    pub ctx_size_in: u32,
    /// In: room in `ctx_out`; out: bytes of output context.
    pub ctx_size_out: u32,
    /// Input context pointer.
    pub ctx_in: u64,
    /// Output context pointer.
    pub ctx_out: u64,
    /// `BPF_F_TEST_RUN_ON_CPU`, ...
    pub flags: u32,
    /// CPU (with `BPF_F_TEST_RUN_ON_CPU`).
    pub cpu: u32,
    /// XDP live-frames batch size.
    pub batch_size: u32,
    /// Padding.
    pub pad: u32,
}
const _: () = assert!(size_of::<TestRunAttr>() == 80);
const _: () = assert!(offset_of!(TestRunAttr, data_in) == 16);
const _: () = assert!(offset_of!(TestRunAttr, repeat) == 32);
const _: () = assert!(offset_of!(TestRunAttr, ctx_in) == 48);
const _: () = assert!(offset_of!(TestRunAttr, batch_size) == 72);

/// `BPF_{PROG,MAP,BTF,LINK}_GET_NEXT_ID`, `BPF_*_GET_FD_BY_ID`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct GetIdAttr {
    /// `start_id` / `prog_id` / `map_id` / `btf_id` / `link_id`.
    pub start_id: u32,
    /// The next id (written back).
    pub next_id: u32,
    /// Open flags (`BPF_F_RDONLY`, ... for maps).
    pub open_flags: u32,
}
const _: () = assert!(size_of::<GetIdAttr>() == 12);
const _: () = assert!(offset_of!(GetIdAttr, open_flags) == 8);

/// `BPF_OBJ_GET_INFO_BY_FD` (`info` in the union).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct InfoAttr {
    /// Object fd.
    pub bpf_fd: u32,
    /// In: size of the info buffer; out: bytes the kernel filled.
    pub info_len: u32,
    /// Info buffer pointer.
    pub info: u64,
}
const _: () = assert!(size_of::<InfoAttr>() == 16);

/// `BPF_PROG_QUERY` (`query` in the union), in the layout of Linux 6.6 and
/// later.
///
/// The 6.1 uapi header ends this struct at `prog_attach_flags` (40 bytes),
/// but kernels with multi-program attachment (tcx in 6.6, cgroups in 6.16
/// and later) write `revision` at offset 56 *whatever size user space
/// passes*, so the buffer must reach it.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct QueryAttr {
    /// Container to query (or ifindex for tcx).
    pub target_fd: u32,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// `BPF_F_QUERY_EFFECTIVE`.
    pub query_flags: u32,
    /// Attach flags of the container (written back).
    pub attach_flags: u32,
    /// Program id array pointer.
    pub prog_ids: u64,
    /// In: room in `prog_ids`; out: programs attached.
    pub prog_cnt: u32,
    /// Padding.
    pub pad: u32,
    /// Per-program attach flags array pointer.
    pub prog_attach_flags: u64,
    /// Link id array pointer (6.6+).
    pub link_ids: u64,
    /// Per-link attach flags array pointer (6.6+).
    pub link_attach_flags: u64,
    /// Attachment revision (written back, 6.6+).
    pub revision: u64,
}
const _: () = assert!(size_of::<QueryAttr>() == 64);
const _: () = assert!(offset_of!(QueryAttr, prog_ids) == 16);
const _: () = assert!(offset_of!(QueryAttr, prog_cnt) == 24);
const _: () = assert!(offset_of!(QueryAttr, prog_attach_flags) == 32);
const _: () = assert!(offset_of!(QueryAttr, revision) == 56);

/// `BPF_RAW_TRACEPOINT_OPEN`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct RawTracepointAttr {
    /// Tracepoint name pointer (NULL for BTF-typed `tp_btf` programs).
    pub name: u64,
    /// Program fd.
    pub prog_fd: u32,
    /// Padding.
    pub pad: u32,
}
const _: () = assert!(size_of::<RawTracepointAttr>() == 16);

/// `BPF_LINK_CREATE` (`link_create` in the union).
///
/// The tail is a union: at offset 16 `target_btf_id` (u32),
/// `perf_event.bpf_cookie` (u64), `iter_info` or `tracing.target_btf_id`;
/// at offset 24 `tracing.cookie` or `iter_info_len`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkCreateAttr {
    /// Program fd.
    pub prog_fd: u32,
    /// Target fd or ifindex.
    pub target_fd: u32,
    /// `enum bpf_attach_type`.
    pub attach_type: u32,
    /// Flags.
    pub flags: u32,
    /// `target_btf_id`; as a u64, `perf_event.bpf_cookie`.
    pub target_btf_id: u32,
    /// Padding (high half of `perf_event.bpf_cookie`).
    pub pad: u32,
    /// `tracing.cookie`.
    pub cookie: u64,
    /// Rest of the union (kprobe_multi addrs and cookies).
    pub rest: [u64; 2],
}
const _: () = assert!(size_of::<LinkCreateAttr>() == 48);
const _: () = assert!(offset_of!(LinkCreateAttr, target_btf_id) == 16);
const _: () = assert!(offset_of!(LinkCreateAttr, target_btf_id).is_multiple_of(8));
const _: () = assert!(offset_of!(LinkCreateAttr, cookie) == 24);

/// `BPF_LINK_CREATE` with the `uprobe_multi` member (6.6), which runs past
/// the 48 bytes of [`LinkCreateAttr`].
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkCreateUprobeMultiAttr {
    /// Program fd.
    pub prog_fd: u32,
    /// Target fd (unused: 0).
    pub target_fd: u32,
    /// `BPF_TRACE_UPROBE_MULTI`.
    pub attach_type: u32,
    /// Link flags.
    pub flags: u32,
    /// `uprobe_multi.path`: the binary, NUL-terminated.
    pub path: u64,
    /// `uprobe_multi.offsets`: `cnt` file offsets.
    pub offsets: u64,
    /// `uprobe_multi.ref_ctr_offsets`: `cnt` semaphore offsets, or NULL.
    pub ref_ctr_offsets: u64,
    /// `uprobe_multi.cookies`: `cnt` cookies, or NULL.
    pub cookies: u64,
    /// `uprobe_multi.cnt`.
    pub cnt: u32,
    /// `uprobe_multi.flags` (`BPF_F_UPROBE_MULTI_RETURN`).
    pub uprobe_flags: u32,
    /// `uprobe_multi.pid` (0: every process).
    pub pid: u32,
    /// Padding.
    pub pad: u32,
}
const _: () = assert!(size_of::<LinkCreateUprobeMultiAttr>() == 64);
const _: () = assert!(offset_of!(LinkCreateUprobeMultiAttr, path) == 16);
const _: () = assert!(offset_of!(LinkCreateUprobeMultiAttr, cookies) == 40);
const _: () = assert!(offset_of!(LinkCreateUprobeMultiAttr, cnt) == 48);
const _: () = assert!(offset_of!(LinkCreateUprobeMultiAttr, pid) == 56);

/// `BPF_LINK_CREATE` with the `kprobe_multi` member (5.18; also
/// `BPF_TRACE_KPROBE_SESSION`, 6.10): the union of [`LinkCreateAttr`]
/// read as flags, count and three arrays.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkCreateKprobeMultiAttr {
    /// Program fd.
    pub prog_fd: u32,
    /// Target fd (unused: 0).
    pub target_fd: u32,
    /// `BPF_TRACE_KPROBE_MULTI` or `BPF_TRACE_KPROBE_SESSION`.
    pub attach_type: u32,
    /// Link flags.
    pub flags: u32,
    /// `kprobe_multi.flags` (`BPF_F_KPROBE_MULTI_RETURN`).
    pub kprobe_flags: u32,
    /// `kprobe_multi.cnt`.
    pub cnt: u32,
    /// `kprobe_multi.syms`: `cnt` pointers to function names, or NULL.
    pub syms: u64,
    /// `kprobe_multi.addrs`: `cnt` addresses, or NULL.
    pub addrs: u64,
    /// `kprobe_multi.cookies`: `cnt` cookies, or NULL.
    pub cookies: u64,
}
const _: () = assert!(size_of::<LinkCreateKprobeMultiAttr>() == size_of::<LinkCreateAttr>());
const _: () = assert!(offset_of!(LinkCreateKprobeMultiAttr, kprobe_flags) == 16);
const _: () = assert!(offset_of!(LinkCreateKprobeMultiAttr, syms) == 24);
const _: () = assert!(offset_of!(LinkCreateKprobeMultiAttr, cookies) == 40);

/// `BPF_LINK_UPDATE`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkUpdateAttr {
    /// Link fd.
    pub link_fd: u32,
    /// New program fd.
    pub new_prog_fd: u32,
    /// `BPF_F_REPLACE`.
    pub flags: u32,
    /// Expected current program (with `BPF_F_REPLACE`).
    pub old_prog_fd: u32,
}
const _: () = assert!(size_of::<LinkUpdateAttr>() == 16);

/// `BPF_LINK_DETACH`, `BPF_ENABLE_STATS`: one `u32` (`link_fd`, `type`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct OneAttr {
    /// `link_detach.link_fd` or `enable_stats.type`.
    pub value: u32,
}
const _: () = assert!(size_of::<OneAttr>() == 4);

/// `struct bpf_prog_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BpfProgInfo {
    /// Program type.
    pub type_: u32,
    /// Id.
    pub id: u32,
    /// Tag (hash of the instructions).
    pub tag: [u8; 8],
    /// JITed image length.
    pub jited_prog_len: u32,
    /// Translated instructions length.
    pub xlated_prog_len: u32,
    /// JITed image pointer.
    pub jited_prog_insns: u64,
    /// Translated instructions pointer.
    pub xlated_prog_insns: u64,
    /// Load time, ns since boot.
    pub load_time: u64,
    /// Loader's uid.
    pub created_by_uid: u32,
    /// Number of maps used.
    pub nr_map_ids: u32,
    /// Map id array pointer.
    pub map_ids: u64,
    /// Name.
    pub name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// Bit 0: `gpl_compatible`.
    pub gpl_compatible: u32,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    /// Number of JITed symbols.
    pub nr_jited_ksyms: u32,
    /// Number of JITed function lengths.
    pub nr_jited_func_lens: u32,
    /// JITed symbols pointer.
    pub jited_ksyms: u64,
    /// JITed function lengths pointer.
    pub jited_func_lens: u64,
    /// Program BTF id.
    pub btf_id: u32,
    /// func_info record size.
    pub func_info_rec_size: u32,
    /// func_info pointer.
    pub func_info: u64,
    /// func_info count.
    pub nr_func_info: u32,
    /// line_info count.
    pub nr_line_info: u32,
    /// line_info pointer.
    pub line_info: u64,
    /// JITed line_info pointer.
    pub jited_line_info: u64,
    /// JITed line_info count.
    pub nr_jited_line_info: u32,
    /// line_info record size.
    pub line_info_rec_size: u32,
    /// JITed line_info record size.
    pub jited_line_info_rec_size: u32,
    /// Number of tags (subprograms).
    pub nr_prog_tags: u32,
    /// Tags pointer.
    pub prog_tags: u64,
    /// Run time, ns (with `BPF_ENABLE_STATS`).
    pub run_time_ns: u64,
    /// Run count (with `BPF_ENABLE_STATS`).
    pub run_cnt: u64,
    /// Runs skipped by recursion protection.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// Attach target's BTF object id.
    pub attach_btf_obj_id: u32,
    /// Attach target's BTF type id.
    pub attach_btf_id: u32,
    /// Padding.
    pub pad: u32,
}
const _: () = assert!(size_of::<BpfProgInfo>() == 232);
const _: () = assert!(offset_of!(BpfProgInfo, tag) == 8);
const _: () = assert!(offset_of!(BpfProgInfo, load_time) == 40);
const _: () = assert!(offset_of!(BpfProgInfo, nr_map_ids) == 52);
const _: () = assert!(offset_of!(BpfProgInfo, name) == 64);
const _: () = assert!(offset_of!(BpfProgInfo, gpl_compatible) == 84);
const _: () = assert!(offset_of!(BpfProgInfo, netns_dev) == 88);
const _: () = assert!(offset_of!(BpfProgInfo, nr_jited_ksyms) == 104);
const _: () = assert!(offset_of!(BpfProgInfo, btf_id) == 128);
const _: () = assert!(offset_of!(BpfProgInfo, nr_func_info) == 144);
const _: () = assert!(offset_of!(BpfProgInfo, nr_jited_line_info) == 168);
const _: () = assert!(offset_of!(BpfProgInfo, nr_prog_tags) == 180);
const _: () = assert!(offset_of!(BpfProgInfo, run_time_ns) == 192);
const _: () = assert!(offset_of!(BpfProgInfo, recursion_misses) == 208);
const _: () = assert!(offset_of!(BpfProgInfo, verified_insns) == 216);
const _: () = assert!(offset_of!(BpfProgInfo, attach_btf_id) == 224);

/// `struct bpf_map_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BpfMapInfo {
    /// Map type.
    pub type_: u32,
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
    /// Name.
    pub name: [u8; OBJ_NAME_LEN],
    /// Offload device.
    pub ifindex: u32,
    /// Kernel struct type id (struct_ops).
    pub btf_vmlinux_value_type_id: u32,
    /// Offload netns device.
    pub netns_dev: u64,
    /// Offload netns inode.
    pub netns_ino: u64,
    /// Map BTF id.
    pub btf_id: u32,
    /// Key type id.
    pub btf_key_type_id: u32,
    /// Value type id.
    pub btf_value_type_id: u32,
    /// Padding.
    pub pad: u32,
    /// `map_extra`.
    pub map_extra: u64,
}
const _: () = assert!(size_of::<BpfMapInfo>() == 88);
const _: () = assert!(offset_of!(BpfMapInfo, name) == 24);
const _: () = assert!(offset_of!(BpfMapInfo, ifindex) == 40);
const _: () = assert!(offset_of!(BpfMapInfo, netns_dev) == 48);
const _: () = assert!(offset_of!(BpfMapInfo, btf_id) == 64);
const _: () = assert!(offset_of!(BpfMapInfo, btf_value_type_id) == 72);
const _: () = assert!(offset_of!(BpfMapInfo, map_extra) == 80);

/// `struct bpf_btf_info`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BpfBtfInfo {
    /// Raw BTF buffer pointer.
    pub btf: u64,
    /// In: room in `btf`; out: size of the BTF.
    pub btf_size: u32,
    /// Id.
    pub id: u32,
    /// Name buffer pointer.
    pub name: u64,
    /// In: room in `name`; out: length of the name (without NUL).
    pub name_len: u32,
    /// Whether this is kernel (vmlinux or module) BTF.
    pub kernel_btf: u32,
}
const _: () = assert!(size_of::<BpfBtfInfo>() == 32);
const _: () = assert!(offset_of!(BpfBtfInfo, btf_size) == 8);
const _: () = assert!(offset_of!(BpfBtfInfo, id) == 12);
const _: () = assert!(offset_of!(BpfBtfInfo, name) == 16);
const _: () = assert!(offset_of!(BpfBtfInfo, name_len) == 24);
const _: () = assert!(offset_of!(BpfBtfInfo, kernel_btf) == 28);

/// `struct bpf_link_info`, as of the 6.1 header: three ids and a 32-byte
/// union whose meaning depends on the link type.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BpfLinkInfo {
    /// `enum bpf_link_type`.
    pub type_: u32,
    /// Id.
    pub id: u32,
    /// Attached program id.
    pub prog_id: u32,
    /// Padding.
    pub pad: u32,
    /// Per-type union: `raw_tracepoint {tp_name, tp_name_len}`,
    /// `tracing {attach_type, target_obj_id, target_btf_id}`,
    /// `cgroup {cgroup_id, attach_type}`, `iter`, `netns`, `xdp`.
    pub data: [u64; 4],
}
const _: () = assert!(size_of::<BpfLinkInfo>() == 48);
const _: () = assert!(offset_of!(BpfLinkInfo, data) == 16);
