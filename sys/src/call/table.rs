//! The command list and the layout table: for each attr layout its size
//! and pointer fields (offset, whether the kernel writes through it, and
//! what bounds the access), from `uapi/linux/bpf.h` and the kernel code
//! that dereferences them. `Attr` trusts this table; keep it in step with
//! the layouts in `attr.rs` (the const block below checks the shapes).

use core::mem::{offset_of, size_of};

use crate::attr::*;

/// bpf(2) commands (`enum bpf_cmd`), the one list ember uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Cmd {
    /// `BPF_MAP_CREATE`.
    MapCreate = 0,
    /// `BPF_MAP_LOOKUP_ELEM`.
    MapLookupElem = 1,
    /// `BPF_MAP_UPDATE_ELEM`.
    MapUpdateElem = 2,
    /// `BPF_MAP_DELETE_ELEM`.
    MapDeleteElem = 3,
    /// `BPF_MAP_GET_NEXT_KEY`.
    MapGetNextKey = 4,
    /// `BPF_PROG_LOAD`.
    ProgLoad = 5,
    /// `BPF_OBJ_PIN`.
    ObjPin = 6,
    /// `BPF_OBJ_GET`.
    ObjGet = 7,
    /// `BPF_PROG_ATTACH`.
    ProgAttach = 8,
    /// `BPF_PROG_DETACH`.
    ProgDetach = 9,
    /// `BPF_PROG_TEST_RUN`.
    ProgTestRun = 10,
    /// `BPF_PROG_GET_NEXT_ID`.
    ProgGetNextId = 11,
    /// `BPF_MAP_GET_NEXT_ID`.
    MapGetNextId = 12,
    /// `BPF_PROG_GET_FD_BY_ID`.
    ProgGetFdById = 13,
    /// `BPF_MAP_GET_FD_BY_ID`.
    MapGetFdById = 14,
    /// `BPF_OBJ_GET_INFO_BY_FD`.
    ObjGetInfoByFd = 15,
    /// `BPF_PROG_QUERY`.
    ProgQuery = 16,
    /// `BPF_RAW_TRACEPOINT_OPEN`.
    RawTracepointOpen = 17,
    /// `BPF_BTF_LOAD`.
    BtfLoad = 18,
    /// `BPF_BTF_GET_FD_BY_ID`.
    BtfGetFdById = 19,
    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`.
    MapLookupAndDeleteElem = 21,
    /// `BPF_MAP_FREEZE`.
    MapFreeze = 22,
    /// `BPF_BTF_GET_NEXT_ID`.
    BtfGetNextId = 23,
    /// `BPF_MAP_LOOKUP_BATCH`.
    MapLookupBatch = 24,
    /// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`.
    MapLookupAndDeleteBatch = 25,
    /// `BPF_MAP_UPDATE_BATCH`.
    MapUpdateBatch = 26,
    /// `BPF_MAP_DELETE_BATCH`.
    MapDeleteBatch = 27,
    /// `BPF_LINK_CREATE`.
    LinkCreate = 28,
    /// `BPF_LINK_UPDATE`.
    LinkUpdate = 29,
    /// `BPF_LINK_GET_FD_BY_ID`.
    LinkGetFdById = 30,
    /// `BPF_LINK_GET_NEXT_ID`.
    LinkGetNextId = 31,
    /// `BPF_ENABLE_STATS`.
    EnableStats = 32,
    /// `BPF_ITER_CREATE`.
    IterCreate = 33,
    /// `BPF_LINK_DETACH`.
    LinkDetach = 34,
}

