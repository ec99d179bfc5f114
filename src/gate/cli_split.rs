//! A migration's statements as the Supabase CLI records them in
//! `supabase_migrations.schema_migrations.statements` (its splitter's rules, our own code),
//! and the tokens a statement means, for comparing what production recorded with the file
//! now. Pure logic.
//!
//! The CLI's rules, which differ from psql's: a statement ends at a `;` outside quotes,
//! comments, dollar-quoted bodies, parentheses and `BEGIN ATOMIC … END`; comments stay in the
//! statement that follows them; a parenthesis or `BEGIN ATOMIC` body ends at the first `)`
//! or `end` (nesting is not counted); a backslash outside quotes hides the next character;
//! each piece loses its trailing `;` and surrounding whitespace, and an empty one is dropped.

/// Where the splitter is inside one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Ready,
    /// After one `-`.
    Dash,
    /// After a `/`, or inside `/* … */` at `depth`.
    Block {
        depth: u32,
    },
    /// Inside `'…'` or `"…"`; `closing` after a delimiter that may be doubled.
    Quote {
        delimiter: char,
        closing: bool,
    },
    /// Until `delimiter` (a dollar tag, or the newline that ends a `--` comment).
    Until {
        delimiter: String,
    },
    /// After a `$` that may open a tag, which starts at byte `at` of the statement.
    Tag {
        at: usize,
    },
    /// After a backslash.
    Escape,
    /// Inside `(…)` or `BEGIN ATOMIC … END`: `inner` tracks quotes and comments in it.
    Body {
        inner: Box<State>,
        closing: &'static str,
    },
}

fn word_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || c == '_' || c == '$'
}

/// Whether `text` (the statement so far) ends with `BEGIN ATOMIC` as two words.
fn ends_begin_atomic(text: &str) -> bool {
    let ends_word = |text: &str, word: &str| -> Option<usize> {
        let at = text.len().checked_sub(word.len())?;
        if !text.as_bytes()[at..].eq_ignore_ascii_case(word.as_bytes()) {
            return None;
        }
        // ASCII at `at`: a char boundary.
        match text[..at].chars().next_back() {
            Some(c) if word_char(c) => None,
            _ => Some(at),
        }
    };
    let Some(at) = ends_word(text, "ATOMIC") else {
        return false;
    };
    ends_word(text[..at].trim_end(), "BEGIN").is_some()
}

fn ready(c: char, text: &str) -> Option<State> {
    Some(match c {
        '$' => State::Tag {
            at: text.len() - c.len_utf8(),
        },
        '\'' | '"' => State::Quote {
            delimiter: c,
            closing: false,
        },
        '-' => State::Dash,
        '/' => State::Block { depth: 0 },
        '\\' => State::Escape,
        ';' => return None,
        '(' => State::Body {
            inner: Box::new(State::Ready),
            closing: ")",
        },
        'c' | 'C' if ends_begin_atomic(text) => State::Body {
            inner: Box::new(State::Ready),
            closing: "END",
        },
        _ => State::Ready,
    })
}

