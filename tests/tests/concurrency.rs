//! Concurrency (issue 12): eight threads loading, attaching, triggering
//! and dropping objects at once, sharing one parsed kernel BTF through an
//! `Arc`; and two processes loading the same pinned-by-name map at the
//! same moment, which must both end up with one map; and that race's
//! window (another loader pins the name between ember's check and its
//! pin) hit deterministically through the fault-inject hook.

use core::time::Duration;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Instant;

use ember::ember_core::btf::Btf;
use ember::{Ebpf, EbpfLoader, FileBytes, Link, Map};
use ember_sys::AsFd;
use ember_tests::ids::{Ids, leaked_since};
use ember_tests::{bpffs_dir, fixture, kernel_ready, open_fds, serial};

/// What the threads share or move between them must be safe to.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Btf<'static>>();
    shared::<Arc<Btf<'static>>>();
    shared::<EbpfLoader<'static>>();
    shared::<Ebpf>();
    shared::<Link>();
    shared::<Map>();
};

const THREADS: usize = 8;
const ROUNDS: usize = 10;

fn count(ebpf: &Ebpf) -> u64 {
    let v = ebpf
        .map("counts")
        .expect("counts")
        .lookup(&0u32.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

#[test]
fn eight_threads_load_attach_and_drop_sharing_one_kernel_btf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let bytes = FileBytes::open(Path::new("/sys/kernel/btf/vmlinux")).expect("vmlinux");
    // Parsed once; its name index is built lazily by whichever thread's
    // CO-RE or attach lookup needs it first (a race-safe once cell).
    let vmlinux = Arc::new(Btf::parse(&bytes).expect("parse vmlinux"));
    let object = std::fs::read(fixture("attach/trace.bpf-el.o")).expect("fixture");
    let ids = Ids::now();
    let fds = open_fds();
    let go = Barrier::new(THREADS);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let btf = Arc::clone(&vmlinux);
            let (go, object) = (&go, &object);
            s.spawn(move || {
                go.wait();
                for round in 0..ROUNDS {
                    let at = format!("thread {t} round {round}");
                    let ebpf = EbpfLoader::new()
                        .kernel_btf(&btf)
                        .load(object, "trace.bpf-el.o")
                        .unwrap_or_else(|e| panic!("{at}: load: {e}"));
                    let link = ebpf
                        .program("count_openat")
                        .expect("program")
                        .attach()
                        .unwrap_or_else(|e| panic!("{at}: attach: {e}"));
                    let before = count(&ebpf);
                    for _ in 0..3 {
                        drop(std::fs::File::open("/proc/self/stat").expect("open"));
                    }
                    let fired = count(&ebpf) - before;
                    assert!(fired >= 3, "{at}: fired {fired} times for 3 opens");
                    drop(link);
                    drop(ebpf);
                }
            });
        }
    });
    eprintln!(
        "{THREADS} threads x {ROUNDS} load/attach/trigger/drop rounds in {:?}",
        start.elapsed()
    );
    assert_eq!(open_fds(), fds, "fds leaked");
    let ours = [
        "count_openat",
        "count_openat_b",
        "count_switch",
        "count_switch_btf",
        "count_clock",
        "dump_tasks",
        "dump_counts",
        "counts",
    ];
    let leaked = leaked_since(&ids, &ours);
    assert!(leaked.is_empty(), "kernel objects left: {leaked:?}");
    // Whether the shared BTF answered through its name index or through the
    // targeted pass (`Btf::prefetch`) is the loader's choice; what matters
    // here is that every thread's load, attach and firing succeeded.
}

/// The child half of the pin race: `<pin dir>:<barrier dir>`.
const RACE_ENV: &str = "EMBER_TEST_PIN_RACE";
const ROUNDS_2P: usize = 20;

