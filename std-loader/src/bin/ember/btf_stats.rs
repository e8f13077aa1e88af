//! `ember btf stats`: counts per kind, memory, and the time to open and
//! validate a BTF file, repeated so the figure can be checked from outside
//! (each repetition opens the file afresh: mmap on sysfs, else read).

use crate::decimal::Decimal;
use core::time::Duration;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use ember::ember_core::btf::{Btf, Kind};
use ember::{Error, FileBytes};

/// Arguments of `ember btf stats`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// BTF file (raw or ELF).
    file: PathBuf,
    /// Base BTF when FILE is split BTF.
    #[arg(long, short = 'B')]
    base: Option<PathBuf>,
    /// Open and validate the file this many times; report the median,
    /// minimum and maximum.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
    /// Read the file into memory even where it could be mapped (kernel
    /// BTF in sysfs is mapped by default).
    #[arg(long)]
    read: bool,
}

fn open(path: &Path, read: bool) -> Result<FileBytes, Error> {
    let r = if read {
        FileBytes::read(path)
    } else {
        FileBytes::open(path)
    };
    r.map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn parse<'a>(path: &Path, bytes: &'a [u8], base: Option<&'a Btf<'a>>) -> Result<Btf<'a>, Error> {
    Btf::parse_any(bytes, base).map_err(|source| Error::Btf {
        path: path.to_owned(),
        source,
    })
}

/// Runs `ember btf stats`.
pub(crate) fn run(a: &Args) -> Result<(), Box<dyn core::error::Error>> {
    let base_bytes = a.base.as_deref().map(|p| open(p, a.read)).transpose()?;
    let base_btf = match (&a.base, &base_bytes) {
        (Some(p), Some(b)) => Some(parse(p, b, None)?),
        _ => None,
    };
    // Each round: open (mmap or read) + full validation, then drop both.
    let mut times: Vec<Duration> = Vec::with_capacity(a.repeat as usize);
    for _ in 0..a.repeat {
        let t0 = Instant::now();
        let bytes = open(&a.file, a.read)?;
        let n = parse(&a.file, &bytes, base_btf.as_ref())?.type_count();
        times.push(t0.elapsed());
        core::hint::black_box(n);
    }
    ember_core::order::sort(&mut times);
    let median = times[times.len() / 2];
    let bytes = open(&a.file, a.read)?;
    let btf = parse(&a.file, &bytes, base_btf.as_ref())?;
    let mut counts = [0u32; Kind::ALL.len() + 1];
    for t in btf.types() {
        let i = Kind::ALL
            .iter()
            .position(|&k| k == t.kind())
            .unwrap_or(Kind::ALL.len());
        counts[i] += 1;
    }
    let mut o = io::stdout().lock();
    writeln!(o, "file: {}", a.file.display())?;
    writeln!(
        o,
        "types: {} (ids {}..{})",
        btf.types().len(),
        btf.start_id(),
        btf.type_count()
    )?;
    for (k, n) in Kind::ALL.iter().zip(counts) {
        if n != 0 {
            writeln!(o, "  {:<10} {n}", k.name())?;
        }
    }
    if counts[Kind::ALL.len()] != 0 {
        writeln!(o, "  {:<10} {}", "UNKNOWN", counts[Kind::ALL.len()])?;
    }
    writeln!(o, "strings: {} bytes", btf.strings().len())?;
    writeln!(
        o,
        "sorted by name: {}",
        if btf.is_sorted_by_name() {
            "yes (lookups binary-search)"
        } else {
            "no"
        }
    )?;
    let table = btf.heap_bytes();
    let t0 = Instant::now();
    btf.index();
    let index_time = t0.elapsed();
    writeln!(
        o,
        "heap: {} bytes beyond the input (offset table {table}, name index {})",
        btf.heap_bytes(),
        btf.heap_bytes() - table
    )?;
    writeln!(o, "name index: {} ms", Decimal::ms(index_time))?;
    writeln!(o, "endian: {:?}", btf.endian())?;
    let how = match bytes {
        FileBytes::Mapped(_) => "mmap",
        FileBytes::Owned(_) => "read",
    };
    writeln!(
        o,
        "parse: {} ms (median of {}; min {}, max {}; open by {how} + full validation)",
        Decimal::ms(median),
        a.repeat,
        Decimal::ms(times[0]),
        Decimal::ms(times[times.len() - 1])
    )?;
    Ok(())
}
