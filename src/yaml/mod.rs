//! The YAML leaf: every input file is parsed here (YAML 1.2 core schema), its errors become
//! diagnostics at `file:line:col` naming the real file, and lines of keys are found for
//! messages about a value the parser already accepted.

pub mod edit;

use std::path::Path;

use crate::diag::Diagnostic;
use crate::error::{Error, Result};

/// Where something is in a YAML input file: a line, and the column when the parser kept the
/// position of the value: what the stages' checks of policy-test files return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: Option<usize>,
}

impl From<usize> for Pos {
    fn from(line: usize) -> Pos {
        Pos { line, column: None }
    }
}

impl Pos {
    /// The position of a value as written.
    pub fn of<T>(value: &serde_saphyr::Spanned<T>) -> Pos {
        Pos {
            line: value.referenced.line() as usize,
            column: Some(value.referenced.column() as usize),
        }
    }

    /// An input error at this position of `file`.
    pub fn error(&self, file: &str, message: impl Into<String>) -> Error {
        Error::at(file, self.line, self.column, message)
    }

    /// `file:line[:col]`.
    pub fn at(&self, file: &str) -> String {
        match self.column {
            Some(column) => format!("{file}:{}:{column}", self.line),
            None => format!("{file}:{}", self.line),
        }
    }
}

/// Parses YAML text into `T`, turning errors into diagnostics that point at `path:line:col`.
///
/// Every input file is YAML 1.2 (the core schema), as users write GitHub workflows: only
/// `true`/`false` are booleans, so a plain `n`, `no`, `off`, `y`, `yes`, `on` stays text
/// (YAML 1.1 read `title: n` as `false`), and `1_000` is text, not a number.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        underscored_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|err| yaml_error(&err, text, path))
}

pub fn yaml_error(err: &serde_saphyr::Error, text: &str, path: &Path) -> Error {
    // The user-facing wording: the default one gives the parser's own advice (e.g. "set
    // DuplicateKeyPolicy in Options") that means nothing to a db-ci user.
    let formatter = serde_saphyr::UserMessageFormatter;
    let message = bare_message(&serde_saphyr::MessageFormatter::format_message(
        &formatter, err,
    ))
    .to_owned();
    let file = path.display().to_string();
    let diagnostic = match err.location() {
        Some(at) => Diagnostic::at(
            file,
            at.line() as usize,
            Some(at.column() as usize),
            message,
        )
        .with_source(text),
        None => Diagnostic {
            file: Some(file.clone()),
            message: format!("{file}: {message}"),
            ..Diagnostic::default()
        },
    };
    diagnostic.into()
}

/// An error about a key the parser accepted (e.g. a top-level key no one owns), at 1-based
/// `line`, pointing at the key.
pub fn key_error(text: &str, path: &Path, line: usize, key: &str, message: &str) -> Error {
    let written = text.lines().nth(line - 1).unwrap_or_default();
    let at = written.find(key);
    // Columns count characters, as the parser's own do.
    let column = at.map_or(1, |at| written[..at].chars().count() + 1);
    let mut diagnostic =
        Diagnostic::at(path.display().to_string(), line, Some(column), message).with_source(text);
    if let (Some(_), Some(snippet)) = (at, diagnostic.snippet.as_mut()) {
        snippet.len = key.len();
    }
    diagnostic.into()
}

/// serde-saphyr's first line without its own `error: line N column M:` prefix.
fn bare_message(text: &str) -> &str {
    let first = text.lines().next().unwrap_or(text);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, message)) if position.contains("column") => message,
        _ => first,
    }
}

/// The 1-based line of the block-style key at `path` (e.g. `["expect", "tables"]`,
/// `["actors", "alice"]`): each key is looked for among the children of the one before, by
/// indentation. Quoted keys match too. `None` when a key is missing or written in flow style
/// (`actors: { alice: … }`): the caller falls back to the nearest key it has.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let depth = |line: &str| line.len() - line.trim_start().len();
    // The block searched: its first line and the indentation of its keys.
    let (mut from, mut indent) = (0, 0);
    let mut found = None;
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if depth(line) < indent {
                break;
            }
            if depth(line) == indent && key_of(trimmed) == Some(*key) {
                hit = Some(i);
                break;
            }
        }
        let i = hit?;
        found = Some(i + 1);
        from = i + 1;
        // The children's indentation is that of the next line, when deeper; otherwise the
        // value is inline (flow style or a scalar) and has no child keys to find.
        indent = lines
            .iter()
            .skip(from)
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| depth(l))
            .filter(|d| *d > depth(lines[i]))
            .unwrap_or(usize::MAX);
    }
    found
}

