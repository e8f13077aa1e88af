//! Guest checks for the attach types this machine cannot run (lockdown
//! refuses trampolines, no netkit, no kprobes). tests/vm/run.sh copies it,
//! statically linked, into the Debian guests; tests/vm/init.sh runs it
//! with the scenario names wanted, each printing `VMTEST <name> OK|FAIL`
//! and a `VMINFO <name>: ...` detail:
//!
//! - `fmod-ret`: fmod_ret on `security_socket_bind` (Debian's kernels have
//!   no `CONFIG_FUNCTION_ERROR_INJECTION`, so security_* functions are the
//!   ones fmod_ret may change): a bind to one port fails with the `EPERM`
//!   the program returns while the link is held, and succeeds before and
//!   after.
//! - `fentry-bpf`: fentry and fexit on an XDP program loaded before
//!   (`AttachTarget::Program`: attach_prog_fd plus the function's name),
//!   fired by test runs of that XDP program.
//! - `lsm-cgroup`: `lsm_cgroup/socket_bind` on a cgroup (cgroup2 mounted
//!   at /sys/fs/cgroup by init.sh): counts binds of this process's sockets
//!   once it is in the cgroup, refuses one port, and lets sockets of the
//!   root cgroup be.
//! - `netkit`: a netkit pair made here over rtnetlink; two programs on the
//!   primary (one placed before the other, checked by query) and one on
//!   the peer count the packets each device sends. A kernel without
//!   netkit (Debian's 6.1) must refuse the attach saying so.
//! - `kprobe-module-retry`: a kprobe on `nf_conntrack:ct_cpu_seq_show`
//!   with the kprobe PMU's `perf_event_open` failed by fault injection
//!   (this kernel's PMU takes the module form, so the refusal is forced):
//!   the attach retries through tracefs, fires on reads of
//!   /proc/net/stat/nf_conntrack and leaves no tracefs event.
//!
//! Exits non-zero when a check fails.

use std::process::ExitCode;

use ember::attach::{Anchor, KprobeTarget, NetkitSide, Place, TcOpts, tracefs};
use ember::ember_core::object::AttachType;
use ember::ember_sys::{self, Errno, ProgId, TestRun, prog_query_ifindex, prog_test_run};
use ember::{
    AttachOpts, AttachTarget, Ebpf, EbpfLoader, Link, LoadError, Mechanism, ObjectSpec, Program,
};

mod net;

type Res = Result<String, String>;

/// Where the fixtures are: the guest's /fix, or `VM_FIX` (to run this on
/// a development machine).
fn fix(file: &str) -> String {
    let dir = std::env::var("VM_FIX").unwrap_or_else(|_| "/fix".into());
    format!("{dir}/{file}")
}

fn count(ebpf: &Ebpf, map: &str, slot: u32) -> Result<u64, String> {
    let v = ebpf
        .map(map)
        .ok_or_else(|| format!("no map {map}"))?
        .lookup(&slot.to_ne_bytes())
        .map_err(|e| e.to_string())?
        .ok_or("no array slot")?;
    Ok(u64::from_ne_bytes(
        v.get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("short value")?,
    ))
}

fn counts(ebpf: &Ebpf, n: u32) -> Result<Vec<u64>, String> {
    (0..n).map(|i| count(ebpf, "counts", i)).collect()
}

fn prog<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Program, String> {
    ebpf.program(name)
        .ok_or_else(|| format!("no program {name}"))
}

fn load(file: &str) -> Result<Ebpf, String> {
    EbpfLoader::new()
        .load_file(fix(file))
        .map_err(|e| load_err(file, &e))
}

/// A load error with the kernel's errno and the verifier log's end.
fn load_err(file: &str, e: &LoadError) -> String {
    match e {
        LoadError::ProgLoad { source, log, .. } => {
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            format!("load {file}: {e} ({source}); log: {}", tail.join(" | "))
        }
        _ => format!("load {file}: {e}"),
    }
}

fn err(e: impl core::fmt::Display) -> String {
    e.to_string()
}

fn fmod_ret() -> Res {
    const REFUSED: u16 = 4243;
    let ebpf = load("fmod_ret.bpf-el.o")?;
    let p = prog(&ebpf, "modify_return")?;
    drop(bind(REFUSED).map_err(|e| format!("bind to {REFUSED} before attach: {e}"))?);
    let link = p.attach().map_err(err)?;
    let what = format!("{} via {}", link.target(), link.mechanism());
    let c0 = counts(&ebpf, 2)?;
    drop(bind(0).map_err(|e| format!("{what}: bind to any port refused: {e}"))?);
    let refused = bind(REFUSED);
    let c1 = counts(&ebpf, 2)?;
    match refused {
        Err(e) if e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {}
        other => return Err(format!("{what}: bind to {REFUSED}: {other:?}, want EPERM")),
    }
    if c1 != [c0[0] + 2, c0[1] + 1] {
        return Err(format!("{what}: counts {c0:?} -> {c1:?}"));
    }
    drop(link);
    drop(bind(REFUSED).map_err(|e| format!("{what}: bind to {REFUSED} after drop: {e}"))?);
    if counts(&ebpf, 2)? != c1 {
        return Err(format!("{what}: still counting after drop"));
    }
    Ok(format!(
        "{what}: fired for 2 binds, security_socket_bind returned -EPERM for port {REFUSED} \
         (0 before attach and after drop), stopped after drop"
    ))
}

