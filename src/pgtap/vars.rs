//! psql's variables as a test file meets them: a meta-command's argument words (with
//! `:var`, `:'var'` and `:"var"` replaced), the interpolation of SQL text outside quotes and
//! comments, and psql's reading of a boolean.

use std::collections::BTreeMap;

use super::script::PsqlError;
use crate::sql;

/// psql's argument words for a meta-command (its `OT_NORMAL` lexing): whitespace
/// separates words; `'…'` is quoted (`''` and backslash escapes inside), `"…"` is kept with
/// its quotes; `:var`, `:'var'` and `:"var"` outside quotes are replaced by the variable
/// (quoted as a literal or an identifier), an undefined one stays as written.
pub fn words(text: &str, vars: &BTreeMap<String, String>) -> Result<Vec<String>, PsqlError> {
    let mut words = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        while i < chars.len() && !chars[i].is_whitespace() {
            match chars[i] {
                '\'' => {
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(PsqlError::UnterminatedString),
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                word.push('\'');
                                i += 2;
                            }
                            Some('\'') => {
                                i += 1;
                                break;
                            }
                            Some('\\') => {
                                i += 1;
                                match chars.get(i) {
                                    None => return Err(PsqlError::UnterminatedString),
                                    Some('n') => word.push('\n'),
                                    Some('t') => word.push('\t'),
                                    Some('b') => word.push('\u{8}'),
                                    Some('r') => word.push('\r'),
                                    Some('f') => word.push('\u{c}'),
                                    Some(&c) => word.push(c),
                                }
                                i += 1;
                            }
                            Some(&c) => {
                                word.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                '"' => {
                    word.push('"');
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(PsqlError::UnterminatedIdentifier),
                            Some('"') if chars.get(i + 1) == Some(&'"') => {
                                word.push_str("\"\"");
                                i += 2;
                            }
                            Some('"') => {
                                word.push('"');
                                i += 1;
                                break;
                            }
                            Some(&c) => {
                                word.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                ':' if chars.get(i + 1) == Some(&'{') && chars.get(i + 2) == Some(&'?') => {
                    // `:{?name}`: whether the variable is defined.
                    let rest: String = chars[i + 3..].iter().collect();
                    match rest.find('}') {
                        Some(end)
                            if rest[..end].chars().all(|c| c.is_alphanumeric() || c == '_') =>
                        {
                            let defined = vars.contains_key(&rest[..end]);
                            word.push_str(if defined { "TRUE" } else { "FALSE" });
                            i += 3 + rest[..end].chars().count() + 1;
                        }
                        _ => {
                            word.push(':');
                            i += 1;
                        }
                    }
                }
                ':' => {
                    let (quote, start) = match chars.get(i + 1) {
                        Some(&q @ ('\'' | '"')) => (Some(q), i + 2),
                        _ => (None, i + 1),
                    };
                    let len = chars[start.min(chars.len())..]
                        .iter()
                        .take_while(|c| c.is_alphanumeric() || **c == '_')
                        .count();
                    let name: String = chars[start.min(chars.len())..start + len].iter().collect();
                    let closed = quote.is_none_or(|q| chars.get(start + len) == Some(&q));
                    match vars.get(&name).filter(|_| len > 0 && closed) {
                        Some(value) => {
                            match quote {
                                Some('\'') => word.push_str(&sql::quote_literal(value)),
                                Some(_) => word.push_str(&sql::quote_ident(value)),
                                None => word.push_str(value),
                            }
                            i = start + len + usize::from(quote.is_some());
                        }
                        None => {
                            word.push(':');
                            i += 1;
                        }
                    }
                }
                c => {
                    word.push(c);
                    i += 1;
                }
            }
        }
        words.push(word);
    }
    Ok(words)
}

pub(super) fn script_bool(value: &str) -> Option<bool> {
    if value.is_empty() {
        Some(true)
    } else {
        parse_bool(value)
    }
}

/// psql's reading of a boolean (`ParseVariableBool`): a prefix of `true`, `false`, `yes`,
/// `no`, at least `on`/`of` of `on`/`off`, `1`, `0`, any case.
pub fn parse_bool(value: &str) -> Option<bool> {
    let lower = value.trim().to_ascii_lowercase();
    let prefix_of = |word: &str, min: usize| lower.len() >= min && word.starts_with(&lower);
    if prefix_of("true", 1) || prefix_of("yes", 1) || lower == "1" {
        Some(true)
    } else if prefix_of("false", 1) || prefix_of("no", 1) || lower == "0" {
        Some(false)
    } else if prefix_of("on", 2) {
        Some(true)
    } else if prefix_of("off", 2) {
        Some(false)
    } else {
        None
    }
}

/// Replaces psql variables (`:name`, `:'name'`, `:"name"`) in a statement, outside quotes,
/// comments and dollar-quoted bodies, as psql's lexer does with standard-conforming strings
/// (a backslash escapes only inside `E'…'`); undefined names and `::` casts stay.
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
                i = sql::block_comment_end(|at| bytes.get(at).map(|&b| char::from(b)), i);
            }
            b'\'' | b'"' => {
                let quote = bytes[i];
                let escapes = quote == b'\''
                    && i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_word(bytes[i - 2]));
                i += 1;
                while i < bytes.len() {
                    if escapes && bytes[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        break;
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
            b':' if text[i..].starts_with(":{?") => {
                // `:{?name}`: whether the variable is defined.
                match text[i + 3..].find('}') {
                    Some(end) if text[i + 3..i + 3 + end].bytes().all(is_word) => {
                        out.push_str(&text[copied..i]);
                        let defined = vars.contains_key(&text[i + 3..i + 3 + end]);
                        out.push_str(if defined { "TRUE" } else { "FALSE" });
                        i += 3 + end + 1;
                        copied = i;
                    }
                    _ => i += 1,
                }
            }
            b':' => {
                let (quote, start) = match bytes.get(i + 1) {
                    Some(b'\'') => (Some(b'\''), i + 2),
                    Some(b'"') => (Some(b'"'), i + 2),
                    _ => (None, i + 1),
                };
                let len = bytes[start.min(bytes.len())..]
                    .iter()
                    .take_while(|&&c| is_word(c))
                    .count();
                let name = &text[start.min(bytes.len())..(start + len).min(bytes.len())];
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
