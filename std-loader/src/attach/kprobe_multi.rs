//! `kprobe.multi` (`BPF_TRACE_KPROBE_MULTI`, 5.18) and `kprobe.session`
//! (`BPF_TRACE_KPROBE_SESSION`, 6.10): one bpf_link holding a kprobe on
//! each of many kernel functions, given by names, addresses or a glob.
//!
//! A glob is matched against tracefs `available_filter_functions` (the
//! functions fprobe can attach to), or, where tracefs has none, against
//! the function symbols of `/proc/kallsyms`; each name goes to the kernel
//! once (it refuses repeats). Both need `CONFIG_FPROBE`; a kernel without
//! it says `EOPNOTSUPP`, reported as [`K::Unsupported`].

use core::fmt;
use std::collections::BTreeSet;
use std::ffi::CString;

use ember_core::object::AttachType;
use ember_sys::cmd::link::F_KPROBE_MULTI_RETURN;
use ember_sys::{Errno, LinkCreate, LinkExtra, LinkTarget, link_create};

use super::link::Inner;
use super::tracefs;
use super::{AttachError, AttachErrorKind as K, AttachMode, AttachOpts, Link, Mechanism};
use crate::Program;
use crate::kallsyms;

/// Which functions a [`KprobeMultiTarget`] probes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KprobeMultiFunctions {
    /// Every attachable function whose name matches the glob (`*`, `?`).
    Pattern(String),
    /// These functions, by name.
    Symbols(Vec<String>),
    /// These addresses.
    Addresses(Vec<u64>),
}

/// What [`Program::attach_kprobe_multi`] attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KprobeMultiTarget {
    /// The functions.
    pub functions: KprobeMultiFunctions,
    /// Return probes (`kretprobe.multi`); not for `kprobe.session`, whose
    /// program runs at both entry and return.
    pub retprobe: bool,
    /// One `bpf_get_attach_cookie()` value per function, in the order
    /// they resolve (pattern matches sort by name); empty: the options'
    /// cookie for every function.
    pub cookies: Vec<u64>,
}

impl KprobeMultiTarget {
    /// Every function matching `pattern`.
    pub fn pattern(pattern: impl Into<String>) -> KprobeMultiTarget {
        KprobeMultiTarget {
            functions: KprobeMultiFunctions::Pattern(pattern.into()),
            retprobe: false,
            cookies: Vec::new(),
        }
    }

    /// Functions `names`, in this order.
    pub fn symbols<S: Into<String>>(names: impl IntoIterator<Item = S>) -> KprobeMultiTarget {
        KprobeMultiTarget {
            functions: KprobeMultiFunctions::Symbols(names.into_iter().map(Into::into).collect()),
            ..KprobeMultiTarget::pattern("")
        }
    }

    /// Functions at `addrs`.
    pub fn addresses(addrs: Vec<u64>) -> KprobeMultiTarget {
        KprobeMultiTarget {
            functions: KprobeMultiFunctions::Addresses(addrs),
            ..KprobeMultiTarget::pattern("")
        }
    }

    /// Makes them return probes (or not).
    pub fn retprobe(mut self, on: bool) -> KprobeMultiTarget {
        self.retprobe = on;
        self
    }

    /// One cookie per function.
    pub fn cookies(mut self, cookies: Vec<u64>) -> KprobeMultiTarget {
        self.cookies = cookies;
        self
    }
}

impl fmt::Display for KprobeMultiTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retprobe {
            "kretprobe.multi"
        } else {
            "kprobe.multi"
        };
        match &self.functions {
            KprobeMultiFunctions::Pattern(p) => write!(f, "{kind} '{p}'"),
            KprobeMultiFunctions::Symbols(s) => write!(f, "{kind} '{}'", s.join(",")),
            KprobeMultiFunctions::Addresses(a) => {
                let a: Vec<String> = a.iter().map(|a| format!("{a:#x}")).collect();
                write!(f, "{kind} '{}'", a.join(","))
            }
        }
    }
}

