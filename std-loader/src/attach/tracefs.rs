//! tracefs: where it is mounted (mounting it when absent), tracepoint ids,
//! and probes created in `kprobe_events` / `uprobe_events` that are
//! removed when dropped.

use core::sync::atomic::{AtomicU32, Ordering};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The tracefs mount point: from `/proc/self/mountinfo`, else the
/// conventional paths, else tracefs mounted at `/sys/kernel/tracing`
/// (which needs root). Found once per process.
///
/// # Errors
/// Why no tracefs could be found or mounted.
pub fn root() -> Result<&'static Path, String> {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ROOT.get_or_init(find_or_mount)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn find_or_mount() -> Result<PathBuf, String> {
    if let Some(p) = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| from_mountinfo(&m))
    {
        return Ok(p);
    }
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(p).join("events").is_dir() {
            return Ok(PathBuf::from(p));
        }
    }
    let at = Path::new("/sys/kernel/tracing");
    rustix::mount::mount(
        "tracefs",
        at,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| {
        format!(
            "tracefs is not mounted and mounting it at {} failed: {e}",
            at.display()
        )
    })?;
    Ok(at.to_owned())
}

/// The first tracefs mount point in a mountinfo text.
pub(crate) fn from_mountinfo(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|l| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPER
        let (left, right) = l.split_once(" - ")?;
        (right.split_whitespace().next()? == "tracefs")
            .then(|| left.split_whitespace().nth(4).map(unescape))
            .flatten()
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> PathBuf {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// The id of tracepoint `category/name` (`events/<category>/<name>/id`).
///
/// # Errors
/// `Ok(None)` when there is no such tracepoint; `Err` with the reason when
/// tracefs cannot be used.
pub fn tracepoint_id(category: &str, name: &str) -> Result<Option<u64>, String> {
    if !valid_component(category) || !valid_component(name) {
        return Ok(None);
    }
    let path = root()?.join("events").join(category).join(name).join("id");
    match std::fs::read_to_string(&path) {
        Ok(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{}: not a number: {:?}", path.display(), s.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// A tracefs path component: no separators, no `.`/`..`.
fn valid_component(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains('/') && !s.contains('\0')
}

/// Which dynamic-event file a probe lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFile {
    /// `kprobe_events`.
    Kprobe,
    /// `uprobe_events`.
    Uprobe,
}

impl ProbeFile {
    fn name(self) -> &'static str {
        match self {
            ProbeFile::Kprobe => "kprobe_events",
            ProbeFile::Uprobe => "uprobe_events",
        }
    }
}

/// The tracefs group ember's probes are created in.
pub const GROUP: &str = "ember";

/// A probe created in tracefs, removed (`-:group/event`) when dropped.
#[derive(Debug)]
pub struct TracefsProbe {
    file: ProbeFile,
    event: String,
}

impl TracefsProbe {
    /// Creates the probe `definition` (what follows `p:group/event ` or
    /// `r:group/event ` in the events file) under a name unique to this
    /// process and call, built from `hint`. `retprobe` picks `r` over `p`;
    /// `maxactive` (kretprobes only) is written as `r<N>`.
    ///
    /// # Errors
    /// Why tracefs refused it (the events file's write error).
    pub fn create(
        file: ProbeFile,
        hint: &str,
        retprobe: bool,
        maxactive: Option<u32>,
        definition: &str,
    ) -> Result<TracefsProbe, String> {
        let event = unique_name(hint);
        let kind = match (retprobe, maxactive) {
            (false, _) => "p".to_owned(),
            (true, None) => "r".to_owned(),
            (true, Some(n)) => format!("r{n}"),
        };
        let line = format!("{kind}:{GROUP}/{event} {definition}\n");
        append(file, &line)?;
        Ok(TracefsProbe { file, event })
    }

    /// The event's name in tracefs (`events/ember/<name>`).
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The event's tracepoint id, for `perf_event_open`.
    ///
    /// # Errors
    /// Why it could not be read.
    pub fn id(&self) -> Result<u64, String> {
        tracepoint_id(GROUP, &self.event)?
            .ok_or_else(|| format!("tracefs has no event {GROUP}/{}", self.event))
    }
}

impl Drop for TracefsProbe {
    fn drop(&mut self) {
        if let Err(e) = append(self.file, &format!("-:{GROUP}/{}\n", self.event)) {
            log::warn!("removing tracefs probe {GROUP}/{}: {e}", self.event);
        }
    }
}

fn append(file: ProbeFile, line: &str) -> Result<(), String> {
    let path = root()?.join(file.name());
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `<hint>_<pid>_<n>`, with characters tracefs rejects replaced, short
/// enough for its event-name limit (64).
fn unique_name(hint: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let clean: String = hint
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    format!("{clean}_{}_{n}", std::process::id())
}

/// Whether the events file exists (the kernel has that kind of dynamic
/// probe and tracefs is mounted).
pub fn has_probe_file(file: ProbeFile) -> bool {
    root().is_ok_and(|r| r.join(file.name()).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_finds_tracefs() {
        let m = "22 1 0:21 / /sys rw - sysfs sysfs rw\n\
                 40 22 0:12 / /sys/kernel/tracing rw,nosuid - tracefs tracefs rw\n";
        assert_eq!(
            from_mountinfo(m),
            Some(PathBuf::from("/sys/kernel/tracing"))
        );
        let m = "40 22 0:12 / /mnt/my\\040trace rw - tracefs none rw\n";
        assert_eq!(from_mountinfo(m), Some(PathBuf::from("/mnt/my trace")));
        assert_eq!(from_mountinfo("garbage\n1 2 3\n"), None);
    }

    #[test]
    fn names_are_unique_and_clean() {
        let a = unique_name("do_sys_openat2+0x10");
        let b = unique_name("do_sys_openat2+0x10");
        assert_ne!(a, b);
        assert!(a.starts_with("do_sys_openat2_0x10_"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(unique_name(&"x".repeat(200)).len() < 64);
    }

    #[test]
    fn components_cannot_escape() {
        assert!(!valid_component(".."));
        assert!(!valid_component("a/b"));
        assert!(valid_component("sys_enter_openat"));
    }
}
