//! The `cases:` format of policy-test files: what each RLS case says is allowed and denied.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::yaml::Pos;

/// One case: a target (table, view, storage object or SQL) and the expectations per operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: String,
    /// A table or view, optionally schema-qualified (default schema `public`).
    pub table: Option<String>,
    /// A storage bucket: the target is `storage.objects` rows of this bucket.
    pub bucket: Option<String>,
    /// With `bucket`: the object's name (path), e.g. `{{alice.id}}/avatar.png`.
    pub object: Option<String>,
    /// The target rows, as a SQL condition; `{{actor.field}}` and `{{me.field}}` templates.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// Columns identifying a target row when the table has no primary key (views).
    pub key: Option<Vec<String>>,
    pub select: Option<SelectSpec>,
    pub insert: Option<InsertSpec>,
    pub update: Option<UpdateSpec>,
    pub delete: Option<OpSpec>,
    /// An RPC case: SQL run as each actor (`select start_session('{{alice.id}}')`).
    pub sql: Option<String>,
    /// A scenario: statements by named actors, in order, in one transaction rolled back
    /// afterwards, each with its own expectation.
    pub steps: Option<Vec<Spanned<StepSpec>>>,
    /// For `sql` cases.
    pub allow: Option<Who>,
    /// For `sql` cases.
    pub deny: Option<Who>,
    /// For `sql` cases: the SQLSTATE a denying function raises instead of 42501.
    pub sqlstate: Option<String>,
    /// SQLSTATEs that mean "denied" for every operation of the case (a trigger or a function
    /// refusing with P0001), besides 42501.
    pub deny_sqlstate: Option<SqlStates>,
    /// `deny_on: error`: any error the statement raises is a denial (see [`DenyOn`]).
    pub deny_on: Option<DenyOn>,
    /// For `sql` cases: post-conditions run as admin after the statement; the call counts
    /// as allowed only when they hold.
    pub then: Option<Spanned<Then>>,
    /// For `sql` cases that read (`select * from get_user_jobs(…)`): judge by the rows
    /// returned — allow = at least one row, deny = none (or 42501 / `sqlstate`).
    #[serde(default)]
    pub returns_rows: bool,
    /// For `sql` cases: what an allowed call returns, as rows (a list of objects) or one
    /// value (anything else).
    pub returns: Option<Spanned<Value>>,
    /// With `returns:` rows: compare them in order (default: in any order).
    #[serde(default)]
    pub ordered: bool,
    /// For `sql` cases: actors whose expectation was recorded and not yet reviewed.
    #[serde(default)]
    pub unreviewed: Vec<Spanned<String>>,
    /// The frozen clock for this case's cells (overrides the file's `now:`).
    pub now: Option<crate::clock::Frozen>,
}

/// What a case runs against: exactly one of `table:`, `bucket:`, `sql:` or `steps:`, read
/// from the case once so that planning matches on it instead of re-testing options.
#[derive(Debug, Clone)]
pub enum Target<'a> {
    /// A table or view (`table:`), its schema defaulting to `public`.
    Table { schema: String, name: String },
    /// Objects of a storage bucket (`bucket:`, optionally `object:`): `storage.objects` rows.
    Bucket {
        bucket: &'a str,
        object: Option<&'a str>,
    },
    /// An RPC or any statement (`sql:`), judged by its outcome.
    Sql(&'a str),
    /// A scenario (`steps:`): statements by named actors in order.
    Steps(&'a [Spanned<StepSpec>]),
}

impl Target<'_> {
    /// The relation whose rows the case reads or writes: `None` for `sql:` and `steps:`.
    pub fn relation(&self) -> Option<(String, String)> {
        match self {
            Target::Table { schema, name } => Some((schema.clone(), name.clone())),
            Target::Bucket { .. } => Some(("storage".to_owned(), "objects".to_owned())),
            Target::Sql(_) | Target::Steps(_) => None,
        }
    }
}