/// Whether `name` matches glob `pat` (`*` any run, `?` one character;
/// everything else literal), as libbpf's `glob_match`.
pub fn glob_match(pat: &str, name: &str) -> bool {
    let (p, n) = (pat.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    // Where the last `*` was, and the name position it now covers to.
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        match p.get(i) {
            Some(b'*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == b'?' || c == n[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// The distinct function names of a tracefs `available_filter_functions`
/// (or kallsyms function-name) list matching `pat`, sorted: `name` or
/// `name [module]` per line; ftrace's placeholders for dropped functions
/// are skipped.
pub fn matching_functions<'t>(names: impl Iterator<Item = &'t str>, pat: &str) -> Vec<String> {
    let mut out = BTreeSet::new();
    for line in names {
        let Some(name) = line.split_ascii_whitespace().next() else {
            continue;
        };
        if name.starts_with("__ftrace_invalid_address__") {
            continue;
        }
        if glob_match(pat, name) {
            out.insert(name.to_owned());
        }
    }
    out.into_iter().collect()
}

/// The names matching `pat` on this kernel.
fn resolve_pattern(pat: &str) -> Result<Vec<String>, K> {
    if let Ok(root) = tracefs::root() {
        let path = root.join("available_filter_functions");
        if let Ok(text) = std::fs::read_to_string(&path) {
            return Ok(matching_functions(text.lines(), pat));
        }
    }
    let text = std::fs::read_to_string("/proc/kallsyms").map_err(|source| K::Io {
        path: "/proc/kallsyms".into(),
        source,
    })?;
    Ok(matching_functions(kallsyms::function_names(&text), pat))
}

impl Program {
    /// Attaches this `kprobe.multi` (or `kprobe.session`) program to many
    /// kernel functions with one link. A session program runs at entry
    /// and at return (its attach type decides; `retprobe` must be false).
    ///
    /// # Errors
    /// [`K::NotFound`] for a pattern that matches nothing;
    /// [`K::Unsupported`] for [`AttachMode::Legacy`] (there is no legacy
    /// form) and for a kernel without fprobe (`EOPNOTSUPP`);
    /// [`K::BadTarget`] for a cookie count unlike the function count or
    /// a name with a NUL; the kernel's error otherwise (`ENOENT` when a
    /// name is not attachable).
    pub fn attach_kprobe_multi(
        &self,
        t: &KprobeMultiTarget,
        opts: AttachOpts,
    ) -> Result<Link, AttachError> {
        let session = self.attach_type() == Some(AttachType::TRACE_KPROBE_SESSION);
        let target = if session {
            t.to_string().replacen("kprobe.multi", "kprobe.session", 1)
        } else {
            t.to_string()
        };
        let fail = |k| self.attach_err(&target, k);
        self.kprobe_type_check(&target, true)?;
        if opts.mode == AttachMode::Legacy {
            return Err(fail(K::Unsupported(
                "kprobe.multi exists only as a link".into(),
            )));
        }
        if session && t.retprobe {
            return Err(fail(K::BadTarget(
                "a kprobe.session program runs at entry and return; it is not a retprobe".into(),
            )));
        }
        let names: Vec<String> = match &t.functions {
            KprobeMultiFunctions::Pattern(p) => {
                let m = resolve_pattern(p).map_err(&fail)?;
                if m.is_empty() {
                    return Err(fail(K::NotFound(format!(
                        "a kernel function matching '{p}'"
                    ))));
                }
                m
            }
            KprobeMultiFunctions::Symbols(s) => s.clone(),
            KprobeMultiFunctions::Addresses(_) => Vec::new(),
        };
        let cnames = names
            .iter()
            .map(|n| CString::new(n.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| fail(K::BadTarget("a function name holds a NUL".into())))?;
        let syms: Vec<&core::ffi::CStr> = cnames.iter().map(CString::as_c_str).collect();
        let addrs: &[u64] = match &t.functions {
            KprobeMultiFunctions::Addresses(a) => a,
            _ => &[],
        };
        let n = syms.len().max(addrs.len());
        if n == 0 {
            return Err(fail(K::NoTarget));
        }
        let cookies = match (t.cookies.len(), opts.cookie) {
            (0, 0) => Vec::new(),
            (0, c) => vec![c; n],
            (k, _) if k == n => t.cookies.clone(),
            (k, _) => {
                return Err(fail(K::BadTarget(format!("{k} cookies for {n} functions"))));
            }
        };
        let link = link_create(&LinkCreate {
            prog: self.fd(),
            target: LinkTarget::None,
            attach_type: if session {
                AttachType::TRACE_KPROBE_SESSION.0
            } else {
                AttachType::TRACE_KPROBE_MULTI.0
            },
            flags: 0,
            extra: LinkExtra::KprobeMulti {
                syms: &syms,
                addrs,
                cookies: &cookies,
                flags: if t.retprobe { F_KPROBE_MULTI_RETURN } else { 0 },
            },
        })
        .map_err(|e| {
            fail(if e.errno == Errno::OPNOTSUPP {
                K::Unsupported(format!(
                    "this kernel has no {} links (BPF_TRACE_KPROBE_{} needs CONFIG_FPROBE; the kernel said EOPNOTSUPP)",
                    if session { "kprobe.session" } else { "kprobe.multi" },
                    if session { "SESSION" } else { "MULTI" },
                ))
            } else {
                K::Sys(e)
            })
        })?;
        Ok(Link::new(
            self.name(),
            target,
            Mechanism::BpfLink,
            Inner::Fd {
                link,
                perf: None,
                probe: None,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("do_sys_open*", "do_sys_openat2"));
        assert!(glob_match("do_sys_open*", "do_sys_open"));
        assert!(!glob_match("do_sys_open*", "do_sys_ope"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("vfs_?ead", "vfs_read"));
        assert!(!glob_match("vfs_?ead", "vfs_rread"));
        assert!(glob_match("*_read*", "vfs_read_iter"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("a**", "a"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(glob_match("*a*a*a*a*b", &format!("{}b", "a".repeat(40))));
    }

    #[test]
    fn filter_function_lists() {
        let list = "\
do_sys_openat2
do_sys_open
__ftrace_invalid_address___1234
do_sys_openat2
nf_open [nf_conntrack]

vfs_read
";
        assert_eq!(
            matching_functions(list.lines(), "do_sys_open*"),
            ["do_sys_open", "do_sys_openat2"]
        );
        assert_eq!(matching_functions(list.lines(), "*open*").len(), 3);
        assert!(matching_functions(list.lines(), "*ftrace*").is_empty());
        assert!(matching_functions(list.lines(), "nomatch").is_empty());
    }

    #[test]
    fn targets_display() {
        assert_eq!(
            KprobeMultiTarget::pattern("vfs_*")
                .retprobe(true)
                .to_string(),
            "kretprobe.multi 'vfs_*'"
        );
        assert_eq!(
            KprobeMultiTarget::symbols(["a", "b"]).to_string(),
            "kprobe.multi 'a,b'"
        );
        assert_eq!(
            KprobeMultiTarget::addresses(vec![16]).to_string(),
            "kprobe.multi '0x10'"
        );
    }
}
