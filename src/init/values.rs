//! Values a generated row can hold under its column's CHECK constraints: what init reads of a
//! constraint (regular expressions, comparisons and lengths, lists of allowed values), and a
//! value of the column's kind that satisfies every part it read. Parts it cannot read are left
//! to the trial on the database, which stays the judge.

/// One condition of a CHECK on a single column (or a domain's `VALUE`), AND-ed with the others.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `col ~ 'pattern'` (`~*`: case-insensitive; `!~`: must not match).
    Matches {
        pattern: String,
        case_insensitive: bool,
        negated: bool,
    },
    /// `col <op> bound`, or `length(col) <op> bound` when `length`.
    Compare { length: bool, op: Op, bound: f64 },
    /// `col = ANY (ARRAY[…])` (`col in (…)`).
    OneOf(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// The conditions on `column` that `definition` (as `pg_get_constraintdef` prints it) AND-s
/// together. A definition with a top-level `OR`, or one naming other columns, gives none:
/// only what holds for the column alone is read.
pub fn parse_check(definition: &str, column: &str) -> Vec<Check> {
    let body = definition.trim();
    let body = body.strip_prefix("CHECK").unwrap_or(body).trim();
    let body = body.strip_suffix("NOT VALID").unwrap_or(body).trim();
    let body = strip(body);
    if split_top(body, " OR ").len() > 1 {
        return Vec::new();
    }
    split_top(body, " AND ")
        .into_iter()
        .filter_map(|atom| parse_atom(strip(atom), column))
        .collect()
}

fn parse_atom(atom: &str, column: &str) -> Option<Check> {
    for (op, case_insensitive, negated) in [
        (" !~* ", true, true),
        (" !~ ", false, true),
        (" ~* ", true, false),
        (" ~ ", false, false),
    ] {
        if let Some((left, right)) = split_once_top(atom, op) {
            if !is_column(left, column) {
                return None;
            }
            return Some(Check::Matches {
                pattern: string_literal(strip(right))?,
                case_insensitive,
                negated,
            });
        }
    }
    if let Some((left, right)) = split_once_top(atom, " = ANY ") {
        if !is_column(left, column) {
            return None;
        }
        let list = strip(right);
        let inner = list.strip_prefix("ARRAY[")?.strip_suffix(']')?;
        let values = split_top(inner, ", ")
            .into_iter()
            .map(|item| {
                let item = strip(item);
                string_literal(item).or_else(|| number(item).map(|_| item.to_owned()))
            })
            .collect::<Option<Vec<String>>>()?;
        return Some(Check::OneOf(values));
    }
    for (text, op) in [
        (" >= ", Op::Ge),
        (" <= ", Op::Le),
        (" <> ", Op::Ne),
        (" > ", Op::Gt),
        (" < ", Op::Lt),
        (" = ", Op::Eq),
    ] {
        if let Some((left, right)) = split_once_top(atom, text) {
            let left = strip(left);
            let length = ["length(", "char_length(", "character_length("]
                .iter()
                .find_map(|f| left.strip_prefix(f).and_then(|l| l.strip_suffix(')')));
            let (length, subject) = match length {
                Some(inner) => (true, inner),
                None => (false, left),
            };
            if !is_column(subject, column) {
                return None;
            }
            let right = strip(right);
            let bound = number(right).or_else(|| string_literal(right).and_then(|s| number(&s)))?;
            return Some(Check::Compare { length, op, bound });
        }
    }
    None
}

/// Whether `text` is the column (or a domain's `VALUE`), maybe parenthesised, quoted or cast.
fn is_column(text: &str, column: &str) -> bool {
    let text = strip(text);
    text == "VALUE"
        || text == column
        || text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) == Some(column)
}

