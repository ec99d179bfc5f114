//! Passwords never reach an output: the one place every printed or written text passes
//! through ([`scrub`]), whatever form libpq accepts the password in.
//!
//! Two layers. Every connection string db-ci is given is registered ([`register`]): its
//! password, as written and decoded, is replaced wherever it appears (also JSON- and
//! XML-escaped, since reports escape it). Then patterns catch passwords in text db-ci never
//! saw as a connection string: URL userinfo (`scheme://user:secret@`) and `password=` as a
//! query parameter or a key=value conninfo setting, quoted or not.

use std::borrow::Cow;
use std::sync::RwLock;

/// What a password is replaced with.
pub const MASK: &str = "***";

/// Passwords shorter than this are only masked by the patterns: replacing every occurrence of
/// a one- or two-character string would garble the output.
const MIN_REGISTERED: usize = 4;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers the password of `conninfo` (a URL or key=value string) so that [`scrub`] masks
/// it everywhere, in every form it may appear in.
pub fn register(conninfo: &str) {
    let mut found: Vec<String> = passwords_in(conninfo);
    if let Ok(config) = conninfo.parse::<tokio_postgres::Config>() {
        if let Some(password) = config.get_password() {
            found.push(String::from_utf8_lossy(password).into_owned());
        }
    }
    register_all(found);
}

/// Registers a password db-ci found outside any connection string (`PGPASSWORD`, a password
/// file), so that [`scrub`] masks it as it masks one written in a URL.
pub fn register_password(password: &str) {
    register_all(vec![password.to_owned()]);
}

fn register_all(found: Vec<String>) {
    let mut forms = Vec::new();
    for secret in found {
        let decoded = percent_decode(&secret);
        for form in [secret.clone(), decoded.clone(), percent_encode(&decoded)] {
            forms.push(form.clone());
            forms.push(json_escaped(&form));
            forms.push(xml_escaped(&form));
        }
    }
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if form.chars().count() >= MIN_REGISTERED && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first: a secret that contains another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every password masked.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    match mask_patterns(&out) {
        Cow::Borrowed(_) => out,
        Cow::Owned(masked) => Cow::Owned(masked),
    }
}

/// Bytes written to a report file, scrubbed as text.
pub fn scrub_bytes(bytes: Vec<u8>) -> Vec<u8> {
    match String::from_utf8(bytes) {
        Ok(text) => scrub(&text).into_owned().into_bytes(),
        Err(e) => e.into_bytes(),
    }
}

/// The password values written in `text`: URL userinfo and `password=` settings.
fn passwords_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for span in secret_spans(text) {
        let value = &text[span.0..span.1];
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .map(|v| v.replace("\\'", "'").replace("\\\\", "\\"))
            .unwrap_or_else(|| value.to_owned());
        if !value.is_empty() && value != MASK {
            found.push(value);
        }
    }
    found
}

fn mask_patterns(text: &str) -> Cow<'_, str> {
    let spans = secret_spans(text);
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&text[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Byte ranges of password values in `text`, in order, not overlapping (already masked
/// values are left out).
fn secret_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // URL userinfo: `://user:secret@`; the user part has no `/`, `@` or whitespace.
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let start = from + found + 3;
        from = start;
        let end_of_authority = text[start..]
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .map_or(text.len(), |i| start + i);
        let authority = &text[start..end_of_authority];
        // The last `@` ends the userinfo (a password may hold an unencoded `@`).
        let Some(at) = authority.rfind('@') else {
            continue;
        };
        let Some(colon) = authority[..at].find(':') else {
            continue;
        };
        let (s, e) = (start + colon + 1, start + at);
        if &text[s..e] != MASK && s < e {
            spans.push((s, e));
        }
    }
    // `password=value`: a query parameter (`?`/`&` before it, ends at `&`) or a conninfo
    // setting (start or whitespace before it, optional spaces around `=`, value quoted or
    // ending at whitespace).
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let key_start = from + found;
        let mut i = key_start + "password".len();
        from = i;
        let before = key_start
            .checked_sub(1)
            .map(|b| bytes[b] as char)
            .unwrap_or(' ');
        let query = before == '?' || before == '&';
        // `sslpassword` and the like are passwords too.
        let conninfo = before.is_whitespace()
            || before == '"'
            || before == '\''
            || before == '('
            || before.is_ascii_alphabetic()
            || key_start == 0;
        if !query && !conninfo {
            continue;
        }
        while i < bytes.len() && bytes[i] == b' ' && !query {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' && !query {
            i += 1;
        }
        let start = i;
        let end = if !query && i < bytes.len() && bytes[i] == b'\'' {
            // Quoted: up to the closing quote not escaped by a backslash.
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'\'' {
                if bytes[j] == b'\\' {
                    j += 1;
                }
                j += 1;
            }
            (j + 1).min(bytes.len())
        } else {
            let stop = |c: char| c.is_whitespace() || c == '"' || (query && (c == '&' || c == '#'));
            text[i..].find(stop).map_or(text.len(), |k| i + k)
        };
        if start < end && &text[start..end] != MASK && text[start..end].trim_matches('\'') != MASK {
            spans.push((start, end));
        }
        from = end.max(from);
    }
    spans.sort();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (s, e) in spans {
        match merged.last_mut() {
            Some(last) if s < last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    merged
}

/// One `key=value` setting of a libpq connection string, its value unquoted and unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub key: String,
    pub value: String,
}