impl CaseSpec {
    /// The case's target, or the fragment saying why it has none.
    pub fn target(&self) -> Result<Target<'_>, String> {
        let target = match (&self.table, &self.bucket, &self.sql, &self.steps) {
            (Some(table), None, None, None) => {
                let (schema, name) = split_target(table);
                Target::Table { schema, name }
            }
            (None, Some(bucket), None, None) => Target::Bucket {
                bucket,
                object: self.object.as_deref(),
            },
            (None, None, Some(sql), None) => Target::Sql(sql),
            (None, None, None, Some(steps)) => Target::Steps(steps),
            _ => {
                return Err(format!(
                    "case `{}`: give exactly one of `table:`, `bucket:`, `sql:` or `steps:`",
                    self.name
                ))
            }
        };
        if self.object.is_some() && !matches!(target, Target::Bucket { .. }) {
            return Err(format!("case `{}`: `object:` needs `bucket:`", self.name));
        }
        Ok(target)
    }
}

/// Splits `schema.table` (default schema `public`); quotes are honoured.
pub fn split_target(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once('.') {
        Some((schema, table)) => (unquote(schema), unquote(table)),
        None => ("public".to_owned(), unquote(name)),
    }
}

fn unquote(part: &str) -> String {
    let part = part.trim();
    if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
        part[1..part.len() - 1].replace("\"\"", "\"")
    } else {
        part.to_lowercase()
    }
}

/// One step of a `steps:` scenario: an SQL statement run as one actor, judged like an
/// `sql:` cell.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// The actor the statement runs as.
    #[serde(rename = "as")]
    pub actor: Spanned<String>,
    pub sql: String,
    /// `allow` or `deny`.
    pub expect: StepExpect,
    pub deny_sqlstate: Option<SqlStates>,
    pub deny_on: Option<DenyOn>,
    pub then: Option<Spanned<Then>>,
    #[serde(default)]
    pub returns_rows: bool,
    pub returns: Option<Spanned<Value>>,
    #[serde(default)]
    pub ordered: bool,
    /// The frozen clock for this step (overrides the case's and the file's `now:`).
    pub now: Option<crate::clock::Frozen>,
}

/// What a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepExpect {
    Allow,
    Deny,
}

/// `select:` of a table case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectSpec {
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
    pub deny_sqlstate: Option<SqlStates>,
    pub deny_on: Option<DenyOn>,
    /// Refused with a message: a select changes nothing to check.
    pub then: Option<Spanned<Then>>,
    /// The target rows an allowed actor reads, as objects naming the columns compared.
    pub returns: Option<Spanned<Value>>,
    /// Refused with a message: a table's rows come in no order.
    pub ordered: Option<Spanned<bool>>,
    /// Actors whose expectation here was recorded (by `db-ci init` or `rls --record`) and
    /// not yet reviewed: removing a name is the review.
    #[serde(default)]
    pub unreviewed: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
    pub deny_sqlstate: Option<SqlStates>,
    pub deny_on: Option<DenyOn>,
    /// Post-conditions an allowed write must make hold (insert, update, delete).
    pub then: Option<Spanned<Then>>,
    /// Actors whose expectation here was recorded (by `db-ci init` or `rls --record`) and
    /// not yet reviewed: removing a name is the review.
    #[serde(default)]
    pub unreviewed: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsertSpec {
    /// Column → value of the row each actor tries to insert.
    pub values: BTreeMap<String, Value>,
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
    pub deny_sqlstate: Option<SqlStates>,
    pub deny_on: Option<DenyOn>,
    /// Post-conditions an allowed write must make hold (insert, update, delete).
    pub then: Option<Spanned<Then>>,
    /// Actors whose expectation here was recorded (by `db-ci init` or `rls --record`) and
    /// not yet reviewed: removing a name is the review.
    #[serde(default)]
    pub unreviewed: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// Column → new value.
    pub set: BTreeMap<String, Value>,
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
    pub deny_sqlstate: Option<SqlStates>,
    pub deny_on: Option<DenyOn>,
    /// Post-conditions an allowed write must make hold (insert, update, delete).
    pub then: Option<Spanned<Then>>,
    /// Actors whose expectation here was recorded (by `db-ci init` or `rls --record`) and
    /// not yet reviewed: removing a name is the review.
    #[serde(default)]
    pub unreviewed: Vec<Spanned<String>>,
}

