//! The one shape of the four function crates, checked on their source (docs/architecture.md is the map):
//! - every crate has the same files: main, trigger, handler, ports, config, error, adapters/{mod,memory};
//! - a handler stays a handler: at most 200 lines before its test module;
//! - each trigger's spine, as docs/architecture.md lists it, is at most five files that exist, and the use-case
//!   modules on it see ports and rules only: never an adapter, an AWS SDK or the Lambda runtime;
//! - `shared/` holds only what two or more functions use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FUNCTIONS: &[&str] = &[
    "provision-users",
    "idle-shutdown",
    "train-on-push",
    "notify",
];

/// The files every function crate has (relative to `src/`).
const LAYOUT: &[&str] = &[
    "main.rs",
    "trigger.rs",
    "handler.rs",
    "ports.rs",
    "config.rs",
    "error.rs",
    "adapters/mod.rs",
    "adapters/memory.rs",
];

const MAX_HANDLER_LINES: usize = 200;
const MAX_SPINE_FILES: usize = 5;

/// What a use case must not import: it works through ports, whatever serves them.
const FORBIDDEN_IN_USE_CASES: &[&str] = &[
    "crate::adapters",
    "aws_sdk_",
    "aws_smithy_",
    "aws_config",
    "lambda_runtime",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn src(function: &str) -> PathBuf {
    root().join("functions").join(function).join("src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The product part of a file: everything before its test module.
fn product(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or("")
}

#[test]
fn every_function_crate_has_the_same_layout() {
    let mut missing = Vec::new();
    for function in FUNCTIONS {
        for file in LAYOUT {
            if !src(function).join(file).is_file() {
                missing.push(format!("functions/{function}/src/{file}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "missing from the shared layout: {missing:?}"
    );
}

#[test]
fn handlers_are_thin() {
    for function in FUNCTIONS {
        let text = read(&src(function).join("handler.rs"));
        let lines = product(&text).lines().count();
        assert!(
            lines <= MAX_HANDLER_LINES,
            "functions/{function}/src/handler.rs has {lines} non-test lines (at most {MAX_HANDLER_LINES}): \
             move the work into a use-case module"
        );
    }
}

/// One trigger's path through a function, as docs/architecture.md lists it.
#[derive(Debug)]
struct Spine {
    function: String,
    trigger: String,
    files: Vec<String>,
}

/// The rows of the spine table in docs/architecture.md: `| function | trigger | a.rs → b.rs → … |`.
fn spines() -> Vec<Spine> {
    let doc = read(&root().join("docs/architecture.md"));
    doc.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [function, trigger, path] = cells.as_slice() else {
                return None;
            };
            let function = function.trim_matches('`');
            if !FUNCTIONS.contains(&function) || !path.contains('→') {
                return None;
            }
            Some(Spine {
                function: function.to_string(),
                trigger: trigger.to_string(),
                files: path
                    .split('→')
                    .map(|f| f.trim().trim_matches('`').to_string())
                    .collect(),
            })
        })
        .collect()
}

#[test]
fn each_triggers_spine_is_at_most_five_files_and_its_use_cases_see_only_ports_and_rules() {
    let spines = spines();
    for function in FUNCTIONS {
        assert!(
            spines.iter().any(|s| s.function == *function),
            "docs/architecture.md lists no trigger of {function}"
        );
    }
    for spine in &spines {
        let at = format!("{} / {}", spine.function, spine.trigger);
        assert!(
            spine.files.len() <= MAX_SPINE_FILES,
            "{at}: {} files on the spine (at most {MAX_SPINE_FILES}): {:?}",
            spine.files.len(),
            spine.files
        );
        for file in &spine.files {
            assert!(
                src(&spine.function).join(file).is_file(),
                "{at}: {file} is on the spine in docs/architecture.md but not in functions/{}/src",
                spine.function
            );
        }
        // The use cases: what stands between the handler and the ports.
        let handler = spine.files.iter().position(|f| f == "handler.rs");
        let ports = spine.files.iter().position(|f| f == "ports.rs");
        let (Some(handler), Some(ports)) = (handler, ports) else {
            panic!(
                "{at}: the spine must pass through handler.rs and ports.rs: {:?}",
                spine.files
            );
        };
        assert!(handler < ports, "{at}: the handler comes before the ports");
        for use_case in &spine.files[handler + 1..ports] {
            let text = read(&src(&spine.function).join(use_case));
            for forbidden in FORBIDDEN_IN_USE_CASES {
                if let Some(line) = product(&text).lines().find(|l| l.contains(forbidden)) {
                    panic!(
                        "{at}: the use case {use_case} reaches past its ports ({forbidden}): {}",
                        line.trim()
                    );
                }
            }
        }
    }
}

/// Every path a piece of code names under `studio_ops_shared::`, with `use` trees flattened
/// (`use studio_ops_shared::{lease, events::{suite::X, schedule}}` → `lease`, `events::suite::X`, `events::schedule`).
fn shared_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("studio_ops_shared::") {
        rest = &rest[at + "studio_ops_shared::".len()..];
        let end = tree_end(rest);
        flatten("", &rest[..end], &mut out);
        rest = &rest[end..];
    }
    out
}

/// Where the use tree or path at the start of `text` ends.
fn tree_end(text: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            c if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') => return i,
            _ => {}
        }
    }
    text.len()
}

fn flatten(prefix: &str, tree: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let path = format!("{prefix}{}", tree.split_whitespace().next().unwrap_or(""));
            if !path.is_empty() {
                out.push(path);
            }
        }
        Some(open) => {
            let head = format!("{prefix}{}", &tree[..open]);
            let inner = tree[open + 1..].trim_end().trim_end_matches('}');
            let mut depth = 0usize;
            let mut start = 0;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    ',' if depth == 0 => {
                        flatten(&head, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            flatten(&head, &inner[start..], out);
        }
    }
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rs_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules of shared/ (`events::suite` for the events' submodules) and what `lib.rs` re-exports from them.
fn shared_modules() -> (BTreeSet<String>, BTreeMap<String, String>) {
    let lib = read(&root().join("shared/src/lib.rs"));
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            modules.insert(name.to_string());
        }
        if let Some(tree) = line
            .strip_prefix("pub use ")
            .and_then(|l| l.strip_suffix(';'))
        {
            let mut paths = Vec::new();
            flatten("", tree, &mut paths);
            for path in paths {
                if let Some((module, item)) = path.split_once("::") {
                    reexports.insert(
                        item.rsplit("::").next().unwrap_or(item).to_string(),
                        module.to_string(),
                    );
                }
            }
        }
    }
    if modules.remove("events") {
        let events = read(&root().join("shared/src/events/mod.rs"));
        for line in events.lines() {
            if let Some(name) = line
                .strip_prefix("pub mod ")
                .and_then(|l| l.strip_suffix(';'))
            {
                modules.insert(format!("events::{name}"));
            }
        }
        // The envelope parsing in events/mod.rs itself.
        modules.insert("events".to_string());
    }
    (modules, reexports)
}

#[test]
fn shared_holds_only_what_two_or_more_functions_use() {
    let (modules, reexports) = shared_modules();
    let mut users: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for function in FUNCTIONS {
        let mut files = Vec::new();
        rs_files(&src(function), &mut files);
        for file in files {
            for path in shared_paths(product(&read(&file))) {
                let mut parts = path.split("::");
                let first = parts.next().unwrap_or("");
                let module = match (first, parts.next()) {
                    ("events", Some(sub)) if modules.contains(&format!("events::{sub}")) => {
                        format!("events::{sub}")
                    }
                    _ => reexports
                        .get(first)
                        .cloned()
                        .unwrap_or_else(|| first.to_string()),
                };
                users.entry(module).or_default().insert(function);
            }
        }
    }
    let lonely: Vec<String> = modules
        .iter()
        .filter(|m| users.get(*m).is_none_or(|u| u.len() < 2))
        .map(|m| {
            format!(
                "{m} (used by {:?})",
                users.get(m).cloned().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        lonely.is_empty(),
        "shared/ modules that fewer than two functions use (move them into the function that does): {lonely:?}"
    );
}

#[test]
fn use_trees_are_flattened_as_the_shared_check_reads_them() {
    let code = "use studio_ops_shared::{lease, events::{suite::{AppStopped, SuiteEvent}, schedule}};\n\
                let m = studio_ops_shared::metrics::MetricSet::for_function(\"x\");";
    assert_eq!(
        shared_paths(code),
        vec![
            "lease",
            "events::suite::AppStopped",
            "events::suite::SuiteEvent",
            "events::schedule",
            "metrics::MetricSet::for_function"
        ]
    );
}
