//! The SQL leaf: splitting files into statements and mapping server positions back to
//! file:line:col, quoting, server error text, the catalog filters every reader shares, the
//! catalog's one-letter codes as enums and the session reset between files.
//! It imports nothing of db-ci's.

pub mod catalog;
pub mod error;
pub mod kinds;
pub mod quote;

pub use error::{db_error_text, is_timeout, TIMEOUT_MESSAGE};
pub use quote::{quote_ident, quote_literal};

/// One statement of a file: byte offsets into the file's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// Offset of the statement's first token (leading whitespace and comments skipped).
    pub start: usize,
    /// Offset just past the terminating `;` (or the end of the text).
    pub end: usize,
}

impl Statement {
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.start..self.end]
    }
}

/// What `DISCARD ALL` does, as statements that can share one message (DISCARD ALL cannot
/// run in a transaction block), less `DEALLOCATE ALL` and `DISCARD PLANS`: a session put back
/// as a new one would be, with its prepared statements and cached plans kept. Callers that
/// want prepared statements gone add `deallocate all`.
pub const RESET_SESSION: &str = "close all; set session authorization default; reset all; \
     unlisten *; select pg_advisory_unlock_all(); discard temp; discard sequences";

/// Splits `source` into statements the way psql does: semicolons outside quotes, comments,
/// dollar-quoted bodies and `BEGIN ATOMIC … END` function bodies end a statement.
pub fn split(source: &str) -> Vec<Statement> {
    split_inner(source, None)
}

/// Splits a file written for psql: like [`split`], and a backslash outside quotes and
/// comments starts a meta-command that runs to the end of its line (returned apart, in
/// order; a statement in progress ends where the meta-command starts, as `\g` would end it).
pub fn split_psql(source: &str) -> (Vec<Statement>, Vec<Statement>) {
    let mut metas = Vec::new();
    let statements = split_inner(source, Some(&mut metas));
    (statements, metas)
}

fn split_inner(source: &str, mut metas: Option<&mut Vec<Statement>>) -> Vec<Statement> {
    let bytes = source.as_bytes();
    let mut statements = Vec::new();
    let mut i = 0;
    let mut start: Option<usize> = None;
    // Tracks `BEGIN ATOMIC` bodies: depth of BEGIN/CASE … END nesting inside one.
    let mut atomic_depth = 0usize;
    let mut previous_word = String::new();

    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = block_comment_end(|at| bytes.get(at).map(|&b| char::from(b)), i);
                continue;
            }
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'\\' if metas.is_some() => {
                if let Some(begun) = start.take() {
                    let end = begun + source[begun..i].trim_end().len();
                    statements.push(Statement { start: begun, end });
                    previous_word.clear();
                }
                let end = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                let end = i + source[i..end].trim_end().len();
                if let Some(metas) = metas.as_mut() {
                    metas.push(Statement { start: i, end });
                }
                i = end;
                continue;
            }
            _ => {}
        }
        if start.is_none() {
            start = Some(i);
        }
        match c {
            b';' => {
                i += 1;
                if atomic_depth == 0 {
                    statements.push(Statement {
                        start: start.take().unwrap(),
                        end: i,
                    });
                    previous_word.clear();
                }
            }
            b'\'' => {
                let escapes = i > 0 && matches!(bytes[i - 1], b'e' | b'E') && {
                    // E'…' only when the E is a standalone prefix, not the end of a word.
                    i < 2 || !is_word_byte(bytes[i - 2])
                };
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' => {
                if let Some(tag_end) = dollar_tag_end(bytes, i) {
                    let tag = &source[i..=tag_end];
                    match source[tag_end + 1..].find(tag) {
                        Some(close) => i = tag_end + 1 + close + tag.len(),
                        None => i = bytes.len(),
                    }
                } else {
                    i += 1;
                }
            }
            _ if is_word_byte(c) => {
                let word_start = i;
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let word = source[word_start..i].to_ascii_lowercase();
                if atomic_depth == 0 {
                    if word == "atomic" && previous_word == "begin" && is_routine(source, start) {
                        atomic_depth = 1;
                    }
                } else {
                    match word.as_str() {
                        "begin" | "case" => atomic_depth += 1,
                        "end" => atomic_depth -= 1,
                        _ => {}
                    }
                }
                previous_word = word;
            }
            _ => i += 1,
        }
    }
    if let Some(start) = start {
        statements.push(Statement {
            start,
            end: bytes.len(),
        });
    }
    statements
}

