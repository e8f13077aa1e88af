//! Soak (issue 12): 1,000 cycles of load → attach → trigger → detach →
//! drop of a real object (attach/trace.bpf.o, its tracepoint program on
//! `syscalls/sys_enter_openat`) on this kernel. Every cycle's counter
//! must move; afterwards the fd count is what it was, RSS after a warmup
//! stays within a bound, and the kernel's program, map and link ids are
//! back to the start set.
//!
//! One parsed kernel BTF serves every cycle (`EbpfLoader::kernel_btf`),
//! as a long-running loader would hold it; the loads themselves (object
//! parse, CO-RE, verifier) are all repeated.

use std::path::Path;
use std::time::Instant;

use ember::ember_core::btf::Btf;
use ember::{EbpfLoader, FileBytes};
use ember_tests::ids::{Ids, leaked_since};
use ember_tests::{fixture, kernel_ready, open_fds, serial};

const CYCLES: usize = 1000;
const WARMUP: usize = 50;
/// Resident-set growth allowed after the warmup. A leak of what one cycle
/// holds (the object's 30 KB of bytes and its parsed tables, the log)
/// would pass 4 MiB within a few hundred cycles; allocator caches and
/// page-granular RSS move by less.
const RSS_SLACK: usize = 4 << 20;

/// Resident bytes (VmRSS of /proc/self/status, in KiB).
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("status");
    let kib: usize = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib << 10
}

fn count(ebpf: &ember::Ebpf) -> u64 {
    let v = ebpf
        .map("counts")
        .expect("counts")
        .lookup(&0u32.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

#[test]
fn thousand_load_attach_trigger_detach_cycles_leave_nothing() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let bytes = FileBytes::open(Path::new("/sys/kernel/btf/vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse(&bytes).expect("parse vmlinux");
    let object = std::fs::read(fixture("attach/trace.bpf-el.o")).expect("fixture");
    let ids = Ids::now();
    let fds = open_fds();
    let start = Instant::now();
    let mut rss_warm = 0;
    let mut rss_max = 0;
    for cycle in 0..CYCLES {
        let ebpf = EbpfLoader::new()
            .kernel_btf(&vmlinux)
            .load(&object, "trace.bpf-el.o")
            .unwrap_or_else(|e| panic!("cycle {cycle}: load: {e}"));
        let link = ebpf
            .program("count_openat")
            .expect("program")
            .attach()
            .unwrap_or_else(|e| panic!("cycle {cycle}: attach: {e}"));
        let before = count(&ebpf);
        for _ in 0..3 {
            drop(std::fs::File::open("/proc/self/stat").expect("open"));
        }
        let fired = count(&ebpf) - before;
        assert!(fired >= 3, "cycle {cycle}: fired {fired} times for 3 opens");
        drop(link);
        drop(ebpf);
        if cycle + 1 == WARMUP {
            rss_warm = rss();
        }
        if cycle >= WARMUP {
            rss_max = rss_max.max(rss());
        }
    }
    let took = start.elapsed();
    let fds_after = open_fds();
    let leaked = leaked_since(
        &ids,
        &[
            "count_openat",
            "count_openat_b",
            "count_switch",
            "count_switch_btf",
            "count_clock",
            "dump_tasks",
            "dump_counts",
            "counts",
        ],
    );
    eprintln!(
        "soak: {CYCLES} cycles in {took:?} ({:?} each); fds {fds} -> {fds_after}; \
         RSS after {WARMUP} cycles {} KiB, max after {} KiB (+{} KiB); leftover ids {leaked:?}",
        took / u32::try_from(CYCLES).unwrap_or(1),
        rss_warm >> 10,
        rss_max >> 10,
        rss_max.saturating_sub(rss_warm) >> 10,
    );
    assert_eq!(fds_after, fds, "fds leaked");
    assert!(
        rss_max <= rss_warm + RSS_SLACK,
        "RSS grew {} KiB after warmup",
        (rss_max - rss_warm) >> 10
    );
    assert!(leaked.is_empty(), "kernel objects left: {leaked:?}");
}
