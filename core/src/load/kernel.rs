//! What a load reads from the running kernel in text form: the release
//! as `KERNEL_VERSION`, the kernel BTF name a tracing program loads
//! against, and what map creation must adapt (BTF, ring sizes). Shared by the std loader and `no_std` loaders.

use alloc::format;
use alloc::string::{String, ToString};

use crate::btf::Kind;
use crate::object::{AttachType, MapType, ProgType};

/// `KERNEL_VERSION(a, b, c)` of a release string such as `6.18.0-1-amd64`.
pub fn kernel_version(release: &str) -> u32 {
    // Only the dotted numbers before any suffix count: 6.18-rc1 is 6.18.0.
    let end = release
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(release.len());
    let mut parts = release
        .get(..end)
        .unwrap_or("")
        .split('.')
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let a = parts.next().unwrap_or(0).min(255);
    let b = parts.next().unwrap_or(0).min(255);
    let c = parts.next().unwrap_or(0).min(255);
    (a << 16) | (b << 8) | c
}

/// The version code libbpf gives the running kernel (`get_kernel_version`,
/// for `LINUX_KERNEL_VERSION` and a kprobe's `kern_version`): from
/// Ubuntu's `/proc/version_signature` (`Ubuntu 5.15.0-91.101-generic
/// 5.15.131`: its third word) when it reads, else from the `Debian X.Y.Z`
/// a Debian kernel's `uname -v` carries (its release says `X.Y.0`), else
/// from the release. Both name the sublevel the kernel itself was built
/// as, which the release hides.
pub fn running_version_code(release: &str, uname_version: &str, signature: Option<&str>) -> u32 {
    let ubuntu = signature
        .and_then(|s| s.split_ascii_whitespace().nth(2))
        .and_then(three_numbers);
    let debian = || {
        let at = uname_version.find("Debian ")?;
        three_numbers(uname_version.get(at.saturating_add(7)..)?)
    };
    match ubuntu.or_else(debian) {
        Some((a, b, c)) => (a.min(255) << 16) | (b.min(255) << 8) | c.min(255),
        None => kernel_version(release),
    }
}

/// `%u.%u.%u` at the start of `s` (anything may follow the third).
fn three_numbers(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.splitn(3, '.');
    let whole = |p: &str| p.parse::<u32>().ok();
    let a = whole(parts.next()?)?;
    let b = whole(parts.next()?)?;
    // The third stops at its first non-digit (`260-1 (2022-09-29)`).
    let c = parts.next()?;
    let end = c.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(c.len());
    let c = whole(c.get(..end)?)?;
    Some((a, b, c))
}

/// Whether the program loads against a kernel BTF id. The tracing_multi
/// types (`fentry.multi`, ...) name their functions when the link is
/// made, not at load.
pub fn needs_attach_btf(p: ProgType, a: Option<AttachType>) -> bool {
    let multi = matches!(
        a,
        Some(
            AttachType::TRACE_FENTRY_MULTI
                | AttachType::TRACE_FEXIT_MULTI
                | AttachType::TRACE_FSESSION_MULTI
        )
    );
    (p == ProgType::TRACING || p == ProgType::LSM) && a.is_some() && !multi
}

/// The kernel BTF name and kind a tracing program attaches to, given its
/// attach type and the target its section names.
pub fn attach_name(a: AttachType, target: &str) -> (String, Kind) {
    match a {
        AttachType::TRACE_RAW_TP => (format!("btf_trace_{target}"), Kind::Typedef),
        AttachType::LSM_MAC | AttachType::LSM_CGROUP => (format!("bpf_lsm_{target}"), Kind::Func),
        AttachType::TRACE_ITER => (format!("bpf_iter_{target}"), Kind::Func),
        _ => (target.to_string(), Kind::Func),
    }
}

/// Whether a map of type `t` takes key/value BTF at creation: libbpf
/// gives these types none, and the kernel refuses it for them.
pub fn map_takes_btf(t: MapType) -> bool {
    !matches!(
        t,
        MapType::PERF_EVENT_ARRAY
            | MapType::STACK_TRACE
            | MapType::CGROUP_ARRAY
            | MapType::ARRAY_OF_MAPS
            | MapType::HASH_OF_MAPS
            | MapType::DEVMAP
            | MapType::SOCKMAP
            | MapType::CPUMAP
            | MapType::XSKMAP
            | MapType::SOCKHASH
            | MapType::QUEUE
            | MapType::STACK
            | MapType::DEVMAP_HASH
            | MapType::ARENA
    )
}

