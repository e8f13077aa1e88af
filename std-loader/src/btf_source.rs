//! Finding the running kernel's BTF: sysfs, libbpf's fallback paths, an
//! explicit file, or a btfhub-style directory (plain or `.btf.tar.xz`).
//!
//! An explicit file or a btfhub file stands in for the kernel's BTF as a
//! CO-RE target only ([`KernelBtf::is_running_kernel`] tells them apart):
//! the ids the kernel checks itself (attach targets, kfuncs, typed ksyms)
//! must come from the running kernel, found with
//! [`BtfSearch::running_kernel`].
//!
//! When nothing is found the error lists every place searched and why
//! each failed, so "no BTF" is never the whole story.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use ember_core::btf::Btf;

use crate::FileBytes;

/// Why one candidate location did not give BTF.
#[derive(Debug)]
#[non_exhaustive]
pub enum Why {
    /// The file does not exist.
    Absent,
    /// The file exists but cannot be read.
    PermissionDenied,
    /// Another I/O error.
    Io(io::Error),
    /// The file is not BTF, or an ELF file without `.BTF`, or malformed.
    NotBtf(ember_core::Error),
    /// A btfhub archive that does not hold `<release>.btf`.
    NotInArchive,
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Absent => f.write_str("absent"),
            Why::PermissionDenied => f.write_str("permission denied"),
            Why::Io(e) => write!(f, "{e}"),
            Why::NotBtf(e) => write!(f, "not usable BTF ({e})"),
            Why::NotInArchive => f.write_str("archive has no <release>.btf"),
        }
    }
}

/// Every location searched, in order, with why it failed.
#[derive(Debug)]
pub struct NoKernelBtf {
    /// Kernel release searched for.
    pub release: String,
    /// (location, reason) in search order.
    pub searched: Vec<(PathBuf, Why)>,
    /// Whether an external file (`--btf`, `--btf-dir`) could stand in:
    /// false when the search was for the running kernel's own BTF, which
    /// only the kernel can give; the message then offers no such advice.
    pub external_helps: bool,
}

impl fmt::Display for NoKernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no BTF for kernel {} was found; searched:", self.release)?;
        for (p, why) in &self.searched {
            write!(f, "\n  {}: {why}", p.display())?;
        }
        if !self.external_helps {
            return Ok(());
        }
        write!(
            f,
            "\nsupply one with --btf FILE (raw BTF or an ELF with .BTF, e.g. from btfhub) \
             or --btf-dir DIR (btfhub layout: ID/VERSION_ID/ARCH/RELEASE.btf[.tar.xz])"
        )
    }
}

impl core::error::Error for NoKernelBtf {}

/// Found kernel BTF: its bytes and where they came from.
#[derive(Debug)]
pub struct KernelBtf {
    /// Where it was found (for archives, the archive).
    pub path: PathBuf,
    /// Why this file: which rule picked it (`--btf`, sysfs, a libbpf
    /// fallback path, or the btfhub key it matched).
    pub reason: String,
    /// The places searched before it, with why each failed.
    pub tried: Vec<(PathBuf, Why)>,
    bytes: KernelBytes,
    running: bool,
}

#[derive(Debug)]
enum KernelBytes {
    File(FileBytes),
    Extracted(Vec<u8>),
}

impl KernelBtf {
    /// The BTF bytes (raw, or an ELF file with `.BTF`).
    pub fn bytes(&self) -> &[u8] {
        match &self.bytes {
            KernelBytes::File(f) => f,
            KernelBytes::Extracted(v) => v,
        }
    }

    /// Parses the BTF.
    ///
    /// # Errors
    /// When it is malformed (already checked once when it was found by
    /// [`find_kernel_btf`]).
    pub fn btf(&self) -> ember_core::Result<Btf<'_>> {
        Btf::parse_any(self.bytes(), None)
    }

    /// Whether this is the running kernel's own BTF (sysfs or one of
    /// libbpf's fallback paths for its release), whose type ids are the
    /// kernel's; false for an explicit file or a btfhub file, which serve
    /// as CO-RE targets only.
    pub fn is_running_kernel(&self) -> bool {
        self.running
    }
}