impl Cmd {
    /// The uapi name (`BPF_MAP_CREATE`, ...), as errors report it.
    pub const fn name(self) -> &'static str {
        match self {
            Cmd::MapCreate => "BPF_MAP_CREATE",
            Cmd::MapLookupElem => "BPF_MAP_LOOKUP_ELEM",
            Cmd::MapUpdateElem => "BPF_MAP_UPDATE_ELEM",
            Cmd::MapDeleteElem => "BPF_MAP_DELETE_ELEM",
            Cmd::MapGetNextKey => "BPF_MAP_GET_NEXT_KEY",
            Cmd::ProgLoad => "BPF_PROG_LOAD",
            Cmd::ObjPin => "BPF_OBJ_PIN",
            Cmd::ObjGet => "BPF_OBJ_GET",
            Cmd::ProgAttach => "BPF_PROG_ATTACH",
            Cmd::ProgDetach => "BPF_PROG_DETACH",
            Cmd::ProgTestRun => "BPF_PROG_TEST_RUN",
            Cmd::ProgGetNextId => "BPF_PROG_GET_NEXT_ID",
            Cmd::MapGetNextId => "BPF_MAP_GET_NEXT_ID",
            Cmd::ProgGetFdById => "BPF_PROG_GET_FD_BY_ID",
            Cmd::MapGetFdById => "BPF_MAP_GET_FD_BY_ID",
            Cmd::ObjGetInfoByFd => "BPF_OBJ_GET_INFO_BY_FD",
            Cmd::ProgQuery => "BPF_PROG_QUERY",
            Cmd::RawTracepointOpen => "BPF_RAW_TRACEPOINT_OPEN",
            Cmd::BtfLoad => "BPF_BTF_LOAD",
            Cmd::BtfGetFdById => "BPF_BTF_GET_FD_BY_ID",
            Cmd::MapLookupAndDeleteElem => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
            Cmd::MapFreeze => "BPF_MAP_FREEZE",
            Cmd::BtfGetNextId => "BPF_BTF_GET_NEXT_ID",
            Cmd::MapLookupBatch => "BPF_MAP_LOOKUP_BATCH",
            Cmd::MapLookupAndDeleteBatch => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
            Cmd::MapUpdateBatch => "BPF_MAP_UPDATE_BATCH",
            Cmd::MapDeleteBatch => "BPF_MAP_DELETE_BATCH",
            Cmd::LinkCreate => "BPF_LINK_CREATE",
            Cmd::LinkUpdate => "BPF_LINK_UPDATE",
            Cmd::LinkGetFdById => "BPF_LINK_GET_FD_BY_ID",
            Cmd::LinkGetNextId => "BPF_LINK_GET_NEXT_ID",
            Cmd::EnableStats => "BPF_ENABLE_STATS",
            Cmd::IterCreate => "BPF_ITER_CREATE",
            Cmd::LinkDetach => "BPF_LINK_DETACH",
        }
    }

    /// The attr layout the kernel reads for this command.
    pub(crate) const fn layout(self) -> Layout {
        match self {
            Cmd::MapCreate => Layout::MapCreate,
            Cmd::MapLookupElem
            | Cmd::MapUpdateElem
            | Cmd::MapDeleteElem
            | Cmd::MapGetNextKey
            | Cmd::MapLookupAndDeleteElem
            | Cmd::MapFreeze => Layout::MapElem,
            Cmd::ProgLoad => Layout::ProgLoad,
            Cmd::ObjPin | Cmd::ObjGet => Layout::Obj,
            Cmd::ProgAttach | Cmd::ProgDetach => Layout::ProgAttach,
            Cmd::ProgTestRun => Layout::TestRun,
            Cmd::ProgGetNextId
            | Cmd::MapGetNextId
            | Cmd::ProgGetFdById
            | Cmd::MapGetFdById
            | Cmd::BtfGetFdById
            | Cmd::BtfGetNextId
            | Cmd::LinkGetFdById
            | Cmd::LinkGetNextId => Layout::GetId,
            Cmd::ObjGetInfoByFd => Layout::Info,
            Cmd::ProgQuery => Layout::Query,
            Cmd::RawTracepointOpen => Layout::RawTracepoint,
            Cmd::BtfLoad => Layout::BtfLoad,
            Cmd::MapLookupBatch
            | Cmd::MapLookupAndDeleteBatch
            | Cmd::MapUpdateBatch
            | Cmd::MapDeleteBatch => Layout::Batch,
            Cmd::LinkCreate => Layout::LinkCreate,
            Cmd::LinkUpdate => Layout::LinkUpdate,
            Cmd::EnableStats | Cmd::LinkDetach | Cmd::IterCreate => Layout::One,
        }
    }

    /// Whether a successful call returns a new fd.
    pub(crate) const fn returns_fd(self) -> bool {
        matches!(
            self,
            Cmd::MapCreate
                | Cmd::ProgLoad
                | Cmd::ObjGet
                | Cmd::ProgGetFdById
                | Cmd::MapGetFdById
                | Cmd::RawTracepointOpen
                | Cmd::BtfLoad
                | Cmd::BtfGetFdById
                | Cmd::LinkCreate
                | Cmd::LinkGetFdById
                | Cmd::EnableStats
                | Cmd::IterCreate
        )
    }
}

