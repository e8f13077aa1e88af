//! ember-core's top-level modules depend on each other in one direction
//! (STYLE rule 3): the graph of `crate::<module>` references in code (doc
//! comments and tests excluded) has no cycle.

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

#[test]
fn core_module_graph_has_no_cycle() {
    let src = root().join("core/src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("pub ").unwrap_or(l.trim());
            l.strip_prefix("mod ")?.strip_suffix(';').map(str::to_owned)
        })
        .collect();
    assert!(modules.len() >= 10, "{modules:?}");
    let mut deps: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for m in &modules {
        let set = deps.entry(m).or_default();
        for f in files(&src, m) {
            let text = std::fs::read_to_string(&f).expect("source");
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(d) = modules.iter().find(|x| **x == name) {
                        if d != m {
                            set.insert(d);
                        }
                    }
                }
            }
        }
    }
    // Kahn's algorithm: repeatedly remove modules with no remaining deps.
    let mut left = deps.clone();
    let mut order = Vec::new();
    while let Some(m) = left.iter().find(|(_, d)| d.is_empty()).map(|(m, _)| *m) {
        left.remove(m);
        for d in left.values_mut() {
            d.remove(m);
        }
        order.push(m);
    }
    assert!(
        left.is_empty(),
        "module cycle among {:?}; full graph {deps:?}",
        left.keys().collect::<Vec<_>>()
    );
    // The low modules stay low.
    for leaf in ["bytes", "id", "kind", "limits"] {
        assert!(deps[leaf].is_empty(), "{leaf} depends on {:?}", deps[leaf]);
    }
    assert!(!deps["error"].contains("btf"), "error depends on btf again");
}
