//! A pgTAP test file as psql would run it: statements with their `file:line:col`, the psql
//! meta-commands test files use (`\set` and `:var` interpolation, `\i`/`\ir`, `\echo`,
//! display settings), and whether the file leaves anything committed behind.

use std::collections::BTreeMap;

use super::tap::Pos;
use crate::sql;

/// One thing to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub pos: Pos,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// A statement to send (psql variables already interpolated). `exact` when the text is
    /// the file's own, so a server error position maps to a column in it.
    Sql { text: String, exact: bool },
    /// `\echo`/`\qecho`: printed where psql prints query output, so pg_prove reads it too.
    Echo(String),
    /// `\q`: the file ends here.
    Quit,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct Script {
    /// Relative to the project root.
    pub rel: String,
    pub steps: Vec<Step>,
    /// Every statement runs inside a `BEGIN … ROLLBACK` block: the file leaves nothing
    /// committed, so it may run on any clone in any order.
    pub isolated: bool,
}

impl Script {
    pub fn first(&self) -> Pos {
        Pos {
            file: self.rel.clone(),
            line: 1,
            column: 1,
        }
    }
}

/// A psql meta-command, as far as test files need one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Meta {
    Set(String, String),
    Unset(String),
    Include {
        path: String,
        relative: bool,
    },
    Echo(String),
    Quit,
    /// Display settings (`\pset`, `\timing`, `\x`, `\t`, `\a`) and listing variables: nothing
    /// to do when db-ci reads the output instead of a terminal.
    Nothing,
}

/// The meta-commands db-ci runs, for error messages.
pub const SUPPORTED: &str =
    "\\set, \\unset, \\i, \\ir, \\echo, \\qecho, \\q, and the display settings \\pset, \\timing, \\x, \\t, \\a";

fn parse_meta(text: &str) -> Result<Meta, String> {
    let body = &text[1..];
    let name_len = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
    let name = &body[..name_len];
    let args = words(&body[name_len..])?;
    let meta = match name {
        "set" => match args.split_first() {
            None => Meta::Nothing,
            Some((var, value)) => {
                if !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("invalid psql variable name `{var}`"));
                }
                Meta::Set(var.clone(), value.concat())
            }
        },
        "unset" => match args.as_slice() {
            [var] => Meta::Unset(var.clone()),
            _ => return Err("\\unset takes one variable name".to_owned()),
        },
        "i" | "include" | "ir" | "include_relative" => match args.as_slice() {
            [path] => Meta::Include {
                path: path.clone(),
                relative: name.starts_with("ir") || name == "include_relative",
            },
            _ => return Err(format!("\\{name} takes one file name")),
        },
        "echo" | "qecho" => Meta::Echo(args.join(" ")),
        "q" | "quit" => Meta::Quit,
        "pset" | "timing" | "x" | "t" | "a" => Meta::Nothing,
        _ => {
            return Err(format!(
                "psql meta-command `\\{name}` is not supported (db-ci runs the file itself; supported: {SUPPORTED})"
            ))
        }
    };
    Ok(meta)
}

/// psql's argument words: whitespace-separated, `'…'` quoted (with `''` and `\'`), no
/// backquotes (a shell command) and no variables inside arguments.
fn words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '\'' => loop {
                    match chars.next() {
                        None => return Err("unterminated quoted string".to_owned()),
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            word.push('\'');
                        }
                        Some('\'') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some(other) => word.push(other),
                            None => return Err("unterminated quoted string".to_owned()),
                        },
                        Some(other) => word.push(other),
                    }
                },
                '`' => return Err("backquoted shell commands are not supported".to_owned()),
                _ => word.push(c),
            }
        }
        words.push(word);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    }
    Ok(words)
}

