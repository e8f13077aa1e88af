//! Loaded modules without BTF (kernels before 5.11, or
//! `CONFIG_DEBUG_INFO_BTF_MODULES=n`, or a hidden sysfs file): what ember
//! says when something it was asked for lives in one of them.
//!
//! The rule, kept honest: ember cannot know which module defines a type
//! it has no BTF for, so it names the modules `/proc/modules` lists that
//! had no BTF to search, and only states that a sysfs file is absent when
//! `/sys/kernel/btf` itself is there to look in.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ember_core::reloc::{Outcome, PoisonReason};

const SYSFS: &str = "/sys/kernel/btf";

/// Modules already reported by [`note_absent`]: one line per module per
/// process, however many programs target it.
static NOTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `/sys/kernel/btf/<module>` when sysfs BTF is present (vmlinux there)
/// but this module's file is not.
pub(crate) fn sysfs_absent(module: &str) -> Option<PathBuf> {
    absent_in(Path::new(SYSFS), module)
}

fn absent_in(dir: &Path, module: &str) -> Option<PathBuf> {
    let path = dir.join(module);
    (dir.join("vmlinux").exists() && !path.exists()).then_some(path)
}

/// Logs, once per module and process, at info level, that `module` has no
/// BTF, when `/sys/kernel/btf` says so. `what` says what still works.
pub(crate) fn note_absent(module: &str, what: &str) {
    let Some(path) = sysfs_absent(module) else {
        return;
    };
    let first = NOTED
        .lock()
        .map(|mut s| s.insert(module.to_owned()))
        .unwrap_or(true);
    if first {
        log::info!(
            "module {module} has no BTF ({} absent): {what}",
            path.display()
        );
    }
}

/// Module names from `/proc/modules` text (the first field of each line).
fn loaded(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter_map(|l| l.split_whitespace().next())
}

/// The loaded modules not among `searched` (the module BTFs a CO-RE or
/// ksym search covered), each as `name` or `name (/sys/kernel/btf/name
/// absent)`; at most `max`, then `and N more`.
fn unsearched(proc_modules: &str, searched: &[&str], dir: &Path, max: usize) -> Option<String> {
    let mut names: Vec<&str> = loaded(proc_modules)
        .filter(|m| !searched.contains(m))
        .collect();
    ember_core::order::sort(&mut names);
    names.dedup();
    if names.is_empty() {
        return None;
    }
    let mut out = String::new();
    for (i, m) in names.iter().take(max).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(m);
        if let Some(p) = absent_in(dir, m) {
            out.push_str(&format!(" ({} absent)", p.display()));
        }
    }
    if names.len() > max {
        out.push_str(&format!(", and {} more", names.len() - max));
    }
    Some(out)
}

/// Appends to the text of every relocation poisoned for want of a type
/// (no candidate in vmlinux or any module BTF searched) which loaded
/// modules had no BTF to search: the type may be one of theirs.
/// `relocations` yields each outcome with its text.
pub(crate) fn annotate<'r>(
    relocations: impl Iterator<Item = (Outcome, &'r mut String)>,
    searched: &[&str],
) {
    let mut hint: Option<Option<String>> = None;
    for (_, text) in relocations.filter(|(o, _)| *o == Outcome::Poisoned(PoisonReason::NoCandidate))
    {
        if let Some(h) = hint.get_or_insert_with(|| missing(searched)) {
            text.push_str("\n    ");
            text.push_str(h);
        }
    }
}

/// `searched vmlinux and N module BTF(s); loaded modules without BTF,
/// which may define it: ...`, when `/proc/modules` lists any loaded
/// module outside `searched`.
pub(crate) fn missing(searched: &[&str]) -> Option<String> {
    let text = std::fs::read_to_string("/proc/modules").ok()?;
    let h = unsearched(&text, searched, Path::new(SYSFS), 8)?;
    Some(format!(
        "searched vmlinux and {} module BTF(s); loaded modules without BTF, \
         which may define it: {h}",
        searched.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULES: &str = "\
nf_conntrack_netlink 57344 0 - Live 0xffffffffc0a00000
nf_conntrack 188416 1 nf_conntrack_netlink, Live 0xffffffffc0900000
nf_defrag_ipv6 24576 1 nf_conntrack, Live 0xffffffffc0800000
";

    fn sysfs(files: &[&str]) -> tempdir::Dir {
        let d = tempdir::Dir::new();
        for f in files {
            std::fs::write(d.0.join(f), b"").unwrap();
        }
        d
    }

    /// A self-removing scratch directory (no tempfile dependency).
    mod tempdir {
        pub(super) struct Dir(pub(super) std::path::PathBuf);
        impl Dir {
            pub(super) fn new() -> Dir {
                static N: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                let p = std::env::temp_dir()
                    .join(format!("ember-absent-btf-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    #[test]
    fn names_loaded_modules_that_had_no_btf_to_search() {
        let d = sysfs(&["vmlinux", "nf_conntrack", "nf_defrag_ipv6"]);
        let h = unsearched(MODULES, &["nf_conntrack", "nf_defrag_ipv6"], &d.0, 8).unwrap();
        assert_eq!(
            h,
            format!(
                "nf_conntrack_netlink ({} absent)",
                d.0.join("nf_conntrack_netlink").display()
            )
        );
        // Every module searched: nothing to suggest.
        assert_eq!(
            unsearched(
                MODULES,
                &["nf_conntrack", "nf_defrag_ipv6", "nf_conntrack_netlink"],
                &d.0,
                8
            ),
            None
        );
    }

    #[test]
    fn says_absent_only_when_sysfs_btf_is_there_and_caps_the_list() {
        // No vmlinux file: sysfs BTF hidden or missing, so no claim about
        // a module's file.
        let d = sysfs(&[]);
        assert_eq!(
            unsearched(MODULES, &[], &d.0, 2).unwrap(),
            "nf_conntrack, nf_conntrack_netlink, and 1 more"
        );
        assert_eq!(absent_in(&d.0, "nf_conntrack"), None);
        let d = sysfs(&["vmlinux"]);
        assert_eq!(
            absent_in(&d.0, "nf_conntrack"),
            Some(d.0.join("nf_conntrack"))
        );
    }
}
