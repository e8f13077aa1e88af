//! `__ksym` and `.kconfig` externs: resolution against kernel BTF and
//! kallsyms, and the module BTF objects the instructions must name.

use super::*;

impl Loading<'_, '_> {
    pub(super) fn resolve_externs(
        &mut self,
        targets: Option<&Targets<'_>>,
    ) -> Result<Vec<Resolved>, LoadError> {
        let obj = self.obj;
        if obj.externs.is_empty() {
            return Ok(Vec::new());
        }
        let untyped: Vec<&str> = obj
            .externs
            .iter()
            .filter(|x| x.kind == ExternKind::UntypedVar)
            .map(|x| ember_core::btf::essential_name(x.name))
            .collect();
        // LINUX_HAS_SYSCALL_WRAPPER is answered by kallsyms too: one read
        // of the file (tens of ms of kernel time) serves both.
        let wrapper = obj
            .externs
            .iter()
            .any(|x| x.name == "LINUX_HAS_SYSCALL_WRAPPER")
            .then(crate::kallsyms::syscall_wrapper_symbol)
            .flatten();
        let mut wanted = untyped.clone();
        wanted.extend(wrapper.as_deref());
        let kallsyms = if wanted.is_empty() {
            Kallsyms::default()
        } else {
            let fail = |reason: String| LoadError::Ksym {
                name: wanted.join(", "),
                reason,
            };
            let found =
                crate::ksym_lookup::resolve(&wanted, self.cfg.ksym_source).map(|(r, used)| {
                    if used == crate::ksym_lookup::Used::Helper {
                        self.notes.push(format!(
                            "ksyms {} resolved through bpf_kallsyms_lookup_name",
                            wanted.join(", ")
                        ));
                    }
                    r
                });
            match found {
                Ok(Ok(k)) => k,
                Ok(Err(e)) if !untyped.is_empty() => return Err(fail(e.to_string())),
                Err(e) if !untyped.is_empty() => {
                    return Err(fail(format!("/proc/kallsyms: {e}")));
                }
                Ok(Err(e)) => {
                    self.notes.push(format!("syscall wrapper check: {e}"));
                    Kallsyms::default()
                }
                Err(e) => {
                    self.notes
                        .push(format!("syscall wrapper check: /proc/kallsyms: {e}"));
                    Kallsyms::default()
                }
            }
        };
        self.syscall_wrapper = wrapper.is_some()
            && crate::kallsyms::has_syscall_wrapper(|n| kallsyms.get(n).is_some());
        let lookup = |n: &str| kallsyms.get(n).map(|k| k.addr);
        let res = match targets {
            Some(t) => {
                super::needs::prefetch_kernel_names(t.main, obj);
                ksym::resolve(obj, t, &lookup)
            }
            None => {
                // Only untyped and kconfig externs: no kernel BTF needed.
                let empty = Btf::parse(EMPTY_BTF).map_err(LoadError::Object)?;
                ksym::resolve(obj, &Targets::single(&empty), &lookup)
            }
        };
        let res = res.map_err(|e| {
            let name = match e.kind() {
                ember_core::ErrorKind::ExternUnresolved(i)
                | ember_core::ErrorKind::ExternTypeMismatch(i) => obj
                    .extern_(i)
                    .map_or_else(String::new, |x| x.name.to_owned()),
                _ => String::new(),
            };
            let reason = match e.kind() {
                ember_core::ErrorKind::ExternUnresolved(_) => {
                    let mut r =
                        "not found in the kernel (kallsyms / kernel BTF) and not declared __weak"
                            .to_owned();
                    // A kfunc or typed ksym may be in a module without BTF.
                    let searched: Option<Vec<&str>> = targets
                        .filter(|t| !t.is_override)
                        .map(|t| t.modules.iter().map(|m| m.name).collect());
                    if let Some(h) = searched.and_then(|s| crate::absent_module_btf::missing(&s)) {
                        r.push_str("; ");
                        r.push_str(&h);
                    }
                    r
                }
                ember_core::ErrorKind::ExternTypeMismatch(_) => {
                    "its declared type does not match the kernel's".to_owned()
                }
                _ => e.to_string(),
            };
            LoadError::Ksym { name, reason }
        })?;
        for (x, r) in obj.externs.iter().zip(&res) {
            if *r == Resolved::Absent {
                self.notes
                    .push(format!("weak extern '{}' is absent: 0", x.name));
            }
        }
        Ok(res)
    }

    /// The module BTF objects the instructions must name, by target index:
    /// typed ksyms carry the fd, kfunc calls an index into the program's
    /// fd_array (the position here plus one; 0 means vmlinux).
    pub(super) fn module_fds(
        &mut self,
        resolved: &[Resolved],
        targets: Option<&Targets<'_>>,
    ) -> Result<Vec<(usize, OwnedFd)>, LoadError> {
        let mut module_fds: Vec<(usize, OwnedFd)> = Vec::new();
        for (x, r) in self.obj.externs.iter().zip(resolved) {
            let (Resolved::Kfunc { target, .. } | Resolved::Var { target, .. }) = *r else {
                continue;
            };
            if target == 0 || module_fds.iter().any(|(t, _)| *t == target) {
                continue;
            }
            let m = targets.map_or("?", |t| t.name(target));
            let fd = crate::kernel_btf_objects::module_btf_fd(m).map_err(|source| {
                LoadError::ModuleBtf {
                    module: m.to_owned(),
                    needed_by: format!("extern '{}'", x.name),
                    source,
                }
            })?;
            self.notes
                .push(format!("extern '{}' resolved in module '{m}'", x.name));
            module_fds.push((target, fd));
        }
        Ok(module_fds)
    }
}

/// A valid BTF with no types (for resolving externs without kernel BTF).
pub(super) const EMPTY_BTF: &[u8] = &{
    let mut b = [0u8; 25];
    let m = 0xeb9f_u16.to_ne_bytes();
    b[0] = m[0];
    b[1] = m[1];
    b[2] = 1;
    let h = 24u32.to_ne_bytes();
    b[4] = h[0];
    b[5] = h[1];
    b[6] = h[2];
    b[7] = h[3];
    let s = 1u32.to_ne_bytes();
    b[20] = s[0];
    b[21] = s[1];
    b[22] = s[2];
    b[23] = s[3];
    b
};
