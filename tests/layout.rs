//! The layout rule of DESIGN.md ("Layout"), checked on the source: imports point one way, from
//! the core outwards, and no two modules import each other, directly or through others.
//!
//! Every `crate::<module>` path in `src/` (imports and inline paths alike) is an edge from the
//! top-level module the file belongs to. Unit tests (`tests.rs` files and trailing
//! `#[cfg(test)] mod tests` blocks) are left out: a test may reach for anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module and its layer; a module may import its own layer or a lower one.
const LAYERS: &[(&str, u8)] = &[
    // core: formats and facts, no AWS, no async
    ("logs", 0),
    ("decode", 0),
    ("key", 0),
    ("time", 0),
    ("output", 0),
    ("aws_names", 0),
    ("mask", 0),
    ("redact", 0),
    ("cloudtrail", 0),
    ("cloudwatch", 0),
    ("lake", 0),
    // ports
    ("ports", 1),
    ("sink", 1),
    // domain
    ("events", 2),
    ("settings", 2),
    ("ledger", 2),
    ("sessions", 2),
    ("pipeline", 2),
    ("report", 2),
    ("metrics", 2),
    // use cases
    ("forward", 3),
    ("backfill", 4),
    ("doctor", 4),
    ("handler", 5),
    // edges
    ("aws", 6),
    ("runtime", 7),
    ("diagnose", 7),
    ("progress", 7),
    ("cli", 7),
];

/// `aws/` may import only these (DESIGN.md: the ports, the sink, the settings and the core).
const AWS_MAY_IMPORT: &[&str] = &[
    "ports",
    "sink",
    "settings",
    "logs",
    "decode",
    "key",
    "time",
    "output",
    "aws_names",
    "mask",
    "redact",
    "cloudtrail",
    "cloudwatch",
    "lake",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to; `None` for lib.rs and main.rs.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Code without its unit tests.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The modules named by `crate::<name>` paths, comments left out.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            // `redshift_audit_forwarder::` or `$crate::` are not this crate's own paths here.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.insert(name);
            }
        }
    }
    names
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let Some(module) = module_of(&src, &file) else {
            continue;
        };
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        let targets = crate_paths(without_tests(&text));
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(targets.into_iter().filter(|t| *t != module));
    }
    edges
}

fn layer(module: &str) -> u8 {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, layer)| *layer)
        .unwrap_or_else(|| panic!("module {module} has no layer in tests/layout.rs: add it"))
}

#[test]
fn every_module_has_a_layer_and_imports_point_down() {
    let mut wrong = Vec::new();
    for (module, targets) in graph() {
        for target in targets {
            if layer(&target) > layer(&module) {
                wrong.push(format!("{module} imports {target}, a higher layer"));
            }
            if module == "aws" && !AWS_MAY_IMPORT.contains(&target.as_str()) {
                wrong.push(format!("aws imports {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_directly_or_through_others() {
    let edges = graph();
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in edges.keys() {
        if let Some(cycle) = visit(node, &edges, &mut Vec::new(), &mut done) {
            panic!("modules import each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_imports_cycles_and_comments() {
    let found = crate_paths(
        "use crate::ports::{Fetch, ObjectRef};\nlet x = crate::time::now_ms(); // crate::aws\n\
         use redshift_audit_forwarder::handler;\n",
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["ports".to_string(), "time".to_string()]
    );
    assert_eq!(
        without_tests("fn a() {}\n#[cfg(test)]\nmod tests {\nuse crate::cli;\n}\n"),
        "fn a() {}\n"
    );
    // The real graph has the edges this test relies on, so an empty graph cannot pass.
    let edges = graph();
    assert!(edges["handler"].contains("backfill"));
    assert!(edges["backfill"].contains("forward"));
    assert!(edges.contains_key("aws"));
}
