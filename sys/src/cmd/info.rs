//! `BPF_OBJ_GET_INFO_BY_FD`: what the kernel reports about programs, maps,
//! BTF objects and links.
//!
//! The kernel picks the info struct's layout from the fd, not from us, so
//! pointer fields are only ever set for an fd known to be BTF
//! ([`btf_info_full`], through a `BtfObjFd` only `BPF_BTF_GET_FD_BY_ID`
//! makes); every other info struct goes out all zero, so whatever layout
//! the kernel reads it as, every pointer in it is NULL and the kernel
//! writes only the `info_len` bytes of the struct itself.

use alloc::vec::Vec;
use core::mem::{offset_of, size_of};

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::{bpf, c_name, errno, inval, len_out};
use crate::attr::{BpfBtfInfo, BpfLinkInfo, BpfMapInfo, BpfProgInfo, InfoAttr, OBJ_NAME_LEN};
use crate::call::{Attr, Cmd, Layout, get_bytes, get32, get64};
use crate::cmd::link::{
    LINK_TYPE_CGROUP, LINK_TYPE_NETNS, LINK_TYPE_RAW_TRACEPOINT, LINK_TYPE_TRACING,
};
use crate::cmd::obj::get_fd_by_id;
use crate::error::Result;
use crate::id::{BtfId, LinkId, MapId, ProgId};

const INFO: &str = Cmd::ObjGetInfoByFd.name();

/// Longest BTF object name [`btf_info_full`] returns (module names are
/// shorter: `MODULE_NAME_LEN` is 56).
pub const BTF_NAME_MAX: usize = 64;

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`; returns the bytes the kernel
/// wrote (zero-padded to `N`).
fn obj_info<'a, const N: usize>(fd: BorrowedFd<'a>, info: &'a mut Attr<'a>) -> Result<[u8; N]> {
    let mut a = Attr::new(Cmd::ObjGetInfoByFd);
    a.put_fd(offset_of!(InfoAttr, bpf_fd), fd);
    a.put_u32(offset_of!(InfoAttr, info_len), len_out(info.bytes().len()));
    a.put_nested(offset_of!(InfoAttr, info), info);
    bpf(&mut a)?;
    let out = a.nested(offset_of!(InfoAttr, info)).ok_or(inval(INFO))?;
    Ok(get_bytes(out.bytes(), 0))
}

/// `BPF_OBJ_GET_INFO_BY_FD` with `map_ids`—The ids of the maps program
/// `fd` uses, into `out` (as many as fit); returns how many it uses
/// (`nr_map_ids`), which may exceed `out.len()`.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_prog_get_info_by_fd`).
pub fn prog_map_ids(fd: BorrowedFd<'_>, out: &mut [MapId]) -> Result<u32> {
    type P = BpfProgInfo;
    let mut ids = alloc::vec![0u32; out.len()];
    let n = {
        let mut info = Attr::info(Layout::ProgInfo);
        info.put_u32(offset_of!(P, nr_map_ids), len_out(ids.len()));
        info.put_mut_slice(offset_of!(P, map_ids), &mut ids[..]);
        let b: [u8; size_of::<P>()] = obj_info(fd, &mut info)?;
        get32(&b, offset_of!(P, nr_map_ids))
    };
    for (o, i) in out.iter_mut().zip(ids) {
        *o = MapId(i);
    }
    Ok(n)
}

/// `BPF_OBJ_GET_INFO_BY_FD` with an info struct of `layout` whose
/// pointers are all NULL.
fn plain_info<const N: usize>(fd: BorrowedFd<'_>, layout: Layout) -> Result<[u8; N]> {
    let mut info = Attr::info(layout);
    obj_info(fd, &mut info)
}

