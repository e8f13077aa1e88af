//! Links Debian's libbpf for the side-by-side benches, and builds the C
//! floor of the name index (src/index_floor.c).
fn main() {
    println!("cargo:rustc-link-lib=bpf");
    println!("cargo:rerun-if-changed=src/index_floor.c");
    cc::Build::new()
        .file("src/index_floor.c")
        .opt_level(2)
        .compile("index_floor");
}