/// What one operation of a case expects, whichever operation it is.
#[derive(Debug, Clone, Copy)]
pub struct OpExpect<'a> {
    pub allow: &'a Who,
    pub deny: &'a Who,
    pub deny_sqlstate: Option<&'a SqlStates>,
    pub deny_on: Option<DenyOn>,
    pub then: Option<&'a Spanned<Then>>,
    pub unreviewed: &'a [Spanned<String>],
}

impl SelectSpec {
    pub fn expect(&self) -> OpExpect<'_> {
        OpExpect {
            allow: &self.allow,
            deny: &self.deny,
            deny_sqlstate: self.deny_sqlstate.as_ref(),
            deny_on: self.deny_on,
            then: self.then.as_ref(),
            unreviewed: &self.unreviewed,
        }
    }
}

impl OpSpec {
    pub fn expect(&self) -> OpExpect<'_> {
        OpExpect {
            allow: &self.allow,
            deny: &self.deny,
            deny_sqlstate: self.deny_sqlstate.as_ref(),
            deny_on: self.deny_on,
            then: self.then.as_ref(),
            unreviewed: &self.unreviewed,
        }
    }
}

impl InsertSpec {
    pub fn expect(&self) -> OpExpect<'_> {
        OpExpect {
            allow: &self.allow,
            deny: &self.deny,
            deny_sqlstate: self.deny_sqlstate.as_ref(),
            deny_on: self.deny_on,
            then: self.then.as_ref(),
            unreviewed: &self.unreviewed,
        }
    }
}

impl UpdateSpec {
    pub fn expect(&self) -> OpExpect<'_> {
        OpExpect {
            allow: &self.allow,
            deny: &self.deny,
            deny_sqlstate: self.deny_sqlstate.as_ref(),
            deny_on: self.deny_on,
            then: self.then.as_ref(),
            unreviewed: &self.unreviewed,
        }
    }
}

/// `then:`: one SQL query or a list of them, each of which must hold after an allowed
/// operation (see [`then_holds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Then(pub Vec<String>);

impl<'de> Deserialize<'de> for Then {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ThenVisitor;
        impl<'de> Visitor<'de> for ThenVisitor {
            type Value = Then;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an SQL query, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Then, E> {
                one_query(v).map(|q| Then(vec![q])).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Then, A::Error> {
                let mut queries = Vec::new();
                while let Some(query) = seq.next_element::<String>()? {
                    queries.push(one_query(&query).map_err(de::Error::custom)?);
                }
                if queries.is_empty() {
                    return Err(de::Error::custom(
                        "`then: []` checks nothing: give a query that must hold, or leave the key out",
                    ));
                }
                Ok(Then(queries))
            }
        }
        deserializer.deserialize_any(ThenVisitor)
    }
}

/// A `then:` query as it is wrapped in a subquery: without its trailing semicolon, never
/// empty.
fn one_query(text: &str) -> Result<String, String> {
    let query = text.trim().trim_end_matches(';').trim_end();
    if query.is_empty() {
        return Err("an empty `then:` query checks nothing".to_owned());
    }
    Ok(query.to_owned())
}