fn is_routine(source: &str, start: Option<usize>) -> bool {
    let head = start.map(|s| &source[s..]).unwrap_or("");
    let head: String = head
        .chars()
        .take(60)
        .collect::<String>()
        .to_ascii_lowercase();
    let words: Vec<&str> = head.split_whitespace().collect();
    words.first() == Some(&"create")
        && words
            .iter()
            .take(4)
            .any(|w| *w == "function" || *w == "procedure")
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

fn skip_quoted(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        let c = bytes[i];
        if backslash_escapes && c == b'\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// Where the block comment opening at `i` ends: just past its closing `*/`, nested comments
/// counted as PostgreSQL's lexer counts them, or at the end of the text for one left open.
/// `at` reads the text by index, so bytes and chars are read alike (a byte as its Latin-1
/// char: only `/` and `*` are compared).
pub fn block_comment_end(at: impl Fn(usize) -> Option<char>, mut i: usize) -> usize {
    let mut depth = 0;
    while let Some(c) = at(i) {
        if c == '/' && at(i + 1) == Some('*') {
            depth += 1;
            i += 2;
        } else if c == '*' && at(i + 1) == Some('/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// `source` with its comments (`--` to the end of the line, `/* … */` nested) each replaced by
/// a space (a newline for each a block comment spans, so lines keep their numbers): what a
/// statement does, read from its words, without what a comment says. Quoted strings, quoted
/// names and dollar-quoted bodies are kept whole, whatever they hold.
pub fn without_comments(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = String::with_capacity(source.len());
    let (mut i, mut kept) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                out.push_str(&source[kept..i]);
                out.push(' ');
                i = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                kept = i;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.push_str(&source[kept..i]);
                let begun = i;
                i = block_comment_end(|at| bytes.get(at).map(|&b| char::from(b)), i);
                out.push(' ');
                out.extend(std::iter::repeat_n(
                    '\n',
                    source[begun..i].matches('\n').count(),
                ));
                kept = i;
            }
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_word_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' => match dollar_tag_end(bytes, i) {
                Some(tag_end) => {
                    let tag = &source[i..=tag_end];
                    i = source[tag_end + 1..]
                        .find(tag)
                        .map_or(bytes.len(), |close| tag_end + 1 + close + tag.len());
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push_str(&source[kept..]);
    out
}

/// If a dollar-quote tag (`$$` or `$tag$`) starts at `i`, the offset of its closing `$`.
fn dollar_tag_end(bytes: &[u8], i: usize) -> Option<usize> {
    // `$1` is a parameter, and `a$b` part of an identifier.
    if i > 0 && is_word_byte(bytes[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    while j < bytes.len() {
        let c = bytes[j];
        if c == b'$' {
            return Some(j);
        }
        let ok = if j == i + 1 {
            c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
        } else {
            is_word_byte(c)
        };
        if !ok {
            return None;
        }
        j += 1;
    }
    None
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|p| p + 1).unwrap_or(0);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

/// The byte offset of PostgreSQL's 1-based character `position` within `text`.
pub fn char_position_to_offset(text: &str, position: usize) -> usize {
    text.char_indices()
        .nth(position.saturating_sub(1))
        .map(|(offset, _)| offset)
        .unwrap_or(text.len())
}

/// The byte offset within `text` (the SQL that was sent) of the position the server reported
/// with `error`, if it reported one in that text.
pub fn error_offset(error: &tokio_postgres::Error, text: &str) -> Option<usize> {
    match error.as_db_error()?.position()? {
        tokio_postgres::error::ErrorPosition::Original(position) => {
            Some(char_position_to_offset(text, *position as usize))
        }
        tokio_postgres::error::ErrorPosition::Internal { .. } => None,
    }
}

/// A short excerpt of a statement for failure messages: first lines, trimmed.
pub fn excerpt(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.trim().lines().collect();
    let mut out = lines
        .iter()
        .take(max_lines)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if lines.len() > max_lines {
        out.push_str("\n…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_comment_ends_past_its_own_close_nested_or_at_the_end_left_open() {
        let bytes =
            |text: &'static str| move |i: usize| text.as_bytes().get(i).map(|&b| char::from(b));
        assert_eq!(block_comment_end(bytes("/* a */ b"), 0), 7);
        assert_eq!(block_comment_end(bytes("x /* a /* b */ c */ d"), 2), 19);
        assert_eq!(block_comment_end(bytes("/* a /* b */ c"), 0), 14);
        assert_eq!(block_comment_end(bytes("/*/ x */"), 0), 8);
        // Chars and bytes alike: an index counts whatever `at` counts.
        let chars: Vec<char> = "/* é */é".chars().collect();
        assert_eq!(block_comment_end(|i| chars.get(i).copied(), 0), 7);
    }

    #[test]
    fn comments_go_and_what_is_quoted_stays() {
        for (source, code) in [
            (
                "delete /* every\nrow */ from t -- where id = 1\n;",
                "delete  \n from t  \n;",
            ),
            ("select /* a /* b */ c */ 1", "select   1"),
            ("select E'it\\'s' -- x", "select E'it\\'s'  "),
            (
                "update t set note = '--' where id = 1",
                "update t set note = '--' where id = 1",
            ),
            (
                "select 'it''s /* x */', \"a--b\"",
                "select 'it''s /* x */', \"a--b\"",
            ),
            (
                "do $$ begin -- a string\n end $$",
                "do $$ begin -- a string\n end $$",
            ),
            ("select $1 - -1", "select $1 - -1"),
        ] {
            assert_eq!(without_comments(source), code, "{source}");
        }
    }

    fn texts(source: &str) -> Vec<&str> {
        split(source).iter().map(|s| s.text(source)).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let sql = "-- lead; comment\nselect 'a;b', \"x;y\" from t; /* c; /* nested; */ */ select 2;\nselect 3";
        assert_eq!(
            texts(sql),
            ["select 'a;b', \"x;y\" from t;", "select 2;", "select 3"]
        );
    }

    #[test]
    fn dollar_quoted_bodies_stay_whole() {
        let sql = "create function f() returns int as $body$ begin return 1; end; $body$ language plpgsql;\ndo $$ begin perform 1; end $$;";
        let parts = texts(sql);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].ends_with("language plpgsql;"));
    }

    #[test]
    fn escape_strings_and_parameters() {
        let sql = "select E'it\\'s;'; select $1::int; select a$b from t;";
        assert_eq!(texts(sql).len(), 3);
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "create function f() returns int language sql begin atomic select 1; select case when true then 2 end; end; select 3;";
        let parts = texts(sql);
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[1], "select 3;");
    }

    #[test]
    fn transaction_blocks_are_not_atomic_bodies() {
        assert_eq!(texts("begin; select 1; commit;").len(), 3);
    }

    #[test]
    fn statement_start_skips_comments() {
        let sql = "select 1;\n\n-- next\n  insert into t values (1);";
        let statements = split(sql);
        assert_eq!(line_col(sql, statements[1].start), (4, 3));
    }

    #[test]
    fn psql_meta_commands_are_split_apart() {
        let sql = "\\set ON_ERROR_STOP 1\nselect '\\x';\n  \\ir helpers.sql\nselect 1 \\gset\nselect $$\n\\q\n$$;";
        let (statements, metas) = split_psql(sql);
        let texts: Vec<&str> = statements.iter().map(|s| s.text(sql)).collect();
        assert_eq!(texts, ["select '\\x';", "select 1", "select $$\n\\q\n$$;"]);
        let metas: Vec<&str> = metas.iter().map(|s| s.text(sql)).collect();
        assert_eq!(
            metas,
            ["\\set ON_ERROR_STOP 1", "\\ir helpers.sql", "\\gset"]
        );
        // Outside psql mode a backslash is just a character of the statement.
        assert_eq!(split("select 1 \\gset").len(), 1);
    }

    #[test]
    fn positions_are_characters_not_bytes() {
        let text = "select 'é', x";
        let offset = char_position_to_offset(text, 13);
        assert_eq!(&text[offset..], "x");
    }
}