fn xdp_runs(p: &Program, n: u32) -> Result<u32, String> {
    let pkt = [0u8; 64];
    let r = prog_test_run(
        p.fd(),
        &mut TestRun {
            data_in: &pkt,
            repeat: n,
            ..TestRun::default()
        },
    )
    .map_err(err)?;
    Ok(r.retval)
}

fn fentry_bpf() -> Res {
    const RUNS: u32 = 10;
    let file = "fentry_bpf.bpf-el.o";
    let target = EbpfLoader::new()
        .autoload("on_entry", false)
        .autoload("on_exit", false)
        .load_file(fix(file))
        .map_err(|e| load_err(file, &e))?;
    let xdp = prog(&target, "xdp_target")?;
    let data = std::fs::read(fix(file)).map_err(err)?;
    let mut spec = ObjectSpec::parse(&data, file).map_err(err)?;
    spec.program_mut("xdp_target")
        .map_err(err)?
        .set_autoload(false);
    for p in ["on_entry", "on_exit"] {
        // The function from the section name (fentry/xdp_target).
        let t = AttachTarget::program(xdp.fd(), "").map_err(err)?;
        spec.program_mut(p).map_err(err)?.set_attach_target(t);
    }
    let tracer = EbpfLoader::new()
        .load_spec(spec)
        .map_err(|e| load_err(file, &e))?;
    let links: Vec<Link> = ["on_entry", "on_exit"]
        .into_iter()
        .map(|p| prog(&tracer, p)?.attach().map_err(err))
        .collect::<Result<_, _>>()?;
    let what: Vec<String> = links
        .iter()
        .map(|l| format!("{} {} via {}", l.program(), l.target(), l.mechanism()))
        .collect();
    let t0 = count(&target, "counts", 0)?;
    let c0 = counts(&tracer, 4)?;
    let ret = xdp_runs(xdp, RUNS)?;
    let t1 = count(&target, "counts", 0)?;
    let c1 = counts(&tracer, 4)?;
    let n = u64::from(RUNS);
    let moved: Vec<u64> = c1.iter().zip(&c0).map(|(a, b)| a - b).collect();
    if ret != 2 || t1 != t0 + n || moved[1..3] != [n, n] || c1[3] != 2 {
        return Err(format!(
            "{what:?}: xdp returned {ret}, ran {}, fentry/fexit {:?}, fexit saw return {}",
            t1 - t0,
            &moved[1..3],
            c1[3]
        ));
    }
    drop(links);
    xdp_runs(xdp, RUNS)?;
    if counts(&tracer, 4)? != c1 {
        return Err(format!("{what:?}: still counting after drop"));
    }
    Ok(format!(
        "{}: fired {n} entries and {n} exits returning XDP_PASS over {n} test runs, stopped after drop",
        what.join(", ")
    ))
}

const CGROUP: &str = "/sys/fs/cgroup/ember_lsm_cgroup";

fn move_to(cgroup: &str) -> Result<(), String> {
    std::fs::write(
        format!("{cgroup}/cgroup.procs"),
        std::process::id().to_string(),
    )
    .map_err(|e| format!("move to {cgroup}: {e}"))
}

fn bind(port: u16) -> std::io::Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind(("0.0.0.0", port))
}

fn lsm_cgroup() -> Res {
    let ebpf = load("lsm_cgroup.bpf-el.o")?;
    let p = prog(&ebpf, "bind_hook")?;
    std::fs::create_dir(CGROUP).map_err(|e| format!("mkdir {CGROUP}: {e}"))?;
    let r = lsm_cgroup_in(&ebpf, p);
    let back = move_to("/sys/fs/cgroup");
    let rm = std::fs::remove_dir(CGROUP).map_err(|e| format!("rmdir {CGROUP}: {e}"));
    let r = r?;
    back?;
    rm?;
    Ok(r)
}