/// The byte layouts an [`Attr`] can have: one per `bpf_attr` member ember
/// uses, plus the `bpf_*_info` structs `BPF_OBJ_GET_INFO_BY_FD` fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    MapCreate,
    MapElem,
    ProgLoad,
    Obj,
    ProgAttach,
    TestRun,
    GetId,
    Info,
    Query,
    RawTracepoint,
    BtfLoad,
    Batch,
    LinkCreate,
    /// `BPF_LINK_CREATE` for an iterator: the union holds `iter_info`.
    LinkCreateIter,
    /// `BPF_LINK_CREATE` for `BPF_TRACE_UPROBE_MULTI`: the union holds
    /// `uprobe_multi` (64 bytes in all).
    LinkCreateUprobeMulti,
    /// `BPF_LINK_CREATE` for `BPF_TRACE_KPROBE_MULTI` / `_SESSION`: the
    /// union holds `kprobe_multi`.
    LinkCreateKprobeMulti,
    LinkUpdate,
    One,
    ProgInfo,
    MapInfo,
    BtfInfo,
    LinkInfo,
}

/// Who bounds a pointer field: `len_off` (a `u32` field) times `unit`
/// bytes, or the object behind an fd (map key and value sizes, which
/// `MapFd` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bound {
    /// The `u32` at this offset, times this many bytes.
    Field(usize, usize),
    /// The product of the `u32`s at these offsets (count, record size).
    Product(usize, usize),
    /// Sizes the kernel takes from the object (map key/value), or a
    /// NUL-terminated string (read only).
    Object,
    /// The `u32` at this offset counts pointers to NUL-terminated strings
    /// (read only); only an array built by `Attr::put_cstrs` goes there.
    Strings(usize),
}

/// One pointer field of a layout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PtrField {
    /// Offset of the `__aligned_u64`.
    pub(crate) off: usize,
    /// Whether the kernel writes through it.
    pub(crate) write: bool,
    /// What bounds the access.
    pub(crate) bound: Bound,
}

const fn r(off: usize, bound: Bound) -> PtrField {
    PtrField {
        off,
        write: false,
        bound,
    }
}

const fn w(off: usize, bound: Bound) -> PtrField {
    PtrField {
        off,
        write: true,
        bound,
    }
}

/// A `u32` length field counting bytes.
const fn bytes(len_off: usize) -> Bound {
    Bound::Field(len_off, 1)
}

impl Layout {
    /// Bytes the kernel reads.
    pub(crate) const fn size(self) -> usize {
        match self {
            Layout::MapCreate => size_of::<MapCreateAttr>(),
            Layout::MapElem => size_of::<MapElemAttr>(),
            Layout::ProgLoad => size_of::<ProgLoadAttr>(),
            Layout::Obj => size_of::<ObjAttr>(),
            Layout::ProgAttach => size_of::<ProgAttachAttr>(),
            Layout::TestRun => size_of::<TestRunAttr>(),
            Layout::GetId => size_of::<GetIdAttr>(),
            Layout::Info => size_of::<InfoAttr>(),
            Layout::Query => size_of::<QueryAttr>(),
            Layout::RawTracepoint => size_of::<RawTracepointAttr>(),
            Layout::BtfLoad => size_of::<BtfLoadAttr>(),
            Layout::Batch => size_of::<BatchAttr>(),
            Layout::LinkCreate | Layout::LinkCreateIter => size_of::<LinkCreateAttr>(),
            Layout::LinkCreateUprobeMulti => size_of::<LinkCreateUprobeMultiAttr>(),
            Layout::LinkCreateKprobeMulti => size_of::<LinkCreateKprobeMultiAttr>(),
            Layout::LinkUpdate => size_of::<LinkUpdateAttr>(),
            Layout::One => size_of::<OneAttr>(),
            Layout::ProgInfo => size_of::<BpfProgInfo>(),
            Layout::MapInfo => size_of::<BpfMapInfo>(),
            Layout::BtfInfo => size_of::<BpfBtfInfo>(),
            Layout::LinkInfo => size_of::<BpfLinkInfo>(),
        }
    }

