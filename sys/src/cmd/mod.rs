//! One safe function per bpf(2) command, by domain: [`map`] (maps and
//! their elements), [`prog`] (loading, statistics), [`btf`], [`link`]
//! (links and legacy attachment), [`obj`] (pins and ids), [`info`]
//! (`BPF_OBJ_GET_INFO_BY_FD`) and [`test_run`].
//!
//! Every command builds its attr with `call::Attr`, which borrows what
//! it points at, and goes through the one funnel in `raw`; buffers the
//! kernel writes are `&mut` slices whose lengths bound the write.

use rustix::fd::OwnedFd;
use rustix::io::Errno;

use crate::call::Attr;
use crate::error::{Result, SysError};
use crate::raw::{Syscall, syscall};

pub mod btf;
pub mod info;
pub mod link;
pub mod map;
pub mod obj;
pub mod prog;
pub mod test_run;

pub use crate::call::Cmd;
pub use crate::id::{BtfId, Id, LinkId, MapId, ObjKind, ProgId};
pub use btf::btf_load;
pub use info::prog_map_ids;
pub use info::{
    BTF_NAME_MAX, BtfInfo, LinkInfo, MapInfo, ProgInfo, btf_info, btf_info_full, link_info,
    map_info, prog_info,
};
pub use link::{
    F_AFTER, F_ALLOW_MULTI, F_ALLOW_OVERRIDE, F_BEFORE, F_ID, F_LINK, LINK_TYPE_NETKIT,
    LINK_TYPE_TCX, LINK_TYPE_XDP, NETFILTER_IP_DEFRAG, Relative, prog_attach_current_netns,
    prog_detach_current_netns, prog_query_ifindex,
};
pub use link::{
    LINK_TYPE_CGROUP, LINK_TYPE_NETNS, LINK_TYPE_RAW_TRACEPOINT, LINK_TYPE_TRACING, LinkCreate,
    LinkExtra, LinkTarget, ProgQuery, iter_create, link_create, link_detach, link_update,
    prog_attach, prog_detach, prog_query, raw_tracepoint_open,
};
pub use map::{Batch, BatchError, MapCreate, MapFd, map_create};
pub use obj::{ObjIds, get_fd_by_id, get_next_id, obj_get, obj_ids, obj_pin};
pub use prog::{ProgBtf, ProgLoad, ProgLoadError, STATS_RUN_TIME, enable_stats, prog_load};
pub use test_run::{TestRun, TestRunResult, prog_test_run};

/// The error of `cmd` failing with `errno`.
pub(crate) fn errno(cmd: &'static str, errno: Errno) -> SysError {
    SysError { cmd, errno }
}

/// `EINVAL` for `cmd`.
pub(crate) fn inval(cmd: &'static str) -> SysError {
    errno(cmd, Errno::INVAL)
}

fn name(a: &Attr<'_>) -> &'static str {
    a.cmd().map_or("bpf", Cmd::name)
}

/// `bpf(cmd, attr)` with the errno as it came.
pub(crate) fn bpf_errno(a: &mut Attr<'_>) -> core::result::Result<i64, Errno> {
    syscall(Syscall::Bpf(a)).map(crate::raw::Ret::val)
}

/// `bpf(cmd, attr)` for a command that returns no fd.
pub(crate) fn bpf(a: &mut Attr<'_>) -> Result<i64> {
    let n = name(a);
    bpf_errno(a).map_err(|e| errno(n, e))
}

/// `bpf(cmd, attr)` for a command that returns a new fd (above 2).
pub(crate) fn bpf_fd(a: &mut Attr<'_>) -> Result<OwnedFd> {
    let n = name(a);
    syscall(Syscall::Bpf(a))
        .and_then(crate::raw::Ret::fd)
        .map_err(|e| errno(n, e))
}

/// A length the kernel writes up to: clamped, which only makes it write
/// less than the buffer holds.
pub(crate) fn len_out(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// A NUL-padded kernel name, up to its first NUL (and its longest valid
/// UTF-8 prefix; kernel names are ASCII).
pub(crate) fn c_name(b: &[u8]) -> &str {
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

#[cfg(test)]
mod tests;
