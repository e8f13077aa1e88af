//! ember's side of the whole-process harness (benches/whole-process.sh)
//! where the CLI does more than the libbpf peer: `open FILE` maps (or
//! reads) a BTF file and validates it fully, as the CLI's `btf` commands
//! do before their work, then exits. `benches/c/libbpf-driver.c open` is
//! its peer (`btf__parse`).

use std::path::Path;
use std::process::ExitCode;

use ember::FileBytes;
use ember::ember_core::btf::Btf;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [mode, file] = args.as_slice() else {
        eprintln!("usage: ember-driver open FILE");
        return ExitCode::from(2);
    };
    if mode != "open" {
        eprintln!("ember-driver: unknown mode '{mode}'");
        return ExitCode::from(2);
    }
    let path = Path::new(file);
    let bytes = match FileBytes::open(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match Btf::parse_any(&bytes, None) {
        Ok(btf) => {
            // Keep the validated result observable so nothing is elided.
            core::hint::black_box(btf.type_count());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{file}: {e}");
            ExitCode::FAILURE
        }
    }
}
