//! Files, directories and pins, through rustix.

use alloc::string::String;
use alloc::vec::Vec;

use ember_sys::{BorrowedFd, Errno, SysError};
use rustix::fs::{self, Mode, OFlags};

/// The largest file read: an object or the kernel's BTF (vmlinux BTF is
/// a few MiB).
const MAX_FILE: usize = 256 << 20;

/// The whole file at `path`.
pub(crate) fn read(path: &str) -> Result<Vec<u8>, Errno> {
    let fd = fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    // sysfs and procfs files may say 0 or a page: only a hint.
    let hint = fs::fstat(&fd).map_or(0, |s| usize::try_from(s.st_size).unwrap_or(0));
    let mut out = Vec::new();
    out.try_reserve_exact(hint.min(MAX_FILE).saturating_add(1))
        .map_err(|_| Errno::NOMEM)?;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match rustix::io::read(&fd, &mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        if out.len().saturating_add(n) > MAX_FILE {
            return Err(Errno::FBIG);
        }
        out.try_reserve(n).map_err(|_| Errno::NOMEM)?;
        out.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
    }
}

/// `mkdir -p`: creates `path` and the directories above it; those it
/// created go to `made`.
pub(crate) fn mkdir_all(path: &str, made: &mut Vec<String>) -> Result<(), Errno> {
    let ends = path
        .match_indices('/')
        .map(|(i, _)| i)
        .chain([path.len()])
        .filter(|&i| i > 0);
    for end in ends {
        let dir = path.get(..end).unwrap_or(path);
        match fs::mkdir(dir, Mode::from_bits_truncate(0o755)) {
            Ok(()) => made.push(String::from(dir)),
            Err(Errno::EXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Pins and directories made so far, removed again if a later step
/// fails.
#[derive(Default)]
pub(crate) struct Pins {
    files: Vec<String>,
    /// Directories this run created, outermost first.
    pub(crate) dirs: Vec<String>,
}

impl Pins {
    /// Pins `fd` at `path` and remembers it.
    pub(crate) fn pin(&mut self, fd: BorrowedFd<'_>, path: &str) -> Result<(), String> {
        let c = alloc::ffi::CString::new(path).map_err(|_| String::from("a NUL in the path"))?;
        ember_sys::obj_pin(fd, &c).map_err(|e| sys(&e))?;
        self.files.push(String::from(path));
        Ok(())
    }

    /// Removes every pin made, newest first, then the directories made
    /// (those left empty).
    pub(crate) fn undo(&self) {
        // Best effort: the step that failed is what gets reported.
        for p in self.files.iter().rev() {
            let _ = fs::unlink(p.as_str());
        }
        for d in self.dirs.iter().rev() {
            let _ = fs::rmdir(d.as_str());
        }
    }
}

/// `BPF_OBJ_PIN: EEXIST`.
pub(crate) fn sys(e: &SysError) -> String {
    alloc::format!("{}: {}", e.cmd, errno(e.errno))
}

/// An errno by its name where it is a common one (no strerror without
/// libc's locale tables), else its number.
pub(crate) fn errno(e: Errno) -> String {
    let name = match e {
        Errno::PERM => "EPERM (operation not permitted)",
        Errno::NOENT => "ENOENT (no such file or directory)",
        Errno::SRCH => "ESRCH",
        Errno::INTR => "EINTR",
        Errno::IO => "EIO",
        Errno::BADF => "EBADF",
        Errno::NOMEM => "ENOMEM",
        Errno::ACCESS => "EACCES (permission denied)",
        Errno::FAULT => "EFAULT",
        Errno::BUSY => "EBUSY",
        Errno::EXIST => "EEXIST (file exists)",
        Errno::NOTDIR => "ENOTDIR",
        Errno::ISDIR => "EISDIR",
        Errno::INVAL => "EINVAL (invalid argument)",
        Errno::FBIG => "EFBIG (file too large)",
        Errno::NOSPC => "ENOSPC",
        Errno::TOOBIG => "E2BIG",
        Errno::NOSYS => "ENOSYS",
        Errno::OPNOTSUPP => "EOPNOTSUPP",
        _ => return alloc::format!("errno {}", e.raw_os_error()),
    };
    String::from(name)
}

/// The id of tracepoint `category/name` in tracefs.
pub(crate) fn tracepoint_id(category: &str, name: &str) -> Result<u64, String> {
    let ok = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('/');
    if !ok(category) || !ok(name) {
        return Err(String::from("a tracepoint is CATEGORY/NAME"));
    }
    let mut last = Errno::NOENT;
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let path = alloc::format!("{root}/events/{category}/{name}/id");
        match read(&path) {
            Ok(b) => {
                return core::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| alloc::format!("{path}: not a number"));
            }
            Err(e) => last = e,
        }
    }
    Err(alloc::format!(
        "events/{category}/{name}/id in tracefs: {}",
        errno(last)
    ))
}