impl State {
    /// The state after `c`, `text` being the statement up to and with `c`; `None` ends the
    /// statement.
    fn next(self, c: char, text: &str) -> Option<State> {
        let bytes = text.as_bytes();
        let ends_with = |tail: &str| {
            bytes.len() >= tail.len() && &bytes[bytes.len() - tail.len()..] == tail.as_bytes()
        };
        match self {
            State::Ready => ready(c, text),
            State::Dash if c == '-' => Some(State::Until {
                delimiter: "\n".to_owned(),
            }),
            State::Dash => ready(c, text),
            State::Block { depth } => {
                if ends_with("/*") {
                    Some(State::Block { depth: depth + 1 })
                } else if depth == 0 {
                    ready(c, text)
                } else if ends_with("*/") {
                    Some(match depth - 1 {
                        0 => State::Ready,
                        depth => State::Block { depth },
                    })
                } else {
                    Some(State::Block { depth })
                }
            }
            State::Quote { delimiter, closing } => match (closing, c == delimiter) {
                (true, true) => Some(State::Quote {
                    delimiter,
                    closing: false,
                }),
                (true, false) => ready(c, text),
                (false, is) => Some(State::Quote {
                    delimiter,
                    closing: is,
                }),
            },
            State::Until { delimiter } => Some(match ends_with(&delimiter) {
                true => State::Ready,
                false => State::Until { delimiter },
            }),
            State::Tag { at } => {
                if c == '$' {
                    Some(State::Until {
                        delimiter: text[at..].to_owned(),
                    })
                } else if c.is_alphabetic() || c.is_numeric() || c == '_' {
                    Some(State::Tag { at })
                } else {
                    ready(c, text)
                }
            }
            State::Escape => Some(State::Ready),
            State::Body { inner, closing } => {
                // A `;` inside the body ends nothing.
                let inner = inner.clone().next(c, text).map_or(inner, Box::new);
                let closed = *inner == State::Ready
                    && bytes.len() >= closing.len()
                    && bytes[bytes.len() - closing.len()..]
                        .eq_ignore_ascii_case(closing.as_bytes());
                Some(match closed {
                    true => State::Ready,
                    false => State::Body { inner, closing },
                })
            }
        }
    }
}

/// `source` cut where the CLI cuts it, each piece as it is (comments, whitespace, `;`).
pub fn split(source: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut state = State::Ready;
    for (at, c) in source.char_indices() {
        let end = at + c.len_utf8();
        match state.next(c, &source[start..end]) {
            Some(next) => state = next,
            None => {
                pieces.push(&source[start..end]);
                start = end;
                state = State::Ready;
            }
        }
    }
    if start < source.len() {
        pieces.push(&source[start..]);
    }
    pieces
}

