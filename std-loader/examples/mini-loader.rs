//! A minimal loader for an initramfs or a container: loads one object,
//! attaches every program whose section names its target, pins programs,
//! links and maps under a bpffs directory, and exits; what it pinned
//! stays in the kernel.
//!
//! ```text
//! mini-loader OBJ DIR
//!   DIR/maps/NAME    every map (`.` in a name becomes `_`, as libbpf does)
//!   DIR/progs/NAME   every program
//!   DIR/links/NAME   the link of every program attached by its section
//! ```
//!
//! No argument parser and no serde: ember-core, ember-sys and the thin std
//! loader, so that `cargo build --profile min-size --example mini-loader`
//! with `--no-default-features` on ember stays small (README, "Static
//! binaries"). On any failure it removes what it pinned and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ember::{AttachOpts, EbpfLoader};

/// Pins made so far, removed again if a later step fails.
#[derive(Default)]
struct Pins(Vec<PathBuf>);

impl Pins {
    /// Creates `dir` (and its parents) if missing.
    fn mkdir(dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
    }

    fn undo(&self) {
        for p in self.0.iter().rev() {
            // Best effort: the step that failed is what gets reported.
            let _ = std::fs::remove_file(p);
        }
    }
}

fn run(obj: &Path, dir: &Path, pins: &mut Pins) -> Result<(), String> {
    let ebpf = EbpfLoader::new()
        .load_file(obj)
        .map_err(|e| format!("{}: {e}", obj.display()))?;
    let (maps, progs, links) = (dir.join("maps"), dir.join("progs"), dir.join("links"));
    for d in [&maps, &progs, &links] {
        Pins::mkdir(d)?;
    }
    for m in ebpf.maps() {
        let path = maps.join(m.pin_name());
        m.pin(&path)
            .map_err(|e| format!("pin map {} at {}: {e}", m.name(), path.display()))?;
        pins.0.push(path);
    }
    for p in ebpf.programs() {
        let path = progs.join(p.name());
        p.pin(&path)
            .map_err(|e| format!("pin program {} at {}: {e}", p.name(), path.display()))?;
        pins.0.push(path);
    }
    let (attached, skipped) = ebpf
        .attach_all(AttachOpts::default())
        .map_err(|e| e.to_string())?;
    for mut link in attached {
        let path = links.join(link.program());
        link.pin(&path)
            .map_err(|e| format!("pin link of {} at {}: {e}", link.program(), path.display()))?;
        pins.0.push(path);
        println!("attached {} to {}", link.program(), link.target());
    }
    for name in skipped {
        println!("skipped {name}: its section names no target");
    }
    println!("pinned under {}", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    let [obj, dir] = args.as_slice() else {
        eprintln!("usage: mini-loader OBJ BPFFS_DIR");
        return ExitCode::from(2);
    };
    let mut pins = Pins::default();
    match run(Path::new(obj), Path::new(dir), &mut pins) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            pins.undo();
            eprintln!("mini-loader: {e}");
            ExitCode::FAILURE
        }
    }
}