/// A ring buffer's size as the kernel takes it: a power-of-two number of
/// pages. A size that already is one is kept; any other is rounded up to
/// the next one, as libbpf does, so `100 * 1024` or 4 KiB on 64 KiB pages
/// work. Zero stays zero for the kernel to refuse (libbpf's rule: the user
/// forgot to set a size and must see the error). `None` when no such size
/// fits in 32 bits.
pub fn ring_size(size: u32, page: usize) -> Option<u32> {
    if size == 0 {
        return Some(0);
    }
    let page = u32::try_from(page).ok().filter(|p| p.is_power_of_two())?;
    // A power-of-two multiple of a power-of-two page is a power of two
    // no smaller than the page.
    size.max(page).checked_next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_version_codes_as_libbpf_computes_them() {
        let ubuntu = Some("Ubuntu 5.15.0-91.101-generic 5.15.131\n");
        assert_eq!(
            running_version_code("5.15.0-91-generic", "#101-Ubuntu SMP", ubuntu),
            (5 << 16) | (15 << 8) | 131
        );
        let debian = "#1 SMP Debian 4.19.260-1 (2022-09-29)";
        assert_eq!(
            running_version_code("4.19.0-22-amd64", debian, None),
            (4 << 16) | (19 << 8) | 255
        );
        let plain = "#1 SMP PREEMPT_DYNAMIC @0";
        assert_eq!(
            running_version_code("6.18.44", plain, None),
            (6 << 16) | (18 << 8) | 44
        );
        // A signature that does not read falls through to the rest.
        assert_eq!(
            running_version_code("6.1.0-9-amd64", "#1 SMP Debian 6.1.27-1", Some("x")),
            (6 << 16) | (1 << 8) | 27
        );
        assert_eq!(
            running_version_code("6.1.0", "Debian 6.", None),
            6 << 16 | 1 << 8
        );
    }

    #[test]
    fn kernel_versions_as_libbpf_computes_them() {
        assert_eq!(kernel_version("6.18.0-1-amd64"), (6 << 16) | (18 << 8));
        assert_eq!(kernel_version("4.19.300"), (4 << 16) | (19 << 8) | 255);
        assert_eq!(kernel_version("6.18-rc1"), (6 << 16) | (18 << 8));
        assert_eq!(kernel_version(""), 0);
    }

    #[test]
    fn attach_names_by_attach_type() {
        let n = |a, t| attach_name(a, t);
        assert_eq!(
            n(AttachType::TRACE_RAW_TP, "sched_switch"),
            ("btf_trace_sched_switch".into(), Kind::Typedef)
        );
        assert_eq!(
            n(AttachType::LSM_MAC, "file_open"),
            ("bpf_lsm_file_open".into(), Kind::Func)
        );
        assert_eq!(
            n(AttachType::TRACE_ITER, "task"),
            ("bpf_iter_task".into(), Kind::Func)
        );
        assert_eq!(
            n(AttachType::TRACE_FENTRY, "vfs_read"),
            ("vfs_read".into(), Kind::Func)
        );
        assert!(needs_attach_btf(
            ProgType::TRACING,
            Some(AttachType::TRACE_FENTRY)
        ));
        assert!(!needs_attach_btf(
            ProgType::TRACING,
            Some(AttachType::TRACE_FENTRY_MULTI)
        ));
        assert!(!needs_attach_btf(ProgType::KPROBE, None));
    }

    #[test]
    fn ring_sizes_and_map_btf() {
        assert_eq!(ring_size(0, 4096), Some(0));
        assert_eq!(ring_size(100 * 1024, 4096), Some(128 * 1024));
        assert_eq!(ring_size(4096, 65536), Some(65536));
        assert_eq!(ring_size(u32::MAX, 4096), None);
        assert!(map_takes_btf(MapType::HASH));
        assert!(!map_takes_btf(MapType::PERF_EVENT_ARRAY));
    }
}
