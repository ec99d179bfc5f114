//! The module layers `src/lib.rs` documents, held: every top-level module has a layer, and no
//! module's code (its tests aside) names a module on its own layer or above.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module's layer, read from the numbered list under `# Module layers` in
/// `src/lib.rs`: `N. a, b; then c` puts `c` one step above `a` and `b`. Text in parentheses
/// explains and names no layer.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let doc: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(str::trim)
        .skip_while(|l| *l != "# Module layers")
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect();
    // Join each numbered item with its continuation lines.
    let mut items: Vec<String> = Vec::new();
    for line in doc {
        let numbered = line
            .split_once(". ")
            .filter(|(n, _)| n.parse::<u32>().is_ok());
        match numbered {
            Some((_, rest)) => items.push(rest.to_owned()),
            None if !line.is_empty() && !items.is_empty() => {
                let last = items.last_mut().unwrap();
                last.push(' ');
                last.push_str(line);
            }
            None => {}
        }
    }
    let mut layers = BTreeMap::new();
    let mut level = 0;
    for item in items {
        let mut bare = String::new();
        let mut depth = 0;
        for c in item.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => bare.push(c),
                _ => {}
            }
        }
        for group in bare.split("; then ") {
            for name in group.split('`').skip(1).step_by(2) {
                layers.insert(name.to_owned(), level);
            }
            level += 1;
        }
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `crate::…` paths in `text` name, outside comments and the test
/// module at the end of the file.
fn named_modules(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut names = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn no_module_names_a_module_on_its_layer_or_above() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    let mut modules = std::collections::BTreeSet::new();
    for file in &files {
        let rel = file.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if top == "lib" || top == "main" {
            continue;
        }
        modules.insert(top.clone());
        let Some(&own) = layers.get(&top) else {
            problems.push(format!("`{top}` has no layer in src/lib.rs"));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for name in named_modules(&text) {
            if name == top {
                continue;
            }
            match layers.get(&name) {
                Some(&other) if other >= own => problems.push(format!(
                    "src/{} names `{name}` (layer {other}), not below `{top}` (layer {own})",
                    rel.display()
                )),
                _ => {}
            }
        }
    }
    assert!(
        modules.len() >= 25,
        "only {} modules found: {modules:?}",
        modules.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_layer_list_is_read_as_written() {
    let lib = "//! # Module layers\n//!\n//! 1. `a`, `b`: leaves.\n//! 2. `c` (uses `a`);\n//!    then `d`\n//!    (reads `b`).\n//!\n//! # Next\n//! 3. `z`\n";
    let layers = layers(lib);
    let expected: BTreeMap<String, usize> = [("a", 0), ("b", 0), ("c", 1), ("d", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(layers, expected);
}

/// The spine (`stage`, `run`), the gate, the command line and the reporters name no stage
/// after replay: a stage's flags, command, rehearsal and rendering come from its registration
/// and its report's detail, so adding one touches none of them. Tests and comments aside.
#[test]
fn the_spine_the_gate_the_cli_and_the_reporters_name_no_stage() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join("stage.rs"), src.join("cli.rs")];
    for folder in ["report", "run", "gate"] {
        rust_files(&src.join(folder), &mut files);
    }
    let variants: Vec<String> = db_ci::StageId::after_replay()
        .map(|id| {
            let name = id.as_str();
            format!("StageId::{}{}", name[..1].to_uppercase(), &name[1..])
        })
        .collect();
    let mut named = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for variant in variants.iter().filter(|v| line.contains(v.as_str())) {
                named.push(format!("{}:{}: {variant}", file.display(), i + 1));
            }
        }
    }
    assert!(
        named.is_empty(),
        "stages named outside their folder: {named:#?}"
    );
}
