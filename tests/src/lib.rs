//! Shared helpers for ember's integration tests: where fixtures and oracle
//! inputs live, and how a test that needs the machine skips or fails.
//!
//! A test that needs something the machine may lack (root, a kernel
//! feature, bpftool, clang, the Debian kernel BTF) calls [`skip`] with the
//! reason. Normally that prints the reason and the test returns; with
//! `EMBER_REQUIRE_KERNEL=1` (CI) it fails instead, so CI never passes by
//! skipping.

pub mod ids;
pub mod netns;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether CI demands every environment-dependent test actually run.
pub fn required() -> bool {
    std::env::var_os("EMBER_REQUIRE_KERNEL").is_some_and(|v| v == "1")
}

/// Reports a missing prerequisite: panics under `EMBER_REQUIRE_KERNEL=1`,
/// otherwise prints the reason so the caller can return.
pub fn skip(reason: &str) {
    if required() {
        panic!("EMBER_REQUIRE_KERNEL=1 but this test cannot run: {reason}");
    }
    eprintln!("skipped: {reason}");
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A committed fixture file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// Finds an executable on PATH (or in /usr/sbin, where Debian puts bpftool).
pub fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The directory made by `tests/scripts/kernel-btf.sh` (Debian 6.1 vmlinux
/// and modules), from `EMBER_KERNEL_BTF_DIR` or `target/kernel-btf`.
pub fn kernel_btf_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("EMBER_KERNEL_BTF_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/kernel-btf"));
    dir.join("vmlinux").is_file().then_some(dir)
}

/// Runs a command and returns its stdout, panicking with its stderr on failure.
pub fn run_stdout(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The first differing line of two texts, for assertion messages.
pub fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let mut la = a.lines();
    let mut lb = b.lines();
    let mut n = 1;
    loop {
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x == y => n += 1,
            (x, y) => {
                return Some((
                    n,
                    x.unwrap_or("<end>").to_owned(),
                    y.unwrap_or("<end>").to_owned(),
                ));
            }
        }
    }
}

/// Builds a C oracle from `tests/oracle/<name>.c` against the system's
/// libbpf into `out_dir`, or reports (via [`skip`]) what is missing.
pub fn build_oracle(name: &str, out_dir: &Path) -> Option<PathBuf> {
    let Some(cc) = tool("cc").or_else(|| tool("gcc")).or_else(|| tool("clang")) else {
        skip("no C compiler to build the libbpf oracle");
        return None;
    };
    if !Path::new("/usr/include/bpf/libbpf.h").exists() {
        skip("libbpf-dev is not installed (apt-get install libbpf-dev)");
        return None;
    }
    let out = out_dir.join(name);
    let src = root().join("tests/oracle").join(format!("{name}.c"));
    let st = Command::new(cc)
        .args(["-O1", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-lbpf")
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler: {e}"));
    assert!(st.success(), "building {} failed", src.display());
    Some(out)
}

/// The `ember` CLI of this checkout, built for the profile the tests run
/// under (`cargo test` does not build other packages' binaries, and a
/// stale one must never be tested): `target/<profile>/ember`.
pub fn ember_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test binary path");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>")
                .to_owned();
            let profile = match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") => "dev".to_owned(),
                Some(p) => p.to_owned(),
                None => "release".to_owned(),
            };
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let st = Command::new(cargo)
                .current_dir(root())
                .args(["build", "--quiet", "--bin", "ember", "--profile", &profile])
                .status()
                .expect("run cargo build");
            assert!(st.success(), "building the ember CLI failed");
            dir.join("ember")
        })
        .clone()
}

/// Serializes the tests of one binary that count the process's fds.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether this process runs as root; skips (with a reason) otherwise.
pub fn is_root() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
        });
    if uid.as_deref() != Some("0") {
        skip("bpf(2) tests need root");
        return false;
    }
    true
}

/// Number of open fds of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// Instructions encoded in this machine's byte order, for hand-built
/// programs.
pub fn insns(list: &[ember::ember_core::insn::Insn]) -> Vec<u8> {
    list.iter()
        .flat_map(|i| i.encode(ember::ember_core::Endian::NATIVE))
        .collect()
}

/// `exit`.
pub const EXIT: ember::ember_core::insn::Insn = ember::ember_core::insn::Insn {
    code: 0x95,
    dst: 0,
    src: 0,
    off: 0,
    imm: 0,
};

/// Root, and a kernel with BTF.
pub fn kernel_ready() -> bool {
    if !is_root() {
        return false;
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        skip("this kernel has no /sys/kernel/btf/vmlinux");
        return false;
    }
    true
}

/// A fresh directory in a bpffs, removed (with what was pinned in it) when
/// dropped, also when the test fails.
#[derive(Debug)]
pub struct BpffsDir(PathBuf);

impl Drop for BpffsDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl core::ops::Deref for BpffsDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

/// A fresh directory in the bpffs at /sys/fs/bpf; skips (loudly, so
/// `EMBER_REQUIRE_KERNEL=1` fails) when there is none.
pub fn bpffs_dir(name: &str) -> Option<BpffsDir> {
    let fs = match Command::new("stat")
        .args(["-f", "-c", "%T", "/sys/fs/bpf"])
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(e) => {
            skip(&format!("cannot run stat to find bpffs: {e}"));
            return None;
        }
    };
    if fs != "bpf_fs" {
        skip("no bpffs at /sys/fs/bpf (mount -t bpf bpf /sys/fs/bpf)");
        return None;
    }
    let d = PathBuf::from(format!(
        "/sys/fs/bpf/ember-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bpffs dir");
    Some(BpffsDir(d))
}

/// Opens and closes `/proc/self/stat` `n` times: each open is one
/// `sys_enter_openat` for the tracepoint fixtures to count.
pub fn open_files(n: usize) {
    for _ in 0..n {
        drop(std::fs::File::open("/proc/self/stat").expect("open /proc/self/stat"));
    }
}
