//! Test runs: `BPF_PROG_TEST_RUN`.

use core::mem::offset_of;

use rustix::fd::BorrowedFd;

use super::{bpf, len_out};
use crate::attr::TestRunAttr;
use crate::call::{Attr, Cmd};
use crate::error::Result;

/// What `BPF_PROG_TEST_RUN` needs.
#[derive(Debug, Default)]
pub struct TestRun<'a> {
    /// Input packet (or other data).
    pub data_in: &'a [u8],
    /// Room for the output packet (the kernel writes at most its length).
    pub data_out: Option<&'a mut [u8]>,
    /// Input context (`struct __sk_buff`, ...). Exclusive: for
    /// `BPF_PROG_TYPE_SYSCALL` programs the kernel copies the context back
    /// into this buffer (`bpf_prog_test_run_syscall`).
    pub ctx_in: Option<&'a mut [u8]>,
    /// Room for the output context.
    pub ctx_out: Option<&'a mut [u8]>,
    /// Runs (0 counts as 1).
    pub repeat: u32,
    /// `BPF_F_TEST_RUN_ON_CPU`, `BPF_F_TEST_XDP_LIVE_FRAMES`.
    pub flags: u32,
    /// CPU (with `BPF_F_TEST_RUN_ON_CPU`).
    pub cpu: u32,
    /// XDP live-frames batch size.
    pub batch_size: u32,
}

/// What `BPF_PROG_TEST_RUN` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestRunResult {
    /// The program's return value (of the last run).
    pub retval: u32,
    /// Mean run time, ns.
    pub duration: u32,
    /// Bytes of output data written to `data_out`.
    pub data_size_out: u32,
    /// Bytes of output context written to `ctx_out`.
    pub ctx_size_out: u32,
}

/// `BPF_PROG_TEST_RUN`—Runs `prog` on `t.data_in` (and `t.ctx_in`) in the
/// kernel without attaching it.
///
/// # Errors
/// `E2BIG` for inputs over 4 GiB; the kernel's errno (`ENOSPC` when an
/// output buffer is too short, `EINVAL` for data the program type refuses,
/// `ENOTSUPP` (524) for types without test runs).
///
/// # References
/// bpf(2); `Documentation/bpf/bpf_prog_run.rst`.
#[doc(alias = "BPF_PROG_TEST_RUN")]
#[doc(alias = "BPF_PROG_RUN")]
pub fn prog_test_run(prog: BorrowedFd<'_>, t: &mut TestRun<'_>) -> Result<TestRunResult> {
    type T = TestRunAttr;
    let mut a = Attr::new(Cmd::ProgTestRun);
    a.put_fd(offset_of!(T, prog_fd), prog);
    a.put_len(offset_of!(T, data_size_in), t.data_in.len());
    a.put_slice(offset_of!(T, data_in), t.data_in);
    // An output pointer with size 0 would let the kernel write the whole
    // result: empty buffers go as NULL (and `Attr` refuses a written
    // buffer whose size field is 0).
    if let Some(out) = t.data_out.as_deref_mut().filter(|o| !o.is_empty()) {
        a.put_u32(offset_of!(T, data_size_out), len_out(out.len()));
        a.put_mut_slice(offset_of!(T, data_out), out);
    }
    if let Some(ctx) = t.ctx_in.as_deref_mut().filter(|c| !c.is_empty()) {
        a.put_len(offset_of!(T, ctx_size_in), ctx.len());
        a.put_mut_slice(offset_of!(T, ctx_in), ctx);
    }
    if let Some(out) = t.ctx_out.as_deref_mut().filter(|o| !o.is_empty()) {
        a.put_u32(offset_of!(T, ctx_size_out), len_out(out.len()));
        a.put_mut_slice(offset_of!(T, ctx_out), out);
    }
    a.put_u32(offset_of!(T, repeat), t.repeat);
    a.put_u32(offset_of!(T, flags), t.flags);
    a.put_u32(offset_of!(T, cpu), t.cpu);
    a.put_u32(offset_of!(T, batch_size), t.batch_size);
    bpf(&mut a)?;
    Ok(TestRunResult {
        retval: a.get_u32(offset_of!(T, retval)),
        duration: a.get_u32(offset_of!(T, duration)),
        data_size_out: a.get_u32(offset_of!(T, data_size_out)),
        ctx_size_out: a.get_u32(offset_of!(T, ctx_size_out)),
    })
}
