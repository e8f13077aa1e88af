//! `ember btf minimize OBJ... --btf-dir IN -o OUTDIR`: every kernel BTF
//! of a tree minimized into a tree of the same shape, as btfgen makes for
//! shipping inside an application.

use std::path::Path;

use ember::Error;
use ember::btf_tree::{Packing, TreeBtf, default_jobs, pack_archive, par_map, scan};
use ember::ember_core::btf::Btf;
use ember::ember_core::minimize::Minimizer;
use ember::ember_core::object::{Object, object_name};

use crate::minimize::Args;
use crate::{context, read};

/// Sizes of one file, before and after.
struct Done {
    on_disk: (u64, u64),
    btf: (usize, usize),
}

/// Minimizes one file of the tree into `out` (same relative path). Raw
/// and ELF inputs give raw BTF; an archive gives an archive holding
/// `<release>.btf`, as btfhub packs them.
fn one(
    f: &TreeBtf,
    objs: &[Object<'_>],
    out: &Path,
) -> Result<Done, Box<dyn core::error::Error + Send + Sync>> {
    let bytes = f.read().map_err(|w| format!("{}: {w}", f.path.display()))?;
    let full = Btf::parse_any(&bytes, None).map_err(|e| format!("{}: {e}", f.path.display()))?;
    let mut m = Minimizer::new(&full).map_err(|e| format!("{}: {e}", f.path.display()))?;
    for o in objs {
        m.add_object(o)
            .map_err(|e| format!("{}: {e}", f.path.display()))?;
    }
    let min = m
        .finish()
        .map_err(|e| format!("{}: {e}", f.path.display()))?;
    let body = match f.packing {
        Packing::Archive => pack_archive(&format!("{}.btf", f.release()), &min)?,
        _ => min.clone(),
    };
    let dest = out.join(&f.rel);
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    std::fs::write(&dest, &body).map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
    let before = std::fs::metadata(&f.path).map_or(0, |m| m.len());
    Ok(Done {
        on_disk: (before, body.len() as u64),
        btf: (full.data().len(), min.len()),
    })
}

/// Runs tree mode; `a.btf_dir` is set.
pub(crate) fn run(a: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let Some(dir) = &a.btf_dir else {
        return Err("--btf or --btf-dir is required".into());
    };
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
    let (files, skipped) =
        scan(dir).map_err(|e| context(format!("cannot read {}", dir.display()), e))?;
    if files.is_empty() {
        return Err(format!("no kernel BTF files under {}", dir.display()).into());
    }
    let jobs = a.jobs.map_or_else(default_jobs, |j| j as usize);
    let results = par_map(files.len(), jobs, |i| one(&files[i], &objs, &a.output));
    let (mut disk, mut btf) = ((0u64, 0u64), (0usize, 0usize));
    for (f, r) in files.iter().zip(results) {
        let d = r.map_err(|e| -> Box<dyn core::error::Error> { e })?;
        if a.verbose {
            eprintln!(
                "{}: {} -> {} bytes",
                f.rel.display(),
                d.on_disk.0,
                d.on_disk.1
            );
        }
        disk = (disk.0 + d.on_disk.0, disk.1 + d.on_disk.1);
        btf = (btf.0 + d.btf.0, btf.1 + d.btf.1);
    }
    if a.verbose {
        for s in &skipped {
            eprintln!("skipped (not BTF): {}", s.display());
        }
    }
    println!(
        "{} BTF files: {} -> {} bytes on disk ({}%); BTF {} -> {} bytes ({}%)",
        files.len(),
        disk.0,
        disk.1,
        crate::decimal::Decimal::percent(disk.1, disk.0),
        btf.0,
        btf.1,
        crate::decimal::Decimal::percent(btf.1 as u64, btf.0 as u64)
    );
    Ok(())
}