/// The statements the CLI records for `source`: each piece without its trailing `;` and
/// surrounding whitespace, empty ones dropped.
pub fn statements(source: &str) -> Vec<String> {
    split(source)
        .into_iter()
        .map(|piece| piece.trim_end_matches(';').trim())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What statements mean, token by token: string literals, quoted identifiers and
/// dollar-quoted bodies exactly as written; unquoted words folded to lower case (PostgreSQL
/// folds them); comments, whitespace and `;` dropped. Two recordings of one file by
/// different splitters give the same tokens; an edit that changes anything PostgreSQL reads
/// does not.
pub fn tokens(statements: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for statement in statements {
        lex(statement, &mut out);
    }
    out
}

fn lex(text: &str, out: &mut Vec<String>) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|(_, c)| *c);
    let offset = |i: usize| chars.get(i).map_or(text.len(), |(o, _)| *o);
    let mut i = 0;
    while let Some(c) = at(i) {
        let start = i;
        match c {
            c if c.is_whitespace() || c == ';' => i += 1,
            '-' if at(i + 1) == Some('-') => {
                while at(i).is_some_and(|c| c != '\n') {
                    i += 1;
                }
            }
            '/' if at(i + 1) == Some('*') => i = crate::sql::block_comment_end(at, i),
            '\'' | '"' => {
                // `E'…'` strings take backslash escapes; the prefix was lexed as a word.
                let escapes = c == '\''
                    && out.last().is_some_and(|w| {
                        w == "e" && start > 0 && at(start - 1).is_some_and(|p| p == 'e' || p == 'E')
                    });
                i += 1;
                while let Some(d) = at(i) {
                    i += 1;
                    if escapes && d == '\\' {
                        i += 1;
                    } else if d == c {
                        if at(i) == Some(c) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
                out.push(text[offset(start)..offset(i)].to_owned());
            }
            '$' if dollar_tag(&text[offset(i)..]).is_some() => {
                let tag = dollar_tag(&text[offset(i)..]).unwrap_or_default();
                let body = offset(i) + tag.len();
                let end = text[body..]
                    .find(tag)
                    .map_or(text.len(), |found| body + found + tag.len());
                out.push(text[offset(i)..end].to_owned());
                while offset(i) < end {
                    i += 1;
                }
            }
            c if word_char(c) => {
                while at(i).is_some_and(word_char) {
                    i += 1;
                }
                out.push(text[offset(start)..offset(i)].to_lowercase());
            }
            c => {
                out.push(c.to_string());
                i += 1;
            }
        }
    }
}

/// The `$tag$` that opens a dollar-quoted string at the start of `text`.
fn dollar_tag(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &rest[..end];
    let valid = tag
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()));
    valid.then(|| &text[..end + 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each piece, joined, splits back into the same pieces.
    fn splits_as(pieces: &[&str]) {
        assert_eq!(split(&pieces.concat()), pieces, "{pieces:?}");
    }

    #[test]
    fn comments() {
        splits_as(&["END;", "-- comment"]);
        splits_as(&["SELECT --; 1"]);
        splits_as(&["- ;", "END"]);
        splits_as(&["-- /* \n;", " */ END"]);
        splits_as(&["SELECT /* ; */ 1;"]);
        splits_as(&["SELECT /*; /*;*/ ;*/ 1"]);
        splits_as(&["/ * ;", " */ END"]);
    }

    #[test]
    fn separators_and_escapes() {
        splits_as(&[";", "END;", ";"]);
        splits_as(&["BEGIN   ;", "  END"]);
        splits_as(&["\\;;", "\\;"]);
    }

    #[test]
    fn quotes() {
        splits_as(&["$tag$ any ; string$tag$"]);
        splits_as(&["$$\"Dane's horse\"$$"]);
        splits_as(&["SELECT \"$\";", " $$"]);
        splits_as(&["SELECT ';' 1"]);
        splits_as(&["SELECT ';'';' 1"]);
        // A backslash does not escape inside quotes.
        splits_as(&["SELECT '\\';", " 1'"]);
        splits_as(&["CREATE POLICY \"cats;dogs\" on cats_dogs;", " END"]);
        splits_as(&["CREATE POLICY \"pet\"\"name\" on pets;", " END"]);
    }

    #[test]
    fn bodies() {
        splits_as(&[
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC select 1; select 2; END;",
            " select 3",
        ]);
        // Parentheses hide a `;`; nesting is not counted: the first `)` closes.
        splits_as(&["select (1;2);", " select 3"]);
        splits_as(&["select (f(1);", " 2)"]);
        // `begin atomic` inside a word is not one.
        splits_as(&["select xbegin atomic;", " 1"]);
    }

    #[test]
    fn statements_keep_leading_comments_and_lose_the_separator() {
        let file = "-- rooms\ncreate table rooms (id int);\n\n/* why */ insert into rooms values (1);\n-- trailing\n";
        assert_eq!(
            statements(file),
            [
                "-- rooms\ncreate table rooms (id int)",
                "/* why */ insert into rooms values (1)",
                "-- trailing"
            ]
        );
    }

    #[test]
    fn tokens_ignore_comments_layout_and_case_but_not_literals() {
        let a = tokens(&statements(
            "-- plans\nCREATE TABLE plans (name text default 'pro plan');\n",
        ));
        let b = tokens(&["create table plans (\n  name text default 'pro plan'\n);".to_owned()]);
        assert_eq!(a, b);
        let edited = tokens(&["create table plans (name text default 'proplan')".to_owned()]);
        assert_ne!(a, edited);
        let body = |s: &str| {
            tokens(&[format!(
                "create function f() returns int as $f${s}$f$ language sql"
            )])
        };
        assert_ne!(body("select 1"), body("select  1"), "bodies are exact");
        assert_ne!(
            tokens(&["select \"A\"".to_owned()]),
            tokens(&["select \"a\"".to_owned()])
        );
        assert_eq!(
            tokens(&["select A".to_owned()]),
            tokens(&["select a".to_owned()])
        );
        assert_ne!(
            tokens(&[r"select E'a\'b'".to_owned()]),
            tokens(&[r"select E'a\'c'".to_owned()])
        );
    }
}