/// Replaces psql variables (`:name`, `:'name'`, `:"name"`) outside quotes, comments and
/// dollar-quoted bodies; undefined names and `::` casts stay as they are, as in psql.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    if vars.is_empty() || !text.contains(':') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if quote == b'\'' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                let tag_len = text[i + 1..]
                    .find('$')
                    .filter(|&n| {
                        text[i + 1..i + 1 + n]
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_')
                            && !text[i + 1..i + 1 + n].starts_with(|c: char| c.is_ascii_digit())
                            && (i == 0 || !is_word(bytes[i - 1]))
                    })
                    .map(|n| n + 2);
                match tag_len {
                    Some(len) => {
                        let tag = &text[i..i + len];
                        i = text[i + len..]
                            .find(tag)
                            .map_or(bytes.len(), |n| i + len + n + len);
                    }
                    None => i += 1,
                }
            }
            b':' if bytes.get(i + 1) == Some(&b':') => i += 2,
            b':' => {
                let (quote, start) = match bytes.get(i + 1) {
                    Some(b'\'') => (Some(b'\''), i + 2),
                    Some(b'"') => (Some(b'"'), i + 2),
                    _ => (None, i + 1),
                };
                let len = bytes[start..].iter().take_while(|&&c| is_word(c)).count();
                let name = &text[start..start + len];
                let closed = match quote {
                    Some(q) => bytes.get(start + len) == Some(&q),
                    None => true,
                };
                match vars.get(name).filter(|_| len > 0 && closed) {
                    Some(value) => {
                        out.push_str(&text[copied..i]);
                        match quote {
                            Some(b'\'') => out.push_str(&crate::sql::quote_literal(value)),
                            Some(_) => out.push_str(&crate::sql::quote_ident(value)),
                            None => out.push_str(value),
                        }
                        i = start + len + usize::from(quote.is_some());
                        copied = i;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Reads an included file: given the path as written and the including file's relative
/// path, returns the included file's relative path and text.
pub type Reader<'a> = dyn Fn(&str, bool, &str) -> Result<(String, String), String> + 'a;

/// Parses `text` (the file `rel`) into steps. Errors are `file:line:col: message`.
pub fn parse(rel: &str, text: &str, read: &Reader<'_>) -> Result<Script, String> {
    let mut vars = BTreeMap::new();
    let mut steps = Vec::new();
    expand(rel, text, read, &mut vars, &mut steps, 0)?;
    let isolated = isolated(&steps);
    Ok(Script {
        rel: rel.to_owned(),
        steps,
        isolated,
    })
}

fn expand(
    rel: &str,
    text: &str,
    read: &Reader<'_>,
    vars: &mut BTreeMap<String, String>,
    steps: &mut Vec<Step>,
    depth: usize,
) -> Result<(), String> {
    let (statements, metas) = sql::split_psql(text);
    let mut pieces: Vec<(usize, usize, bool)> = statements
        .iter()
        .map(|s| (s.start, s.end, false))
        .chain(metas.iter().map(|m| (m.start, m.end, true)))
        .collect();
    pieces.sort();
    for (start, end, meta) in pieces {
        let (line, column) = sql::line_col(text, start);
        let pos = Pos {
            file: rel.to_owned(),
            line,
            column,
        };
        let piece = &text[start..end];
        if !meta && copies_from_stdin(piece) {
            return Err(format!(
                "{rel}:{line}:{column}: COPY … FROM STDIN reads data psql sends from the file, which db-ci does not do: \
                 use INSERT … VALUES in test files"
            ));
        }
        if !meta {
            let interpolated = interpolate(piece, vars);
            steps.push(Step {
                pos,
                kind: StepKind::Sql {
                    exact: interpolated == piece,
                    text: interpolated,
                },
            });
            continue;
        }
        let at = |message: String| format!("{rel}:{line}:{column}: {message}");
        match parse_meta(piece).map_err(at)? {
            Meta::Set(name, value) => {
                vars.insert(name, value);
            }
            Meta::Unset(name) => {
                vars.remove(&name);
            }
            Meta::Echo(text) => steps.push(Step {
                pos,
                kind: StepKind::Echo(text),
            }),
            Meta::Quit => {
                steps.push(Step {
                    pos,
                    kind: StepKind::Quit,
                });
                return Ok(());
            }
            Meta::Nothing => {}
            Meta::Include { path, relative } => {
                if depth >= 16 {
                    return Err(at(format!(
                        "include `{path}`: includes nest more than 16 deep (a cycle?)"
                    )));
                }
                let (included_rel, included) = read(&path, relative, rel).map_err(at)?;
                let before = steps.len();
                expand(&included_rel, &included, read, vars, steps, depth + 1)?;
                // `\q` in an included file ends the whole run, as in psql.
                if steps[before..]
                    .last()
                    .is_some_and(|s| s.kind == StepKind::Quit)
                {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

fn copies_from_stdin(statement: &str) -> bool {
    let lower = statement.to_ascii_lowercase();
    lower.starts_with("copy")
        && lower
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w == ["from", "stdin"] || w == ["from", "stdin;"])
}

/// Whether every statement sits inside a `BEGIN … ROLLBACK` block.
fn isolated(steps: &[Step]) -> bool {
    let mut in_block = false;
    for step in steps {
        let StepKind::Sql { text, .. } = &step.kind else {
            continue;
        };
        let words: Vec<String> = text
            .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .take(2)
            .map(str::to_ascii_lowercase)
            .collect();
        let first = words.first().map_or("", String::as_str);
        let second = words.get(1).map_or("", String::as_str);
        match first {
            "begin" | "start" if !in_block => in_block = true,
            "rollback" | "abort" if in_block && second != "to" => in_block = false,
            "commit" | "end" | "prepare" => return false,
            _ if !in_block => return false,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(path: &str, _: bool, _: &str) -> Result<(String, String), String> {
        Err(format!("read {path}: no such file"))
    }

    fn sql_texts(script: &Script) -> Vec<(usize, String)> {
        script
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Sql { text, .. } => Some((s.pos.line, text.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn statements_keep_their_line_and_column() {
        let text = "begin;\nselect plan(1);\n  select ok(true, 'x');\nrollback;\n";
        let script = parse("supabase/tests/a.sql", text, &no_files).unwrap();
        assert_eq!(script.steps.len(), 4);
        assert_eq!(script.steps[2].pos.line, 3);
        assert_eq!(script.steps[2].pos.column, 3);
        assert!(script.isolated);
    }

    #[test]
    fn set_and_interpolation() {
        let text = "\\set ON_ERROR_STOP 1\n\\set owner 'alice@example.com'\n\\set t notes\nselect :'owner', :\"t\", :t, 1::int, ':owner', $$ :owner $$, :missing;";
        let script = parse("t.sql", text, &no_files).unwrap();
        let sql = sql_texts(&script);
        assert_eq!(
            sql[0].1,
            "select 'alice@example.com', \"notes\", notes, 1::int, ':owner', $$ :owner $$, :missing;"
        );
        assert_eq!(sql[0].0, 4);
        assert!(matches!(
            script.steps[0].kind,
            StepKind::Sql { exact: false, .. }
        ));
    }

    #[test]
    fn display_settings_are_ignored_and_echo_is_output() {
        let text = "\\pset format unaligned\n\\timing on\n\\x\n\\echo '# setting up'\nselect 1;\n\\q\nselect 2;";
        let script = parse("t.sql", text, &no_files).unwrap();
        assert_eq!(script.steps.len(), 3);
        assert_eq!(
            script.steps[0].kind,
            StepKind::Echo("# setting up".to_owned())
        );
        assert_eq!(script.steps[2].kind, StepKind::Quit);
    }

    #[test]
    fn unsupported_meta_command_names_its_line() {
        let text = "select 1;\n\\copy notes from 'x.csv'\n";
        let err = parse("supabase/tests/a.sql", text, &no_files).unwrap_err();
        assert!(err.starts_with("supabase/tests/a.sql:2:1: "), "{err}");
        assert!(err.contains("`\\copy` is not supported"), "{err}");
        let err = parse(
            "a.sql",
            "select 1;\ncopy notes from stdin;\n1\tx\n\\.\n",
            &no_files,
        )
        .unwrap_err();
        assert!(err.starts_with("a.sql:2:1: COPY"), "{err}");
        let err = parse("a.sql", "\\set x `date`", &no_files).unwrap_err();
        assert!(err.contains("backquoted"), "{err}");
    }

    #[test]
    fn includes_are_inlined_with_their_own_positions() {
        let read = |path: &str, relative: bool, from: &str| -> Result<(String, String), String> {
            assert!(relative);
            assert_eq!(from, "supabase/tests/a.sql");
            Ok((
                format!("supabase/tests/{path}"),
                "\n\nselect 'helper';".to_owned(),
            ))
        };
        let text = "\\ir setup.psql\nselect 1;";
        let script = parse("supabase/tests/a.sql", text, &read).unwrap();
        assert_eq!(script.steps[0].pos.file, "supabase/tests/setup.psql");
        assert_eq!(script.steps[0].pos.line, 3);
        assert_eq!(script.steps[1].pos.file, "supabase/tests/a.sql");
        let err = parse("a.sql", "\\i missing.sql", &no_files).unwrap_err();
        assert!(err.starts_with("a.sql:1:1: read missing.sql"), "{err}");
        let cycle = |_: &str, _: bool, _: &str| Ok(("a.sql".to_owned(), "\\ir a.sql".to_owned()));
        assert!(parse("a.sql", "\\ir a.sql", &cycle)
            .unwrap_err()
            .contains("nest"));
    }

    #[test]
    fn files_leaving_committed_state_are_not_isolated() {
        let parse_ok = |text: &str| parse("t.sql", text, &no_files).unwrap().isolated;
        assert!(parse_ok("BEGIN;\nselect plan(1);\nsavepoint a;\nrollback to savepoint a;\nselect ok(true);\nROLLBACK;\nbegin; select 1; rollback;"));
        assert!(
            parse_ok("begin;\nselect plan(1);\nselect ok(true);\n"),
            "ends in a block: rolled back"
        );
        assert!(!parse_ok("create extension pgtap;\nbegin;\nrollback;"));
        assert!(!parse_ok("begin;\nselect 1;\ncommit;"));
        assert!(!parse_ok("select plan(1);\nselect ok(true);"));
    }
}
