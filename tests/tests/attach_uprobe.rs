//! Uprobes on this kernel, as root, each shown to fire an exact number of
//! times on functions of this test binary: uprobe and uretprobe through
//! the uprobe PMU (perf-event link) and through tracefs `uprobe_events`
//! (SET_BPF ioctl); a pid filter that excludes this process, then one
//! that names it; a USDT-style semaphore (`ref_ctr_offset`) the kernel
//! counts while attached; a sleepable uprobe; libc's `getpid` by library name
//! (auto-attach from the section, and explicitly by short name `c`);
//! `uprobe.multi` over a glob matching two functions, with cookies, and
//! its return form. Dropping a link stops the counts; missing targets are
//! errors naming them; `attach_to` reads text targets by the section's
//! kind; no tracefs event or fd is left behind.

use core::sync::atomic::{AtomicU16, Ordering};
use std::process::{Child, Command};

use ember::attach::{AttachErrorKind, UprobeLocation, UprobeMultiTarget, UprobeTarget};
use ember::{AttachMode, AttachOpts, Ebpf, EbpfLoader, Link, Mechanism};
use ember_tests::{fixture, kernel_ready, open_fds, serial};

const ENTRY: u32 = 0;
const RETURN: u32 = 1;
const SLEEPABLE: u32 = 2;
const MULTI: u32 = 3;
const MULTI_COOKIES: u32 = 4;
const GETPID: u32 = 5;
const MULTI_RET: u32 = 6;

/// The function the single uprobes go on.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ember_uprobe_target(x: u64) -> u64 {
    core::hint::black_box(x.wrapping_mul(3).wrapping_add(1))
}

/// Two functions one `uprobe.multi` glob matches.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ember_uprobe_multi_a(x: u64) -> u64 {
    core::hint::black_box(x ^ 0x5a)
}

/// See [`ember_uprobe_multi_a`].
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ember_uprobe_multi_b(x: u64) -> u64 {
    core::hint::black_box(x.rotate_left(7))
}

/// A USDT-style semaphore in `.data` (file-backed, as the kernel needs to
/// count it): the kernel adds one while a probe names it.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data")]
pub static EMBER_UPROBE_SEMAPHORE: AtomicU16 = AtomicU16::new(0);

/// Calls `f` `n` times through an opaque pointer (never inlined away).
fn call(f: extern "C" fn(u64) -> u64, n: u64) {
    let f = core::hint::black_box(f);
    for i in 0..n {
        core::hint::black_box(f(core::hint::black_box(i)));
    }
}

fn exe() -> String {
    std::env::current_exe()
        .expect("current_exe")
        .to_str()
        .expect("UTF-8 path")
        .to_owned()
}

fn load() -> Ebpf {
    EbpfLoader::new()
        .load_file(fixture("attach/uprobe.bpf-el.o"))
        .expect("load attach/uprobe")
}

fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("hits")
        .expect("hits")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