fn lsm_cgroup_in(ebpf: &Ebpf, p: &Program) -> Res {
    const DENIED: u16 = 4242;
    // By its text form (`ember run --attach bind_hook=PATH`).
    let link = p.attach_to(CGROUP, AttachOpts::default()).map_err(err)?;
    let what = format!("{} via {}", link.target(), link.mechanism());
    // A socket made in the root cgroup: not the program's business.
    let c0 = counts(ebpf, 2)?;
    drop(bind(0).map_err(|e| format!("bind outside: {e}"))?);
    if counts(ebpf, 2)? != c0 {
        return Err(format!("{what}: fired for a socket outside the cgroup"));
    }
    move_to(CGROUP)?;
    drop(bind(0).map_err(|e| format!("{what}: bind to any port refused: {e}"))?);
    let refused = bind(DENIED);
    let c1 = counts(ebpf, 2)?;
    match refused {
        Err(e) if e.raw_os_error() == Some(Errno::PERM.raw_os_error()) => {}
        other => return Err(format!("{what}: bind to {DENIED}: {other:?}, want EPERM")),
    }
    if c1 != [c0[0] + 2, c0[1] + 1] {
        return Err(format!("{what}: counts {c0:?} -> {c1:?}"));
    }
    drop(link);
    drop(bind(DENIED).map_err(|e| format!("{what}: bind to {DENIED} after drop: {e}"))?);
    if counts(ebpf, 2)? != c1 {
        return Err(format!("{what}: still counting after drop"));
    }
    Ok(format!(
        "{what}: fired for 2 binds in the cgroup (port {DENIED} refused with EPERM), \
         none outside, stopped after drop"
    ))
}

const NETKIT_PRIMARY: &str = "ekprim";

fn netkit() -> Res {
    let ebpf = load("netkit.bpf-el.o")?;
    let first = prog(&ebpf, "nk_first")?;
    if !ember::attach::tc::netkit_supported() {
        // The refusal must say why (and not touch the device).
        return match first.attach_netkit(
            "lo",
            NetkitSide::Primary,
            TcOpts::default(),
            AttachOpts::default(),
        ) {
            Err(e) if e.to_string().contains("no netkit") => {
                Ok(format!("kernel without netkit, refused as expected: {e}"))
            }
            other => Err(format!("no netkit, yet: {other:?}")),
        };
    }
    let pair = net::NetkitPair::create(NETKIT_PRIMARY, "ekpeer").map_err(err)?;
    let r = netkit_on(&ebpf, &pair);
    let del = pair.delete().map_err(err);
    let r = r?;
    del?;
    Ok(r)
}

fn prog_id(p: &Program) -> Result<u32, String> {
    Ok(p.info().map_err(err)?.id.0)
}

fn netkit_on(ebpf: &Ebpf, pair: &net::NetkitPair) -> Res {
    let (first, second, peer) = (
        prog(ebpf, "nk_first")?,
        prog(ebpf, "nk_second")?,
        prog(ebpf, "nk_peer")?,
    );
    let o = AttachOpts::default();
    // Both sides attach through the primary's ifindex.
    let primary = pair.primary;
    let l2 = second
        .attach_netkit(primary, NetkitSide::Primary, TcOpts::default(), o)
        .map_err(err)?;
    let before = TcOpts {
        place: Place::Before(Anchor::Program(second)),
        ..TcOpts::default()
    };
    let l1 = first
        .attach_netkit(primary, NetkitSide::Primary, before, o)
        .map_err(err)?;
    // The peer's by its text form (`ember run --attach nk_peer=ekprim`).
    let lp = peer.attach_to(NETKIT_PRIMARY, o).map_err(err)?;
    if !lp.target().contains("netkit peer") {
        return Err(format!("nk_peer attached to {}", lp.target()));
    }
    let mut ids = [ProgId(0); 4];
    let q = prog_query_ifindex(primary, AttachType::NETKIT_PRIMARY.0, &mut ids).map_err(err)?;
    let order: Vec<u32> = ids[..q.written.min(4)].iter().map(|p| p.0).collect();
    let want = vec![prog_id(first)?, prog_id(second)?];
    if order != want {
        return Err(format!(
            "primary chain {order:?}, want {want:?} (first before second)"
        ));
    }
    let c0 = counts(ebpf, 3)?;
    pair.send_primary().map_err(err)?;
    let c1 = counts(ebpf, 3)?;
    pair.send_peer().map_err(err)?;
    let c2 = counts(ebpf, 3)?;
    let what = format!("{}, {}, {}", l1.target(), l2.target(), lp.target());
    let m1: Vec<u64> = c1.iter().zip(&c0).map(|(a, b)| a - b).collect();
    let m2: Vec<u64> = c2.iter().zip(&c1).map(|(a, b)| a - b).collect();
    let n = net::PACKETS;
    // ARP or IPv6 chatter may add packets; ours must be there, and each
    // side's programs must stay off the other side.
    if m1[0] < n || m1[1] < n || m1[2] != 0 || m2[2] < n {
        return Err(format!(
            "{what}: sent {n} on each: primary moved {m1:?}, peer moved {m2:?}"
        ));
    }
    drop((l1, l2, lp));
    pair.send_primary().map_err(err)?;
    pair.send_peer().map_err(err)?;
    if counts(ebpf, 3)? != c2 {
        return Err(format!("{what}: still counting after drop"));
    }
    Ok(format!(
        "{what}: fired, primary chain {order:?} (nk_first placed before nk_second), \
         {n} packets sent each way counted on their side ({m1:?}, {m2:?}), stopped after drop"
    ))
}