/// Does a `then:` query hold, given its rows as a JSON array of objects? It must return at
/// least one row, and no value in the rows may be `false` or null (`select exists(…)`,
/// `select count(*) = 1 …`, `select … where <predicate>` all read naturally). The error
/// says what it returned instead.
pub fn then_holds(rows_json: &str) -> Result<(), String> {
    let rows: Vec<serde_json::Map<String, Value>> = serde_json::from_str(rows_json)
        .map_err(|e| format!("returned something unreadable ({e}): {rows_json}"))?;
    if rows.is_empty() {
        return Err("returned no row".to_owned());
    }
    if rows
        .iter()
        .flat_map(|row| row.values())
        .any(|v| matches!(v, Value::Bool(false) | Value::Null))
    {
        return Err(format!("returned {}", shorten(rows_json)));
    }
    Ok(())
}

/// Text for a message: at most a few hundred characters.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 400;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

/// The rows a statement returned, each as its (column, value) pairs in column order.
pub type Rows = Vec<Vec<(String, Value)>>;

/// Is `want` (from `returns:`) written as rows? A list is rows, each an object naming the
/// columns compared; anything else is one value. The error says what is wrong with a list.
pub fn returns_rows_wanted(want: &Value) -> Result<bool, String> {
    match want {
        Value::Array(items) => {
            if items.iter().all(Value::is_object) {
                Ok(true)
            } else {
                Err("`returns:` as a list is rows, each an object like `{ id: 1, name: x }`; write a single value without a list".to_owned())
            }
        }
        _ => Ok(false),
    }
}

/// Compares what a statement returned with `returns:`. Rows: the same number, each equal on
/// the columns the wanted rows name (other columns are not compared), in any order unless
/// `ordered`. One value: exactly one row of one column, equal to it. Numbers compare by
/// value (`3` equals `3.0`); everything else as JSON. The error shows want and have.
pub fn compare_returns(want: &Value, ordered: bool, have: &Rows) -> Result<(), String> {
    let mismatch = |have: String| -> String { shorten(&format!("want {want}, have {have}")) };
    if let Value::Array(wanted) = want {
        let mut columns: Vec<&String> = Vec::new();
        for row in wanted.iter().filter_map(Value::as_object) {
            for column in row.keys() {
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        // Each returned row as the wanted columns only; a column it lacks stays missing.
        let projected: Vec<serde_json::Map<String, Value>> = have
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .filter_map(|c| {
                        row.iter()
                            .find(|(name, _)| name == *c)
                            .map(|(name, value)| (name.clone(), value.clone()))
                    })
                    .collect()
            })
            .collect();
        let shown = Value::Array(projected.iter().cloned().map(Value::Object).collect());
        let same_row = |w: &Value, h: &serde_json::Map<String, Value>| match w {
            Value::Object(w) => {
                w.len() == h.len()
                    && w.iter()
                        .all(|(k, v)| h.get(k).is_some_and(|hv| json_eq(v, hv)))
            }
            _ => false,
        };
        let equal = wanted.len() == projected.len()
            && if ordered {
                wanted.iter().zip(&projected).all(|(w, h)| same_row(w, h))
            } else {
                let mut used = vec![false; projected.len()];
                wanted.iter().all(|w| {
                    let found = projected
                        .iter()
                        .enumerate()
                        .find(|(i, h)| !used[*i] && same_row(w, h));
                    match found {
                        Some((i, _)) => {
                            used[i] = true;
                            true
                        }
                        None => false,
                    }
                })
            };
        return if equal {
            Ok(())
        } else {
            Err(mismatch(shown.to_string()))
        };
    }
    match have.as_slice() {
        [row] if row.len() == 1 && json_eq(want, &row[0].1) => Ok(()),
        [row] if row.len() == 1 => Err(mismatch(row[0].1.to_string())),
        _ => Err(mismatch(format!(
            "{} row(s) ({}), where one value was wanted",
            have.len(),
            Value::Array(
                have.iter()
                    .map(|row| Value::Object(row.iter().cloned().collect()))
                    .collect()
            )
        ))),
    }
}

