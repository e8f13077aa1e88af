//! Programs: `BPF_PROG_LOAD` and `BPF_ENABLE_STATS`.

use alloc::vec::Vec;
use core::ffi::CStr;
use core::mem::offset_of;

use rustix::fd::{AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;

use super::{bpf_fd, len_out};
use crate::attr::{OneAttr, ProgLoadAttr};
use crate::call::{Attr, Cmd};
use crate::error::{Result, SysError};
use crate::raw::{Syscall, syscall};

/// `BPF_STATS_RUN_TIME`: count run time and runs of every program (see
/// [`enable_stats`]).
pub const STATS_RUN_TIME: u32 = 0;

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
    /// Offload device (`prog_ifindex`; 0: not offloaded). XDP programs
    /// given one are bound to that device (dev-bound or offloaded).
    pub ifindex: u32,
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

/// Points `ptr_off` at whole records of `rec_size` bytes, with their
/// count; nothing for an empty slice or a zero record size.
fn put_records<'a>(
    a: &mut Attr<'a>,
    (ptr_off, cnt_off, size_off): (usize, usize, usize),
    recs: &'a [u8],
    rec_size: u32,
) {
    let Some(size) = usize::try_from(rec_size).ok().filter(|s| *s != 0) else {
        return;
    };
    if recs.is_empty() {
        return;
    }
    a.put_u32(size_off, rec_size);
    a.put_slice(ptr_off, recs);
    a.put_len(cnt_off, recs.len() / size);
}

/// `BPF_PROG_LOAD`—Loads (verifies) a program.
///
/// # Errors
/// `EINVAL` for instructions that are not a whole number of 8-byte
/// records; `E2BIG` for counts over `u32::MAX`; the kernel's errno and,
/// for a rejected program, its log in `p.log`. `EAGAIN` (a signal
/// interrupted the verifier) is retried, up to five attempts in all.
///
/// # References
/// bpf(2); `Documentation/bpf/verifier.rst`.
#[doc(alias = "BPF_PROG_LOAD")]
pub fn prog_load(p: &mut ProgLoad<'_>) -> core::result::Result<OwnedFd, ProgLoadError> {
    type A = ProgLoadAttr;
    let cmd = Cmd::ProgLoad;
    let err = |errno, log_true_size| ProgLoadError {
        error: SysError {
            cmd: cmd.name(),
            errno,
        },
        log_true_size,
    };
    if !p.insns.len().is_multiple_of(8) {
        return Err(err(Errno::INVAL, 0));
    }
    // The kernel reads the fds as an array of s32; slots are raw numbers
    // of fds the caller keeps open (borrowed by `p`).
    let fds: Vec<i32> = p.fd_array.iter().map(|f| f.as_raw_fd()).collect();
    let mut a = Attr::new(cmd);
    a.put_u32(offset_of!(A, prog_type), p.prog_type);
    a.put_len(offset_of!(A, insn_cnt), p.insns.len() / 8);
    a.put_slice(offset_of!(A, insns), p.insns);
    a.put_cstr(offset_of!(A, license), p.license);
    a.put_u32(offset_of!(A, prog_flags), p.prog_flags);
    a.put_u32(offset_of!(A, kern_version), p.kern_version);
    a.put_name(offset_of!(A, prog_name), p.name);
    a.put_u32(offset_of!(A, expected_attach_type), p.expected_attach_type);
    a.put_u32(offset_of!(A, attach_btf_id), p.attach_btf_id);
    a.put_u32(offset_of!(A, prog_ifindex), p.ifindex);
    a.put_slice(offset_of!(A, fd_array), &fds);
    if let Some(fd) = p.attach_btf_obj_fd {
        a.put_fd(offset_of!(A, attach_fd), fd);
    }
    if let Some(b) = p.btf {
        a.put_fd(offset_of!(A, prog_btf_fd), b.fd);
        let fi = (
            offset_of!(A, func_info),
            offset_of!(A, func_info_cnt),
            offset_of!(A, func_info_rec_size),
        );
        put_records(&mut a, fi, b.func_info, b.func_info_rec_size);
        let li = (
            offset_of!(A, line_info),
            offset_of!(A, line_info_cnt),
            offset_of!(A, line_info_rec_size),
        );
        put_records(&mut a, li, b.line_info, b.line_info_rec_size);
    }
    if let Some(log) = p.log.as_deref_mut().filter(|l| !l.is_empty()) {
        a.put_u32(offset_of!(A, log_level), p.log_level.max(1));
        // A log longer than 4 GiB is offered as 4 GiB: the kernel then
        // writes less than the buffer holds.
        a.put_u32(offset_of!(A, log_size), len_out(log.len()));
        a.put_mut_slice(offset_of!(A, log_buf), log);
    }
    // EAGAIN: a signal interrupted the verifier (4.20+), which asks for
    // the load again; as libbpf, up to five attempts in all.
    let mut attempts = 5;
    loop {
        attempts -= 1;
        match syscall(Syscall::Bpf(&mut a)) {
            Ok(r) => return r.fd().map_err(|e| err(e, 0)),
            Err(Errno::AGAIN) if attempts > 0 => {}
            Err(errno) => return Err(err(errno, a.get_u32(offset_of!(A, log_true_size)))),
        }
    }
}

/// `BPF_ENABLE_STATS`—Turns on run-time statistics of `stats_type`
/// ([`STATS_RUN_TIME`]) for every program until the returned fd is closed.
///
/// # Errors
/// The kernel's errno (`EPERM` without `CAP_SYS_ADMIN`, `EINVAL` for an
/// unknown type).
///
/// # References
/// bpf(2); `kernel/bpf/syscall.c`.
#[doc(alias = "BPF_ENABLE_STATS")]
pub fn enable_stats(stats_type: u32) -> Result<OwnedFd> {
    let mut a = Attr::new(Cmd::EnableStats);
    a.put_u32(offset_of!(OneAttr, value), stats_type);
    bpf_fd(&mut a)
}