    /// The pointer fields ember sets, from `uapi/linux/bpf.h` and the
    /// kernel code that dereferences them. Every other offset is an
    /// integer. Pointer fields of the info structs that ember never sets
    /// (`jited_prog_insns`, `map_ids`, ...) are listed too, so no integer
    /// lands on them and they stay NULL; `BPF_LINK_CREATE`'s union is used
    /// only for integers (`target_btf_id`, cookies).
    pub(crate) const fn ptrs(self) -> &'static [PtrField] {
        type P = ProgLoadAttr;
        type T = TestRunAttr;
        type Q = QueryAttr;
        match self {
            // Per command: see `Cmd::ptrs`.
            Layout::MapElem => {
                const F: &[PtrField] = &[r(offset_of!(MapElemAttr, key), Bound::Object)];
                F
            }
            Layout::ProgLoad => {
                const F: &[PtrField] = &[
                    r(
                        offset_of!(P, insns),
                        Bound::Field(offset_of!(P, insn_cnt), 8),
                    ),
                    r(offset_of!(P, license), Bound::Object),
                    w(offset_of!(P, log_buf), bytes(offset_of!(P, log_size))),
                    r(
                        offset_of!(P, func_info),
                        Bound::Product(
                            offset_of!(P, func_info_cnt),
                            offset_of!(P, func_info_rec_size),
                        ),
                    ),
                    r(
                        offset_of!(P, line_info),
                        Bound::Product(
                            offset_of!(P, line_info_cnt),
                            offset_of!(P, line_info_rec_size),
                        ),
                    ),
                    // Indexed by instruction offsets; read only.
                    r(offset_of!(P, fd_array), Bound::Object),
                ];
                F
            }
            Layout::Obj => {
                const F: &[PtrField] = &[r(offset_of!(ObjAttr, pathname), Bound::Object)];
                F
            }
            Layout::TestRun => {
                const F: &[PtrField] = &[
                    r(offset_of!(T, data_in), bytes(offset_of!(T, data_size_in))),
                    w(offset_of!(T, data_out), bytes(offset_of!(T, data_size_out))),
                    // BPF_PROG_TYPE_SYSCALL copies the context back into
                    // ctx_in (bpf_prog_test_run_syscall).
                    w(offset_of!(T, ctx_in), bytes(offset_of!(T, ctx_size_in))),
                    w(offset_of!(T, ctx_out), bytes(offset_of!(T, ctx_size_out))),
                ];
                F
            }
            Layout::Info => {
                const F: &[PtrField] = &[w(
                    offset_of!(InfoAttr, info),
                    bytes(offset_of!(InfoAttr, info_len)),
                )];
                F
            }
            Layout::Query => {
                const F: &[PtrField] = &[
                    w(
                        offset_of!(Q, prog_ids),
                        Bound::Field(offset_of!(Q, prog_cnt), 4),
                    ),
                    w(
                        offset_of!(Q, prog_attach_flags),
                        Bound::Field(offset_of!(Q, prog_cnt), 4),
                    ),
                    w(
                        offset_of!(Q, link_ids),
                        Bound::Field(offset_of!(Q, prog_cnt), 4),
                    ),
                    w(
                        offset_of!(Q, link_attach_flags),
                        Bound::Field(offset_of!(Q, prog_cnt), 4),
                    ),
                ];
                F
            }
            Layout::LinkCreateIter => {
                // `iter_info` at the union's start, `iter_info_len` after.
                const F: &[PtrField] = &[r(
                    offset_of!(LinkCreateAttr, target_btf_id),
                    bytes(offset_of!(LinkCreateAttr, cookie)),
                )];
                F
            }
            Layout::LinkCreateUprobeMulti => {
                type U = LinkCreateUprobeMultiAttr;
                // Each array holds `cnt` u64s (kernel
                // `bpf_uprobe_multi_link_attach`); the path is a string.
                const CNT: Bound = Bound::Field(offset_of!(U, cnt), 8);
                const F: &[PtrField] = &[
                    r(offset_of!(U, path), Bound::Object),
                    r(offset_of!(U, offsets), CNT),
                    r(offset_of!(U, ref_ctr_offsets), CNT),
                    r(offset_of!(U, cookies), CNT),
                ];
                F
            }
            Layout::LinkCreateKprobeMulti => {
                type K = LinkCreateKprobeMultiAttr;
                // Each array holds `cnt` u64s (kernel
                // `bpf_kprobe_multi_link_attach`); `syms` holds addresses of
                // NUL-terminated names, which only `Attr::put_cstrs` builds.
                const CNT: Bound = Bound::Field(offset_of!(K, cnt), 8);
                const F: &[PtrField] = &[
                    r(offset_of!(K, syms), Bound::Strings(offset_of!(K, cnt))),
                    r(offset_of!(K, addrs), CNT),
                    r(offset_of!(K, cookies), CNT),
                ];
                F
            }
            Layout::RawTracepoint => {
                const F: &[PtrField] = &[r(offset_of!(RawTracepointAttr, name), Bound::Object)];
                F
            }
            Layout::BtfLoad => {
                const F: &[PtrField] = &[
                    r(
                        offset_of!(BtfLoadAttr, btf),
                        bytes(offset_of!(BtfLoadAttr, btf_size)),
                    ),
                    w(
                        offset_of!(BtfLoadAttr, btf_log_buf),
                        bytes(offset_of!(BtfLoadAttr, btf_log_size)),
                    ),
                ];
                F
            }
            // Per command: see `Cmd::ptrs`.
            Layout::Batch => {
                const F: &[PtrField] = &[];
                F
            }
            Layout::BtfInfo => {
                const F: &[PtrField] = &[
                    w(
                        offset_of!(BpfBtfInfo, btf),
                        bytes(offset_of!(BpfBtfInfo, btf_size)),
                    ),
                    w(
                        offset_of!(BpfBtfInfo, name),
                        bytes(offset_of!(BpfBtfInfo, name_len)),
                    ),
                ];
                F
            }
            // Pointers ember leaves NULL, listed so that no integer can
            // be written where the kernel would write through it.
            Layout::ProgInfo => {
                type I = BpfProgInfo;
                const F: &[PtrField] = &[
                    w(
                        offset_of!(I, jited_prog_insns),
                        bytes(offset_of!(I, jited_prog_len)),
                    ),
                    w(
                        offset_of!(I, xlated_prog_insns),
                        bytes(offset_of!(I, xlated_prog_len)),
                    ),
                    w(
                        offset_of!(I, map_ids),
                        Bound::Field(offset_of!(I, nr_map_ids), 4),
                    ),
                    w(
                        offset_of!(I, jited_ksyms),
                        Bound::Field(offset_of!(I, nr_jited_ksyms), 8),
                    ),
                    w(
                        offset_of!(I, jited_func_lens),
                        Bound::Field(offset_of!(I, nr_jited_func_lens), 4),
                    ),
                    w(
                        offset_of!(I, func_info),
                        Bound::Product(
                            offset_of!(I, nr_func_info),
                            offset_of!(I, func_info_rec_size),
                        ),
                    ),
                    w(
                        offset_of!(I, line_info),
                        Bound::Product(
                            offset_of!(I, nr_line_info),
                            offset_of!(I, line_info_rec_size),
                        ),
                    ),
                    w(
                        offset_of!(I, jited_line_info),
                        Bound::Product(
                            offset_of!(I, nr_jited_line_info),
                            offset_of!(I, jited_line_info_rec_size),
                        ),
                    ),
                    w(
                        offset_of!(I, prog_tags),
                        Bound::Field(offset_of!(I, nr_prog_tags), 8),
                    ),
                ];
                F
            }
            Layout::MapCreate
            | Layout::ProgAttach
            | Layout::GetId
            | Layout::LinkCreate
            | Layout::LinkUpdate
            | Layout::One
            | Layout::MapInfo
            // The per-type union opens with `raw_tracepoint.tp_name`, a
            // pointer, where other link types have integers the kernel
            // writes: ember sends the whole struct zeroed.
            | Layout::LinkInfo => {
                const F: &[PtrField] = &[];
                F
            }
        }
    }
}