/// JSON equality with numbers compared by value: PostgreSQL writes `numeric` 3 as `3.0`
/// when its scale says so, YAML writes `3`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `deny_on:`: which raised errors count as a denial beyond 42501 and `deny_sqlstate:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenyOn {
    /// Any error the statement raises, except those saying the statement itself is wrong
    /// or the server is in trouble (see [`error_may_deny`]).
    Error,
}

/// Errors that never read as a denial, even under `deny_on: error`: class 42 (a syntax
/// error, an undefined table, column or function, a policy recursing into itself; 42501
/// itself is a denial anyway), program limits (54: a policy's stack overflow), and the
/// server's own trouble (08, 53, 57, 58, XX). A case that trips them checks nothing.
pub fn error_may_deny(sqlstate: &str) -> bool {
    !matches!(
        sqlstate.get(..2),
        Some("42" | "54" | "08" | "53" | "57" | "58" | "XX")
    )
}

/// A non-empty list of SQLSTATEs (`deny_sqlstate: [P0001, 22023]`); each is validated
/// where it is written, so a typo is an input error at its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStates(pub Vec<String>);

impl<'de> Deserialize<'de> for SqlStates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatesVisitor;
        impl<'de> Visitor<'de> for StatesVisitor {
            type Value = SqlStates;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of 5-character SQLSTATEs, e.g. [P0001]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SqlStates, E> {
                Err(E::custom(format!(
                    "`deny_sqlstate: {v}`: write a list (`[{v}]`)"
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SqlStates, A::Error> {
                let mut states = Vec::new();
                while let Some(state) = seq.next_element::<SqlState>()? {
                    states.push(state.0);
                }
                if states.is_empty() {
                    return Err(de::Error::custom(
                        "`deny_sqlstate: []` lists nothing: name the SQLSTATEs that mean denied, or leave the key out",
                    ));
                }
                Ok(SqlStates(states))
            }
        }
        deserializer.deserialize_any(StatesVisitor)
    }
}

/// One SQLSTATE: five digits or upper-case letters.
struct SqlState(String);

impl<'de> Deserialize<'de> for SqlState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if is_sqlstate(&text) {
            Ok(SqlState(text))
        } else {
            Err(de::Error::custom(format!(
                "`{text}` is not a SQLSTATE (five digits or upper-case letters, e.g. P0001)"
            )))
        }
    }
}

/// Five digits or upper-case ASCII letters, as PostgreSQL spells error codes.
pub fn is_sqlstate(text: &str) -> bool {
    text.len() == 5
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// A list of actor names, or `others`: every actor of the file not listed on the other side.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Who {
    #[default]
    Nobody,
    Actors(Vec<Spanned<String>>),
    Others,
}

impl<'de> Deserialize<'de> for Who {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WhoVisitor;
        impl<'de> Visitor<'de> for WhoVisitor {
            type Value = Who;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of actor names, or `others`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Who, E> {
                match v {
                    "others" => Ok(Who::Others),
                    _ => Err(E::custom(format!(
                        "`{v}`: write a list (`[{v}]`) or `others` for every actor not listed on the other side"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Who, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    names.push(name);
                }
                Ok(Who::Actors(names))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Who, E> {
                Ok(Who::Nobody)
            }
        }
        deserializer.deserialize_any(WhoVisitor)
    }
}

/// The operations a case can check, in the order reports list them (`operation` in the
/// JSON: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    Sql,
}

impl Operation {
    pub const TABLE_OPERATIONS: [Operation; 4] = [
        Operation::Select,
        Operation::Insert,
        Operation::Update,
        Operation::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Select => "select",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Sql => "sql",
        }
    }
}

/// What a cell expects (`expected` in the JSON: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        }
    }
}

/// The expectations of one operation, resolved against the file's actors: actor → expect,
/// and the actors with no expectation (a broken test: the matrix has a hole).
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub cells: BTreeMap<String, Expect>,
    pub missing: Vec<String>,
}

