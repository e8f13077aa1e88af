//! `/proc/kallsyms`, read once: symbol addresses for untyped `__ksym`
//! externs and module lookups.
//!
//! One pass over the text keeps only the names asked for (so a load does
//! not build a table of 100k+ symbols), strips the `.llvm.<hash>` suffix
//! clang's LTO adds to data symbols, remembers the module a symbol belongs
//! to, detects names with two different addresses, and recognizes the
//! all-zero addresses `kptr_restrict` shows to unprivileged readers.

use std::collections::HashMap;
use std::fmt;

/// One resolved symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ksym {
    /// Address.
    pub addr: u64,
    /// The `nm`-style type letter (`T`, `t`, `D`, `d`, `B`, ...).
    pub kind: char,
    /// The module (`[nf_conntrack]`), or `None` for vmlinux.
    pub module: Option<String>,
}

/// Why a wanted symbol could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KsymError {
    /// Every address reads as zero: `kptr_restrict` hides them from this
    /// process (run as root or lower `/proc/sys/kernel/kptr_restrict`).
    Restricted,
    /// The name has different addresses (e.g. static symbols of two
    /// compilation units); which one is meant is ambiguous.
    Ambiguous {
        /// The name.
        name: String,
        /// Two of its addresses.
        addrs: (u64, u64),
    },
}

impl fmt::Display for KsymError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KsymError::Restricted => f.write_str(
                "/proc/kallsyms shows only zero addresses (kptr_restrict); run as root or lower /proc/sys/kernel/kptr_restrict",
            ),
            KsymError::Ambiguous { name, addrs } => {
                write!(f, "kernel symbol '{name}' is ambiguous: {:#x} and {:#x}", addrs.0, addrs.1)
            }
        }
    }
}

impl core::error::Error for KsymError {}

/// The symbols found for a set of wanted names.
#[derive(Debug, Default)]
pub struct Kallsyms {
    found: HashMap<String, Ksym>,
}

impl Kallsyms {
    /// Reads `/proc/kallsyms` for `wanted` names.
    ///
    /// # Errors
    /// The outer error is reading the file; the inner one, what
    /// [`Kallsyms::parse`] reports.
    pub fn read(wanted: &[&str]) -> std::io::Result<Result<Kallsyms, KsymError>> {
        let text = std::fs::read_to_string("/proc/kallsyms")?;
        Ok(Kallsyms::parse(&text, wanted))
    }

    /// Parses kallsyms `text` for `wanted` names.
    ///
    /// # Errors
    /// [`KsymError::Restricted`] when the text hides every address;
    /// [`KsymError::Ambiguous`] when a wanted name has two addresses.
    pub fn parse(text: &str, wanted: &[&str]) -> Result<Kallsyms, KsymError> {
        let mut found: HashMap<String, Ksym> = HashMap::new();
        let mut any_nonzero = false;
        let mut lines = 0usize;
        for line in text.lines() {
            lines += 1;
            let Some((addr, kind, name, module)) = split_line(line) else {
                continue;
            };
            any_nonzero |= addr != 0;
            let base = base_name(name, kind);
            if !wanted.contains(&base) {
                continue;
            }
            match found.get(base) {
                Some(prev) if prev.addr != addr => {
                    return Err(KsymError::Ambiguous {
                        name: base.to_owned(),
                        addrs: (prev.addr, addr),
                    });
                }
                Some(_) => {}
                None => {
                    let module = module.map(str::to_owned);
                    found.insert(base.to_owned(), Ksym { addr, kind, module });
                }
            }
        }
        if lines > 0 && !any_nonzero {
            return Err(KsymError::Restricted);
        }
        Ok(Kallsyms { found })
    }

    /// Symbols found another way (`bpf_kallsyms_lookup_name`).
    pub fn from_found(found: impl IntoIterator<Item = (String, Ksym)>) -> Kallsyms {
        Kallsyms {
            found: found.into_iter().collect(),
        }
    }

    /// The symbol `name`, if the kernel has it.
    pub fn get(&self, name: &str) -> Option<&Ksym> {
        self.found.get(name)
    }
}