/// What the kernel reports about a program (`struct bpf_prog_info`,
/// without the arrays).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgInfo {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// Id.
    pub id: ProgId,
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
    pub btf_id: BtfId,
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
    /// Run time, ns (counted while [`enable_stats`](super::enable_stats) is on).
    pub run_time_ns: u64,
    /// Runs (counted while [`enable_stats`](super::enable_stats) is on).
    pub run_cnt: u64,
    /// Runs skipped by recursion protection.
    pub recursion_misses: u64,
    /// Instructions the verifier processed.
    pub verified_insns: u32,
    /// Attach target's BTF object id.
    pub attach_btf_obj_id: BtfId,
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
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_obj_get_info_by_fd`).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<ProgInfo> {
    let b: [u8; size_of::<BpfProgInfo>()] = plain_info(fd, Layout::ProgInfo)?;
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
        id: ProgId(u32_!(id)),
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
        btf_id: BtfId(u32_!(btf_id)),
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
        attach_btf_obj_id: BtfId(u32_!(attach_btf_obj_id)),
        attach_btf_id: u32_!(attach_btf_id),
    })
}

/// What the kernel reports about a map (`struct bpf_map_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapInfo {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Id.
    pub id: MapId,
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
    pub btf_id: BtfId,
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
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_obj_get_info_by_fd`).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn map_info(fd: BorrowedFd<'_>) -> Result<MapInfo> {
    let b: [u8; size_of::<BpfMapInfo>()] = plain_info(fd, Layout::MapInfo)?;
    macro_rules! u32_ {
        ($f:ident) => {
            get32(&b, offset_of!(BpfMapInfo, $f))
        };
    }
    Ok(MapInfo {
        map_type: u32_!(type_),
        id: MapId(u32_!(id)),
        key_size: u32_!(key_size),
        value_size: u32_!(value_size),
        max_entries: u32_!(max_entries),
        map_flags: u32_!(map_flags),
        name: get_bytes(&b, offset_of!(BpfMapInfo, name)),
        ifindex: u32_!(ifindex),
        btf_vmlinux_value_type_id: u32_!(btf_vmlinux_value_type_id),
        netns_dev: get64(&b, offset_of!(BpfMapInfo, netns_dev)),
        netns_ino: get64(&b, offset_of!(BpfMapInfo, netns_ino)),
        btf_id: BtfId(u32_!(btf_id)),
        btf_key_type_id: u32_!(btf_key_type_id),
        btf_value_type_id: u32_!(btf_value_type_id),
        map_extra: get64(&b, offset_of!(BpfMapInfo, map_extra)),
    })
}

/// What the kernel reports about a BTF object (`struct bpf_btf_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfInfo {
    /// Id.
    pub id: BtfId,
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
        id: BtfId(get32(b, offset_of!(BpfBtfInfo, id))),
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
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_obj_get_info_by_fd`).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info(fd: BorrowedFd<'_>) -> Result<BtfInfo> {
    let b: [u8; size_of::<BpfBtfInfo>()] = plain_info(fd, Layout::BtfInfo)?;
    Ok(decode_btf_info(&b, [0; BTF_NAME_MAX]))
}

/// An fd that `BPF_BTF_GET_FD_BY_ID` returned, so certainly a BTF object:
/// the only fd an info struct with pointers is sent for.
struct BtfObjFd(OwnedFd);

impl BtfObjFd {
    fn open(id: BtfId) -> Result<BtfObjFd> {
        get_fd_by_id(id, 0).map(BtfObjFd)
    }
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
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_obj_get_info_by_fd`).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn btf_info_full(fd: BorrowedFd<'_>, data: Option<&mut Vec<u8>>) -> Result<BtfInfo> {
    type B = BpfBtfInfo;
    let first = btf_info(fd)?;
    let own = match BtfObjFd::open(first.id) {
        Err(e) if e.errno == Errno::NOENT => return Err(inval(INFO)),
        r => r?,
    };
    if btf_info(own.0.as_fd())? != first {
        return Err(inval(INFO));
    }
    let mut name = [0u8; BTF_NAME_MAX];
    let mut data = data;
    if let Some(v) = data.as_deref_mut() {
        let size = usize::try_from(first.btf_size).map_err(|_| errno(INFO, Errno::NOMEM))?;
        v.clear();
        v.try_reserve_exact(size)
            .map_err(|_| errno(INFO, Errno::NOMEM))?;
        v.resize(size, 0);
    }
    let (b, room) = {
        let mut info = Attr::info(Layout::BtfInfo);
        info.put_u32(offset_of!(B, name_len), len_out(name.len()));
        info.put_mut_slice(offset_of!(B, name), &mut name[..]);
        let mut room = 0;
        if let Some(v) = data.as_deref_mut().filter(|v| !v.is_empty()) {
            room = len_out(v.len());
            info.put_u32(offset_of!(B, btf_size), room);
            info.put_mut_slice(offset_of!(B, btf), v.as_mut_slice());
        }
        let b: [u8; size_of::<B>()] = obj_info(own.0.as_fd(), &mut info)?;
        (b, room)
    };
    if let Some(v) = data {
        // BTF objects are immutable; should the size still differ, keep
        // only what the kernel wrote.
        let got = get32(&b, offset_of!(B, btf_size)).min(room);
        v.truncate(usize::try_from(got).unwrap_or(usize::MAX));
    }
    Ok(decode_btf_info(&b, name))
}

/// What the kernel reports about a link (`struct bpf_link_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkInfo {
    /// `enum bpf_link_type` (`LINK_TYPE_*`).
    pub link_type: u32,
    /// Id.
    pub id: LinkId,
    /// Id of the program it holds.
    pub prog_id: ProgId,
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
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c` (`bpf_obj_get_info_by_fd`).
#[doc(alias = "BPF_OBJ_GET_INFO_BY_FD")]
pub fn link_info(fd: BorrowedFd<'_>) -> Result<LinkInfo> {
    let b: [u8; size_of::<BpfLinkInfo>()] = plain_info(fd, Layout::LinkInfo)?;
    Ok(LinkInfo {
        link_type: get32(&b, offset_of!(BpfLinkInfo, type_)),
        id: LinkId(get32(&b, offset_of!(BpfLinkInfo, id))),
        prog_id: ProgId(get32(&b, offset_of!(BpfLinkInfo, prog_id))),
        data: get_bytes(&b, offset_of!(BpfLinkInfo, data)),
    })
}