/// `'text'` (its quotes doubled inside) as the text, else `None`.
fn string_literal(text: &str) -> Option<String> {
    let text = text.strip_prefix('E').unwrap_or(text);
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Removes outer parentheses and trailing casts (`(1)::numeric`, `'x'::text`), repeatedly.
fn strip(mut text: &str) -> &str {
    loop {
        let before = text;
        text = text.trim();
        if text.starts_with('(') && closing(text, 0) == Some(text.len() - 1) {
            text = &text[1..text.len() - 1];
        }
        if let Some(at) = last_top_cast(text) {
            text = &text[..at];
        }
        if text == before {
            return text;
        }
    }
}

/// The index of the parenthesis closing the one at `open`.
pub(super) fn closing(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in text.char_indices().skip_while(|(i, _)| *i < open) {
        match c {
            '\'' => quoted = !quoted,
            '(' | '[' if !quoted => depth += 1,
            ')' | ']' if !quoted => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where a cast at the end of `text`, outside quotes and parentheses, starts.
fn last_top_cast(text: &str) -> Option<usize> {
    let at = positions_top(text, "::").into_iter().last()?;
    let ty = &text[at + 2..];
    ty.chars()
        .all(|c| c.is_ascii_alphanumeric() || " _[]\".".contains(c))
        .then_some(at)
}

/// Byte offsets of `needle` outside quotes, parentheses and brackets.
fn positions_top(text: &str, needle: &str) -> Vec<usize> {
    let mut depth = 0i32;
    let mut quoted = false;
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            quoted = !quoted;
        } else if !quoted {
            match c {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                _ if depth == 0 && text[i..].starts_with(needle) => {
                    found.push(i);
                    i += needle.len();
                    continue;
                }
                _ => {}
            }
        }
        i += 1;
    }
    found
}

/// `text` split at `separator` where it stands outside quotes and parentheses.
pub(super) fn split_top<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for at in positions_top(text, separator) {
        parts.push(&text[start..at]);
        start = at + separator.len();
    }
    parts.push(&text[start..]);
    parts
}

fn split_once_top<'a>(text: &'a str, separator: &str) -> Option<(&'a str, &'a str)> {
    let at = *positions_top(text, separator).first()?;
    Some((&text[..at], &text[at + separator.len()..]))
}

/// What a column's value must satisfy: its CHECK conditions and its declared length
/// (`char(n)`, `varchar(n)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    pub checks: Vec<Check>,
    pub max_length: Option<usize>,
}