/// Where to look, in addition to the standard places.
#[derive(Debug, Default, Clone)]
pub struct BtfSearch {
    /// An explicit file: used alone when given (a CO-RE target only, as
    /// libbpf's `btf_custom_path`).
    pub file: Option<PathBuf>,
    /// A btfhub-style directory, searched after the standard places (a
    /// CO-RE target only).
    pub hub_dir: Option<PathBuf>,
    /// Override of the kernel release (default: `/proc/sys/kernel/osrelease`).
    pub release: Option<String>,
    /// Override of the sysfs path (tests).
    pub sysfs: Option<PathBuf>,
    /// Override of `/etc/os-release` (tests).
    pub os_release: Option<PathBuf>,
    /// Override of the machine (`uname -m`; default
    /// `/proc/sys/kernel/arch`, else the build's architecture).
    pub arch: Option<String>,
}

impl BtfSearch {
    /// The same search without the external sources (`file`, `hub_dir`):
    /// where the running kernel's own BTF is, whose ids attach targets,
    /// kfuncs and typed ksyms must use.
    pub fn running_kernel(&self) -> BtfSearch {
        BtfSearch {
            file: None,
            hub_dir: None,
            ..self.clone()
        }
    }
}

pub(crate) fn why(e: io::Error) -> Why {
    match e.kind() {
        io::ErrorKind::NotFound => Why::Absent,
        io::ErrorKind::PermissionDenied => Why::PermissionDenied,
        _ => Why::Io(e),
    }
}

/// Opens `p`; validates it when `check`, else leaves that to whoever
/// parses it next (where a bad file ends the search anyway).
fn try_file(p: &Path, running: bool, check: Check) -> Result<KernelBtf, Why> {
    let bytes = FileBytes::open(p).map_err(why)?;
    if check == Check::Now {
        Btf::parse_any(&bytes, None).map_err(Why::NotBtf)?;
    }
    Ok(KernelBtf {
        path: p.to_owned(),
        reason: String::new(),
        tried: Vec::new(),
        bytes: KernelBytes::File(bytes),
        running,
    })
}

/// Largest archive accepted, and largest BTF taken out of one: the
/// biggest vmlinux BTF is under 10 MiB, so these are generous bounds on
/// what a corrupt or hostile archive can make us allocate.
#[cfg(feature = "btfhub")]
const MAX_ARCHIVE: u64 = 256 << 20;
/// Largest tar stream a btfhub archive may expand to.
pub const MAX_EXTRACTED: u64 = 512 << 20;

/// Without the `btfhub` feature: an archive that exists is named as
/// unsupported.
#[cfg(not(feature = "btfhub"))]
pub(crate) fn extract(p: &Path, _want: Option<&str>) -> Result<Vec<u8>, Why> {
    std::fs::metadata(p).map_err(why)?;
    Err(Why::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        "ember was built without its btfhub feature (.btf.tar.xz archives)",
    )))
}

/// Without the `btfhub` feature there is no xz decoder: see the other
/// `extract_archive`.
///
/// # Errors
/// Always [`Why::Io`] (`Unsupported`).
#[cfg(not(feature = "btfhub"))]
pub fn extract_archive(
    _packed: &[u8],
    _want: Option<&str>,
    _max_extracted: u64,
) -> Result<Vec<u8>, Why> {
    Err(Why::Io(io::Error::new(
        io::ErrorKind::Unsupported,
        "ember was built without its btfhub feature (.btf.tar.xz archives)",
    )))
}

/// The BTF file in a btfhub `.btf.tar.xz`: the entry named `want`
/// (`<release>.btf`), or the first `*.btf` entry when `want` is `None`.
#[cfg(feature = "btfhub")]
pub(crate) fn extract(p: &Path, want: Option<&str>) -> Result<Vec<u8>, Why> {
    let f = std::fs::File::open(p).map_err(why)?;
    let mut packed = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(f, MAX_ARCHIVE), &mut packed).map_err(why)?;
    extract_archive(&packed, want, MAX_EXTRACTED)
}

