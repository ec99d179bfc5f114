//! A pgTAP test file as psql reads it: statements with their `file:line:col`, psql's
//! meta-commands (checked here, before anything boots, and run by `exec` in order), `\i`
//! and `\ir` inlined, and psql's variable interpolation (`:var`, `:'var'`, `:"var"`) with
//! its lexing rules (standard-conforming strings, dollar quotes, comments).

use std::collections::BTreeMap;

use super::tap::Pos;
use super::vars::{script_bool, words};
use crate::sql;

/// One thing to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub pos: Pos,
    pub kind: StepKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// A statement as written; psql variables are interpolated when it runs. `gset`: the
    /// statement is sent by `\gset` (its arguments, interpolated when it runs).
    Sql { text: String, gset: Option<String> },
    /// A meta-command and its arguments as written.
    Meta { command: Meta, args: String },
    /// An error psql reports when it gets here (an `\i` of a file that is not there): the
    /// file stops with ON_ERROR_STOP, as under psql, or goes on without it.
    Error(String),
}

/// The psql meta-commands db-ci runs (every other one is an input error at its position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meta {
    Set,
    Unset,
    /// `\echo` and `\qecho` (the query output is psql's standard output here: `\o` to a
    /// file is refused).
    Echo,
    If,
    Elif,
    Else,
    Endif,
    /// `\gset` after a statement that ended with `;`: psql sends the last query again.
    GsetLast,
    /// `\a`: aligned ↔ unaligned.
    ToggleAligned,
    /// `\t [on|off]`.
    TuplesOnly,
    /// `\pset option [value]`, for the options that change what a test file prints.
    Pset,
    /// `\q`: the file ends here.
    Quit,
    /// Nothing to do when the output is read by a harness: `\timing` (its `Time:` lines are
    /// not TAP), `\o` with no file, `\x off`, `\conninfo`-like reports on stderr.
    Nothing,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct Script {
    /// Relative to the project root.
    pub rel: String,
    pub steps: Vec<Step>,
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

/// The meta-commands db-ci runs, for error messages and the docs.
pub const SUPPORTED: &str = "\\set, \\unset, \\if/\\elif/\\else/\\endif, \\gset, \\g, \\echo, \\qecho, \\i, \\ir, \\include, \\include_relative, \\q, \\a, \\t, \\pset (format aligned|unaligned, tuples_only, footer, null, fieldsep, pager), \\timing, \\o without a file, \\x off";

/// `\pset` options and whether db-ci reproduces them.
pub const PSET_OPTIONS: &[&str] = &[
    "format",
    "tuples_only",
    "footer",
    "null",
    "fieldsep",
    "pager",
    "pager_min_lines",
];

/// A meta-command read at parse time: what it is, or why db-ci refuses it.
fn classify(name: &str, args: &str) -> Result<Meta, PsqlError> {
    let literal_words = || words(args, &BTreeMap::new()).unwrap_or_default();
    let meta = match name {
        "set" | "unset" => {
            let words = literal_words();
            if let Some(var) = words.first() {
                let value = words[1..].concat();
                let changes = match var.as_str() {
                    // psql's defaults under pg_prove; other values change what runs.
                    "AUTOCOMMIT" => name == "set" && script_bool(&value) != Some(true),
                    "ON_ERROR_ROLLBACK" => name == "set" && !value.eq_ignore_ascii_case("off"),
                    "ECHO" => name == "set" && value != "none",
                    "SINGLESTEP" | "SINGLELINE" | "FETCH_COUNT" => name == "set",
                    _ => false,
                };
                if changes {
                    return Err(PsqlError::NotReproduced(format!(
                        "`\\{name} {var}` changes how psql runs the file in a way db-ci does not reproduce"
                    )));
                }
            }
            if name == "set" {
                Meta::Set
            } else {
                Meta::Unset
            }
        }
        "echo" | "qecho" => Meta::Echo,
        "if" => Meta::If,
        "elif" => Meta::Elif,
        "else" => Meta::Else,
        "endif" => Meta::Endif,
        "q" | "quit" => Meta::Quit,
        "a" => Meta::ToggleAligned,
        "t" => Meta::TuplesOnly,
        "pset" => {
            let words = literal_words();
            match words.first().map(String::as_str) {
                None => {
                    return Err(PsqlError::NotReproduced("`\\pset` without an option lists the settings: db-ci does not print them".to_owned()))
                }
                Some(option) if !option.contains(':') && !PSET_OPTIONS.contains(&option) => {
                    return Err(PsqlError::NotReproduced(format!(
                        "`\\pset {option}` changes psql's output in a way db-ci does not reproduce (supported: {})",
                        PSET_OPTIONS.join(", ")
                    )))
                }
                Some("format") => match words.get(1).map(String::as_str) {
                    Some("aligned" | "unaligned") => {}
                    Some(other) if other.contains(':') => {}
                    other => {
                        return Err(PsqlError::NotReproduced(format!(
                            "`\\pset format {}`: db-ci prints aligned and unaligned output only",
                            other.unwrap_or("")
                        )))
                    }
                },
                Some(_) => {}
            }
            Meta::Pset
        }
        "timing" | "conninfo" | "encoding" | "errverbose" => Meta::Nothing,
        "o" | "out" if args.trim().is_empty() => Meta::Nothing,
        "x" if matches!(literal_words().as_slice(), [w] if w == "off") => Meta::Nothing,
        "gset" | "g" => Meta::GsetLast,
        _ => {
            return Err(PsqlError::NotReproduced(format!(
                "psql meta-command `\\{name}` is not supported: db-ci cannot reproduce what it does (supported: {SUPPORTED})"
            )))
        }
    };
    if args.contains('`') {
        return Err(PsqlError::NotReproduced(format!(
            "`\\{name}`: backquoted shell commands are not supported"
        )));
    }
    Ok(meta)
}

/// Reads an included file: given the path as written, whether it is relative to the
/// including file (`\ir`), and the including file's relative path, returns the included
/// file's relative path and text.
pub type Reader<'a> = dyn Fn(&str, bool, &str) -> Result<(String, String), IncludeError> + 'a;

/// Why a file named by `\i`/`\ir` could not be read: psql's own complaint, at the line.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error("read {path}: {what}, where a SQL file is expected")]
    NotAFile { path: String, what: &'static str },
    /// `base`: the folder it was looked for in, relative to the project.
    #[error("read {path} (from {base}): {source}")]
    Unreadable {
        path: String,
        base: String,
        source: std::io::Error,
    },
}

/// What psql refuses in a meta-command, or what db-ci cannot reproduce of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PsqlError {
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unterminated quoted identifier")]
    UnterminatedIdentifier,
    /// psql's own complaint about a value it cannot take; it goes on, or stops under
    /// ON_ERROR_STOP.
    #[error("{0}")]
    Refused(String),
    /// psql would run it; db-ci cannot reproduce what it does.
    #[error("{0}")]
    NotReproduced(String),
}

