//! ember-sys: ember's safe syscall layer for `bpf(2)`, built on rustix.
//! (Despite the `-sys` name it is not a native-bindings crate: no `links`,
//! no C.)
//!
//! Every system call goes through one funnel in the private `raw`
//! module, which holds the only `unsafe fn` that enters the kernel (and
//! the audited `mmap` code); everything else is safe. Each bpf attr is
//! built as a private `Attr<'a>` that borrows every buffer it points at,
//! so the borrow checker keeps pointees alive for the call, and a
//! per-command table (from `uapi/linux/bpf.h`) makes the kernel write only
//! through `&mut` borrows no shorter than the length it is given. Layouts
//! are checked at compile time; fds come out as `OwnedFd` (moved above 2)
//! and go in as `BorrowedFd`; object ids are typed ([`ProgId`], ...);
//! errors carry the command name.
//!
//! Modules, each depending only on those before it: [`attr`] (uapi
//! layouts), [`id`] (typed ids), `call` ([`Cmd`](cmd::Cmd) and `Attr`),
//! `raw` (the funnel;
//! under `cfg(test)` a fake kernel replaces it, so unit tests and miri
//! need no kernel), [`error`], [`cpu`] (CPU lists, the possible-CPU
//! count), [`mmap`], [`cmd`] (one function per bpf command, by domain),
//! `epoll`, [`ringbuf`], [`perf`] and [`sock`] (BPF socket options). With
//! the test-only feature `fault-inject`, `fault` fails a chosen system call.
//!
//! `#![no_std]` (with `alloc` for rustix): usable in static initramfs
//! binaries.
#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "fault-inject"))]
extern crate std;

pub mod attr;
mod call;
pub mod cmd;
pub mod cpu;
mod epoll;
pub mod error;
#[cfg(feature = "fault-inject")]
pub mod fault;
pub mod id;
pub mod mmap;
pub mod perf;
mod raw;
pub mod ringbuf;
pub mod sock;

pub use cmd::prog_map_ids;
pub use cmd::{
    Batch, BatchError, BtfId, BtfInfo, Id, LinkCreate, LinkExtra, LinkId, LinkInfo, LinkTarget,
    MapId, MapInfo, ObjIds, ObjKind, ProgId, ProgInfo, ProgQuery, TestRun, TestRunResult, btf_info,
    btf_info_full, enable_stats, get_fd_by_id, get_next_id, iter_create, link_create, link_detach,
    link_info, link_update, map_info, obj_ids, prog_attach, prog_detach, prog_info, prog_query,
    prog_test_run, raw_tracepoint_open,
};
pub use cmd::{F_AFTER, F_BEFORE, F_ID, F_LINK, Relative, prog_query_ifindex};
pub use cmd::{
    F_ALLOW_MULTI, F_ALLOW_OVERRIDE, NETFILTER_IP_DEFRAG, prog_attach_current_netns,
    prog_detach_current_netns,
};
pub use cmd::{
    MapCreate, MapFd, ProgBtf, ProgLoad, ProgLoadError, btf_load, map_create, obj_get, obj_pin,
    prog_load,
};
pub use error::{Result, SysError};
pub use mmap::{Access, AccessError, ArenaReservation, Mmap};
pub use perf::{PerfBuffer, PerfData, PerfEvent, PerfEventAttr, PerfRecord, perf_event_open};
pub use perf::{ProbeAttr, ProbeKind, ProbePmu, perf_event_open_probe};
pub use ringbuf::{RingBuf, RingBufPoller, RingData};
pub use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
pub use rustix::io::Errno;
pub use sock::{attach_reuseport, attach_socket_filter, detach_reuseport, detach_socket_filter};