/// The BTF entry of a btfhub `.btf.tar.xz` already in memory: the one
/// named `want`, or the first `*.btf` when `want` is `None`; the tar
/// stream is held to `max_extracted` bytes (the loader uses
/// [`MAX_EXTRACTED`]).
///
/// # Errors
/// [`Why::Io`] for a corrupt xz or tar stream or one that expands past
/// `max_extracted`, [`Why::NotBtf`] when the entry is not BTF, and
/// [`Why::NotInArchive`] when no entry matches.
#[cfg(feature = "btfhub")]
pub fn extract_archive(
    packed: &[u8],
    want: Option<&str>,
    max_extracted: u64,
) -> Result<Vec<u8>, Why> {
    let mut tar = Vec::new();
    lzma_rs::xz_decompress(&mut &packed[..], &mut (&mut tar).take_limit(max_extracted))
        .map_err(|e| Why::Io(io::Error::other(e.to_string())))?;
    let mut archive = tar::Archive::new(&tar[..]);
    for entry in archive.entries().map_err(Why::Io)? {
        let mut entry = entry.map_err(Why::Io)?;
        let name = entry
            .path()
            .map_err(Why::Io)?
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let hit = match want {
            Some(w) => name == w,
            None => name.ends_with(".btf"),
        };
        if hit {
            let mut out = Vec::new();
            io::Read::read_to_end(&mut entry, &mut out).map_err(Why::Io)?;
            Btf::parse_any(&out, None).map_err(Why::NotBtf)?;
            return Ok(out);
        }
    }
    Err(Why::NotInArchive)
}

/// `<release>.btf` out of a btfhub `.btf.tar.xz`.
fn try_archive(p: &Path, release: &str) -> Result<KernelBtf, Why> {
    let out = extract(p, Some(&format!("{release}.btf")))?;
    Ok(KernelBtf {
        path: p.to_owned(),
        reason: String::new(),
        tried: Vec::new(),
        bytes: KernelBytes::Extracted(out),
        running: false,
    })
}

/// What picks a file in a btfhub tree `ID/VERSION_ID/ARCH/RELEASE.btf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubKey {
    /// `ID` from os-release (`ubuntu`, `debian`, `centos`, `amzn`...).
    pub id: String,
    /// `VERSION_ID` from os-release (`20.04`, `12`, `7`...).
    pub version_id: String,
    /// btfhub's architecture name: `x86_64` or `arm64` (`uname -m`,
    /// with `aarch64` spelled as btfhub does).
    pub arch: String,
    /// The kernel release (`uname -r`).
    pub release: String,
    /// The os-release file read.
    pub os_release: PathBuf,
}

impl HubKey {
    /// The two candidates under `dir`, in the order tried: the plain
    /// file, then btfhub's archive.
    pub fn candidates(&self, dir: &Path) -> [PathBuf; 2] {
        let base = dir.join(&self.id).join(&self.version_id).join(&self.arch);
        [
            base.join(format!("{}.btf", self.release)),
            base.join(format!("{}.btf.tar.xz", self.release)),
        ]
    }
}

impl fmt::Display for HubKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ID={} VERSION_ID={} (from {}), arch {} (uname -m), release {} (uname -r)",
            self.id,
            self.version_id,
            self.os_release.display(),
            self.arch,
            self.release
        )
    }
}

/// One `KEY=value` of an os-release file (value unquoted), `""` if absent.
fn os_field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
        .unwrap_or_default()
}

/// btfhub's name for a `uname -m` machine.
fn hub_arch(machine: &str) -> String {
    match machine {
        "aarch64" | "arm64" => "arm64".into(),
        m => m.into(),
    }
}

/// The btfhub key of this machine (or of `search`'s overrides):
/// os-release as systemd reads it (`/etc/os-release`, else
/// `/usr/lib/os-release`), `uname -m` and `uname -r`.
pub fn hub_key(search: &BtfSearch, release: &str) -> HubKey {
    let paths = match &search.os_release {
        Some(p) => vec![p.clone()],
        None => vec![
            PathBuf::from("/etc/os-release"),
            PathBuf::from("/usr/lib/os-release"),
        ],
    };
    let (os_release, text) = paths
        .iter()
        .find_map(|p| Some((p.clone(), std::fs::read_to_string(p).ok()?)))
        .unwrap_or_else(|| (paths[0].clone(), String::new()));
    let machine = search.arch.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/arch")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| std::env::consts::ARCH.to_owned())
    });
    HubKey {
        id: os_field(&text, "ID"),
        version_id: os_field(&text, "VERSION_ID"),
        arch: hub_arch(&machine),
        release: release.to_owned(),
        os_release,
    }
}

