//! Guest check for kprobes (tests/vm/run.sh copies it, statically linked,
//! into a Debian 6.1 guest, whose kernel has kprobes; this project's
//! machine has none). Loads `attach/kprobe.bpf-el.o` and prints one
//! `VMTEST <name> OK|FAIL` line per family, with `VMINFO` details:
//!
//! - `kprobe`: kprobe and kretprobe on do_sys_openat2 through the kprobe
//!   PMU (perf-event link) and through tracefs `kprobe_events`, a
//!   kretprobe with maxactive, a kprobe by address; each fires on
//!   openat(2) and stops when dropped, leaving no tracefs event. A name
//!   with several kallsyms definitions is refused with its candidates,
//!   and a `module:function` probe attaches (PMU or tracefs).
//! - `kprobe-multi`: the `kprobe.multi/do_sys_openat*` section with a
//!   cookie fires and stops, and so does `kprobe.session` (entry and
//!   return) where the kernel has it; on a kernel without `CONFIG_FPROBE`
//!   (Debian's 6.1) the explained `EOPNOTSUPP` is the expected answer.
//! - `ksyscall`: `ksyscall/openat` (PMU) and `kretsyscall/openat`
//!   (tracefs) fire and stop.
//!
//! Exits non-zero when a check fails.

use std::process::ExitCode;

use ember::attach::{AttachErrorKind, KprobeTarget, tracefs};
use ember::{AttachMode, AttachOpts, Ebpf, EbpfLoader, Link, Mechanism, Program};

const ENTRY: u32 = 0;
const RETURN: u32 = 1;
const MULTI: u32 = 2;
const MULTI_COOKIES: u32 = 3;
const SYSCALL: u32 = 4;
const SYSCALL_RET: u32 = 5;
const SESSION: u32 = 6;
const BARE: u32 = 7;
const OPENS: u64 = 20;

type Res = Result<String, String>;

fn count(ebpf: &Ebpf, slot: u32) -> Result<u64, String> {
    let v = ebpf
        .map("hits")
        .ok_or("no map hits")?
        .lookup(&slot.to_ne_bytes())
        .map_err(|e| e.to_string())?
        .ok_or("no array slot")?;
    Ok(u64::from_ne_bytes(
        v.get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or("short value")?,
    ))
}

fn open_files() -> Result<(), String> {
    for _ in 0..OPENS {
        drop(std::fs::File::open("/proc/self/stat").map_err(|e| e.to_string())?);
    }
    Ok(())
}

fn prog<'a>(ebpf: &'a Ebpf, name: &str) -> Result<&'a Program, String> {
    ebpf.program(name)
        .ok_or_else(|| format!("no program {name}"))
}

/// ember's tracefs events left in `kprobe_events`.
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

/// The link's program fires on openat(2) and stops when it is dropped.
fn fires_then_stops(ebpf: &Ebpf, slot: u32, link: Link, want: Mechanism) -> Res {
    let what = format!("{} via {}", link.target(), link.mechanism());
    if link.mechanism() != want {
        return Err(format!("{what}: expected {want}"));
    }
    let before = count(ebpf, slot)?;
    open_files()?;
    let during = count(ebpf, slot)?;
    if during < before + OPENS {
        return Err(format!("{what}: {before} -> {during} after {OPENS} opens"));
    }
    drop(link);
    let after = count(ebpf, slot)?;
    open_files()?;
    let later = count(ebpf, slot)?;
    if later != after {
        return Err(format!(
            "{what}: still counting after drop ({after} -> {later})"
        ));
    }
    let left = our_events();
    if !left.is_empty() {
        return Err(format!("{what}: tracefs events left: {left:?}"));
    }
    Ok(format!("{what}: fired {}, stopped", during - before))
}

fn opts(mode: AttachMode) -> AttachOpts {
    AttachOpts {
        mode,
        ..AttachOpts::default()
    }
}

fn kallsyms_addr(name: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    text.lines().find_map(|l| {
        let mut p = l.split_whitespace();
        let (a, _, n) = (p.next()?, p.next()?, p.next()?);
        (n == name).then(|| u64::from_str_radix(a, 16).ok())?
    })
}

/// A static function name with two addresses in vmlinux.
fn duplicate_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
    let mut seen = std::collections::HashMap::<&str, &str>::new();
    text.lines().find_map(|l| {
        let mut p = l.split_whitespace();
        let (addr, kind, name) = (p.next()?, p.next()?, p.next()?);
        if p.next().is_some() || kind != "t" {
            return None;
        }
        match seen.insert(name, addr) {
            Some(prev) if prev != addr => Some(name.to_owned()),
            _ => None,
        }
    })
}

