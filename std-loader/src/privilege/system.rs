//! Reading the process's and the kernel's state for [`Snapshot`].

use std::io::Read as _;

use super::memlock::{MEMLOCK, probe_memcg_accounting};
use super::*;

impl Snapshot {
    /// Reads the process's and the kernel's state. Lockdown is read from
    /// securityfs; when it is not mounted, a private, detached securityfs
    /// mount is made (the new mount API: `fsopen`, `fsmount`), read and
    /// dropped, so no mount table anywhere changes. That needs
    /// CAP_SYS_ADMIN; without it the mode stays unknown.
    pub fn read() -> Snapshot {
        let memlock_state = MEMLOCK.get().copied();
        Snapshot {
            euid: rustix::process::geteuid().as_raw(),
            effective: rustix::thread::capabilities(None).ok().map(|c| c.effective),
            lockdown: read_lockdown(),
            unprivileged_bpf_disabled: std::fs::read_to_string(
                "/proc/sys/kernel/unprivileged_bpf_disabled",
            )
            .ok()
            .and_then(|s| s.trim().parse().ok()),
            memlock: Memlock {
                limit: rustix::process::getrlimit(rustix::process::Resource::Memlock).current,
                memcg_accounting: match memlock_state {
                    Some(m) => m.memcg_accounting,
                    None => probe_memcg_accounting(),
                },
                raise_error: memlock_state.and_then(|m| m.raise_error),
            },
            kernel_version: running_kernel_version(),
        }
    }
}

/// The running kernel's `version(major, minor)`; 0 when unknown.
pub(super) fn running_kernel_version() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|r| parse_release(r.trim()))
        .unwrap_or(0)
}

/// `version(major, minor)` of `6.18.0-1-amd64`; 0 when it does not parse.
pub(super) fn parse_release(release: &str) -> u32 {
    let mut parts = release.split(['.', '-']).map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => version(a.min(255), b.min(255)),
        _ => 0,
    }
}

const LOCKDOWN: &str = "/sys/kernel/security/lockdown";

pub(super) fn read_lockdown() -> Option<Lockdown> {
    match std::fs::read_to_string(LOCKDOWN) {
        Ok(t) => Lockdown::parse(&t),
        Err(_) => read_lockdown_detached()
            .map_err(|e| log::debug!("private securityfs mount: {e}"))
            .ok()
            .and_then(|t| Lockdown::parse(&t)),
    }
}

/// Mounts securityfs where nobody sees it (a detached mount, gone when its
/// fd closes) and reads `lockdown` from it.
fn read_lockdown_detached() -> std::io::Result<String> {
    use rustix::fs::{Mode, OFlags, openat};
    use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, fsconfig_create, fsmount};
    let fs = rustix::mount::fsopen("securityfs", FsOpenFlags::FSOPEN_CLOEXEC)?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )?;
    let fd = openat(
        &mnt,
        "lockdown",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text)?;
    Ok(text)
}
