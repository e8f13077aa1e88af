//! Trees of kernel BTF files, as btfhub-archive ships them
//! (`ID/VERSION_ID/ARCH/RELEASE.btf.tar.xz`) or any other layout: every
//! file under a directory that is raw BTF, an ELF file with `.BTF`, or an
//! xz tarball holding one `.btf`, found by its magic bytes rather than its
//! name. [`par_map`] spreads per-file work over threads.

use core::sync::atomic::{AtomicUsize, Ordering};
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use crate::FileBytes;
use crate::btf_source::{Why, extract, why};

/// How a kernel BTF file is packaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Packing {
    /// Raw BTF (`/sys/kernel/btf/vmlinux`, btfhub's `.btf`).
    Raw,
    /// An ELF file whose `.BTF` section is the BTF (a `vmlinux`).
    Elf,
    /// An xz-compressed tarball holding `<release>.btf` (btfhub's
    /// `.btf.tar.xz`).
    Archive,
}

/// One kernel BTF file of a tree.
#[derive(Debug, Clone)]
pub struct TreeBtf {
    /// Its full path.
    pub path: PathBuf,
    /// Its path relative to the tree's root (what reports print).
    pub rel: PathBuf,
    /// How it is packaged.
    pub packing: Packing,
}

/// Deepest directory nesting followed (btfhub uses three levels).
const MAX_DEPTH: usize = 16;

impl TreeBtf {
    /// The kernel release its file name spells: the name without
    /// `.btf.tar.xz`, `.tar.xz` or `.btf`.
    pub fn release(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        [".btf.tar.xz", ".tar.xz", ".btf"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_owned()
    }

    /// The BTF bytes: the file itself (raw or ELF), or the `.btf` inside
    /// the archive (`<release>.btf` first, else the first `*.btf`).
    ///
    /// # Errors
    /// The file cannot be read or the archive holds no parseable `.btf`.
    pub fn read(&self) -> Result<FileBytes, Why> {
        match self.packing {
            Packing::Raw | Packing::Elf => FileBytes::open(&self.path).map_err(why),
            Packing::Archive => {
                let named = format!("{}.btf", self.release());
                match extract(&self.path, Some(&named)) {
                    Err(Why::NotInArchive) => extract(&self.path, None),
                    r => r,
                }
                .map(FileBytes::Owned)
            }
        }
    }
}

/// What the first bytes of a file say it is.
fn sniff(path: &Path) -> io::Result<Option<Packing>> {
    let mut head = [0u8; 6];
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(match &head[..n] {
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some(Packing::Archive),
        [0x7f, b'E', b'L', b'F', ..] => Some(Packing::Elf),
        [0x9f, 0xeb, ..] | [0xeb, 0x9f, ..] => Some(Packing::Raw),
        _ => None,
    })
}

/// Every kernel BTF file under `root`, recursively, sorted by path, and
/// the files that were skipped because they are none of the three
/// packings (READMEs, checksums). Symbolic links to directories are not
/// followed, so a tree cannot loop.
///
/// # Errors
/// `root` or a directory under it cannot be read.
pub fn scan(root: &Path) -> io::Result<(Vec<TreeBtf>, Vec<PathBuf>)> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    let mut dirs = vec![(root.to_owned(), 0usize)];
    while let Some((dir, depth)) = dirs.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let path = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                if depth < MAX_DEPTH {
                    dirs.push((path, depth + 1));
                }
                continue;
            }
            if !path.is_file() {
                continue;
            }
            match sniff(&path)? {
                Some(packing) => {
                    let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
                    found.push(TreeBtf { path, rel, packing });
                }
                None => skipped.push(path),
            }
        }
    }
    ember_core::order::sort_by(&mut found, |a, b| a.path.cmp(&b.path));
    ember_core::order::sort(&mut skipped);
    Ok((found, skipped))
}

/// `f(0)..f(n)` on `jobs` threads (at least one), results in index order.
/// Work is handed out one index at a time, so a few slow items (a big
/// archive to decompress) do not leave other threads idle.
pub fn par_map<T: Send>(n: usize, jobs: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, n.max(1));
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return out;
                        }
                        out.push((i, f(i)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all: Vec<(usize, T)> = parts.iter_mut().flat_map(core::mem::take).collect();
    ember_core::order::sort_by_key(&mut all, |(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// The default `-j`: every core this process may use.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A btfhub-style `.btf.tar.xz`: one tar entry `name` holding `btf`,
/// xz-compressed (lzma-rs's encoder: valid xz that `tar -xJf` and
/// [`TreeBtf::read`] open, though less tight than `xz -9`).
///
/// # Errors
/// Only what writing to memory can fail with (a name tar cannot hold),
/// or `Unsupported` when ember is built without its `btfhub` feature.
#[cfg(feature = "btfhub")]
pub fn pack_archive(name: &str, btf: &[u8]) -> io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(btf.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut header, name, btf)?;
    let tarball = b.into_inner()?;
    let mut out = Vec::new();
    lzma_rs::xz_compress(&mut &tarball[..], &mut out)?;
    Ok(out)
}

/// Without the `btfhub` feature there is no xz encoder: see the other
/// `pack_archive`.
///
/// # Errors
/// Always `Unsupported`.
#[cfg(not(feature = "btfhub"))]
pub fn pack_archive(_name: &str, _btf: &[u8]) -> io::Result<Vec<u8>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "ember was built without its btfhub feature (.btf.tar.xz archives)",
    ))
}
