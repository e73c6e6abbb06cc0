//! The dependency rule of docs/architecture.md, checked on the source: every `crate::…` (and
//! `super::…` reaching the crate root) in `src/` names a top-level module in a lower layer than
//! its own, so the modules form no cycle, and `model` and `memory` use no other module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, top to bottom: a module may use only modules of the layers below its own.
const LAYERS: &[&[&str]] = &[
    // The process: the commands, the listeners of a role, the fuzz targets' checks.
    &["startup", "cli", "healthcheck", "fuzzing"],
    // What every HTTP listener serves or wraps: /health, /readyz, /metrics, request metrics.
    &["health", "telemetry"],
    // The web UI: pages on the query role's state and query functions.
    &["ui"],
    // The route sets, which do not use each other.
    &["ingest", "query"],
    // What the route sets share: the typed state and pools, extractors, the documents' parts.
    &["state", "extract", "openapi"],
    &["auth"],
    // The error type every route answers with.
    &["error"],
    // The write paths, once out of ingest/, and the stats rollups.
    &["store"],
    // Cost: the model price table.
    &["cost"],
    // Behaviour profiles, baselines and drift detection.
    &["drift"],
    &["rollup"],
    // Drift alerts: queued by drift detection, delivered by a background task of the process.
    &["alerts"],
    &["db"],
    &["config"],
    &["role"],
    // Leaves: they use no other module.
    &["model", "memory"],
];

/// Rust source without comments and without the contents of string and character literals.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        match rest {
            ['/', '/', ..] => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            ['/', '*', ..] => {
                let mut depth = 0;
                while i < chars.len() {
                    if chars[i..].starts_with(&['/', '*']) {
                        depth += 1;
                        i += 2;
                    } else if chars[i..].starts_with(&['*', '/']) {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            ['r', '#', ..] | ['r', '"', ..] if i == 0 || !is_ident(chars[i - 1]) => {
                let hashes = rest[1..].iter().take_while(|c| **c == '#').count();
                if rest.get(1 + hashes) != Some(&'"') {
                    out.push('r');
                    i += 1;
                    continue;
                }
                i += 2 + hashes;
                while i < chars.len()
                    && !(chars[i] == '"'
                        && chars[i + 1..]
                            .iter()
                            .take(hashes)
                            .filter(|c| **c == '#')
                            .count()
                            == hashes)
                {
                    i += 1;
                }
                i += 1 + hashes;
                out.push_str("\"\"");
            }
            ['"', ..] => {
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            ['\'', '\\', ..] => {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            }
            ['\'', _, '\'', ..] => i += 3,
            [c, ..] => {
                out.push(*c);
                i += 1;
            }
            [] => unreachable!(),
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier at the start of `s` (after blanks), if any.
fn ident(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first names of a path that follows the crate root in `rest`: `x` of `x::…`, or each
/// item's first name of `{x, y::z, …}`.
fn root_names(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(group) = rest.strip_prefix('{') {
        let mut names = Vec::new();
        let (mut depth, mut item_start) = (0, true);
        for (at, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && !c.is_whitespace() => {
                    item_start = false;
                    names.extend(ident(&group[at..]).map(str::to_owned));
                }
                _ => {}
            }
        }
        return names;
    }
    ident(rest).map(str::to_owned).into_iter().collect()
}

/// The module path of a file under `src/`: `ingest/otlp/mod.rs` is `[ingest, otlp]`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The top-level modules a file's code names: through `crate::`, or through enough `super::`
/// to reach the crate root.
fn uses(code: &str, path: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = code[at..].find(['c', 's']) {
        let start = at + offset;
        at = start + 1;
        if start > 0 && code[..start].ends_with(|c: char| is_ident(c) || c == '$') {
            continue;
        }
        let mut rest = &code[start..];
        if let Some(after) = rest.strip_prefix("crate") {
            match after.trim_start().strip_prefix("::") {
                Some(after) => rest = after,
                None => continue,
            }
        } else {
            let mut depth = 0;
            while let Some(after) = rest.strip_prefix("super") {
                match after.trim_start().strip_prefix("::") {
                    Some(after) => {
                        rest = after.trim_start();
                        depth += 1;
                    }
                    None => break,
                }
            }
            // Only a path that climbs to the crate root leaves the file's top-level module.
            if depth == 0 || depth < path.len() {
                continue;
            }
        }
        found.extend(root_names(rest));
    }
    found
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// Each top-level module of `src/` with the top-level modules its files use.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        // The crate root declares the modules; the binary uses the library by its name.
        if relative == Path::new("lib.rs") || relative == Path::new("main.rs") {
            continue;
        }
        let path = module_path(relative);
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let is_module = |m: &String| src.join(format!("{m}.rs")).exists() || src.join(m).is_dir();
        let used = uses(&code, &path)
            .into_iter()
            .filter(|m| *m != path[0] && is_module(m));
        graph.entry(path[0].clone()).or_default().extend(used);
    }
    graph
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

#[test]
fn modules_depend_only_on_lower_layers() {
    let graph = module_graph();
    // The scan sees what is there (a broken scan would find nothing and pass).
    assert!(graph["startup"].contains("ingest"), "{graph:?}");
    assert!(graph["query"].contains("db"), "{graph:?}");
    let mut problems = Vec::new();
    for (module, used) in &graph {
        let Some(layer) = layer_of(module) else {
            problems.push(format!(
                "src/{module} is in no layer: add it to LAYERS and docs/architecture.md"
            ));
            continue;
        };
        for other in used {
            match layer_of(other) {
                Some(below) if below > layer => {}
                _ => problems.push(format!(
                    "{module} uses {other}, which is not in a layer below it"
                )),
            }
        }
    }
    for leaf in ["model", "memory"] {
        if let Some(used) = graph.get(leaf).filter(|u| !u.is_empty()) {
            problems.push(format!(
                "{leaf} must use no other module, but uses {used:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "the dependency rule (docs/architecture.md):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_scan_reads_paths_not_comments_or_strings() {
    let code = code_only(
        "use crate::{db::x, model};\n// crate::ingest\nlet s = \"crate::query\"; let c = '\"';\n\
         /* crate::auth */ super::super::role::Listener; r#\"crate::cli\"#; crate :: error::E;",
    );
    let path = ["health".to_owned(), "inner".to_owned()];
    let found: Vec<String> = uses(&code, &path).into_iter().collect();
    assert_eq!(found, ["db", "error", "model", "role"]);
}