/// The key a `key: value` line starts with, unquoted.
fn key_of(line: &str) -> Option<&str> {
    let line = line.strip_prefix("- ").unwrap_or(line);
    for quote in ['"', '\''] {
        if let Some(rest) = line.strip_prefix(quote) {
            let end = rest.find(quote)?;
            return rest[end + 1..]
                .trim_start()
                .starts_with(':')
                .then(|| &rest[..end]);
        }
    }
    let end = line.find(':')?;
    let after = &line[end + 1..];
    (after.is_empty() || after.starts_with([' ', '\t'])).then(|| line[..end].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_1_1_booleans_are_text_and_core_scalars_are_typed() {
        let yaml = "a: n\nb: no\nc: off\nd: Yes\ne: on\nf: y\ng: true\nh: false\ni: ~\nj: null\nk: 3\nl: 2.5\nm: \"true\"\no: '3'\np: 1_000\n";
        let value: serde_json::Value = parse_yaml(yaml, Path::new("t.yaml")).unwrap();
        for (key, text) in [
            ("a", "n"),
            ("b", "no"),
            ("c", "off"),
            ("d", "Yes"),
            ("e", "on"),
            ("f", "y"),
        ] {
            assert_eq!(value[key], serde_json::json!(text), "{key}");
        }
        assert_eq!(value["g"], serde_json::json!(true));
        assert_eq!(value["h"], serde_json::json!(false));
        assert!(value["i"].is_null() && value["j"].is_null());
        assert_eq!(value["k"], serde_json::json!(3));
        assert_eq!(value["l"], serde_json::json!(2.5));
        // Quoted is always text.
        assert_eq!(value["m"], serde_json::json!("true"));
        assert_eq!(value["o"], serde_json::json!("3"));
        assert_eq!(value["p"], serde_json::json!("1_000"));
    }

    #[test]
    fn yaml_errors_name_the_file_and_never_the_parsers_own_advice() {
        let yaml = "replay:\n  a: 1\nreplay:\n  a: 2\n";
        let err =
            parse_yaml::<serde_json::Value>(yaml, Path::new("project/db-ci.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("project/db-ci.yaml:3:1: duplicate mapping key `replay`"),
            "{err}"
        );
        let d = err.diagnostic();
        assert_eq!(
            (d.file.as_deref(), d.line, d.column),
            (Some("project/db-ci.yaml"), Some(3), Some(1))
        );
        assert!(d.snippet.is_some());
        assert!(!err.to_string().contains("DuplicateKeyPolicy"), "{err}");
    }

    #[test]
    fn a_key_error_names_the_file_and_underlines_the_key() {
        let err = key_error(
            "a: 1\n\"rsl\": 2\n",
            Path::new("p/db-ci.yaml"),
            2,
            "rsl",
            "unknown field `rsl`",
        );
        assert_eq!(err.to_string(), "p/db-ci.yaml:2:2: unknown field `rsl`");
        let snippet = err.diagnostic().snippet.unwrap();
        assert_eq!(&snippet.source[snippet.offset..][..snippet.len], "rsl");
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn key_lines_follow_the_path_by_indentation() {
        let text = "# x\nsetup: |\n  alice: no\nactors:\n  anon: anon\n  \"alice\": { user: a@b.c }\n  alicia: x\nexpect:\n  tables: 1\n  # c\n  policies: { min: 2 }\ntables: 9\n";
        assert_eq!(key_line(text, &["actors"]), Some(4));
        assert_eq!(key_line(text, &["actors", "alice"]), Some(6));
        assert_eq!(key_line(text, &["actors", "alicia"]), Some(7));
        assert_eq!(key_line(text, &["actors", "bob"]), None);
        assert_eq!(key_line(text, &["expect", "tables"]), Some(9));
        assert_eq!(key_line(text, &["expect", "policies"]), Some(11));
        assert_eq!(key_line(text, &["tables"]), Some(12));
        // `alice:` inside the setup's text is not a key of the document.
        assert_eq!(key_line(text, &["alice"]), None);
    }

    #[test]
    fn flow_style_children_are_not_found() {
        let text = "actors: { alice: { user: a@b.c } }\n";
        assert_eq!(key_line(text, &["actors"]), Some(1));
        assert_eq!(key_line(text, &["actors", "alice"]), None);
    }
}
