//! CPU lists: parsing the kernel's `0-3,5` format, the online CPUs, and
//! the number of possible CPUs that sizes every per-CPU buffer.

use alloc::vec::Vec;

use rustix::io::Errno;

use crate::error::{Result, SysError};

/// Largest CPU number [`parse_cpu_list`] accepts (bounds the allocation).
pub const MAX_CPU: u32 = 1 << 16;

/// `/sys/devices/system/cpu/possible`.
const POSSIBLE: &str = "/sys/devices/system/cpu/possible";
/// `/sys/devices/system/cpu/online`.
const ONLINE: &str = "/sys/devices/system/cpu/online";
/// `/sys/devices/system/cpu/kernel_max`: the highest CPU number the
/// kernel was built for (`NR_CPUS - 1`).
const KERNEL_MAX: &str = "/sys/devices/system/cpu/kernel_max";

fn err(what: &'static str) -> impl Fn(Errno) -> SysError {
    move |errno| SysError { cmd: what, errno }
}

/// Parses a kernel CPU list such as `0-3,5` (trailing newline allowed)
/// into CPU numbers, in the order written.
///
/// # Errors
/// `EINVAL` (`cmd` = `"cpu list"`) for malformed text, a reversed range,
/// a CPU above [`MAX_CPU`], or more than `MAX_CPU + 1` CPUs in all.
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>> {
    let bad = SysError {
        cmd: "cpu list",
        errno: Errno::INVAL,
    };
    let num = |t: &str| {
        t.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= MAX_CPU)
            .ok_or(bad)
    };
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad);
        }
        // A real list names each CPU once, so more entries than CPU
        // numbers is malformed; this caps the output at MAX_CPU + 1
        // entries however often a range repeats.
        let room = usize::try_from(MAX_CPU)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
            .saturating_sub(out.len());
        if usize::try_from(hi - lo).map_or(true, |n| n >= room) {
            return Err(bad);
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// Reads a small sysfs file to the end (a short read must not cut a CPU
/// list short) into `buf`; returns the text.
/// `SYSFS_MAGIC` from `uapi/linux/magic.h`.
const SYSFS_MAGIC: u64 = 0x6265_6572;

pub(crate) fn read_small<'b>(path: &'static str, buf: &'b mut [u8; 4096]) -> Result<&'b str> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(err(path))?;
    // Per-CPU buffers are sized from these files: only the kernel's own
    // sysfs may say how many CPUs there are (a file bind-mounted over it,
    // as container CPU virtualisation does, could undercount, and the
    // kernel would write past a buffer).
    let on_sysfs = rustix::fs::fstatfs(&fd)
        .is_ok_and(|s| u64::try_from(s.f_type).is_ok_and(|t| t == SYSFS_MAGIC));
    if !on_sysfs {
        return Err(err(path)(Errno::PERM));
    }
    let mut len = 0usize;
    loop {
        let rest = buf.get_mut(len..).unwrap_or_default();
        if rest.is_empty() {
            return Err(err(path)(Errno::TOOBIG));
        }
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(n) => len = len.saturating_add(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(err(path)(e)),
        }
    }
    buf.get(..len)
        .and_then(|b| core::str::from_utf8(b).ok())
        .ok_or(err(path)(Errno::INVAL))
}

/// The online CPUs, from `/sys/devices/system/cpu/online`.
///
/// # Errors
/// The errno from opening or reading the file, or a malformed list.
///
/// # References
/// `Documentation/ABI/testing/sysfs-devices-system-cpu`.
pub fn online_cpus() -> Result<Vec<u32>> {
    let mut buf = [0u8; 4096];
    parse_cpu_list(read_small(ONLINE, &mut buf)?)
}

/// Counts the CPUs of a `possible` list, each of which must be at most
/// `kernel_max` and listed once: how many slots a per-CPU map value has.
///
/// # Errors
/// `EINVAL` for an empty or malformed list, a CPU above `kernel_max`, or
/// a CPU listed twice.
pub fn count_possible(list: &str, kernel_max: u32) -> Result<u32> {
    let bad = err(POSSIBLE)(Errno::INVAL);
    let mut cpus = parse_cpu_list(list)?;
    if cpus.is_empty() || cpus.iter().any(|&c| c > kernel_max) {
        return Err(bad);
    }
    let n = cpus.len();
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.len() != n {
        return Err(bad);
    }
    // At most kernel_max + 1 distinct CPUs remain.
    u32::try_from(n).map_err(|_| bad)
}

/// The number of possible CPUs, from `/sys/devices/system/cpu/possible`,
/// bounded by `/sys/devices/system/cpu/kernel_max` + 1.
///
/// This is what sizes every per-CPU buffer in ember (per-CPU map values,
/// perf event arrays): the kernel writes one slot per possible CPU, so a
/// count that is too small would let it write past a Rust buffer. That is
/// why there is no fallback: a file that cannot be read or parsed is an
/// error, never a guess such as 1.
///
/// # Errors
/// The errno from opening or reading either file; `EPERM` when a file is
/// not served by sysfs (something is mounted over it); `EINVAL` for a
/// list that is empty, malformed, or names a CPU above `kernel_max`.
///
/// # References
/// `Documentation/ABI/testing/sysfs-devices-system-cpu`; libbpf
/// `libbpf_num_possible_cpus`.
pub fn possible_cpus() -> Result<u32> {
    let mut buf = [0u8; 4096];
    let max = read_small(KERNEL_MAX, &mut buf)?
        .trim()
        .parse::<u32>()
        .map_err(|_| err(KERNEL_MAX)(Errno::INVAL))?;
    let mut buf = [0u8; 4096];
    count_possible(read_small(POSSIBLE, &mut buf)?, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5\n").unwrap(), [0, 1, 2, 3, 5]);
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert_eq!(parse_cpu_list("").unwrap(), [] as [u32; 0]);
        assert_eq!(parse_cpu_list("2,0-1").unwrap(), [2, 0, 1]);
        let all = alloc::format!("0-{MAX_CPU}");
        assert_eq!(parse_cpu_list(&all).unwrap().len(), MAX_CPU as usize + 1);
        let twice = alloc::format!("{all},0");
        for bad in ["3-1", "a", "1,", "-", "0-99999999", "1--2", &twice] {
            assert_eq!(
                parse_cpu_list(bad).unwrap_err().errno,
                Errno::INVAL,
                "{bad}"
            );
        }
    }

    #[test]
    fn possible_counts_are_bounded() {
        assert_eq!(count_possible("0-3\n", 7), Ok(4));
        assert_eq!(count_possible("0,2-3", 3), Ok(3));
        for (list, max) in [("", 7), ("0-8", 7), ("x", 7), ("0,0", 1), ("0-2,1", 3)] {
            assert_eq!(
                count_possible(list, max).unwrap_err().errno,
                Errno::INVAL,
                "{list} / {max}"
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads sysfs")]
    fn this_machine() {
        assert!(!online_cpus().unwrap().is_empty());
        assert!(possible_cpus().unwrap() >= 1);
    }
}