/// `Read::take` for a `Vec` sink: writes past `limit` bytes fail.
#[cfg(feature = "btfhub")]
trait TakeLimit {
    fn take_limit(self, limit: u64) -> Limited<Self>
    where
        Self: Sized;
}

#[cfg(feature = "btfhub")]
impl<W: io::Write> TakeLimit for W {
    fn take_limit(self, limit: u64) -> Limited<W> {
        Limited {
            w: self,
            left: limit,
        }
    }
}

#[cfg(feature = "btfhub")]
struct Limited<W> {
    w: W,
    left: u64,
}

#[cfg(feature = "btfhub")]
impl<W: io::Write> io::Write for Limited<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() as u64 > self.left {
            return Err(io::Error::other("archive expands past the size limit"));
        }
        let n = self.w.write(b)?;
        self.left -= n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// Finds kernel BTF: `search.file` alone when given; otherwise sysfs, then
/// libbpf's fallback paths for the release, then `search.hub_dir`.
///
/// # Errors
/// [`NoKernelBtf`], listing every location and why it failed.
pub fn find_kernel_btf(search: &BtfSearch) -> Result<KernelBtf, NoKernelBtf> {
    find(search, Check::Now)
}

/// When a candidate file is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// While searching: every file found is known to parse.
    Now,
    /// The explicit file and sysfs, where a bad file ends the search
    /// anyway, are left for the caller's one parse: validating vmlinux
    /// twice doubled the biggest user-space cost of a load.
    Terminal,
}

/// [`find_kernel_btf`] for a caller that parses the result at once and
/// names the file if that fails (the loader): the explicit file and sysfs
/// are not validated here, fallback paths still are (a bad one is skipped).
///
/// # Errors
/// As [`find_kernel_btf`].
pub(crate) fn find_kernel_btf_to_parse(search: &BtfSearch) -> Result<KernelBtf, NoKernelBtf> {
    find(search, Check::Terminal)
}

fn find(search: &BtfSearch, terminal: Check) -> Result<KernelBtf, NoKernelBtf> {
    let release = search.release.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    });
    let mut searched = Vec::new();
    let external_helps = true;
    if let Some(f) = &search.file {
        return match try_file(f, false, terminal) {
            Ok(mut k) => {
                k.reason = "given explicitly (--btf)".into();
                Ok(k)
            }
            Err(w) => Err(NoKernelBtf {
                release,
                searched: vec![(f.clone(), w)],
                external_helps,
            }),
        };
    }
    let r = &release;
    let mut paths = vec![
        search
            .sysfs
            .clone()
            .unwrap_or_else(|| PathBuf::from("/sys/kernel/btf/vmlinux")),
    ];
    paths.extend(
        [
            format!("/boot/vmlinux-{r}"),
            format!("/lib/modules/{r}/vmlinux-{r}"),
            format!("/lib/modules/{r}/build/vmlinux"),
            format!("/usr/lib/modules/{r}/kernel/vmlinux"),
            format!("/usr/lib/debug/boot/vmlinux-{r}"),
            format!("/usr/lib/debug/boot/vmlinux-{r}.debug"),
            format!("/usr/lib/debug/lib/modules/{r}/vmlinux"),
        ]
        .map(PathBuf::from),
    );
    for (i, p) in paths.into_iter().enumerate() {
        let check = if i == 0 { terminal } else { Check::Now };
        match try_file(&p, true, check) {
            Ok(mut k) => {
                k.reason = if i == 0 {
                    "the running kernel's own BTF (sysfs)".into()
                } else {
                    format!("libbpf's fallback path for release {r}")
                };
                if search.hub_dir.is_some() {
                    k.reason
                        .push_str("; --btf-dir is searched only when the kernel has none");
                }
                k.tried = searched;
                return Ok(k);
            }
            // sysfs present but unusable is an error, not a reason to guess.
            Err(w @ Why::NotBtf(_)) if i == 0 => {
                searched.push((p, w));
                return Err(NoKernelBtf {
                    release,
                    searched,
                    external_helps,
                });
            }
            Err(w) => searched.push((p, w)),
        }
    }
    if let Some(dir) = &search.hub_dir {
        let key = hub_key(search, r);
        let [plain, packed] = key.candidates(dir);
        let found = match try_file(&plain, false, Check::Now) {
            Ok(k) => Ok(k),
            Err(w) => {
                searched.push((plain, w));
                try_archive(&packed, r).map_err(|w| searched.push((packed, w)))
            }
        };
        if let Ok(mut k) = found {
            k.reason = format!("btfhub tree {}: {key}", dir.display());
            k.tried = searched;
            return Ok(k);
        }
    }
    Err(NoKernelBtf {
        release,
        searched,
        external_helps,
    })
}

