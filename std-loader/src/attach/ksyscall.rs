//! `ksyscall` / `kretsyscall`: a kprobe on a system call's kernel
//! function, named portably. Where the kernel wraps syscalls
//! (`CONFIG_ARCH_HAS_SYSCALL_WRAPPER`, seen as `__<arch>_sys_bpf` in
//! kallsyms: the same check `LINUX_HAS_SYSCALL_WRAPPER` uses) the function
//! is `__<arch>_sys_<name>` (`__x64_sys_execve`), otherwise `sys_<name>`,
//! as libbpf's `bpf_program__attach_ksyscall` decides.

use super::kprobe::{KprobeTarget, valid_function};
use super::kprobe_multi::KprobeMultiTarget;
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

impl Program {
    /// Attaches as section kind `kind` says to the target text `spec`
    /// (what follows `kind/` in a section: `func+0x10`, `mod:func`, a
    /// glob, a syscall name); `label` names the text in errors. Shared by
    /// auto-attach and text targets.
    pub(crate) fn attach_kprobe_family(
        &self,
        kind: &str,
        label: &str,
        spec: Option<&str>,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let Some(spec) = spec else {
            return Err(self.attach_err(label, K::NoTarget));
        };
        match kind {
            "kprobe" | "kretprobe" => {
                let t = KprobeTarget::parse(spec)
                    .map_err(|w| self.attach_err(label, K::BadTarget(w)))?;
                self.attach_kprobe(&t.retprobe(kind == "kretprobe"), opts)
            }
            "kprobe.multi" | "kretprobe.multi" | "kprobe.session" => self.attach_kprobe_multi(
                &KprobeMultiTarget::pattern(spec).retprobe(kind == "kretprobe.multi"),
                opts,
            ),
            "ksyscall" | "kretsyscall" => self.attach_ksyscall(spec, kind == "kretsyscall", opts),
            _ => Err(self.attach_err(
                label,
                K::WrongType(format!("'{kind}' is not a kprobe section kind")),
            )),
        }
    }
}
