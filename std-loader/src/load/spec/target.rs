//! Where a tracing, LSM or extension program attaches when the caller
//! says so.

use std::os::fd::OwnedFd;

/// Where a tracing, LSM or extension program attaches, when not where its
/// section says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachTarget {
    /// A kernel function (or tracepoint, LSM hook) looked up by name in
    /// the running kernel's BTF, vmlinux first, then modules.
    Function(String),
    /// A BTF id in the running kernel's vmlinux BTF.
    VmlinuxBtfId(u32),
    /// A global function of another loaded BPF program, found by name in
    /// that program's BTF: what an extension (`freplace/`) replaces, or
    /// where fentry/fexit on a BPF program attach. An empty `function`
    /// takes the name from the section (`freplace/NAME`).
    Program {
        /// The target program.
        prog: TargetProgram,
        /// The function's name.
        function: String,
    },
}

impl AttachTarget {
    /// [`AttachTarget::Program`]: function `function` of the program
    /// `prog`, whose fd is duplicated (the target stays open as long as
    /// the spec or a clone of it holds it).
    ///
    /// # Errors
    /// The error of duplicating the fd.
    pub fn program(
        prog: impl std::os::fd::AsFd,
        function: impl Into<String>,
    ) -> std::io::Result<AttachTarget> {
        Ok(AttachTarget::Program {
            prog: TargetProgram(std::sync::Arc::new(prog.as_fd().try_clone_to_owned()?)),
            function: function.into(),
        })
    }
}

/// A program another attaches to ([`AttachTarget::Program`]): a shared,
/// owned fd. Two are equal when they share the fd.
#[derive(Debug, Clone)]
pub struct TargetProgram(std::sync::Arc<OwnedFd>);

impl TargetProgram {
    /// Takes `fd` (a program fd).
    pub fn new(fd: OwnedFd) -> Self {
        TargetProgram(std::sync::Arc::new(fd))
    }
}

impl std::os::fd::AsFd for TargetProgram {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl PartialEq for TargetProgram {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TargetProgram {}
