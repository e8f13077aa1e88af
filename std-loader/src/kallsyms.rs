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
            let mut parts = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            any_nonzero |= addr != 0;
            let kind = kind.chars().next().unwrap_or('?');
            // Data symbols of LTO builds carry `.llvm.<hash>`.
            let base = match name.find(".llvm.") {
                Some(i) if matches!(kind, 'd' | 'D' | 'b' | 'B' | 'r' | 'R' | 't' | 'T') => {
                    &name[..i]
                }
                _ => name,
            };
            if !wanted.contains(&base) {
                continue;
            }
            let module = parts
                .next()
                .map(|m| m.trim_start_matches('[').trim_end_matches(']').to_owned());
            match found.get(base) {
                Some(prev) if prev.addr != addr => {
                    return Err(KsymError::Ambiguous {
                        name: base.to_owned(),
                        addrs: (prev.addr, addr),
                    });
                }
                Some(_) => {}
                None => {
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
}