/// One module's BTF file, read but not yet parsed (parse it as split BTF
/// over vmlinux with [`ModuleBtf::btf`]).
#[derive(Debug)]
pub struct ModuleBtf {
    /// Module name (the file name under `/sys/kernel/btf`).
    pub name: String,
    /// Where it was read from.
    pub path: PathBuf,
    bytes: FileBytes,
}

impl ModuleBtf {
    /// A module BTF from bytes obtained elsewhere (e.g. `bpf(2)`).
    pub fn from_bytes(name: String, path: PathBuf, bytes: FileBytes) -> ModuleBtf {
        ModuleBtf { name, path, bytes }
    }

    /// Parses the module's split BTF over `vmlinux`.
    ///
    /// # Errors
    /// When the module BTF is malformed or does not continue `vmlinux`.
    pub fn btf<'a>(&'a self, vmlinux: &'a Btf<'a>) -> ember_core::Result<Btf<'a>> {
        Btf::parse_any(&self.bytes, Some(vmlinux))
    }
}

/// Reads every module BTF in `dir` (default `/sys/kernel/btf`) except
/// vmlinux, in name order. A directory without modules is not an error
/// (kernels before 5.11 or without `CONFIG_DEBUG_INFO_BTF_MODULES`); a
/// module whose file cannot be read is reported in the second list and
/// does not stop the others.
pub fn module_btfs(dir: Option<&Path>) -> (Vec<ModuleBtf>, Vec<(PathBuf, Why)>) {
    let dir = dir.unwrap_or(Path::new("/sys/kernel/btf"));
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        log::info!("no module BTF: {} is not readable", dir.display());
        return (ok, failed);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "vmlinux"))
        .collect();
    ember_core::order::sort(&mut paths);
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match FileBytes::open(&path) {
            Ok(bytes) => ok.push(ModuleBtf { name, path, bytes }),
            Err(e) => failed.push((path, why(e))),
        }
    }
    (ok, failed)
}

#[cfg(all(test, feature = "btfhub"))]
mod tests {
    use super::{Why, extract_archive};

    /// `entries` as a `.tar.xz`.
    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &tar[..], &mut out).unwrap();
        out
    }

    #[test]
    fn extracts_by_name_and_holds_to_the_cap() {
        let btf = include_bytes!("../../fuzz/seeds/btf/fixture-el.btf");
        let xz = archive(&[("notes.txt", b"hi"), ("6.1.0-1.btf", btf)]);
        let got = extract_archive(&xz, Some("6.1.0-1.btf"), 1 << 20).unwrap();
        assert_eq!(got, btf);
        assert_eq!(extract_archive(&xz, None, 1 << 20).unwrap(), btf);
        assert!(matches!(
            extract_archive(&xz, Some("5.4.0.btf"), 1 << 20),
            Err(Why::NotInArchive)
        ));
        // The tar stream (headers, both entries, trailer) is over 2 KiB.
        let e = extract_archive(&xz, None, 2048).unwrap_err();
        assert!(e.to_string().contains("size limit"), "{e}");
        let bad = archive(&[("x.btf", b"not btf")]);
        assert!(matches!(
            extract_archive(&bad, None, 1 << 20),
            Err(Why::NotBtf(_))
        ));
    }
}