impl Cmd {
    /// The pointer fields of this command's attr: the layout's, except
    /// where the same layout is read by one command and written by
    /// another (map elements and batches).
    pub(crate) const fn ptrs(self) -> &'static [PtrField] {
        type E = MapElemAttr;
        type B = BatchAttr;
        const KEY: PtrField = r(offset_of!(E, key), Bound::Object);
        match self {
            // Lookups write the value; next-key writes the next key.
            Cmd::MapLookupElem | Cmd::MapLookupAndDeleteElem | Cmd::MapGetNextKey => {
                const F: &[PtrField] = &[KEY, w(offset_of!(E, value), Bound::Object)];
                F
            }
            Cmd::MapUpdateElem => {
                const F: &[PtrField] = &[KEY, r(offset_of!(E, value), Bound::Object)];
                F
            }
            Cmd::MapDeleteElem => {
                const F: &[PtrField] = &[KEY];
                F
            }
            Cmd::MapFreeze => {
                const F: &[PtrField] = &[];
                F
            }
            Cmd::MapLookupBatch | Cmd::MapLookupAndDeleteBatch => {
                const F: &[PtrField] = &[
                    r(offset_of!(B, in_batch), Bound::Object),
                    w(offset_of!(B, out_batch), Bound::Object),
                    w(offset_of!(B, keys), Bound::Object),
                    w(offset_of!(B, values), Bound::Object),
                ];
                F
            }
            Cmd::MapUpdateBatch => {
                const F: &[PtrField] = &[
                    r(offset_of!(B, keys), Bound::Object),
                    r(offset_of!(B, values), Bound::Object),
                ];
                F
            }
            Cmd::MapDeleteBatch => {
                const F: &[PtrField] = &[r(offset_of!(B, keys), Bound::Object)];
                F
            }
            _ => self.layout().ptrs(),
        }
    }
}

