//! The `properties:` format of policy-test files, and the checks that need more than serde
//! (pool and actor references), reported at the line that is wrong.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// Cases tried per property unless it says otherwise (proptest's own default).
pub const DEFAULT_CASES: u32 = 256;
/// Longest operation sequence unless the property says otherwise.
pub const DEFAULT_MAX_STEPS: u32 = 8;

/// One counter property: operations drawn at random from templates, and an invariant checked
/// after every step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertySpec {
    pub name: String,
    /// SQL run as admin before the cases (after the file's setup), inside a transaction that
    /// every case starts from and that is rolled back at the end.
    pub setup: Option<Spanned<String>>,
    /// Named pools of values that operations draw from: a SQL query (its first column, read
    /// once after setup) or a literal list.
    #[serde(default)]
    pub pools: BTreeMap<String, Spanned<PoolSpec>>,
    /// SQL templates; `{{pool}}` draws a value, `{{pool#2}}` a second independent draw.
    pub operations: Vec<Spanned<String>>,
    /// A query returning the rows that violate the property: empty means it holds.
    pub invariant: Spanned<String>,
    /// Optional: a query printed before and after the failing step (the counter rows).
    pub show: Option<Spanned<String>>,
    /// Optional actors each step runs as (one drawn per step), impersonated like RLS cells.
    #[serde(rename = "as", default)]
    pub run_as: Vec<Spanned<String>>,
    #[serde(default = "default_cases", deserialize_with = "bounded_cases")]
    pub cases: u32,
    #[serde(default = "default_max_steps", deserialize_with = "bounded_max_steps")]
    pub max_steps: u32,
}

/// The most cases one property may ask for: beyond it a run takes hours, not a CI step.
pub const MAX_CASES: u32 = 10_000;
/// The longest sequence one case may run: a sequence is held in memory, and a counter bug
/// shows within a few steps.
pub const MAX_STEPS: u32 = 1_000;

fn bounded<'de, D: serde::Deserializer<'de>>(d: D, key: &str, most: u32) -> Result<u32, D::Error> {
    let value = i64::deserialize(d)?;
    if !(1..=i64::from(most)).contains(&value) {
        return Err(serde::de::Error::custom(format!(
            "`{key}: {value}` is out of range: use 1 to {most}"
        )));
    }
    Ok(value as u32)
}

fn bounded_cases<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded(d, "cases", MAX_CASES)
}

fn bounded_max_steps<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    bounded(d, "max_steps", MAX_STEPS)
}

fn default_cases() -> u32 {
    DEFAULT_CASES
}

fn default_max_steps() -> u32 {
    DEFAULT_MAX_STEPS
}

/// Where a pool's values come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PoolSpec {
    /// `select id from users order by id`: the first column of every row, as text.
    Query(String),
    /// `[upvote, downvote]`, `[1, 2, 3]`, `[null, 0]`.
    Values(Vec<Value>),
}

/// One `{{name}}` / `{{name#k}}` occurrence in an operation template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Draw {
    pub pool: String,
    /// 1 for `{{name}}` and `{{name#1}}`, k for `{{name#k}}`.
    pub index: u32,
}

fn placeholder_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(r"\{\{\s*([A-Za-z_][\w-]*)\s*(?:#\s*(\d+))?\s*\}\}").unwrap()
    })
}

/// An operation template split into literal text and draws.
#[derive(Debug, Clone)]
pub struct Template {
    /// The text with actor placeholders already filled.
    pub text: String,
    /// The distinct draws, sorted: each gets one value per step.
    pub draws: Vec<Draw>,
}

/// A placeholder drawing a value that does not exist: `{{user#0}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}`: the draw number after # counts from 1")]
pub struct BadDraw(pub String);

/// A pool value that is not a scalar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pool values are scalars (text, numbers, booleans, null), not `{0}`")]
pub struct NotScalar(pub Value);

impl Template {
    /// Parses the pool placeholders of `text` (actor fields must already be rendered).
    pub fn parse(text: &str) -> Result<Template, BadDraw> {
        let mut draws = BTreeSet::new();
        for caps in placeholder_pattern().captures_iter(text) {
            let index = match caps.get(2) {
                None => 1,
                Some(k) => k
                    .as_str()
                    .parse::<u32>()
                    .ok()
                    .filter(|k| *k >= 1)
                    .ok_or_else(|| BadDraw(caps.get(0).map_or("", |m| m.as_str()).to_owned()))?,
            };
            draws.insert(Draw {
                pool: caps[1].to_owned(),
                index,
            });
        }
        Ok(Template {
            text: text.to_owned(),
            draws: draws.into_iter().collect(),
        })
    }