/// In a child: get ready, say so, wait for the barrier's EOF, load with
/// the pin directory, print what it got.
fn race_child(spec: &str) {
    let (dir, barrier) = spec.split_once(':').expect("spec");
    let barrier = Path::new(barrier);
    // Everything slow and variable happens before the barrier (kernel BTF
    // parse, the feature probes a first load runs, reading the object), so
    // both children reach their map creation close together.
    let bytes = FileBytes::open(Path::new("/sys/kernel/btf/vmlinux")).expect("vmlinux");
    let vmlinux = Btf::parse(&bytes).expect("parse vmlinux");
    let object = std::fs::read(fixture("load.bpf-el.o")).expect("fixture");
    let loader = EbpfLoader::new().kernel_btf(&vmlinux);
    drop(loader.load(&object, "load.bpf-el.o").expect("warm load"));
    let mut fifo = std::fs::File::open(barrier.join("fifo")).expect("open fifo");
    std::fs::write(barrier.join(format!("ready.{}", std::process::id())), b"").expect("ready");
    let mut buf = [0u8; 1];
    // Returns 0 (EOF) for both children the moment the parent closes.
    let _ = fifo.read(&mut buf);
    // Wakeups differ by scheduling; a shared instant, spun on, lines the
    // two loads up closer.
    let at: u128 = std::fs::read_to_string(barrier.join("start"))
        .expect("start")
        .trim()
        .parse()
        .expect("start instant");
    while now_ns() < at {
        core::hint::spin_loop();
    }
    let ebpf = loader
        .pin_dir(dir)
        .load(&object, "load.bpf-el.o")
        .expect("load with pins");
    let runs = ebpf.map("runs").expect("runs");
    let id = ember_sys::map_info(runs.fd().as_fd()).expect("info").id.0;
    let raced = ebpf
        .notes
        .iter()
        .any(|n| n.contains("appeared while loading"));
    println!("pin-race id={id} reused={} raced={raced}", runs.reused());
}

/// Wall-clock nanoseconds, shared by the processes.
fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// What a child printed: map id, reused, raced.
fn parse_child(out: &str) -> (u32, bool, bool) {
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("pin-race "))
        .unwrap_or_else(|| panic!("child printed no result: {out}"));
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in {line}"))
            .to_owned()
    };
    (
        field("id=").parse().expect("id"),
        field("reused=") == "true",
        field("raced=") == "true",
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn two_processes_pinning_one_map_by_name_get_the_same_map() {
    if let Ok(spec) = std::env::var(RACE_ENV) {
        return race_child(&spec);
    }
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("pin_race") else {
        return;
    };
    let scratch =
        Scratch(std::env::temp_dir().join(format!("ember-pin-race-{}", std::process::id())));
    let exe = std::env::current_exe().expect("exe");
    let mut raced = 0;
    for round in 0..ROUNDS_2P {
        let _ = std::fs::remove_dir_all(&scratch.0);
        std::fs::create_dir_all(&scratch.0).expect("scratch");
        let fifo = scratch.0.join("fifo");
        let st = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
        assert!(st.success(), "mkfifo");
        // Held open read-write so the children's opens do not block and
        // their reads block until it is closed.
        let hold = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .expect("hold fifo");
        let spec = format!("{}:{}", dir.display(), scratch.0.display());
        let mut children: Vec<_> = (0..2)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "--exact",
                        "two_processes_pinning_one_map_by_name_get_the_same_map",
                        "--nocapture",
                    ])
                    .env(RACE_ENV, &spec)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn child")
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(&scratch.0)
            .expect("scratch")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("ready."))
            })
            .count()
            < 2
        {
            assert!(
                Instant::now() < deadline,
                "round {round}: children never got ready"
            );
            // A child that died before the barrier: its output says why.
            if children
                .iter_mut()
                .any(|c| c.try_wait().ok().flatten().is_some())
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::write(scratch.0.join("start"), (now_ns() + 20_000_000).to_string())
            .expect("start");
        drop(hold);
        let got: Vec<(u32, bool, bool)> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().expect("child");
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "round {round}: a child failed: {text}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                parse_child(&text)
            })
            .collect();
        let pinned = Map::from_pin(dir.join("runs")).expect("the pin");
        let pinned_id = ember_sys::map_info(pinned.fd().as_fd()).expect("info").id.0;
        assert_eq!(got[0].0, got[1].0, "round {round}: two maps: {got:?}");
        assert_eq!(got[0].0, pinned_id, "round {round}: not the pinned map");
        assert_eq!(
            got.iter().filter(|g| !g.1).count(),
            1,
            "round {round}: exactly one child creates the map: {got:?}"
        );
        raced += got.iter().filter(|g| g.2).count();
        drop(pinned);
        for e in std::fs::read_dir(&*dir).expect("bpffs dir") {
            std::fs::remove_file(e.expect("entry").path()).expect("unpin");
        }
    }
    eprintln!(
        "{ROUNDS_2P} rounds of two processes pinning one map: same map every round; \
         {raced} rounds hit the create-vs-pin race (EEXIST, then reuse)"
    );
}

