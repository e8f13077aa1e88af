//! The top-level modules of ember-core, ember-sys and ember depend on each
//! other in one direction (STYLE rule 3): in each crate, the graph of
//! `crate::<module>` references in code (doc comments and tests excluded)
//! has no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ember_tests::root;

/// The `.rs` files of a module: `src/<m>.rs`, or every file under
/// `src/<m>/` except tests.
fn files(src: &Path, m: &str) -> Vec<std::path::PathBuf> {
    let dir = src.join(m);
    if !dir.is_dir() {
        return vec![src.join(format!("{m}.rs"))];
    }
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !matches!(
                    p.file_name().and_then(|n| n.to_str()),
                    Some("tests.rs" | "test_util.rs")
                )
            {
                out.push(p);
            }
        }
    }
    out
}

/// The crate's top-level modules and, for each, the others it names.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub ")
                .or_else(|| l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in &modules {
        let set = deps.entry(m.clone()).or_default();
        for f in files(src, m) {
            let text = std::fs::read_to_string(&f).expect("source");
            // Unit tests at the end of a file may reach anywhere.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if modules.contains(&name) && name != *m {
                        set.insert(name);
                    }
                }
            }
        }
    }
    deps
}

/// Panics naming the modules left in a cycle (Kahn's algorithm:
/// repeatedly remove modules with no remaining dependencies).
fn assert_acyclic(crate_name: &str, deps: &BTreeMap<String, BTreeSet<String>>) {
    let mut left = deps.clone();
    while let Some(m) = left
        .iter()
        .find(|(_, d)| d.is_empty())
        .map(|(m, _)| m.clone())
    {
        left.remove(&m);
        for d in left.values_mut() {
            d.remove(&m);
        }
    }
    assert!(
        left.is_empty(),
        "{crate_name}: module cycle among {:?}; full graph {deps:?}",
        left.keys().collect::<Vec<_>>()
    );
}

#[test]
fn core_module_graph_has_no_cycle() {
    let deps = graph(&root().join("core/src"));
    assert!(deps.len() >= 10, "{deps:?}");
    assert_acyclic("ember-core", &deps);
    // The low modules stay low.
    for leaf in ["bytes", "id", "kind", "limits"] {
        assert!(deps[leaf].is_empty(), "{leaf} depends on {:?}", deps[leaf]);
    }
    assert!(!deps["error"].contains("btf"), "error depends on btf again");
}

#[test]
fn sys_module_graph_has_no_cycle() {
    let deps = graph(&root().join("sys/src"));
    assert!(deps.len() >= 8, "{deps:?}");
    assert_acyclic("ember-sys", &deps);
    for leaf in ["attr", "error", "id"] {
        assert!(deps[leaf].is_empty(), "{leaf} depends on {:?}", deps[leaf]);
    }
}

#[test]
fn loader_module_graph_has_no_cycle() {
    let deps = graph(&root().join("std-loader/src"));
    assert!(deps.len() >= 8, "{deps:?}");
    assert_acyclic("ember", &deps);
    // The load path does not render reports: that is the CLI's module.
    assert!(
        !deps["load"].contains("explain"),
        "load imports explain again"
    );
}