fn kprobe(ebpf: &Ebpf) -> Res {
    let auto = opts(AttachMode::Auto);
    let legacy = opts(AttachMode::Legacy);
    let (pmu, tfs) = (Mechanism::PerfEventLink, Mechanism::TracefsEvent);
    let mut out = Vec::new();
    let entry = prog(ebpf, "on_entry")?;
    let ret = prog(ebpf, "on_return")?;
    let bare = prog(ebpf, "on_bare")?;
    let e = |e: ember::AttachError| e.to_string();
    out.push(fires_then_stops(
        ebpf,
        ENTRY,
        entry.attach().map_err(e)?,
        pmu,
    )?);
    out.push(fires_then_stops(
        ebpf,
        ENTRY,
        entry.attach_with(legacy).map_err(e)?,
        tfs,
    )?);
    out.push(fires_then_stops(
        ebpf,
        RETURN,
        ret.attach().map_err(e)?,
        pmu,
    )?);
    out.push(fires_then_stops(
        ebpf,
        RETURN,
        ret.attach_with(legacy).map_err(e)?,
        tfs,
    )?);
    let t = KprobeTarget::function("do_sys_openat2")
        .retprobe(true)
        .maxactive(Some(16));
    out.push(fires_then_stops(
        ebpf,
        BARE,
        bare.attach_kprobe(&t, auto).map_err(e)?,
        tfs,
    )?);
    let addr = kallsyms_addr("do_sys_openat2").ok_or("do_sys_openat2 not in kallsyms")?;
    let t = KprobeTarget::address(addr);
    out.push(fires_then_stops(
        ebpf,
        BARE,
        bare.attach_kprobe(&t, auto).map_err(e)?,
        pmu,
    )?);
    out.push(fires_then_stops(
        ebpf,
        BARE,
        bare.attach_kprobe(&t, legacy).map_err(e)?,
        tfs,
    )?);
    let t = KprobeTarget::parse("do_sys_openat2+0")?;
    out.push(fires_then_stops(
        ebpf,
        BARE,
        bare.attach_kprobe(&t, legacy).map_err(e)?,
        tfs,
    )?);
    match duplicate_name() {
        Some(dup) => match bare.attach_kprobe(&KprobeTarget::function(&dup), auto) {
            Err(err) if matches!(err.kind, AttachErrorKind::Ambiguous(_)) => {
                out.push(format!("ambiguous: {err}"));
            }
            other => return Err(format!("'{dup}' has two addresses, got {other:?}")),
        },
        None => out.push("no duplicate name in kallsyms to check".into()),
    }
    // A module function (nf_conntrack is loaded): attached, not fired
    // (nothing here makes conntrack run).
    let t = KprobeTarget::parse("nf_conntrack:nf_conntrack_free")?;
    for mode in [auto, legacy] {
        let l = bare.attach_kprobe(&t, mode).map_err(e)?;
        out.push(format!("{} attached via {}", l.target(), l.mechanism()));
        drop(l);
    }
    if !our_events().is_empty() {
        return Err(format!("tracefs events left: {:?}", our_events()));
    }
    Ok(out.join("; "))
}

fn kprobe_multi(ebpf: &Ebpf) -> Res {
    let multi = prog(ebpf, "on_multi")?;
    let o = AttachOpts {
        cookie: 5,
        ..AttachOpts::default()
    };
    match multi.attach_with(o) {
        Ok(link) => {
            let c0 = count(ebpf, MULTI_COOKIES)?;
            let r = fires_then_stops(ebpf, MULTI, link, Mechanism::BpfLink)?;
            let c1 = count(ebpf, MULTI_COOKIES)?;
            if c1 < c0 + 5 * OPENS {
                return Err(format!("cookies {c0} -> {c1}"));
            }
            // Where kprobe.multi works, kprobe.session (6.10) may too: its
            // program runs at entry and at return.
            let s = match prog(ebpf, "on_session")?.attach() {
                Ok(link) => {
                    let what = format!("{} via {}", link.target(), link.mechanism());
                    let before = count(ebpf, SESSION)?;
                    open_files()?;
                    let during = count(ebpf, SESSION)?;
                    if during < before + 2 * OPENS {
                        return Err(format!("{what}: {before} -> {during} after {OPENS} opens"));
                    }
                    drop(link);
                    let after = count(ebpf, SESSION)?;
                    open_files()?;
                    if count(ebpf, SESSION)? != after {
                        return Err(format!("{what}: still counting after drop"));
                    }
                    format!(
                        "{what}: fired {} (entry and return), stopped",
                        during - before
                    )
                }
                Err(err) => format!("kprobe.session refused: {err}"),
            };
            Ok(format!("{r}; cookies summed {}; {s}", c1 - c0))
        }
        Err(err) => match &err.kind {
            AttachErrorKind::Unsupported(w) if w.contains("EOPNOTSUPP") => {
                Ok(format!("kernel without CONFIG_FPROBE, as expected: {err}"))
            }
            _ => Err(err.to_string()),
        },
    }
}

fn ksyscall(ebpf: &Ebpf) -> Res {
    let e = |e: ember::AttachError| e.to_string();
    let a = fires_then_stops(
        ebpf,
        SYSCALL,
        prog(ebpf, "on_syscall")?.attach().map_err(e)?,
        Mechanism::PerfEventLink,
    )?;
    let b = fires_then_stops(
        ebpf,
        SYSCALL_RET,
        prog(ebpf, "on_syscall_return")?
            .attach_with(opts(AttachMode::Legacy))
            .map_err(e)?,
        Mechanism::TracefsEvent,
    )?;
    Ok(format!("{a}; {b}"))
}

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/fix/kprobe.bpf-el.o".into());
    let ebpf = match EbpfLoader::new().load_file(&path) {
        Ok(e) => e,
        Err(e) => {
            println!("VMTEST kprobe FAIL\nVMINFO load {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ok = true;
    type Check = fn(&Ebpf) -> Res;
    let checks: [(&str, Check); 3] = [
        ("kprobe", kprobe),
        ("kprobe-multi", kprobe_multi),
        ("ksyscall", ksyscall),
    ];
    for (name, check) in checks {
        match check(&ebpf) {
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
