//! The kernel's own BTF objects, found through `bpf(2)` rather than sysfs:
//! module BTF object fds (what kfunc calls and typed ksyms in modules must
//! name) and, when `/sys/kernel/btf` cannot be listed, the module BTF
//! bytes themselves.

use ember_sys::{AsFd, BtfId, OwnedFd, SysError, btf_info_full, get_fd_by_id, obj_ids};

use crate::FileBytes;
use crate::btf_source::ModuleBtf;

/// A kernel BTF object (vmlinux or a module), opened by id.
#[derive(Debug)]
pub struct KernelBtfObject {
    /// `vmlinux` or the module's name.
    pub name: String,
    /// Its BTF object id.
    pub id: BtfId,
    /// An fd to it.
    pub fd: OwnedFd,
}

/// Every kernel BTF object, with its raw bytes when `with_bytes`.
///
/// # Errors
/// The first bpf(2) failure other than an object vanishing mid-walk
/// (ENOENT), e.g. EPERM without `CAP_SYS_ADMIN`.
pub fn kernel_btf_objects(with_bytes: bool) -> Result<Vec<(KernelBtfObject, Vec<u8>)>, SysError> {
    let mut out = Vec::new();
    for id in obj_ids::<BtfId>() {
        let id = id?;
        let fd = match get_fd_by_id(id, 0) {
            Ok(fd) => fd,
            // Unloaded between the id walk and the open.
            Err(e) if e.errno == ember_sys::Errno::NOENT => continue,
            Err(e) => return Err(e),
        };
        // Skip program BTF before fetching names and bytes.
        if !ember_sys::btf_info(fd.as_fd())?.kernel_btf {
            continue;
        }
        let mut bytes = Vec::new();
        let info = btf_info_full(fd.as_fd(), with_bytes.then_some(&mut bytes))?;
        let name = info.name().to_owned();
        out.push((KernelBtfObject { name, id, fd }, bytes));
    }
    Ok(out)
}

/// The fd of module `name`'s BTF object.
///
/// # Errors
/// As [`kernel_btf_objects`]; `ENOENT` when no module of that name has BTF.
pub fn module_btf_fd(name: &str) -> Result<OwnedFd, SysError> {
    kernel_btf_objects(false)?
        .into_iter()
        .find(|(o, _)| o.name == name)
        .map(|(o, _)| o.fd)
        .ok_or(SysError {
            cmd: "BPF_BTF_GET_NEXT_ID",
            errno: ember_sys::Errno::NOENT,
        })
}

/// Module BTFs read from the kernel, for when `/sys/kernel/btf` is hidden.
///
/// # Errors
/// As [`kernel_btf_objects`].
pub fn module_btfs_from_kernel() -> Result<Vec<ModuleBtf>, SysError> {
    Ok(kernel_btf_objects(true)?
        .into_iter()
        .filter(|(o, _)| o.name != "vmlinux")
        .map(|(o, bytes)| {
            ModuleBtf::from_bytes(
                o.name.clone(),
                format!("btf id {}", o.id).into(),
                FileBytes::Owned(bytes),
            )
        })
        .collect())
}