/// ember's tracefs uprobe events made by this process.
fn our_tracefs_events() -> Vec<String> {
    let Ok(root) = ember::attach::tracefs::root() else {
        return Vec::new();
    };
    let tag = format!("_{}_", std::process::id());
    std::fs::read_to_string(root.join("uprobe_events"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("ember/") && l.contains(&tag))
        .map(str::to_owned)
        .collect()
}

fn mode(mode: AttachMode) -> AttachOpts {
    AttachOpts {
        mode,
        ..AttachOpts::default()
    }
}

/// Checks that `link` counts `n` calls of `f` in `slot` exactly, then
/// that nothing counts once it is dropped.
fn fires_exactly(ebpf: &Ebpf, link: Link, slot: u32, f: extern "C" fn(u64) -> u64, what: &str) {
    let before = count(ebpf, slot);
    call(f, 25);
    assert_eq!(count(ebpf, slot) - before, 25, "{what}: hits for 25 calls");
    drop(link);
    let after = count(ebpf, slot);
    call(f, 25);
    assert_eq!(count(ebpf, slot), after, "{what}: hits after drop");
}

/// A child process killed and reaped on drop, also when a test fails.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn uprobe_and_uretprobe_fire_through_the_pmu_and_through_tracefs() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let exe = exe();
        for (prog, slot, ret) in [("on_entry", ENTRY, false), ("on_return", RETURN, true)] {
            let p = ebpf.program(prog).expect("program");
            let t = UprobeTarget::symbol(&exe, "ember_uprobe_target").retprobe(ret);
            for (m, mech) in [
                (AttachMode::Auto, Mechanism::PerfEventLink),
                (AttachMode::Link, Mechanism::PerfEventLink),
                (AttachMode::Legacy, Mechanism::TracefsEvent),
            ] {
                let link = p.attach_uprobe(&t, mode(m)).expect("attach");
                assert_eq!(link.mechanism(), mech, "{prog} {m:?}");
                let kind = if ret { "uretprobe" } else { "uprobe" };
                assert_eq!(link.target(), format!("{kind} '{exe}:ember_uprobe_target'"));
                assert_eq!(
                    our_tracefs_events().len(),
                    usize::from(m == AttachMode::Legacy),
                    "{prog} {m:?}: a tracefs event only for the legacy path"
                );
                fires_exactly(
                    &ebpf,
                    link,
                    slot,
                    ember_uprobe_target,
                    &format!("{prog} {m:?}"),
                );
                assert!(
                    our_tracefs_events().is_empty(),
                    "{prog} {m:?}: event removed"
                );
            }
        }

        // The same place by raw file offset, and by symbol+0 written as a
        // section would write it.
        let p = ebpf.program("on_entry").expect("program");
        let by_name = UprobeTarget::parse(&format!("{exe}:ember_uprobe_target+0")).expect("parse");
        let data = std::fs::read(&exe).expect("read self");
        let off =
            ember::attach::elf_sym::find_func_offset(&data, "ember_uprobe_target").expect("offset");
        let by_off = UprobeTarget::offset(&exe, off);
        assert_eq!(by_off.location, UprobeLocation::Offset(off));
        for t in [by_name, by_off] {
            let link = p.attach_uprobe(&t, AttachOpts::default()).expect("attach");
            fires_exactly(&ebpf, link, ENTRY, ember_uprobe_target, &t.to_string());
        }

        // As text (`ember run --attach PROG=TARGET`), read as the section's
        // kind: uretprobe for on_return.
        let r = ebpf.program("on_return").expect("program");
        let link = r
            .attach_to(&format!("{exe}:ember_uprobe_target"), AttachOpts::default())
            .expect("attach_to");
        assert!(
            link.target().starts_with("uretprobe '"),
            "{}",
            link.target()
        );
        fires_exactly(&ebpf, link, RETURN, ember_uprobe_target, "attach_to");
        let e = r.attach_to("no-colon", AttachOpts::default()).unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");
        assert!(e.to_string().contains("'no-colon'"), "{e}");
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn ref_ctr_offset_counts_the_semaphore_while_attached() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let exe = exe();
        let data = std::fs::read(&exe).expect("read self");
        let sem = ember::attach::elf_sym::data_offset(&data, "EMBER_UPROBE_SEMAPHORE")
            .expect("semaphore offset");
        let p = ebpf.program("on_entry").expect("program");
        for m in [AttachMode::Auto, AttachMode::Legacy] {
            assert_eq!(EMBER_UPROBE_SEMAPHORE.load(Ordering::SeqCst), 0);
            let t = UprobeTarget::symbol(&exe, "ember_uprobe_target").ref_ctr_offset(sem);
            let link = p.attach_uprobe(&t, mode(m)).expect("attach with semaphore");
            assert_eq!(
                EMBER_UPROBE_SEMAPHORE.load(Ordering::SeqCst),
                1,
                "{m:?}: the kernel counts the attached probe"
            );
            fires_exactly(
                &ebpf,
                link,
                ENTRY,
                ember_uprobe_target,
                &format!("ref_ctr {m:?}"),
            );
            assert_eq!(
                EMBER_UPROBE_SEMAPHORE.load(Ordering::SeqCst),
                0,
                "{m:?}: released on drop"
            );
        }
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn pid_filter_excludes_other_processes() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let exe = exe();
        let p = ebpf.program("on_entry").expect("program");
        let other = Kid(Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep"));
        for m in [AttachMode::Auto, AttachMode::Legacy] {
            let t = UprobeTarget::symbol(&exe, "ember_uprobe_target").pid(Some(other.0.id()));
            let link = p.attach_uprobe(&t, mode(m)).expect("attach");
            let before = count(&ebpf, ENTRY);
            call(ember_uprobe_target, 25);
            assert_eq!(
                count(&ebpf, ENTRY),
                before,
                "{m:?}: another pid's probe fired here"
            );
            drop(link);

            let t = t.pid(Some(std::process::id()));
            let link = p.attach_uprobe(&t, mode(m)).expect("attach to self");
            assert!(
                link.target()
                    .ends_with(&format!("(pid {})", std::process::id()))
            );
            fires_exactly(
                &ebpf,
                link,
                ENTRY,
                ember_uprobe_target,
                &format!("own pid {m:?}"),
            );
        }
        drop(other);
        assert!(our_tracefs_events().is_empty());
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn sleepable_uprobe_fires() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let p = ebpf.program("on_entry_sleepable").expect("program");
        let t = UprobeTarget::symbol(exe(), "ember_uprobe_target");
        let link = p.attach_uprobe(&t, AttachOpts::default()).expect("attach");
        fires_exactly(&ebpf, link, SLEEPABLE, ember_uprobe_target, "uprobe.s");
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

/// `getpid` through libc (what `std::process::id` calls).
fn getpid_n(n: usize) {
    for _ in 0..n {
        core::hint::black_box(std::process::id());
    }
}

#[test]
fn libc_by_library_name() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let p = ebpf.program("on_getpid").expect("program");
        // From the section, `uprobe/libc.so.6:getpid`: every process.
        let link = p.attach().expect("auto-attach");
        assert_eq!(link.target(), "uprobe 'libc.so.6:getpid'");
        let before = count(&ebpf, GETPID);
        getpid_n(30);
        let fired = count(&ebpf, GETPID) - before;
        assert!(fired >= 30, "fired {fired} times for 30 getpid calls");
        drop(link);
        let after = count(&ebpf, GETPID);
        getpid_n(30);
        assert_eq!(count(&ebpf, GETPID), after, "hits after drop");

        // By short name, found in /proc/self/maps, only for this process,
        // and through tracefs too.
        for m in [AttachMode::Auto, AttachMode::Legacy] {
            let t = UprobeTarget::symbol("c", "getpid").pid(Some(std::process::id()));
            let link = p
                .attach_uprobe(&t, mode(m))
                .expect("attach libc by short name");
            let before = count(&ebpf, GETPID);
            getpid_n(30);
            let fired = count(&ebpf, GETPID) - before;
            assert!(
                fired >= 30,
                "{m:?}: fired {fired} times for 30 getpid calls"
            );
            drop(link);
            let after = count(&ebpf, GETPID);
            getpid_n(30);
            assert_eq!(count(&ebpf, GETPID), after, "{m:?}: hits after drop");
        }
        assert!(our_tracefs_events().is_empty());
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn uprobe_multi_covers_a_glob_with_one_link() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let exe = exe();
        let p = ebpf.program("on_multi").expect("program");
        let t = UprobeMultiTarget::pattern(&exe, "ember_uprobe_multi_?");
        let opts = AttachOpts {
            cookie: 3,
            ..AttachOpts::default()
        };
        let link = p.attach_uprobe_multi(&t, opts).expect("attach multi");
        assert_eq!(link.mechanism(), Mechanism::BpfLink);
        assert_eq!(
            link.target(),
            format!("uprobe.multi '{exe}:ember_uprobe_multi_?'")
        );
        let (b, c) = (count(&ebpf, MULTI), count(&ebpf, MULTI_COOKIES));
        call(ember_uprobe_multi_a, 10);
        call(ember_uprobe_multi_b, 15);
        call(ember_uprobe_target, 5);
        assert_eq!(count(&ebpf, MULTI) - b, 25, "both functions, nothing else");
        assert_eq!(
            count(&ebpf, MULTI_COOKIES) - c,
            75,
            "each firing saw cookie 3"
        );
        drop(link);
        let after = count(&ebpf, MULTI);
        call(ember_uprobe_multi_a, 10);
        assert_eq!(count(&ebpf, MULTI), after, "hits after drop");

        // Named functions with a cookie each, in the order given: the sum
        // tells which firing saw which cookie.
        let t = UprobeMultiTarget::symbols(&exe, ["ember_uprobe_multi_a", "ember_uprobe_multi_b"])
            .cookies(vec![1, 100]);
        let link = p
            .attach_uprobe_multi(&t, AttachOpts::default())
            .expect("attach");
        let (b, c) = (count(&ebpf, MULTI), count(&ebpf, MULTI_COOKIES));
        call(ember_uprobe_multi_a, 10);
        call(ember_uprobe_multi_b, 15);
        assert_eq!(count(&ebpf, MULTI) - b, 25);
        assert_eq!(
            count(&ebpf, MULTI_COOKIES) - c,
            10 + 1500,
            "cookies by name"
        );
        drop(link);
        let t = UprobeMultiTarget::symbols(&exe, ["ember_uprobe_multi_a"]).cookies(vec![1, 2]);
        let e = p
            .attach_uprobe_multi(&t, AttachOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");

        // Return probes, limited to this process.
        let r = ebpf.program("on_multi_return").expect("program");
        let t = UprobeMultiTarget::pattern(&exe, "ember_uprobe_multi_*")
            .retprobe(true)
            .pid(Some(std::process::id()));
        let link = r
            .attach_uprobe_multi(&t, AttachOpts::default())
            .expect("attach");
        fires_exactly(
            &ebpf,
            link,
            MULTI_RET,
            ember_uprobe_multi_b,
            "uretprobe.multi",
        );

        // A glob matching nothing names itself; a bare section names no
        // target.
        let t = UprobeMultiTarget::pattern(&exe, "ember_no_such_*");
        let e = p
            .attach_uprobe_multi(&t, AttachOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
        assert!(e.to_string().contains("ember_no_such_*"), "{e}");
        let e = p.attach().unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}

#[test]
fn errors_name_what_is_missing() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = load();
        let exe = exe();
        let p = ebpf.program("on_entry").expect("program");
        let err = |t: &UprobeTarget| p.attach_uprobe(t, AttachOpts::default()).unwrap_err();

        let e = err(&UprobeTarget::symbol(&exe, "ember_no_such_function"));
        assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
        let s = e.to_string();
        assert!(
            s.contains("on_entry") && s.contains("ember_no_such_function"),
            "{s}"
        );
        assert!(s.contains(&exe), "names the binary searched: {s}");

        for bin in ["/nonexistent/ember-bin", "libember_nope.so.3"] {
            let e = err(&UprobeTarget::symbol(bin, "main"));
            assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
            assert!(e.to_string().contains(bin), "{e}");
        }

        // Not an ELF file.
        let e = err(&UprobeTarget::symbol("/proc/self/status", "main"));
        assert!(matches!(e.kind, AttachErrorKind::BadTarget(_)), "{e}");

        // A bare SEC("uprobe") names no target.
        let e = p.attach().unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");

        // A plain uprobe program is no uprobe.multi, and the reverse.
        let t = UprobeMultiTarget::pattern(&exe, "ember_uprobe_multi_*");
        let e = p
            .attach_uprobe_multi(&t, AttachOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
        let m = ebpf.program("on_multi").expect("program");
        let e = m
            .attach_uprobe(
                &UprobeTarget::symbol(&exe, "ember_uprobe_target"),
                AttachOpts::default(),
            )
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::WrongType(_)), "{e}");
        assert!(our_tracefs_events().is_empty());
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}
