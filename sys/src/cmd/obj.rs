//! Objects by path and by id: `BPF_OBJ_PIN`, `BPF_OBJ_GET`, and the
//! `BPF_*_GET_NEXT_ID` / `BPF_*_GET_FD_BY_ID` commands.

use core::ffi::CStr;
use core::mem::offset_of;

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::{bpf, bpf_errno, bpf_fd, errno};
use crate::attr::{GetIdAttr, ObjAttr};
use crate::call::{Attr, Cmd};
use crate::error::Result;
use crate::id::{Id, ObjKind};

/// `BPF_OBJ_PIN`—Pins `fd` at `path` in a bpffs.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2); `Documentation/bpf/` (bpffs).
#[doc(alias = "BPF_OBJ_PIN")]
pub fn obj_pin(fd: BorrowedFd<'_>, path: &CStr) -> Result<()> {
    let mut a = Attr::new(Cmd::ObjPin);
    a.put_cstr(offset_of!(ObjAttr, pathname), path);
    a.put_fd(offset_of!(ObjAttr, bpf_fd), fd);
    bpf(&mut a).map(drop)
}

/// `BPF_OBJ_GET`—Opens the object pinned at `path`.
///
/// # Errors
/// The kernel's errno.
///
/// # References
/// bpf(2).
#[doc(alias = "BPF_OBJ_GET")]
pub fn obj_get(path: &CStr) -> Result<OwnedFd> {
    let mut a = Attr::new(Cmd::ObjGet);
    a.put_cstr(offset_of!(ObjAttr, pathname), path);
    bpf_fd(&mut a)
}

fn next_id_cmd(kind: ObjKind) -> Cmd {
    match kind {
        ObjKind::Prog => Cmd::ProgGetNextId,
        ObjKind::Map => Cmd::MapGetNextId,
        ObjKind::Btf => Cmd::BtfGetNextId,
        ObjKind::Link => Cmd::LinkGetNextId,
    }
}

fn fd_by_id_cmd(kind: ObjKind) -> Cmd {
    match kind {
        ObjKind::Prog => Cmd::ProgGetFdById,
        ObjKind::Map => Cmd::MapGetFdById,
        ObjKind::Btf => Cmd::BtfGetFdById,
        ObjKind::Link => Cmd::LinkGetFdById,
    }
}

/// `BPF_{PROG,MAP,BTF,LINK}_GET_NEXT_ID`—The smallest id of an object of
/// `I`'s kind above `start`, or `None` after the last.
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
pub fn get_next_id<I: Id>(start: I) -> Result<Option<I>> {
    let cmd = next_id_cmd(I::KIND);
    let mut a = Attr::new(cmd);
    a.put_u32(offset_of!(GetIdAttr, start_id), start.get());
    match bpf_errno(&mut a) {
        Ok(_) => Ok(Some(I::from_raw(a.get_u32(offset_of!(GetIdAttr, next_id))))),
        Err(e) if e == Errno::NOENT => Ok(None),
        Err(e) => Err(errno(cmd.name(), e)),
    }
}

/// Every id of one kind of object, ascending (from [`obj_ids`]). Yields one
/// `Err` at most, then ends.
#[derive(Debug, Clone)]
pub struct ObjIds<I> {
    last: I,
    done: bool,
}

impl<I: Id> Iterator for ObjIds<I> {
    type Item = Result<I>;

    fn next(&mut self) -> Option<Result<I>> {
        if self.done {
            return None;
        }
        match get_next_id(self.last) {
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

impl<I: Id> core::iter::FusedIterator for ObjIds<I> {}

/// Walks the ids of every object of `I`'s kind with [`get_next_id`]
/// (`obj_ids::<BtfId>()`).
pub fn obj_ids<I: Id>() -> ObjIds<I> {
    ObjIds {
        last: I::default(),
        done: false,
    }
}

/// `BPF_{PROG,MAP,BTF,LINK}_GET_FD_BY_ID`—Opens the object `id`.
/// `open_flags` (`BPF_F_RDONLY`, `BPF_F_WRONLY`) apply to maps; the others
/// take 0.
///
/// # Errors
/// The kernel's errno (`ENOENT` for no such object, `EPERM` without
/// `CAP_SYS_ADMIN`).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_PROG_GET_FD_BY_ID")]
#[doc(alias = "BPF_MAP_GET_FD_BY_ID")]
#[doc(alias = "BPF_BTF_GET_FD_BY_ID")]
#[doc(alias = "BPF_LINK_GET_FD_BY_ID")]
pub fn get_fd_by_id<I: Id>(id: I, open_flags: u32) -> Result<OwnedFd> {
    let mut a = Attr::new(fd_by_id_cmd(I::KIND));
    a.put_u32(offset_of!(GetIdAttr, start_id), id.get());
    a.put_u32(offset_of!(GetIdAttr, open_flags), open_flags);
    bpf_fd(&mut a)
}