/// Resolves `allow`/`deny` against `actors`; the error (an input error) is at the actor's
/// name, or nowhere of its own (`None`: the case's position) for `others` twice.
pub fn resolve(
    allow: &Who,
    deny: &Who,
    actors: &[&str],
) -> Result<Expectations, (Option<Pos>, String)> {
    if allow == &Who::Others && deny == &Who::Others {
        return Err((
            None,
            "`allow: others` and `deny: others` together".to_owned(),
        ));
    }
    let mut cells = BTreeMap::new();
    for (who, expect) in [(allow, Expect::Allow), (deny, Expect::Deny)] {
        if let Who::Actors(names) = who {
            for name in names {
                let at = Some(Pos::of(name));
                if !actors.contains(&name.value.as_str()) {
                    return Err((
                        at,
                        format!(
                            "`{}` is not an actor of this file (actors: {})",
                            name.value,
                            actors.join(", ")
                        ),
                    ));
                }
                if let Some(previous) = cells.insert(name.value.clone(), expect) {
                    if previous != expect {
                        return Err((at, format!("`{}` is both allowed and denied", name.value)));
                    }
                }
            }
        }
    }
    let others = match (allow, deny) {
        (Who::Others, _) => Some(Expect::Allow),
        (_, Who::Others) => Some(Expect::Deny),
        _ => None,
    };
    let mut missing = Vec::new();
    for actor in actors {
        if !cells.contains_key(*actor) {
            match others {
                Some(expect) => {
                    cells.insert((*actor).to_owned(), expect);
                }
                None => missing.push((*actor).to_owned()),
            }
        }
    }
    Ok(Expectations { cells, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        cases: Vec<Spanned<CaseSpec>>,
    }

    const DOC: &str = "\
cases:
  - name: own profile
    table: profiles
    where: id = '{{alice.id}}'
    select: { allow: [alice, svc], deny: others }
    update: { set: { full_name: Mallory, age: 3, tags: [a] }, allow: [alice], deny: [anon, bob, svc] }
  - name: rpc
    sql: select 1
    allow: [alice]
    deny: [bob]
    sqlstate: P0001
";

    #[test]
    fn a_case_has_exactly_one_target() {
        let case = |yaml: &str| -> CaseSpec { serde_saphyr::from_str(yaml).unwrap() };
        let table = case("name: a\ntable: Private.\"Odd \"\"Name\"\"\"\n");
        match table.target().unwrap() {
            Target::Table { schema, name } => {
                assert_eq!(
                    (schema.as_str(), name.as_str()),
                    ("private", "Odd \"Name\"")
                )
            }
            other => panic!("{other:?}"),
        }
        let bucket = case("name: b\nbucket: avatars\nobject: a.png\n");
        assert!(matches!(
            bucket.target().unwrap(),
            Target::Bucket {
                bucket: "avatars",
                object: Some("a.png")
            }
        ));
        assert_eq!(
            bucket.target().unwrap().relation(),
            Some(("storage".to_owned(), "objects".to_owned()))
        );
        let sql = case("name: c\nsql: select 1\n");
        assert!(matches!(sql.target().unwrap(), Target::Sql("select 1")));
        assert_eq!(sql.target().unwrap().relation(), None);
        let plain = case("name: d\ntable: notes\n").target().unwrap().relation();
        assert_eq!(plain, Some(("public".to_owned(), "notes".to_owned())));
        for (yaml, says) in [
            ("name: e\n", "exactly one of"),
            ("name: e\ntable: t\nbucket: b\n", "exactly one of"),
            (
                "name: e\nsql: select 1\nobject: a.png\n",
                "`object:` needs `bucket:`",
            ),
        ] {
            let error = case(yaml).target().unwrap_err();
            assert!(
                error.starts_with("case `e`: ") && error.contains(says),
                "{error}"
            );
        }
    }

    #[test]
    fn cases_parse_with_lines_and_others() {
        let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
        assert_eq!(doc.cases.len(), 2);
        assert_eq!(doc.cases[0].referenced.line(), 2);
        let case = &doc.cases[0].value;
        let select = case.select.as_ref().unwrap();
        assert_eq!(select.deny, Who::Others);
        let actors = ["alice", "anon", "bob", "svc"];
        let e = resolve(&select.allow, &select.deny, &actors).unwrap();
        assert_eq!(e.cells["bob"], Expect::Deny);
        assert_eq!(e.cells["svc"], Expect::Allow);
        assert!(e.missing.is_empty());
        let update = case.update.as_ref().unwrap();
        assert_eq!(update.set["age"], serde_json::json!(3));
        let rpc = &doc.cases[1].value;
        let e = resolve(
            rpc.allow.as_ref().unwrap(),
            rpc.deny.as_ref().unwrap(),
            &actors,
        )
        .unwrap();
        assert_eq!(e.missing, vec!["anon", "svc"]);
    }

    #[test]
    fn unknown_actor_and_contradiction_name_their_line() {
        let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
        let select = doc.cases[0].value.select.as_ref().unwrap();
        let (at, message) = resolve(&select.allow, &select.deny, &["alice", "bob"]).unwrap_err();
        assert_eq!(at.map(|at| at.at("m.yaml")).as_deref(), Some("m.yaml:5:30"));
        assert!(message.contains("`svc` is not an actor"), "{message}");
        let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: [a], deny: [a] }\n";
        let doc: Doc = serde_saphyr::from_str(yaml).unwrap();
        let select = doc.cases[0].value.select.as_ref().unwrap();
        let (_, message) = resolve(&select.allow, &select.deny, &["a"]).unwrap_err();
        assert!(message.contains("both allowed and denied"), "{message}");
    }

    #[test]
    fn deny_sqlstate_lists_and_deny_on_parse_and_are_checked_where_written() {
        let yaml = "cases:\n  - name: x\n    table: t\n    deny_sqlstate: [P0001, 22023]\n    update: { set: { a: 1 }, allow: [a], deny_on: error }\n";
        let doc: Doc = crate::yaml::parse_yaml(yaml, std::path::Path::new("m.yaml")).unwrap();
        let case = &doc.cases[0].value;
        assert_eq!(
            case.deny_sqlstate,
            Some(SqlStates(vec!["P0001".to_owned(), "22023".to_owned()]))
        );
        assert_eq!(case.update.as_ref().unwrap().deny_on, Some(DenyOn::Error));
        for (bad, at, says) in [
            (
                "deny_sqlstate: [P001]",
                "m.yaml:4:21",
                "`P001` is not a SQLSTATE",
            ),
            (
                "deny_sqlstate: [p0001]",
                "m.yaml:4:21",
                "`p0001` is not a SQLSTATE",
            ),
            ("deny_sqlstate: P0001", "m.yaml:4:20", "write a list"),
            ("deny_sqlstate: []", "m.yaml:4:", "lists nothing"),
            ("deny_on: errors", "m.yaml:4:", "errors"),
        ] {
            let yaml = format!("cases:\n  - name: x\n    table: t\n    {bad}\n");
            let err = crate::yaml::parse_yaml::<Doc>(&yaml, std::path::Path::new("m.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(at) && err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn then_takes_a_query_or_a_list_and_holds_on_rows_without_false() {
        let yaml = "cases:\n  - name: x\n    sql: select 1\n    then: select true;\n  - name: y\n    table: t\n    update: { set: { a: 1 }, then: [select 1, 'select exists(select 1)'] }\n";
        let doc: Doc = crate::yaml::parse_yaml(yaml, std::path::Path::new("m.yaml")).unwrap();
        let then = doc.cases[0].value.then.as_ref().unwrap();
        assert_eq!(then.value, Then(vec!["select true".to_owned()]));
        assert_eq!(then.referenced.line(), 4);
        let update = doc.cases[1].value.update.as_ref().unwrap();
        assert_eq!(update.then.as_ref().unwrap().value.0.len(), 2);
        for bad in ["then: []", "then: ' ; '"] {
            let yaml = format!("cases:\n  - name: x\n    sql: select 1\n    {bad}\n");
            let err = crate::yaml::parse_yaml::<Doc>(&yaml, std::path::Path::new("m.yaml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("m.yaml:4:"), "{bad}: {err}");
        }
        assert_eq!(then_holds(r#"[{"ok":true}]"#), Ok(()));
        assert_eq!(then_holds(r#"[{"id":1,"n":"x"},{"id":2,"n":"y"}]"#), Ok(()));
        assert_eq!(then_holds("[]"), Err("returned no row".to_owned()));
        assert_eq!(
            then_holds(r#"[{"archived":false}]"#),
            Err(r#"returned [{"archived":false}]"#.to_owned())
        );
        assert!(then_holds(r#"[{"ok":true},{"ok":null}]"#).is_err());
    }

    fn rows(json: &str) -> Rows {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn returns_compare_rows_in_any_order_on_the_named_columns_or_one_value() {
        use serde_json::json;
        let have = rows(
            r#"[[["id",2],["email","b@x.io"],["n",3.0]],[["id",1],["email","a@x.io"],["n",1]]]"#,
        );
        let want = json!([{ "id": 1, "email": "a@x.io" }, { "id": 2, "email": "b@x.io", "n": 3 }]);
        // every row is compared on the columns any wanted row names
        assert!(compare_returns(&json!([{ "id": 1 }, { "id": 2 }]), false, &have).is_ok());
        assert!(compare_returns(&json!([{ "id": 2 }, { "id": 1 }]), true, &have).is_ok());
        assert!(compare_returns(&json!([{ "id": 1 }, { "id": 2 }]), true, &have).is_err());
        let err = compare_returns(&json!([{ "email": "b@x.io" }]), false, &have).unwrap_err();
        assert_eq!(
            err,
            r#"want [{"email":"b@x.io"}], have [{"email":"b@x.io"},{"email":"a@x.io"}]"#
        );
        // a wanted column the rows lack is a mismatch, never ignored
        assert!(compare_returns(&json!([{ "idd": 1 }, { "idd": 2 }]), false, &have).is_err());
        assert!(
            compare_returns(&want, false, &have).is_err(),
            "row 1 has n 1, not absent"
        );
        assert!(compare_returns(&json!([]), false, &rows("[]")).is_ok());
        // one value
        let one = rows(r#"[[["get_claims",{"role":"admin","n":2.0}]]]"#);
        assert!(compare_returns(&json!({ "n": 2, "role": "admin" }), false, &one).is_ok());
        let err = compare_returns(&json!({ "role": "user" }), false, &one).unwrap_err();
        assert!(err.starts_with(r#"want {"role":"user"}, have {"#), "{err}");
        let err = compare_returns(&json!(1), false, &have).unwrap_err();
        assert!(err.contains("2 row(s)"), "{err}");
        assert_eq!(returns_rows_wanted(&json!([{ "a": 1 }])), Ok(true));
        assert_eq!(returns_rows_wanted(&json!("x")), Ok(false));
        assert!(returns_rows_wanted(&json!([1, 2])).is_err());
    }

    #[test]
    fn deny_on_error_never_covers_a_wrong_statement() {
        assert!(error_may_deny("P0001"));
        assert!(error_may_deny("23505"));
        assert!(error_may_deny("22023"));
        for wrong in [
            "42P01", "42883", "42601", "42P17", "54001", "57014", "XX000",
        ] {
            assert!(!error_may_deny(wrong), "{wrong}");
        }
    }

    #[test]
    fn unknown_keys_and_bare_names_are_rejected() {
        let yaml = "cases:\n  - name: x\n    table: t\n    selct: { allow: [a] }\n";
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
        assert!(err.contains("selct"), "{err}");
        let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: alice }\n";
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
        assert!(err.contains("[alice]"), "{err}");
    }
}