/// What the deterministic race's hook loads: the pin directory, and the
/// map id the "other loader" pinned.
static OTHER: Mutex<Option<(PathBuf, Option<u32>)>> = Mutex::new(None);

/// The other loader, run by the fault hook just before ember's pin: loads
/// the same object with the same pin directory, so the name is pinned
/// when ember's own `BPF_OBJ_PIN` reaches the kernel.
fn other_loader_pins_first() {
    let mut other = OTHER.lock().expect("lock");
    let Some((dir, id)) = other.as_mut() else {
        return;
    };
    let object = std::fs::read(fixture("load.bpf-el.o")).expect("fixture");
    let ebpf = EbpfLoader::new()
        .pin_dir(&*dir)
        .load(&object, "load.bpf-el.o")
        .expect("the other loader");
    let runs = ebpf.map("runs").expect("runs");
    assert!(!runs.reused(), "the other loader creates the map");
    *id = Some(ember_sys::map_info(runs.fd().as_fd()).expect("info").id.0);
}

#[test]
fn the_create_then_pin_window_is_hit_every_time_and_reuses_the_other_pin() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let Some(dir) = bpffs_dir("pin_window") else {
        return;
    };
    let object = std::fs::read(fixture("load.bpf-el.o")).expect("fixture");
    let clear = || {
        for e in std::fs::read_dir(&*dir).expect("bpffs dir") {
            std::fs::remove_file(e.expect("entry").path()).expect("unpin");
        }
    };
    let load = || {
        EbpfLoader::new()
            .pin_dir(&*dir)
            .load(&object, "load.bpf-el.o")
    };
    // Which call of a pinning load is its BPF_OBJ_PIN: fail each in turn
    // until the report names it.
    ember_sys::fault::count();
    drop(load().expect("clean load"));
    let calls = ember_sys::fault::disarm().calls;
    clear();
    let pin_call = (1..=calls)
        .find(|&n| {
            ember_sys::fault::arm(n, rustix::io::Errno::NOMEM);
            let r = load();
            let rep = ember_sys::fault::disarm();
            drop(r);
            clear();
            rep.failed == Some("BPF_OBJ_PIN")
        })
        .expect("a pinning load makes a BPF_OBJ_PIN call");
    let fds = open_fds();
    for round in 0..5 {
        *OTHER.lock().expect("lock") = Some((dir.to_path_buf(), None));
        ember_sys::fault::before(pin_call, other_loader_pins_first);
        let ebpf = load().unwrap_or_else(|e| panic!("round {round}: {e}"));
        ember_sys::fault::disarm();
        let other = OTHER.lock().expect("lock").take().and_then(|o| o.1);
        let other = other.expect("the hook ran and the other loader pinned");
        let runs = ebpf.map("runs").expect("runs");
        let id = ember_sys::map_info(runs.fd().as_fd()).expect("info").id.0;
        assert_eq!(id, other, "round {round}: ember kept its own map");
        assert!(runs.reused(), "round {round}: the map is the reused pin");
        assert!(
            ebpf.notes.iter().any(|n| n.starts_with("map 'runs': ")
                && n.contains(&*dir.join("runs").to_string_lossy())
                && n.ends_with("appeared while loading; reusing it")),
            "round {round}: no note: {:?}",
            ebpf.notes
        );
        let pinned = Map::from_pin(dir.join("runs")).expect("the pin");
        let pinned_id = ember_sys::map_info(pinned.fd().as_fd()).expect("info").id.0;
        assert_eq!(pinned_id, id, "round {round}: the pin holds another map");
        drop((pinned, ebpf));
        clear();
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}