/// Every definition of `name` in kallsyms `text` (only those of
/// `module`, `vmlinux` meaning the kernel itself, when given), one per
/// distinct address, in text order. Kprobes refuse a name with several
/// (6.7+: `EADDRNOTAVAIL`), and callers list them so the user can pick an
/// address.
pub fn definitions(text: &str, name: &str, module: Option<&str>) -> Vec<Ksym> {
    let mut out: Vec<Ksym> = Vec::new();
    for line in text.lines() {
        let Some((addr, kind, sym, m)) = split_line(line) else {
            continue;
        };
        if base_name(sym, kind) != name {
            continue;
        }
        let in_module = match module {
            None => true,
            Some("vmlinux") => m.is_none(),
            Some(want) => m == Some(want),
        };
        if in_module && !out.iter().any(|k| k.addr == addr) {
            out.push(Ksym {
                addr,
                kind,
                module: m.map(str::to_owned),
            });
        }
    }
    out
}

/// The names of function symbols (`t`, `T`) in kallsyms `text`, as
/// `name` or `name [module]` like tracefs `available_filter_functions`.
pub fn function_names(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| {
        let (_, kind, sym, _) = split_line(l)?;
        matches!(kind, 't' | 'T').then(|| base_name(sym, kind))
    })
}

/// `ADDR KIND NAME [\[MODULE\]]`.
fn split_line(line: &str) -> Option<(u64, char, &str, Option<&str>)> {
    let mut parts = line.split_ascii_whitespace();
    let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
    let kind = parts.next()?.chars().next()?;
    let name = parts.next()?;
    let module = parts
        .next()
        .map(|m| m.trim_start_matches('[').trim_end_matches(']'));
    Some((addr, kind, name, module))
}

/// The name without the `.llvm.<hash>` suffix of LTO builds.
fn base_name(name: &str, kind: char) -> &str {
    match name.find(".llvm.") {
        Some(i) if matches!(kind, 'd' | 'D' | 'b' | 'B' | 'r' | 'R' | 't' | 'T') => &name[..i],
        _ => name,
    }
}

/// The arch part of syscall wrapper names (`__x64_sys_bpf`), as libbpf
/// names them.
fn syscall_arch() -> Option<&'static str> {
    Some(match std::env::consts::ARCH {
        "x86_64" => "x64",
        "x86" => "ia32",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv",
        "powerpc64" => "powerpc64",
        "powerpc" => "powerpc",
        "mips" | "mips64" => "mips",
        "loongarch64" => "loongarch",
        _ => return None,
    })
}

/// The kallsyms name whose presence means syscalls are wrapped
/// (`__x64_sys_bpf`, `CONFIG_ARCH_HAS_SYSCALL_WRAPPER`).
///
/// This is ember's one syscall-wrapper check, shared by
/// `LINUX_HAS_SYSCALL_WRAPPER` and ksyscall attachment
/// ([`has_syscall_wrapper`]). libbpf instead creates a kprobe on the
/// symbol and answers yes only when that succeeds, so on a kernel without
/// kprobes libbpf says no although the wrapper exists; ember's answer is
/// the kernel's actual one.
pub(crate) fn syscall_wrapper_symbol() -> Option<String> {
    syscall_arch().map(|p| format!("__{p}_sys_bpf"))
}

/// Whether the kernel wraps syscalls, given a lookup of kallsyms names
/// (a [`Kallsyms`] read with [`syscall_wrapper_symbol`] among its wanted
/// names).
pub(crate) fn has_syscall_wrapper(has: impl Fn(&str) -> bool) -> bool {
    syscall_wrapper_symbol().is_some_and(|w| has(&w))
}

/// The kernel function behind syscall `name` (`execve`):
/// `__<arch>_sys_execve` where syscalls are wrapped, `sys_execve`
/// otherwise (libbpf's ksyscall rule).
pub fn syscall_function(name: &str, wrapped: bool) -> String {
    match syscall_arch() {
        Some(arch) if wrapped => format!("__{arch}_sys_{name}"),
        _ => format!("sys_{name}"),
    }
}

