//! What a load made: [`Ebpf`] owns the object's maps, programs and BTF,
//! [`Program`] one loaded program.

use std::path::{Path, PathBuf};

use ember_core::object::{AttachType, ProgType};
use ember_sys::{AsFd, BorrowedFd, OwnedFd, obj_pin};

use super::cpath;
use super::relocation::Relocation;
use super::struct_ops::StructOpsMap;
use crate::maps::Map;

/// A loaded program. What it was loaded as is fixed; what the kernel
/// made of it (id, tag, sizes, run statistics) is read from the kernel by
/// [`Program::info`].
#[derive(Debug)]
pub struct Program {
    pub(super) name: String,
    pub(super) section: String,
    pub(super) prog_type: ProgType,
    pub(super) attach_type: Option<AttachType>,
    pub(super) attach_btf_id: u32,
    pub(super) insn_count: usize,
    pub(super) fd: OwnedFd,
    pub(super) log: String,
}

impl Program {
    /// Its name (the function's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its ELF section.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// The program type it was loaded as.
    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// The expected attach type it was loaded with.
    pub fn attach_type(&self) -> Option<AttachType> {
        self.attach_type
    }

    /// The attach target's BTF id: a kernel function (tracing, LSM), the
    /// kernel struct (struct_ops, whose attach type is then the member's
    /// index), a function of the target program (extensions); 0
    /// otherwise.
    pub fn attach_btf_id(&self) -> u32 {
        self.attach_btf_id
    }

    /// Instructions ember handed to the kernel (after linking).
    pub fn insn_count(&self) -> usize {
        self.insn_count
    }

    /// The verifier log, when a log level was asked for.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The program fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What the kernel reports about the program now: id, tag, translated
    /// and JITed sizes, map ids, and run statistics (`run_cnt`,
    /// `run_time_ns`, counted while `BPF_ENABLE_STATS` is on).
    ///
    /// # Errors
    /// The kernel's error for `BPF_OBJ_GET_INFO_BY_FD`.
    pub fn info(&self) -> Result<ember_sys::ProgInfo, ember_sys::SysError> {
        ember_sys::prog_info(self.fd())
    }

    /// Pins the program at `path` (in a bpffs).
    ///
    /// # Errors
    /// The kernel's error.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), ember_sys::SysError> {
        obj_pin(self.fd(), &cpath(path.as_ref()))
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A loaded object: its maps and programs. Dropping it closes every fd
/// (pinned objects stay pinned).
#[derive(Debug)]
pub struct Ebpf {
    /// First, so they unregister before their programs close.
    pub(super) struct_ops: Vec<StructOpsMap>,
    pub(super) maps: Vec<Map>,
    pub(super) programs: Vec<Program>,
    pub(super) btf_fd: Option<OwnedFd>,
    /// Paths this load pinned maps at.
    pub pinned: Vec<PathBuf>,
    /// What happened along the way (fallbacks, reused pins), for
    /// `--verbose`.
    pub notes: Vec<String>,
    /// The CO-RE relocations applied, with their outcomes.
    pub relocations: Vec<Relocation>,
}

impl Ebpf {
    /// The map called `name`.
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps.iter().find(|m| m.name() == name)
    }

    /// Every map, in object order.
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    /// Moves the map called `name` out, so it (or a view over it) can
    /// live on its own, in another thread or task; `None` when there is no
    /// such map (or it was taken already). Programs keep their own
    /// reference to the map in the kernel.
    pub fn take_map(&mut self, name: &str) -> Option<Map> {
        let i = self.maps.iter().position(|m| m.name() == name)?;
        Some(self.maps.remove(i))
    }

    /// The program called `name`.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// Every loaded program.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// The struct_ops map called `name`, registered with the kernel until
    /// this [`Ebpf`] is dropped.
    pub fn struct_ops(&self, name: &str) -> Option<&StructOpsMap> {
        self.struct_ops.iter().find(|m| m.name() == name)
    }

    /// Every registered struct_ops map, in object order.
    pub fn struct_ops_maps(&self) -> &[StructOpsMap] {
        &self.struct_ops
    }

    /// The loaded object BTF, when the kernel took it.
    pub fn btf_fd(&self) -> Option<BorrowedFd<'_>> {
        self.btf_fd.as_ref().map(AsFd::as_fd)
    }
}