    /// The SQL with each draw replaced by its value (already a SQL literal), in the order
    /// of `self.draws`.
    pub fn render(&self, values: &[&str]) -> String {
        placeholder_pattern()
            .replace_all(&self.text, |caps: &regex::Captures| {
                let index = caps
                    .get(2)
                    .and_then(|k| k.as_str().parse::<u32>().ok())
                    .unwrap_or(1);
                let position = self
                    .draws
                    .iter()
                    .position(|d| d.pool == caps[1] && d.index == index);
                position
                    .and_then(|p| values.get(p))
                    .map_or_else(String::new, |v| (*v).to_owned())
            })
            .into_owned()
    }
}

/// A literal pool value as SQL: strings quoted (an untyped literal, so it fits uuid, enum or
/// integer columns alike), numbers and booleans bare, null as `null`.
pub fn literal_sql(value: &Value) -> Result<String, NotScalar> {
    match value {
        Value::Null => Ok("null".to_owned()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(crate::sql::quote_literal(s)),
        other => Err(NotScalar(other.clone())),
    }
}

/// The line of a spanned value, 1-based.
pub fn line_of<T>(value: &Spanned<T>) -> usize {
    value.referenced.line() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        properties: Vec<Spanned<PropertySpec>>,
    }

    const DOC: &str = "\
properties:
  - name: tallies
    pools:
      user: select id from users order by id
      vote: [upvote, downvote, 3, null]
    operations:
      - insert into v values ({{user}}, {{user#2}}, {{ vote }})
      - delete from v where a = {{user}}
    invariant: |
      select 1 where false
    as: [alice, bob]
    cases: 10
";

    #[test]
    fn properties_parse_with_defaults_and_lines() {
        let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
        let property = &doc.properties[0];
        assert_eq!(line_of(property), 2);
        let spec = &property.value;
        assert_eq!(spec.cases, 10);
        assert_eq!(spec.max_steps, DEFAULT_MAX_STEPS);
        assert!(matches!(spec.pools["user"].value, PoolSpec::Query(_)));
        let PoolSpec::Values(values) = &spec.pools["vote"].value else {
            panic!("vote is a list")
        };
        let literals: Vec<String> = values.iter().map(|v| literal_sql(v).unwrap()).collect();
        assert_eq!(literals, ["'upvote'", "'downvote'", "3", "null"]);
        assert_eq!(line_of(&spec.operations[1]), 8);
        assert_eq!(spec.run_as.len(), 2);
    }

    #[test]
    fn cases_and_steps_are_bounded_at_their_location() {
        for (key, value) in [
            ("cases", "2147483647"),
            ("cases", "0"),
            ("max_steps", "100000000"),
            ("max_steps", "-1"),
        ] {
            let yaml = format!(
                "properties:\n  - name: p\n    operations: [select 1]\n    invariant: select 1 where false\n    {key}: {value}\n"
            );
            let err = serde_saphyr::from_str::<Doc>(&yaml).unwrap_err();
            assert_eq!(err.location().map(|l| l.line()), Some(5), "{key}: {err}");
            assert!(err.to_string().contains("out of range"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_location() {
        let yaml = "properties:\n  - name: x\n    operations: [select 1]\n    invariant: select 1\n    maxsteps: 3\n";
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err();
        assert!(err.to_string().contains("maxsteps"), "{err}");
        assert_eq!(err.location().map(|l| l.line()), Some(5));
    }

    #[test]
    fn templates_draw_independently_and_render_in_order() {
        let template =
            Template::parse("insert into f values ({{user}}, {{user#2}}, {{user}}, {{kind}})")
                .unwrap();
        let names: Vec<String> = template
            .draws
            .iter()
            .map(|d| format!("{}#{}", d.pool, d.index))
            .collect();
        assert_eq!(names, ["kind#1", "user#1", "user#2"]);
        assert_eq!(
            template.render(&["'k'", "'a'", "'b'"]),
            "insert into f values ('a', 'b', 'a', 'k')"
        );
        assert!(Template::parse("{{user#0}}").is_err());
    }
}