/// Whether this kernel wraps syscalls, from `/proc/kallsyms`, once per
/// process (false when it cannot be read).
pub fn kernel_has_syscall_wrapper() -> bool {
    static W: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *W.get_or_init(|| {
        let Some(sym) = syscall_wrapper_symbol() else {
            return false;
        };
        matches!(Kallsyms::read(&[&sym]), Ok(Ok(k)) if has_syscall_wrapper(|n| k.get(n).is_some()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
ffffffff81000000 T _stext
ffffffff82000010 d bpf_stats.llvm.123456
ffffffff82000020 D shared_name
ffffffff82000030 t dup [mod_a]
ffffffff82000040 t dup [mod_b]
ffffffffc0001000 t ctnetlink_fill_info [nf_conntrack_netlink]
";

    #[test]
    fn finds_strips_and_names_modules() {
        let k = Kallsyms::parse(
            TEXT,
            &["_stext", "bpf_stats", "ctnetlink_fill_info", "absent"],
        )
        .unwrap();
        assert_eq!(k.get("_stext").unwrap().addr, 0xffff_ffff_8100_0000);
        assert_eq!(k.get("bpf_stats").unwrap().addr, 0xffff_ffff_8200_0010);
        assert_eq!(
            k.get("ctnetlink_fill_info").unwrap().module.as_deref(),
            Some("nf_conntrack_netlink")
        );
        assert!(k.get("absent").is_none());
    }

    #[test]
    fn ambiguity_and_restriction() {
        let e = Kallsyms::parse(TEXT, &["dup"]).unwrap_err();
        assert!(matches!(e, KsymError::Ambiguous { .. }));
        let hidden = "0000000000000000 T _stext\n0000000000000000 D x\n";
        assert_eq!(
            Kallsyms::parse(hidden, &["x"]).unwrap_err(),
            KsymError::Restricted
        );
    }

    #[test]
    fn definitions_list_each_address_once_per_module() {
        let text = "\
ffffffff81000100 t dup
ffffffff81000100 t dup
ffffffff81000200 t dup
ffffffffc0001000 t dup [mod_a]
ffffffffc0002000 t uniq [mod_a]
ffffffff81000300 t cold.llvm.77
";
        let all = definitions(text, "dup", None);
        let addrs: Vec<u64> = all.iter().map(|k| k.addr).collect();
        assert_eq!(
            addrs,
            [
                0xffff_ffff_8100_0100,
                0xffff_ffff_8100_0200,
                0xffff_ffff_c000_1000
            ]
        );
        assert_eq!(all[2].module.as_deref(), Some("mod_a"));
        assert_eq!(definitions(text, "dup", Some("vmlinux")).len(), 2);
        assert_eq!(definitions(text, "dup", Some("mod_a")).len(), 1);
        assert!(definitions(text, "uniq", Some("mod_b")).is_empty());
        assert_eq!(definitions(text, "cold", None).len(), 1);
        assert!(definitions("garbage\nzz t x\n", "x", None).is_empty());
        let names: Vec<&str> = function_names(text).collect();
        assert_eq!(names.len(), 6);
        assert_eq!(names[5], "cold");
    }

    #[test]
    fn syscall_functions_follow_the_wrapper_check() {
        let wrapped_text =
            "ffffffff814de370 T __x64_sys_bpf\nffffffff814de380 T __x64_sys_execve\n";
        let plain_text = "ffffffff814de370 T sys_bpf\n";
        let decide = |text: &str| {
            let sym = syscall_wrapper_symbol();
            let wanted: Vec<&str> = sym.iter().map(String::as_str).collect();
            let k = Kallsyms::parse(text, &wanted).unwrap();
            has_syscall_wrapper(|n| k.get(n).is_some())
        };
        if std::env::consts::ARCH == "x86_64" {
            assert!(decide(wrapped_text));
            assert_eq!(syscall_function("execve", true), "__x64_sys_execve");
        }
        assert!(!decide(plain_text));
        assert_eq!(syscall_function("execve", false), "sys_execve");
    }
}
