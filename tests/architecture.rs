//! The module layers `src/lib.rs` documents, held: every top-level module has a layer, no
//! module's code (its tests aside) names a module on its own layer or above, and no code names
//! a `crate::` path the layers do not list (a re-export at the crate root would be a second
//! name for a module, beside the layers).

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

/// `text` up to its inline test module (`#[cfg(test)]` then `mod tests {`); a test-only
/// declaration before it (`#[cfg(test)] mod test_support;`) does not end the code.
fn code_of(text: &str) -> &str {
    let mut at = 0;
    while let Some(found) = text[at..].find("#[cfg(test)]") {
        let start = at + found;
        let after = text[start + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") && after.lines().next().is_some_and(|l| l.ends_with('{')) {
            return &text[..start];
        }
        at = start + 1;
    }
    text
}

/// The top-level modules `crate::…` paths in `text` name, outside comments and the test
/// module at the end of the file.
fn named_modules(text: &str) -> Vec<String> {
    let code = code_of(text);
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
                Some(_) => {}
                None => problems.push(format!(
                    "src/{} names `crate::{name}`, which is no module of src/lib.rs's layers",
                    rel.display()
                )),
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

/// The `pub use` lines that give an item of another module a second name: `pub use crate::…`
/// or `pub use super::…` anywhere in src (a module's facade over its own submodules is
/// `pub use self::…` or a bare submodule path), and in src/lib.rs a crate-root re-export of a
/// module of the layers. `src/testing.rs`, the library's test API, may re-export the types
/// its methods take.
fn second_names(rel: &str, text: &str, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let code = code_of(text);
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.trim_start();
        let Some(path) = line
            .strip_prefix("pub use ")
            .or_else(|| line.strip_prefix("pub(crate) use "))
            .or_else(|| line.strip_prefix("pub(super) use "))
        else {
            continue;
        };
        let first = path.split("::").next().unwrap_or("");
        let alias = match rel {
            "testing.rs" => false,
            "lib.rs" => layers.contains_key(first),
            _ => first == "crate" || first == "super",
        };
        if alias {
            found.push(format!("src/{rel}: `{}`", line.trim_end()));
        }
    }
    found
}

#[test]
fn no_item_has_a_second_name() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layers = layers(&std::fs::read_to_string(root.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut problems = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        problems.extend(second_names(&rel, &text, &layers));
    }
    assert!(
        problems.is_empty(),
        "a re-export gives an item a second name; use its own path instead:\n{}",
        problems.join("\n")
    );
}

#[test]
fn second_names_are_told_from_facades() {
    let layers: BTreeMap<String, usize> = [("report".to_owned(), 0)].into_iter().collect();
    let text = "pub use crate::report::Observed;\npub use super::spec::split_target;\n\
                pub(crate) use crate::files::write;\npub use self::config::RlsConfig;\n\
                pub use expect::ExpectConfig;\n#[cfg(test)]\nmod test_support;\n\
                pub use crate::a::B;\n#[cfg(test)]\nmod tests {\npub use crate::x::Y;\n";
    assert_eq!(second_names("rls/mod.rs", text, &layers).len(), 4);
    let lib = "pub use report::events;\npub use tokio_postgres;\n";
    assert_eq!(second_names("lib.rs", lib, &layers).len(), 1);
    assert!(second_names("testing.rs", "pub use crate::stage_id::StageId;\n", &layers).is_empty());
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
    let variants: Vec<String> = db_ci::stage_id::StageId::after_replay()
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