/// The pointer field at `off` of `ptrs`.
pub(crate) fn ptr_at(ptrs: &[PtrField], off: usize) -> Option<PtrField> {
    ptrs.iter().copied().find(|p| p.off == off)
}

/// Whether `off..off + len` overlaps a pointer field of `ptrs`.
pub(crate) fn hits_ptr(ptrs: &[PtrField], off: usize, len: usize) -> bool {
    let end = off.saturating_add(len);
    ptrs.iter()
        .any(|p| off < p.off.saturating_add(8) && p.off < end)
}

/// The largest layout (`struct bpf_prog_info`).
pub(crate) const MAX: usize = size_of::<BpfProgInfo>();
/// Most pointer fields any layout has.
pub(crate) const MAX_PTRS: usize = 9;

const _: () = {
    let all = [
        Layout::MapCreate,
        Layout::MapElem,
        Layout::ProgLoad,
        Layout::Obj,
        Layout::ProgAttach,
        Layout::TestRun,
        Layout::GetId,
        Layout::Info,
        Layout::Query,
        Layout::RawTracepoint,
        Layout::BtfLoad,
        Layout::Batch,
        Layout::LinkCreate,
        Layout::LinkCreateIter,
        Layout::LinkCreateUprobeMulti,
        Layout::LinkCreateKprobeMulti,
        Layout::LinkUpdate,
        Layout::One,
        Layout::ProgInfo,
        Layout::MapInfo,
        Layout::BtfInfo,
        Layout::LinkInfo,
    ];
    let mut i = 0;
    while i < all.len() {
        assert!(all[i].size() <= MAX);
        let p = all[i].ptrs();
        assert!(p.len() <= MAX_PTRS);
        let mut j = 0;
        while j < p.len() {
            // Every pointer is an aligned u64 inside the layout.
            assert!(p[j].off.is_multiple_of(8) && p[j].off + 8 <= all[i].size());
            j += 1;
        }
        i += 1;
    }
};
