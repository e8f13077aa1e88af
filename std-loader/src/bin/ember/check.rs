//! `ember core check`: a portability matrix of objects' programs over
//! every kernel BTF of a tree (the work is `ember::check`).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use ember::Error;
use ember::btf_tree::{default_jobs, par_map, scan};
use ember::check::{CheckObject, Row, check_btf, unusable};
use ember::ember_core::btf::Btf;
use ember::ember_core::object::{Object, object_name};

use crate::{context, read};

/// Arguments of `ember core check`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// BPF objects to check.
    #[arg(required = true)]
    objects: Vec<PathBuf>,
    /// A tree of kernel BTF files, searched recursively: raw BTF, ELF
    /// files with .BTF, or btfhub's .btf.tar.xz.
    #[arg(long = "btf-dir")]
    btf_dir: PathBuf,
    /// One JSON object per (object, BTF, program) per line.
    #[arg(long)]
    json: bool,
    /// Threads (default: every core this process may use).
    #[arg(short = 'j', long = "jobs", value_parser = clap::value_parser!(u32).range(1..=4096))]
    jobs: Option<u32>,
    /// Print how many BTF files were checked per second (stderr).
    #[arg(long)]
    stats: bool,
}

/// Runs `ember core check`; fails (after printing the matrix) when any
/// cell is not ok, so a release script can gate on it.
pub(crate) fn run(a: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let bytes = a
        .objects
        .iter()
        .map(|p| read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut objs = Vec::new();
    for (p, b) in a.objects.iter().zip(&bytes) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        objs.push(
            Object::parse(b, object_name(name)).map_err(|source| Error::Object {
                path: p.clone(),
                source: source.into(),
            })?,
        );
    }
    let checked: Vec<CheckObject<'_, '_>> = a
        .objects
        .iter()
        .zip(&objs)
        .map(|(p, o)| CheckObject::new(p.display().to_string(), o))
        .collect();
    let (files, _skipped) =
        scan(&a.btf_dir).map_err(|e| context(format!("cannot read {}", a.btf_dir.display()), e))?;
    if files.is_empty() {
        return Err(format!("no kernel BTF files under {}", a.btf_dir.display()).into());
    }
    let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
    let t0 = Instant::now();
    let matrix: Vec<Vec<Row>> = par_map(files.len(), jobs, |i| {
        let f = &files[i];
        let name = f.rel.display().to_string();
        match f.read() {
            Err(why) => unusable(&checked, &name, &why.to_string()),
            Ok(b) => match Btf::parse_any(&b, None) {
                Err(e) => unusable(&checked, &name, &e.to_string()),
                Ok(btf) => check_btf(&checked, &btf, &name),
            },
        }
    });
    let elapsed = t0.elapsed();
    let rows: Vec<&Row> = matrix.iter().flatten().collect();
    let mut o = std::io::stdout().lock();
    if a.json {
        for r in &rows {
            writeln!(o, "{}", serde_json::to_string(r)?)?;
        }
    } else {
        write!(o, "{}", table(&rows))?;
    }
    if a.stats {
        eprintln!(
            "checked {} BTF files x {} objects on {jobs} threads: {} BTF/s",
            files.len(),
            objs.len(),
            crate::decimal::Decimal::ratio(
                files.len() as u128,
                elapsed.as_nanos(),
                1_000_000_000,
                1
            )
        );
    }
    let bad = rows.iter().filter(|r| !r.ok).count();
    if bad > 0 {
        return Err(format!(
            "{bad} of {} (object, BTF, program) cells are not ok",
            rows.len()
        )
        .into());
    }
    Ok(())
}

/// The human table: one line per cell, each error indented below it.
fn table(rows: &[&Row]) -> String {
    use core::fmt::Write as _;
    let w = |f: fn(&Row) -> usize, head: &str| {
        rows.iter().map(|r| f(r)).max().unwrap_or(0).max(head.len())
    };
    let (wb, wo, wp) = (
        w(|r| r.btf.len(), "BTF"),
        w(|r| r.object.len(), "OBJECT"),
        w(|r| r.program.len(), "PROGRAM"),
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:wb$}  {:wo$}  {:wp$}  RESULT",
        "BTF", "OBJECT", "PROGRAM"
    );
    for r in rows {
        let result = if r.ok {
            format!("ok ({} relocations)", r.relocations)
        } else {
            let missing = r.errors.len() - r.poisoned;
            format!(
                "FAIL ({} of {} poisoned, {missing} other)",
                r.poisoned, r.relocations
            )
        };
        let _ = writeln!(
            s,
            "{:wb$}  {:wo$}  {:wp$}  {result}",
            r.btf, r.object, r.program
        );
        for e in &r.errors {
            let _ = writeln!(s, "    {e}");
        }
    }
    s
}
