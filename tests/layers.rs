//! The layer rule: a module of src/ imports only from its own layer or
//! below, so that storage never reaches up into the service or a
//! transport, and config and domain depend on nothing of ours above them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each top-level module's layer, lowest first. A module may use
/// `crate::x` only when `x` sits in its layer or a lower one.
const LAYERS: &[&[&str]] = &[
    &["backoff", "telemetry", "tls", "proto", "pool"],
    &["domain", "net"],
    &["config"],
    &["auth", "media"],
    &["storage"],
    &["metrics", "readiness", "access"],
    &["mail", "events", "limits", "housekeeping", "media_cleanup"],
    &["service"],
    &["http"],
    &["grpc"],
    &["cli", "import"],
    &["admin", "startup"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its test modules.
fn code_of(text: &str) -> String {
    let mut code = String::new();
    let mut skipping = false;
    let mut depth = 0i32;
    let mut previous = "";
    for line in text.lines() {
        let trimmed = line.trim_start();
        if !skipping
            && previous == "#[cfg(test)]"
            && trimmed.starts_with("mod ")
            && line.contains('{')
        {
            skipping = true;
            depth = 0;
        }
        if skipping {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if depth <= 0 && line.contains('}') {
                skipping = false;
            }
        } else if !trimmed.starts_with("//") {
            code.push_str(line);
            code.push('\n');
        }
        previous = trimmed;
    }
    code
}

/// The top-level modules a file's code names as `crate::x`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    // `use crate::{a, b::c}`: every name in the braces.
    for group in code.split("use crate::{").skip(1) {
        let inside = group.split('}').next().unwrap_or_default();
        for item in inside.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != "self" {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn modules_import_only_their_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        if relative.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let first = relative.components().next().unwrap();
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let Some(from) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        for target in imports(&code) {
            match layer_of(&target) {
                Some(to) if to > from => {
                    upward.push(format!("{} -> crate::{target}", relative.display()))
                }
                Some(_) => {}
                None => {
                    unplaced.insert(target);
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules with no layer in LAYERS: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that run up the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_import_reader_finds_paths_and_groups() {
    let code = code_of(
        "use crate::domain::Email;\nuse crate::{config, storage::Storage};\n// crate::grpc\nfn f() { crate::mail::send(); }\n#[cfg(test)]\nmod tests {\n    use crate::startup;\n}\n",
    );
    let found: Vec<String> = imports(&code).into_iter().collect();
    assert_eq!(found, ["config", "domain", "mail", "storage"]);
}
