//! `ember btf minimize`: BTF holding only what objects' CO-RE relocations
//! use, as `bpftool gen min_core_btf` makes.

use std::io::Write as _;
use std::path::PathBuf;

use ember::Error;
use ember::ember_core::btf::minimize::Minimizer;
use ember::ember_core::object::{Object, object_name};

use crate::{context, parse, read};

/// Arguments of `ember btf minimize`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// BPF objects whose CO-RE relocations decide what is kept.
    #[arg(required = true)]
    objects: Vec<PathBuf>,
    /// The full target BTF (raw, or ELF with .BTF), e.g. a btfhub file.
    #[arg(long)]
    btf: PathBuf,
    /// Where to write the minimized BTF (raw).
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Print what was kept.
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// Runs `ember btf minimize`.
pub(crate) fn run(a: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let tbytes = read(&a.btf)?;
    let target = parse(&a.btf, &tbytes, None)?;
    let mut m = Minimizer::new(&target).map_err(|e| context(a.btf.display().to_string(), e))?;
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
    let out = m
        .finish()
        .map_err(|e| context("writing minimized BTF", e))?;
    std::fs::write(&a.output, &out)
        .map_err(|e| context(format!("cannot write {}", a.output.display()), e))?;
    if a.verbose {
        let mut o = std::io::stderr().lock();
        writeln!(
            o,
            "kept {} of {} types; {} bytes from {} ({:.2}%)",
            m.keep().len(),
            target.type_count().saturating_sub(1),
            out.len(),
            target.data().len(),
            out.len() as f64 * 100.0 / target.data().len().max(1) as f64
        )?;
    }
    Ok(())
}