/// The settings of a `key=value` connection string, read as libpq reads them: spaces around
/// `=` allowed, a value either single-quoted (spaces inside, `\'` and `\\` escaped) or running
/// to the next space (backslash escapes too). `None` when it is not such a string.
pub fn key_values(text: &str) -> Option<Vec<Setting>> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut settings = Vec::new();
    let skip_spaces = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_spaces(&mut i);
        if i >= chars.len() {
            return Some(settings);
        }
        let key_start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        skip_spaces(&mut i);
        if key.is_empty() || i >= chars.len() || chars[i] != '=' {
            return None;
        }
        i += 1;
        skip_spaces(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None,
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        value.extend(chars.get(i + 1));
                        i += 2;
                    }
                    Some(c) => {
                        value.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' {
                    i += 1;
                }
                value.extend(chars.get(i));
                i += 1;
            }
        }
        settings.push(Setting { key, value });
    }
}

/// `settings` written back as a connection string libpq reads the same way: a value quoted
/// (quotes and backslashes escaped) when it is empty or holds a space, quote or backslash.
pub fn join_key_values<'a>(settings: impl IntoIterator<Item = &'a Setting>) -> String {
    settings
        .into_iter()
        .map(|s| {
            if s.value.is_empty()
                || s.value
                    .contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\')
            {
                format!(
                    "{}='{}'",
                    s.key,
                    s.value.replace('\\', "\\\\").replace('\'', "\\'")
                )
            } else {
                format!("{}={}", s.key, s.value)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A `key=value` connection string with every password setting's value masked whole,
/// quoted values with spaces included; other text is scrubbed by pattern.
pub fn mask_key_values(text: &str) -> String {
    match key_values(text) {
        Some(settings) => settings
            .iter()
            .map(|s| {
                if s.key.ends_with("password") {
                    format!("{}={MASK}", s.key)
                } else {
                    join_key_values([s])
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        None => scrub(text).into_owned(),
    }
}

fn percent_decode(text: &str) -> String {
    ::url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_owned())
}

fn percent_encode(text: &str) -> String {
    ::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn json_escaped(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_owned()
}

fn xml_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_read_as_libpq_reads_them() {
        let settings =
            key_values(r"host = db  user=x password='two words \' Pw9' dbname=a\ b").unwrap();
        let pairs: Vec<(&str, &str)> = settings
            .iter()
            .map(|s| (s.key.as_str(), s.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("host", "db"),
                ("user", "x"),
                ("password", "two words ' Pw9"),
                ("dbname", "a b")
            ]
        );
        // Written back, it reads the same.
        assert_eq!(key_values(&join_key_values(&settings)).unwrap(), settings);
        assert_eq!(key_values("host=db password='open"), None);
        assert_eq!(key_values("just words"), None);
    }

    #[test]
    fn a_quoted_password_with_spaces_is_masked_whole() {
        let shown = mask_key_values("host=127.0.0.1 user=x password='two words Pw9' dbname=y");
        assert_eq!(shown, "host=127.0.0.1 user=x password=*** dbname=y");
        assert!(
            !shown.contains("words") && !shown.contains("Pw9"),
            "{shown}"
        );
        let shown = mask_key_values("sslpassword = 'a b' host=h");
        assert_eq!(shown, "sslpassword=*** host=h");
    }

    fn masked(text: &str) -> String {
        mask_patterns(text).into_owned()
    }

    #[test]
    fn url_userinfo_is_masked() {
        assert_eq!(
            masked("connect to postgres://u:pa@ss@h:5/db failed"),
            "connect to postgres://u:***@h:5/db failed"
        );
        assert_eq!(masked("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(masked("postgres://u:***@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn password_parameters_are_masked() {
        assert_eq!(
            masked("postgres://h/db?user=u&password=s3c&sslmode=require"),
            "postgres://h/db?user=u&password=***&sslmode=require"
        );
        assert_eq!(
            masked("host=h password=s3c dbname=d"),
            "host=h password=*** dbname=d"
        );
        assert_eq!(
            masked("host=h password = 'a b\\' c' dbname=d"),
            "host=h password = *** dbname=d"
        );
        assert_eq!(masked("password=x"), "password=***");
        assert_eq!(masked("sslpassword=x y"), "sslpassword=*** y");
        // Words that merely contain it are left alone.
        assert_eq!(masked("the password is wrong"), "the password is wrong");
    }

    #[test]
    fn registered_secrets_are_masked_in_every_form() {
        register("postgres://u:Zq%40rt%2Fy9@h/db");
        for shown in ["Zq@rt/y9", "Zq%40rt%2Fy9", "error: Zq@rt/y9 rejected"] {
            assert!(!scrub(shown).contains("rt"), "{shown} → {}", scrub(shown));
        }
        register("host=h password='Kw\\'v 7x' dbname=d");
        assert_eq!(scrub("said Kw'v 7x"), "said ***");
        assert_eq!(scrub("json \"Kw'v 7x\""), "json \"***\"");
        assert_eq!(scrub("xml Kw&apos;v 7x"), "xml ***");
    }
}
