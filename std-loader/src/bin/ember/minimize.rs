//! `ember btf minimize`: BTF holding only what objects' CO-RE relocations
//! use, as `bpftool gen min_core_btf` makes.

use std::io::Write as _;
use std::path::PathBuf;

use ember::Error;
use ember::ember_core::minimize::Minimizer;
use ember::ember_core::object::{Object, object_name};
use ember::ember_core::reloc::{Module, Targets};

use crate::{context, parse, read};

/// Arguments of `ember btf minimize`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// BPF objects whose CO-RE relocations decide what is kept.
    #[arg(required = true)]
    pub(crate) objects: Vec<PathBuf>,
    /// The full target BTF (raw, or ELF with .BTF), e.g. a btfhub file.
    #[arg(long, required_unless_present = "btf_dir")]
    btf: Option<PathBuf>,
    /// Minimize every kernel BTF under this tree instead (raw, ELF or
    /// .btf.tar.xz, searched recursively): `-o` is then a directory that
    /// gets the same relative paths.
    #[arg(long = "btf-dir", conflicts_with_all = ["btf", "module_btf"])]
    pub(crate) btf_dir: Option<PathBuf>,
    /// Threads for `--btf-dir` (default: every core).
    #[arg(short = 'j', long = "jobs", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub(crate) jobs: Option<u32>,
    /// Module split BTF over `--btf` (raw, or a `.ko`), searched for the
    /// types vmlinux lacks, as the loader searches them.
    #[arg(long = "module-btf")]
    module_btf: Vec<PathBuf>,
    /// Where to write the minimized BTF (raw). With `--module-btf`, a
    /// directory laid out like /sys/kernel/btf: `vmlinux`, and a split BTF
    /// over it per module that contributed types, named after the module.
    #[arg(short = 'o', long = "output")]
    pub(crate) output: PathBuf,
    /// Print what was kept.
    #[arg(long, short = 'v')]
    pub(crate) verbose: bool,
}

/// Runs `ember btf minimize`.
pub(crate) fn run(a: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let (Some(btf), None) = (&a.btf, &a.btf_dir) else {
        return crate::minimize_tree::run(a);
    };
    let tbytes = read(btf)?;
    let target = parse(btf, &tbytes, None)?;
    let mod_bytes = a
        .module_btf
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut mod_btfs = Vec::new();
    for (p, b) in a.module_btf.iter().zip(&mod_bytes) {
        mod_btfs.push(parse(p, b, Some(&target))?);
    }
    let names: Vec<String> = a
        .module_btf
        .iter()
        .map(|p| {
            p.file_stem()
                .and_then(|n| n.to_str())
                .unwrap_or("module")
                .to_owned()
        })
        .collect();
    let modules: Vec<Module<'_>> = names
        .iter()
        .zip(&mod_btfs)
        .map(|(name, btf)| Module { name, btf })
        .collect();
    let targets = Targets {
        main: &target,
        modules: &modules,
        is_override: false,
    };
    let mut m =
        Minimizer::with_targets(targets).map_err(|e| context(btf.display().to_string(), e))?;
    for p in &a.objects {
        let bytes = read(p)?;
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let obj = Object::parse(&bytes, object_name(name)).map_err(|source| Error::Object {
            path: p.clone(),
            source: source.into(),
        })?;
        let n = m.add_object(&obj).map_err(|e| {
            let where_ = e
                .func
                .and_then(|f| obj.function(f))
                .map_or_else(String::new, |f| format!(" in {}", f.name));
            context(format!("{}{where_}", p.display()), e)
        })?;
        if a.verbose {
            eprintln!("{}: {n} CO-RE relocations", p.display());
        }
    }
    let min = m
        .finish_split()
        .map_err(|e| context("writing minimized BTF", e))?;
    let out = min.base;
    let write = |p: &std::path::Path, b: &[u8]| {
        std::fs::write(p, b).map_err(|e| context(format!("cannot write {}", p.display()), e))
    };
    if a.module_btf.is_empty() {
        write(&a.output, &out)?;
    } else {
        std::fs::create_dir_all(&a.output)
            .map_err(|e| context(format!("cannot create {}", a.output.display()), e))?;
        write(&a.output.join("vmlinux"), &out)?;
        for (name, piece) in names.iter().zip(&min.modules) {
            if let Some(b) = piece {
                write(&a.output.join(name), b)?;
                if a.verbose {
                    eprintln!("{name}: {} bytes of split BTF", b.len());
                }
            }
        }
    }
    if a.verbose {
        let mut o = std::io::stderr().lock();
        writeln!(
            o,
            "kept {} of {} types; {} bytes from {} ({}%)",
            m.keep().len(),
            target.type_count().saturating_sub(1),
            out.len(),
            target.data().len(),
            crate::decimal::Decimal::percent(out.len() as u64, target.data().len() as u64)
        )?;
    }
    Ok(())
}
