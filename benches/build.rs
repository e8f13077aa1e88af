//! Links Debian's libbpf for the side-by-side benches.
fn main() {
    println!("cargo:rustc-link-lib=bpf");
}
