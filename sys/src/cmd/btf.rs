//! BTF: `BPF_BTF_LOAD`.

use core::mem::offset_of;

use rustix::fd::OwnedFd;

use super::{bpf_fd, len_out};
use crate::attr::BtfLoadAttr;
use crate::call::{Attr, Cmd};
use crate::error::Result;

/// `BPF_BTF_LOAD`—Loads BTF into the kernel; `log` receives the kernel's
/// complaints.
///
/// # Errors
/// `E2BIG` for BTF over 4 GiB; the kernel's errno.
///
/// # References
/// bpf(2); `Documentation/bpf/btf.rst`.
#[doc(alias = "BPF_BTF_LOAD")]
pub fn btf_load(btf: &[u8], log: Option<&mut [u8]>) -> Result<OwnedFd> {
    type A = BtfLoadAttr;
    let mut a = Attr::new(Cmd::BtfLoad);
    a.put_slice(offset_of!(A, btf), btf);
    a.put_len(offset_of!(A, btf_size), btf.len());
    if let Some(log) = log.filter(|l| !l.is_empty()) {
        // The kernel writes at most `btf_log_size` bytes: offering less
        // than a huge buffer holds is safe.
        a.put_u32(offset_of!(A, btf_log_size), len_out(log.len()));
        a.put_u32(offset_of!(A, btf_log_level), 1);
        a.put_mut_slice(offset_of!(A, btf_log_buf), log);
    }
    bpf_fd(&mut a)
}
