//! `ksyscall` / `kretsyscall`: a kprobe on a system call's kernel
//! function, named portably. Where the kernel wraps syscalls
//! (`CONFIG_ARCH_HAS_SYSCALL_WRAPPER`, seen as `__<arch>_sys_bpf` in
//! kallsyms: the same check `LINUX_HAS_SYSCALL_WRAPPER` uses) the function
//! is `__<arch>_sys_<name>` (`__x64_sys_execve`), otherwise `sys_<name>`,
//! as libbpf's `bpf_program__attach_ksyscall` decides.

use super::kprobe::{KprobeTarget, valid_function};
use super::{AttachError, AttachErrorKind as K, AttachOpts, Link};
use crate::Program;
use crate::kallsyms;

impl Program {
    /// Attaches this kprobe-type program to system call `name` (`execve`,
    /// `openat`): a kprobe, or with `retprobe` a kretprobe, on the
    /// syscall's kernel function, through [`Program::attach_kprobe`].
    ///
    /// # Errors
    /// [`K::BadTarget`] for a name that is no syscall name; otherwise as
    /// [`Program::attach_kprobe`], the error naming the syscall and the
    /// function.
    pub fn attach_ksyscall(
        &self,
        name: &str,
        retprobe: bool,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let kind = if retprobe { "kretsyscall" } else { "ksyscall" };
        if !valid_function(name) || name.contains('.') {
            return Err(self.attach_err(
                format!("{kind} '{name}'"),
                K::BadTarget("not a system call name".into()),
            ));
        }
        let func = kallsyms::syscall_function(name, kallsyms::kernel_has_syscall_wrapper());
        let target = format!("{kind} '{name}' (kernel function '{func}')");
        self.attach_kprobe_as(
            &KprobeTarget::function(func).retprobe(retprobe),
            target,
            opts,
        )
    }
}
