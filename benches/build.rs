//! Links Debian's libbpf for the side-by-side benches, builds the C floor
//! of the name index (src/index_floor.c), and compiles the libbpf peer of
//! the whole-process harness (c/libbpf-driver.c) so that a bench build
//! fails when it no longer builds; benches/whole-process.sh compiles the
//! same file with the same flags.
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rustc-link-lib=bpf");
    println!("cargo:rerun-if-changed=src/index_floor.c");
    cc::Build::new()
        .file("src/index_floor.c")
        .opt_level(2)
        .compile("index_floor");

    println!("cargo:rerun-if-changed=c/libbpf-driver.c");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let status = Command::new(&cc)
        .args(["-O2", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(out.join("libbpf-driver"))
        .args(["c/libbpf-driver.c", "-lbpf"])
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{cc} c/libbpf-driver.c failed: {s}"),
        Err(e) => panic!("cannot run {cc}: {e}"),
    }
}