/// kprobe_events lines of ember's group.
fn our_events() -> Vec<String> {
    let Ok(root) = tracefs::root() else {
        return Vec::new();
    };
    std::fs::read_to_string(root.join("kprobe_events"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("{}/", tracefs::GROUP)))
        .map(str::to_owned)
        .collect()
}

fn kprobe_module_retry() -> Res {
    const BARE: u32 = 7;
    const READS: u64 = 5;
    let ebpf = load("kprobe.bpf-el.o")?;
    let p = prog(&ebpf, "on_bare")?;
    let t = KprobeTarget::parse("nf_conntrack:ct_cpu_seq_show")?;
    // Unforced, for the record: which way this kernel's PMU goes.
    let natural = p
        .attach_kprobe(&t, AttachOpts::default())
        .map_err(err)?
        .mechanism();
    // The attach's first system call is the PMU's perf_event_open.
    ember_sys::fault::arm(1, Errno::INVAL);
    let link = p.attach_kprobe(&t, AttachOpts::default());
    let report = ember_sys::fault::disarm();
    let link = link.map_err(err)?;
    let what = format!("{} via {}", link.target(), link.mechanism());
    if report.failed != Some("perf_event_open") || report.failures != 1 {
        return Err(format!(
            "{what}: the fault hit {report:?}, not the PMU's perf_event_open"
        ));
    }
    if link.mechanism() != Mechanism::TracefsEvent {
        return Err(format!("{what}: the PMU's refusal did not lead to tracefs"));
    }
    let read = || -> Result<(), String> {
        for _ in 0..READS {
            std::fs::read("/proc/net/stat/nf_conntrack").map_err(err)?;
        }
        Ok(())
    };
    let c0 = count(&ebpf, "hits", BARE)?;
    read()?;
    let c1 = count(&ebpf, "hits", BARE)?;
    if c1 < c0 + READS {
        return Err(format!("{what}: {c0} -> {c1} after {READS} reads"));
    }
    if our_events().is_empty() {
        return Err(format!("{what}: no tracefs event while attached"));
    }
    drop(link);
    read()?;
    if count(&ebpf, "hits", BARE)? != c1 {
        return Err(format!("{what}: still counting after drop"));
    }
    let left = our_events();
    if !left.is_empty() {
        return Err(format!("{what}: tracefs events left: {left:?}"));
    }
    Ok(format!(
        "PMU refusal forced (fault injection on perf_event_open); {what}: fired {} on {READS} reads, \
         stopped, event removed; unforced this kernel's PMU attached it via {natural}",
        c1 - c0
    ))
}

/// `vm_attach test-run PIN N`: N test runs of the XDP program pinned at
/// PIN (for init.sh's check of `ember run --target`).
fn test_run_pinned(pin: &str, n: &str) -> Result<(), String> {
    let path = std::ffi::CString::new(pin).map_err(err)?;
    let fd = ember_sys::obj_get(&path).map_err(|e| format!("{pin}: {e}"))?;
    let n: u32 = n.parse().map_err(|e| format!("{n}: {e}"))?;
    let pkt = [0u8; 64];
    let mut t = TestRun {
        data_in: &pkt,
        repeat: n,
        ..TestRun::default()
    };
    let r = prog_test_run(ember_sys::AsFd::as_fd(&fd), &mut t).map_err(err)?;
    println!("VMINFO test-run {pin}: {n} runs, returned {}", r.retval);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [cmd, pin, n] = args.as_slice() {
        if cmd == "test-run" {
            return match test_run_pinned(pin, n) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    println!("VMINFO test-run: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    type Check = fn() -> Res;
    let checks: [(&str, Check); 5] = [
        ("fmod-ret", fmod_ret),
        ("fentry-bpf", fentry_bpf),
        ("lsm-cgroup", lsm_cgroup),
        ("netkit", netkit),
        ("kprobe-module-retry", kprobe_module_retry),
    ];
    let wanted = args;
    let mut ok = true;
    for (name, check) in checks {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        match check() {
            Ok(detail) => println!("VMTEST {name} OK\nVMINFO {name}: {detail}"),
            Err(why) => {
                ok = false;
                println!("VMTEST {name} FAIL\nVMINFO {name}: {why}");
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