/// A problem found while reading a test file: where, and what (a lowercase fragment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.pos.file, self.pos.line, self.pos.column, self.message
        )
    }
}

/// Variables as far as parsing can know them (for `\i` paths): `None` once a value depends
/// on what the database returns (`\gset`) or on a branch (`\if`).
#[derive(Default)]
struct Known {
    vars: BTreeMap<String, Option<String>>,
    /// After a `\gset`, any name may have been set.
    any_set: bool,
    /// Inside `\if` blocks: sets are uncertain.
    branch_depth: usize,
}

/// Parses `text` (the file `rel`) into steps.
pub fn parse(rel: &str, text: &str, read: &Reader<'_>) -> Result<Script, ParseError> {
    let mut known = Known::default();
    let mut steps = Vec::new();
    expand(rel, text, read, &mut known, &mut steps, 0)?;
    // An unbalanced \if: psql reports it at the end of the file (and runs on).
    Ok(Script {
        rel: rel.to_owned(),
        steps,
    })
}

fn expand(
    rel: &str,
    text: &str,
    read: &Reader<'_>,
    known: &mut Known,
    steps: &mut Vec<Step>,
    depth: usize,
) -> Result<bool, ParseError> {
    let (statements, metas) = sql::split_psql(text);
    let mut pieces: Vec<(usize, usize, bool)> = statements
        .iter()
        .map(|s| (s.start, s.end, false))
        .chain(metas.iter().map(|m| (m.start, m.end, true)))
        .collect();
    pieces.sort();
    // A statement not ended by `;` stays in psql's query buffer until `\g`/`\gset` sends it.
    let mut pending: Option<Pos> = None;
    for (start, end, meta) in pieces {
        let (line, column) = sql::line_col(text, start);
        let pos = Pos {
            file: rel.to_owned(),
            line,
            column,
        };
        let at = |message: String| ParseError {
            pos: pos.clone(),
            message,
        };
        let piece = &text[start..end];
        if !meta {
            if let Some(pending) = pending.take() {
                return Err(ParseError {
                    pos: pending,
                    message: "a statement without `;` before a meta-command: psql keeps it in its buffer and sends it with the next one, which db-ci does not reproduce (end it with `;`)".to_owned(),
                });
            }
            if copies_from_stdin(piece) {
                return Err(at("COPY … FROM STDIN reads data psql sends from the file, which db-ci does not do: use INSERT … VALUES in test files".to_owned()));
            }
            if !piece.trim_end().ends_with(';') {
                pending = Some(pos.clone());
            }
            steps.push(Step {
                pos,
                kind: StepKind::Sql {
                    text: piece.to_owned(),
                    gset: None,
                },
            });
            continue;
        }
        let body = &piece[1..];
        let name_len = body
            .find(|c: char| c.is_whitespace() || c == '\\')
            .unwrap_or(body.len());
        let name = &body[..name_len];
        let args = &body[name_len..];
        if args.trim_start().starts_with('\\') {
            return Err(at(format!(
                "`\\{name}` followed by another meta-command on the same line is not supported: one meta-command per line"
            )));
        }
        let args = args.trim().to_owned();
        if matches!(name, "i" | "include" | "ir" | "include_relative") {
            if pending.is_some() {
                return Err(ParseError {
                    pos: pending.take().unwrap(),
                    message: format!("a statement without `;` before `\\{name}`: end it with `;`"),
                });
            }
            if known.any_set && args.contains(':') || uses_unknown(&args, known) {
                return Err(at(format!(
                    "`\\{name} {args}`: the path depends on a variable only known when the file runs (\\gset or \\if), which db-ci does not reproduce"
                )));
            }
            let values: BTreeMap<String, String> = known
                .vars
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                .collect();
            let path = match words(&args, &values)
                .map_err(|e| at(e.to_string()))?
                .as_slice()
            {
                [path] => path.clone(),
                _ => return Err(at(format!("`\\{name}` takes one file name"))),
            };
            if depth >= 16 {
                return Err(at(format!(
                    "include `{path}`: includes nest more than 16 deep (a cycle?)"
                )));
            }
            let relative = name.starts_with("ir") || name == "include_relative";
            let (included_rel, included) = match read(&path, relative, rel) {
                Ok(read) => read,
                Err(error) => {
                    steps.push(Step {
                        pos,
                        kind: StepKind::Error(error.to_string()),
                    });
                    continue;
                }
            };
            // `\q` in an included file ends the whole run, as in psql.
            if expand(&included_rel, &included, read, known, steps, depth + 1)? {
                return Ok(true);
            }
            continue;
        }
        let command = classify(name, &args).map_err(|e| at(e.to_string()))?;
        if command == Meta::GsetLast {
            if name == "gset"
                && words(&args, &BTreeMap::new())
                    .map_err(|e| at(e.to_string()))?
                    .len()
                    > 1
            {
                return Err(at("`\\gset` takes at most one prefix".to_owned()));
            }
            if name == "g" && !args.is_empty() {
                return Err(at(
                    "`\\g` with arguments (a file or a pipe) is not supported".to_owned(),
                ));
            }
            if pending.take().is_some() {
                let Some(Step {
                    kind: StepKind::Sql { gset, .. },
                    ..
                }) = steps.last_mut()
                else {
                    unreachable!("the pending statement is the last step")
                };
                // `\g` sends the buffer as `;` would.
                if name == "gset" {
                    *gset = Some(args);
                    known.any_set = true;
                }
                continue;
            }
            if name == "gset" {
                known.any_set = true;
            } else {
                return Err(at("`\\g` after a statement that ended with `;` sends it again, which db-ci does not reproduce".to_owned()));
            }
        } else if let Some(pending) = pending.take() {
            return Err(ParseError {
                pos: pending,
                message: format!(
                    "a statement without `;` before `\\{name}`: psql keeps it in its buffer and sends it later, which db-ci does not reproduce (end it with `;`)"
                ),
            });
        }
        match command {
            Meta::If => known.branch_depth += 1,
            Meta::Endif => known.branch_depth = known.branch_depth.saturating_sub(1),
            Meta::Set | Meta::Unset => {
                let parsed = words(&args, &BTreeMap::new()).unwrap_or_default();
                if let Some(var) = parsed.first() {
                    let certain = known.branch_depth == 0 && !args.contains(':');
                    match command {
                        Meta::Unset if certain => {
                            known.vars.remove(var);
                        }
                        Meta::Set if certain => {
                            known.vars.insert(var.clone(), Some(parsed[1..].concat()));
                        }
                        _ => {
                            known.vars.insert(var.clone(), None);
                        }
                    }
                }
            }
            _ => {}
        }
        let quit = command == Meta::Quit;
        steps.push(Step {
            pos,
            kind: StepKind::Meta { command, args },
        });
        if quit && known.branch_depth == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `args` names a variable whose value parsing cannot know.
fn uses_unknown(args: &str, known: &Known) -> bool {
    known.vars.iter().any(|(name, value)| {
        value.is_none()
            && [
                format!(":{name}"),
                format!(":'{name}'"),
                format!(":\"{name}\""),
            ]
            .iter()
            .any(|form| args.contains(form.as_str()))
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgtap::vars::{interpolate, parse_bool};

    fn no_files(path: &str, _: bool, _: &str) -> Result<(String, String), IncludeError> {
        Err(IncludeError::NotAFile {
            path: path.to_owned(),
            what: "no such file",
        })
    }

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn statements_keep_their_line_and_column() {
        let text = "begin;\nselect plan(1);\n  select ok(true, 'x');\nrollback;\n";
        let script = parse("supabase/tests/a.sql", text, &no_files).unwrap();
        assert_eq!(script.steps.len(), 4);
        assert_eq!(script.steps[2].pos.line, 3);
        assert_eq!(script.steps[2].pos.column, 3);
    }

    #[test]
    fn interpolation_follows_psql_lexing() {
        let v = vars(&[("owner", "alice@example.com"), ("t", "notes")]);
        assert_eq!(
            interpolate(
                "select :'owner', :\"t\", :t, 1::int, ':owner', $$ :owner $$, :missing;",
                &v
            ),
            "select 'alice@example.com', \"notes\", notes, 1::int, ':owner', $$ :owner $$, :missing;"
        );
        // Standard-conforming strings: '\' is a whole literal, the variable after it is read.
        assert_eq!(
            interpolate("select '\\', :'owner';", &v),
            "select '\\', 'alice@example.com';"
        );
        // In E'…' the backslash escapes the quote.
        assert_eq!(
            interpolate("select E'\\' :t', :t;", &v),
            "select E'\\' :t', notes;"
        );
    }

    #[test]
    fn meta_command_words_interpolate_outside_quotes() {
        let v = vars(&[("answer", "42"), ("name", "it's")]);
        assert_eq!(
            words("copy :answer ':answer' [:answer] :'name' \"q r\" :nope", &v).unwrap(),
            ["copy", "42", ":answer", "[42]", "'it''s'", "\"q r\"", ":nope"]
        );
        assert_eq!(words("'x\\ty'", &v).unwrap(), ["x\ty"]);
        assert_eq!(words(":{?answer} :{?nope}", &v).unwrap(), ["TRUE", "FALSE"]);
        assert_eq!(interpolate("select :{?answer};", &v), "select TRUE;");
    }

    #[test]
    fn booleans_as_psql_reads_them() {
        for (text, value) in [
            ("on", Some(true)),
            ("OFF", Some(false)),
            ("t", Some(true)),
            ("1", Some(true)),
            ("0", Some(false)),
            ("o", None),
            ("maybe", None),
            ("", None),
        ] {
            assert_eq!(parse_bool(text), value, "{text}");
        }
    }

    #[test]
    fn meta_commands_are_steps_and_gset_takes_the_buffer() {
        let text = "\\set ON_ERROR_STOP 0\nselect 1 as x \\gset p_\n\\if :p_x\n\\echo yes\n\\endif\n\\q\nselect 2;";
        let script = parse("t.sql", text, &no_files).unwrap();
        assert_eq!(script.steps.len(), 6, "{:?}", script.steps);
        assert_eq!(
            script.steps[1].kind,
            StepKind::Sql {
                text: "select 1 as x".to_owned(),
                gset: Some("p_".to_owned())
            }
        );
        assert!(matches!(
            script.steps[5].kind,
            StepKind::Meta {
                command: Meta::Quit,
                ..
            }
        ));
    }

    #[test]
    fn unsupported_meta_commands_name_their_position() {
        let err = parse(
            "supabase/tests/a.sql",
            "select 1;\n\\copy notes from 'x.csv'\n",
            &no_files,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("supabase/tests/a.sql:2:1: "), "{err}");
        assert!(err.contains("`\\copy` is not supported"), "{err}");
        let err = parse(
            "a.sql",
            "select 1;\ncopy notes from stdin;\n1\tx\n\\.\n",
            &no_files,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("a.sql:2:1: COPY"), "{err}");
        let err = parse("a.sql", "\\set x `date`", &no_files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("backquoted"), "{err}");
        let err = parse("a.sql", "\\set AUTOCOMMIT off", &no_files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`\\set AUTOCOMMIT`"), "{err}");
        assert!(parse("a.sql", "\\set AUTOCOMMIT on\n\\set ECHO none", &no_files).is_ok());
        let err = parse("a.sql", "\\pset border 0", &no_files)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`\\pset border`"), "{err}");
        let err = parse("a.sql", "select 1\n\\echo x\n;", &no_files)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.sql:1:1: a statement without `;`"),
            "{err}"
        );
    }

    #[test]
    fn includes_are_inlined_with_their_own_positions() {
        let read =
            |path: &str, relative: bool, from: &str| -> Result<(String, String), IncludeError> {
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
        // A missing file is psql's error where the \i is, when the file runs.
        let script = parse("a.sql", "select 1;\n\\i missing.sql", &no_files).unwrap();
        assert_eq!(
            script.steps[1].kind,
            StepKind::Error(
                "read missing.sql: no such file, where a SQL file is expected".to_owned()
            )
        );
        assert_eq!(script.steps[1].pos.line, 2);
        let cycle = |_: &str, _: bool, _: &str| Ok(("a.sql".to_owned(), "\\ir a.sql".to_owned()));
        assert!(parse("a.sql", "\\ir a.sql", &cycle)
            .unwrap_err()
            .to_string()
            .contains("nest"));
        // A path set by \set is known; one from \gset is not.
        let named = |path: &str, _: bool, _: &str| Ok((path.to_owned(), "select 1;".to_owned()));
        let script = parse("a.sql", "\\set f x.sql\n\\i :f", &named).unwrap();
        assert_eq!(script.steps.last().unwrap().pos.file, "x.sql");
        let err = parse("a.sql", "select 'x.sql' as f \\gset\n\\i :f", &named)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only known when the file runs"), "{err}");
    }
}