impl Rules {
    /// Nothing to satisfy beyond the type.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty() && self.max_length.is_none()
    }

    /// The values a `= ANY` list allows (an enum's labels are the type's own list).
    pub fn allowed(&self) -> Option<&[String]> {
        self.checks.iter().find_map(|c| match c {
            Check::OneOf(values) => Some(values.as_slice()),
            _ => None,
        })
    }

    /// Whether `text` satisfies every condition read (as text: lengths, patterns, lists).
    /// A pattern this crate's regex dialect cannot read is left to the database.
    pub fn text_fits(&self, text: &str) -> bool {
        let chars = text.chars().count();
        if self.max_length.is_some_and(|n| chars > n) {
            return false;
        }
        self.checks.iter().all(|check| match check {
            Check::Matches {
                pattern,
                case_insensitive,
                negated,
            } => compile(pattern, *case_insensitive).is_none_or(|re| re.is_match(text) != *negated),
            Check::Compare {
                length: true,
                op,
                bound,
            } => op.holds(chars as f64, *bound),
            Check::Compare { length: false, .. } => true,
            Check::OneOf(values) => values.iter().any(|v| v == text),
        })
    }

    /// Whether the number satisfies every comparison and list read.
    pub fn number_fits(&self, value: f64) -> bool {
        self.checks.iter().all(|check| match check {
            Check::Compare {
                length: false,
                op,
                bound,
            } => op.holds(value, *bound),
            Check::OneOf(values) => values.iter().any(|v| number(v) == Some(value)),
            _ => true,
        })
    }

    /// A text value satisfying the rules: the first of `preferred` that fits, else one of
    /// their variants, else one built from a pattern. `variant` (distinct per row of a table)
    /// keeps built values apart.
    pub fn text(&self, preferred: &[String], variant: usize) -> Option<String> {
        if let Some(values) = self.allowed() {
            return values
                .iter()
                .cycle()
                .skip(variant % values.len().max(1))
                .take(values.len())
                .find(|v| self.text_fits(v))
                .cloned();
        }
        let mut candidates: Vec<String> = Vec::new();
        for text in preferred {
            candidates.push(text.clone());
            let compact: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let letters: String = text.chars().filter(|c| c.is_ascii_alphabetic()).collect();
            candidates.push(text.replace('-', "_"));
            candidates.push(text.replace('-', " "));
            candidates.push(compact.clone());
            candidates.push(capitalised(&compact));
            candidates.push(compact.to_uppercase());
            // Digits carry the row apart; as letters for patterns without digits.
            let spelled = format!("{letters}{}", as_letters(variant));
            candidates.push(spelled.clone());
            candidates.push(capitalised(&spelled));
            candidates.push(spelled.to_uppercase());
        }
        let min = self.min_length();
        let padded: Vec<String> = candidates
            .iter()
            .filter(|c| c.chars().count() < min)
            .map(|c| format!("{c}{}", "x".repeat(min - c.chars().count())))
            .collect();
        candidates.extend(padded);
        if let Some(n) = self.max_length {
            let cut: Vec<String> = candidates
                .iter()
                .filter(|c| c.chars().count() > n)
                .map(|c| c.chars().take(n).collect())
                .collect();
            candidates.extend(cut);
        }
        if let Some(fit) = candidates.iter().find(|c| self.text_fits(c)) {
            return Some(fit.clone());
        }
        for check in &self.checks {
            if let Check::Matches {
                pattern,
                case_insensitive,
                negated: false,
            } = check
            {
                for extra in 0..=min.max(8) {
                    if let Some(built) = build(pattern, *case_insensitive, variant, extra) {
                        if self.text_fits(&built) {
                            return Some(built);
                        }
                    }
                }
            }
        }
        None
    }

    /// A number satisfying the rules: `preferred` when it fits, else one inside the bounds
    /// read, `variant` apart from the other rows'. Integers only when `integer`.
    pub fn number(&self, preferred: f64, integer: bool, variant: usize) -> Option<String> {
        let format = |n: f64| {
            if integer || n.fract() == 0.0 {
                format!("{}", n as i64)
            } else {
                let text = format!("{n:.6}");
                text.trim_end_matches('0').trim_end_matches('.').to_owned()
            }
        };
        if let Some(values) = self.allowed() {
            let numbers: Vec<f64> = values.iter().filter_map(|v| number(v)).collect();
            return numbers
                .iter()
                .cycle()
                .skip(variant % numbers.len().max(1))
                .take(numbers.len())
                .find(|n| self.number_fits(**n))
                .map(|n| format(*n));
        }
        if self.number_fits(preferred) {
            return Some(format(preferred));
        }
        let (mut low, mut high) = (f64::NEG_INFINITY, f64::INFINITY);
        for check in &self.checks {
            if let Check::Compare {
                length: false,
                op,
                bound,
            } = check
            {
                match op {
                    Op::Gt | Op::Ge => low = low.max(*bound),
                    Op::Lt | Op::Le => high = high.min(*bound),
                    Op::Eq => (low, high) = (*bound, *bound),
                    Op::Ne => {}
                }
            }
        }
        let mut candidates = Vec::new();
        if integer {
            let first = if low.is_finite() {
                low.ceil()
            } else {
                1.0f64.min(high.floor())
            };
            let last = if high.is_finite() {
                high.floor()
            } else {
                first + 1000.0
            };
            let width = (last - first + 1.0).max(1.0);
            let v = variant as f64;
            candidates.extend([
                first + v % width,
                first + (v + 1.0) % width,
                first,
                first + 1.0,
                last,
                last - 1.0,
            ]);
        } else {
            let (a, b) = match (low.is_finite(), high.is_finite()) {
                (true, true) => (low, high),
                (true, false) => (low, low + 100.0),
                (false, true) => (high - 100.0, high),
                (false, false) => (0.0, 100.0),
            };
            for k in [variant, variant + 1, 0, 1, 2] {
                let k = (k % 8) as f64;
                candidates.push(a + (b - a) * (k + 1.0) / 10.0);
            }
            candidates.extend([a, b]);
        }
        candidates
            .into_iter()
            .filter(|n| n.is_finite())
            .find(|n| {
                self.number_fits(*n) && number(&format(*n)).is_some_and(|m| self.number_fits(m))
            })
            .map(format)
    }

    /// The shortest length the `length(…)` conditions allow.
    fn min_length(&self) -> usize {
        self.checks
            .iter()
            .filter_map(|c| match c {
                Check::Compare {
                    length: true,
                    op: Op::Gt,
                    bound,
                } => Some(bound.floor() as usize + 1),
                Check::Compare {
                    length: true,
                    op: Op::Ge | Op::Eq,
                    bound,
                } => Some(bound.ceil() as usize),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `n` in base 26 as lowercase letters (`0` is `a`).
fn as_letters(mut n: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'a' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii letters")
}

fn compile(pattern: &str, case_insensitive: bool) -> Option<regex::Regex> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .build()
        .ok()
}

/// A string matching `pattern` built from its structure: every repetition at its minimum
/// plus `extra` where it may grow, the first branch of an alternation, and class members
/// chosen by `variant`.
fn build(pattern: &str, case_insensitive: bool, variant: usize, extra: usize) -> Option<String> {
    let hir = regex_syntax::ParserBuilder::new()
        .case_insensitive(case_insensitive)
        .build()
        .parse(pattern)
        .ok()?;
    let mut out = String::new();
    let mut variant = variant;
    emit(&hir, &mut variant, extra, &mut out)?;
    Some(out)
}

fn emit(
    hir: &regex_syntax::hir::Hir,
    variant: &mut usize,
    extra: usize,
    out: &mut String,
) -> Option<()> {
    use regex_syntax::hir::{Class, HirKind};
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(literal) => out.push_str(std::str::from_utf8(&literal.0).ok()?),
        HirKind::Class(Class::Unicode(class)) => {
            // Letters and digits first: they pass the most other conditions.
            let members: Vec<char> = class
                .ranges()
                .iter()
                .flat_map(|r| (r.start()..=r.end()).take(64))
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            let c = if members.is_empty() {
                class.ranges().first()?.start()
            } else {
                let c = members[*variant % members.len()];
                *variant /= members.len();
                c
            };
            out.push(c);
        }
        HirKind::Class(Class::Bytes(class)) => {
            out.push(char::from(class.ranges().first()?.start()));
        }
        HirKind::Repetition(repetition) => {
            let wanted = repetition.min as usize + extra;
            let count = match repetition.max {
                Some(max) => wanted.min(max as usize),
                None => wanted,
            };
            for _ in 0..count {
                emit(&repetition.sub, variant, extra, out)?;
            }
        }
        HirKind::Capture(capture) => emit(&capture.sub, variant, extra, out)?,
        HirKind::Concat(parts) => {
            for part in parts {
                emit(part, variant, extra, out)?;
            }
        }
        HirKind::Alternation(branches) => emit(branches.first()?, variant, extra, out)?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(definitions: &[&str], column: &str, max_length: Option<usize>) -> Rules {
        Rules {
            checks: definitions
                .iter()
                .flat_map(|d| parse_check(d, column))
                .collect(),
            max_length,
        }
    }

    #[test]
    fn the_printed_constraint_forms_are_read() {
        assert_eq!(
            parse_check("CHECK ((username ~ '^[[:alnum:] _]+$'::text))", "username"),
            vec![Check::Matches {
                pattern: "^[[:alnum:] _]+$".to_owned(),
                case_insensitive: false,
                negated: false
            }]
        );
        assert_eq!(
            parse_check(
                "CHECK (((handle)::text ~* '^[a-z0-9_]{3,20}$'::text))",
                "handle"
            ),
            vec![Check::Matches {
                pattern: "^[a-z0-9_]{3,20}$".to_owned(),
                case_insensitive: true,
                negated: false
            }]
        );
        assert_eq!(
            parse_check("CHECK (((capacity >= 2) AND (capacity <= 10)))", "capacity"),
            vec![
                Check::Compare {
                    length: false,
                    op: Op::Ge,
                    bound: 2.0
                },
                Check::Compare {
                    length: false,
                    op: Op::Le,
                    bound: 10.0
                },
            ]
        );
        assert_eq!(
            parse_check(
                "CHECK (((score >= 0.5) AND (score < (1)::numeric)))",
                "score"
            ),
            vec![
                Check::Compare {
                    length: false,
                    op: Op::Ge,
                    bound: 0.5
                },
                Check::Compare {
                    length: false,
                    op: Op::Lt,
                    bound: 1.0
                },
            ]
        );
        assert_eq!(
            parse_check(
                "CHECK (((st2)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[])))",
                "st2"
            ),
            vec![Check::OneOf(vec!["a".to_owned(), "b".to_owned()])]
        );
        assert_eq!(
            parse_check("CHECK ((prio = ANY (ARRAY[1, 2, 3])))", "prio"),
            vec![Check::OneOf(vec![
                "1".to_owned(),
                "2".to_owned(),
                "3".to_owned()
            ])]
        );
        assert_eq!(
            parse_check(
                "CHECK (((VALUE ~ '^[a-z]+$'::text) AND (length(VALUE) <= 12)))",
                "nick"
            )
            .len(),
            2
        );
        assert_eq!(
            parse_check(
                "CHECK (((length(t2) > 0) AND (char_length(t2) <= 80)))",
                "t2"
            ),
            vec![
                Check::Compare {
                    length: true,
                    op: Op::Gt,
                    bound: 0.0
                },
                Check::Compare {
                    length: true,
                    op: Op::Le,
                    bound: 80.0
                },
            ]
        );
        // Alternatives and other columns are not the column's own conditions.
        assert!(parse_check("CHECK (((a > 1) OR (a < -1)))", "a").is_empty());
        assert!(parse_check("CHECK ((b > a))", "a").is_empty());
    }

    #[test]
    fn text_values_satisfy_patterns_lengths_and_lists() {
        let preferred = |s: &str| vec![s.to_owned()];
        let username = rules(
            &["CHECK ((username ~ '^[[:alnum:] _]+$'::text))"],
            "username",
            None,
        );
        let value = username.text(&preferred("db-ci-3-0"), 12).unwrap();
        assert!(
            regex::Regex::new("^[[:alnum:] _]+$")
                .unwrap()
                .is_match(&value),
            "{value}"
        );
        // Rows of one table stay apart.
        assert_ne!(value, username.text(&preferred("db-ci-3-1"), 13).unwrap());

        let title = rules(&["CHECK ((title ~ '^[A-Z][a-z]+$'::text))"], "title", None);
        let a = title.text(&preferred("db-ci-1-0"), 4).unwrap();
        let b = title.text(&preferred("db-ci-1-1"), 5).unwrap();
        assert!(
            regex::Regex::new("^[A-Z][a-z]+$").unwrap().is_match(&a),
            "{a}"
        );
        assert_ne!(a, b);

        // char(8) key: short enough, still distinct.
        let code = rules(&[], "code", Some(8));
        let a = code.text(&preferred("db-ci-12-0"), 48).unwrap();
        let b = code.text(&preferred("db-ci-12-1"), 49).unwrap();
        assert!(a.chars().count() <= 8 && b.chars().count() <= 8, "{a} {b}");
        assert_ne!(a, b);

        let long = rules(&["CHECK ((char_length(name) >= 12))"], "name", None);
        assert!(long.text(&preferred("db-ci"), 0).unwrap().chars().count() >= 12);

        let status = rules(
            &["CHECK ((status = ANY (ARRAY['open'::text, 'closed'::text])))"],
            "status",
            None,
        );
        assert_eq!(status.text(&preferred("db-ci"), 0).as_deref(), Some("open"));
        assert_eq!(
            status.text(&preferred("db-ci"), 1).as_deref(),
            Some("closed")
        );

        // Built from the pattern when no preferred text fits.
        let digits = rules(&["CHECK ((pin ~ '^[0-9]{4}$'::text))"], "pin", None);
        let a = digits.text(&preferred("db-ci"), 1).unwrap();
        assert!(regex::Regex::new("^[0-9]{4}$").unwrap().is_match(&a), "{a}");
        assert_ne!(a, digits.text(&preferred("db-ci"), 2).unwrap());

        // Nothing fits a contradiction: no value rather than a wrong one.
        let never = rules(
            &["CHECK (((length(x) > 3) AND (length(x) < 2)))"],
            "x",
            None,
        );
        assert_eq!(never.text(&preferred("db-ci"), 0), None);
    }

    #[test]
    fn numbers_fall_inside_the_ranges() {
        let capacity = rules(
            &["CHECK (((capacity >= 2) AND (capacity <= 10)))"],
            "capacity",
            None,
        );
        let a = capacity.number(900_000_012.0, true, 12).unwrap();
        let b = capacity.number(900_000_013.0, true, 13).unwrap();
        let (x, y): (i64, i64) = (a.parse().unwrap(), b.parse().unwrap());
        assert!((2..=10).contains(&x) && (2..=10).contains(&y), "{a} {b}");
        assert_ne!(x, y);
        assert_eq!(capacity.number(3.0, true, 0).as_deref(), Some("3"));

        let score = rules(
            &["CHECK (((score >= 0.5) AND (score < (1)::numeric)))"],
            "score",
            None,
        );
        let s: f64 = score.number(1.0, false, 0).unwrap().parse().unwrap();
        assert!((0.5..1.0).contains(&s), "{s}");

        let positive = rules(&["CHECK ((r > (0)::double precision))"], "r", None);
        assert_eq!(positive.number(1.0, false, 0).as_deref(), Some("1"));

        let prio = rules(&["CHECK ((prio = ANY (ARRAY[1, 2, 3])))"], "prio", None);
        assert_eq!(prio.number(900_000_000.0, true, 1).as_deref(), Some("2"));

        let never = rules(&["CHECK (((n > 5) AND (n < 5)))"], "n", None);
        assert_eq!(never.number(1.0, true, 0), None);
    }
}
