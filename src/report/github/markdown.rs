//! Markdown for the job summary: text escaped for a table cell, inline code that stays code
//! anywhere, fenced blocks. Everything user-controlled goes through one of these.

use std::fmt::Write as _;

use crate::report::escape_controls;

/// `text` as a fenced code block: a fence longer than any run of backticks inside, control
/// characters shown escaped (markdown shows the rest as is, in a fixed-width font).
pub fn fenced(text: &str, language: &str) -> String {
    let text = escape_controls(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}\n", text.trim_end())
}

/// Text in a markdown table cell: backslash-escapes the punctuation markdown would act on
/// (`|` ends a cell; `*`, `_`, `` ` ``, `<`… would format or inject HTML), newlines as `<br>`.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_controls(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as inline code that stays code anywhere, a table cell included: HTML-escaped in
/// `<code>` (backticks inside a table would need escaping, which GitHub then shows).
pub fn code(text: &str) -> String {
    format!("<code>{}</code>", html_literal(text))
}

/// Text shown literally inside HTML that markdown still parses: markup and every character
/// markdown or a table would act on as an entity.
fn html_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_controls(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            '|' | '*' | '_' | '`' | '[' | ']' | '\\' | '~' | '#' | '!' | '$' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Markdown for a message: its `` `code` `` spans as [`code`], the rest escaped.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        out.push_str(&escape_markdown(&rest[..open]));
        out.push_str(&code(&rest[open + 1..open + 1 + len]));
        rest = &rest[open + 2 + len..];
    }
    out.push_str(&escape_markdown(rest));
    out
}
