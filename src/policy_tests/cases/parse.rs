//! A case as written ([`CaseSpec`], a bag of optional keys) parsed once, at load, into the
//! kind it is: a table, a storage bucket, a statement or a scenario, each holding only what
//! it uses, its allow/deny lists resolved against the file's actors. Every check of a case's
//! shape is here, so the planner matches on a [`CaseKind`] and re-checks nothing.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use serde_saphyr::Spanned;

use super::expectations::{resolve, Expect, Expectations, Operation, Who};
use super::results::{returns_rows_wanted, Then};
use super::sqlstate::{DenyOn, SqlStates};
use super::{CaseSpec, StepExpect, StepSpec};
use crate::actors::Actors;
use crate::catalog::QualifiedName;
use crate::clock::Frozen;
use crate::yaml::Pos;

/// One case, parsed.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// Its index in the file's `cases:`, where a recording is written.
    pub index: usize,
    /// Where the case starts, where its errors point.
    pub pos: Pos,
    /// The frozen clock for this case's cells (overrides the file's `now:`).
    pub now: Option<Frozen>,
    pub kind: CaseKind,
}

/// What a case runs against, with what only that kind of case says.
#[derive(Debug, Clone)]
pub enum CaseKind {
    /// A table or view (`table:`), its schema defaulting to `public`.
    Table {
        relation: QualifiedName,
        rows: RowCase,
    },
    /// Objects of a storage bucket (`bucket:`, optionally `object:`): `storage.objects` rows.
    Bucket {
        bucket: String,
        object: Option<String>,
        rows: RowCase,
    },
    /// An RPC or any statement (`sql:`), judged by its outcome.
    Sql(SqlCase),
    /// A scenario (`steps:`): statements by named actors in order, at least one allowed.
    Steps(Vec<Step>),
}

/// What a table or bucket case does to its target rows.
#[derive(Debug, Clone)]
pub struct RowCase {
    /// The target rows, as a SQL condition with templates (`where:`).
    pub filter: Option<String>,
    /// Columns identifying a target row when the table has no primary key (views).
    pub key: Option<Vec<String>>,
    /// At least one; in the order select, insert, update, delete.
    pub ops: Vec<RowOp>,
}

/// One operation of a table or bucket case.
#[derive(Debug, Clone)]
pub struct RowOp {
    pub action: RowAction,
    pub rules: Rules,
}

/// What an operation on rows sends, by operation.
#[derive(Debug, Clone)]
pub enum RowAction {
    /// The target rows an allowed actor reads (`returns:`), as objects naming the columns.
    Select {
        returns: Option<Value>,
    },
    /// Column → value of the row each actor tries to insert (empty only for a bucket).
    Insert {
        values: BTreeMap<String, Value>,
    },
    /// Column → new value; never empty.
    Update {
        set: BTreeMap<String, Value>,
    },
    Delete,
}

impl RowAction {
    pub fn operation(&self) -> Operation {
        match self {
            RowAction::Select { .. } => Operation::Select,
            RowAction::Insert { .. } => Operation::Insert,
            RowAction::Update { .. } => Operation::Update,
            RowAction::Delete => Operation::Delete,
        }
    }
}

/// What every judged statement of a case carries: who is allowed, what a denial looks like,
/// and what an allowed write must make hold.
#[derive(Debug, Clone)]
pub struct Rules {
    pub expectations: Expectations,
    /// Actors whose expectation was recorded and not yet reviewed.
    pub unreviewed: Vec<String>,
    /// The SQLSTATEs that mean denied besides 42501 (the case's, then the operation's).
    pub deny_sqlstates: Vec<String>,
    /// `deny_on: error` (of the operation, else of the case).
    pub deny_on_error: bool,
    /// Post-conditions an allowed write or call must make hold (never on a select).
    pub then: Option<Spanned<Then>>,
}

/// An `sql:` case.
#[derive(Debug, Clone)]
pub struct SqlCase {
    pub sql: String,
    pub rules: Rules,
    /// Judge by the rows returned: allow = at least one row.
    pub returns_rows: bool,
    /// What an allowed call returns: rows (a list of objects) or one value.
    pub returns: Option<Value>,
    /// With `returns:` rows: compare them in order.
    pub ordered: bool,
}

/// One step of a scenario, its actor one of the file's.
#[derive(Debug, Clone)]
pub struct Step {
    pub actor: String,
    /// The step's line, where its cell is reported.
    pub line: usize,
    pub sql: String,
    pub expect: Expect,
    pub deny_sqlstates: Vec<String>,
    pub deny_on_error: bool,
    pub then: Option<Spanned<Then>>,
    pub returns_rows: bool,
    pub returns: Option<Value>,
    pub ordered: bool,
    pub now: Option<Frozen>,
}

impl Case {
    /// The line the case starts on.
    pub fn line(&self) -> usize {
        self.pos.line
    }

    /// The relation whose rows the case reads or writes: `None` for `sql:` and `steps:`.
    pub fn relation(&self) -> Option<QualifiedName> {
        match &self.kind {
            CaseKind::Table { relation, .. } => Some(relation.clone()),
            CaseKind::Bucket { .. } => Some(QualifiedName::new("storage", "objects")),
            CaseKind::Sql(_) | CaseKind::Steps(_) => None,
        }
    }
}

impl CaseSpec {
    /// The relation a case as written targets, where it names one that parses: for reading a
    /// file that was already loaded (a recording's diff).
    pub fn relation(&self) -> Option<QualifiedName> {
        match (&self.table, &self.bucket) {
            (Some(table), _) => QualifiedName::parse(&table.value, "public").ok(),
            (None, Some(_)) => Some(QualifiedName::new("storage", "objects")),
            (None, None) => None,
        }
    }
}

/// A case that does not parse, or that planning finds wrong: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CaseError {
    pub pos: Pos,
    pub message: String,
}

impl CaseError {
    pub fn new(pos: Pos, message: impl fmt::Display) -> CaseError {
        CaseError {
            pos,
            message: message.to_string(),
        }
    }
}

/// Parses every case of a file whose actors are `actors`: the cases that parse, and the error
/// of each one that does not (in file order). `actors_line` is where an actor named `me` is
/// refused, which refuses every case.
pub fn parse_cases(
    cases: &[Spanned<CaseSpec>],
    actors: &Actors,
    actors_line: usize,
) -> (Vec<Case>, Vec<CaseError>) {
    let names: Vec<&str> = actors.names().collect();
    if names.contains(&"me") && !cases.is_empty() {
        let error = CaseError::new(
            Pos::from(actors_line),
            "an actor may not be called `me`: `{{me.id}}` means the acting actor",
        );
        return (Vec::new(), vec![error]);
    }
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    for (index, spanned) in cases.iter().enumerate() {
        match parse_case(spanned, index, &names) {
            Ok(case) => parsed.push(case),
            Err(error) => errors.push(error),
        }
    }
    (parsed, errors)
}

fn parse_case(
    spanned: &Spanned<CaseSpec>,
    index: usize,
    actors: &[&str],
) -> Result<Case, CaseError> {
    let case = &spanned.value;
    let pos = Pos::of(spanned);
    let at = At { case, pos, actors };
    let kind = match (&case.table, &case.bucket, &case.sql, &case.steps) {
        (Some(table), None, None, None) => {
            at.no_object()?;
            let relation = QualifiedName::parse(&table.value, "public")
                .map_err(|e| at.error_at(Pos::of(table), format!("table: {e}")))?;
            CaseKind::Table {
                relation,
                rows: at.rows(false)?,
            }
        }
        (None, Some(bucket), None, None) => CaseKind::Bucket {
            bucket: bucket.clone(),
            object: case.object.clone(),
            rows: at.rows(true)?,
        },
        (None, None, Some(sql), None) => {
            at.no_object()?;
            CaseKind::Sql(at.sql(sql)?)
        }
        (None, None, None, Some(steps)) => {
            at.no_object()?;
            CaseKind::Steps(at.steps(steps)?)
        }
        _ => return Err(at.error("give exactly one of `table:`, `bucket:`, `sql:` or `steps:`")),
    };
    Ok(Case {
        name: case.name.clone(),
        index,
        pos,
        now: case.now,
        kind,
    })
}

/// The case being parsed, with what its errors need.
struct At<'a> {
    case: &'a CaseSpec,
    pos: Pos,
    actors: &'a [&'a str],
}

impl At<'_> {
    /// An error at the case, its message prefixed with the case's name.
    fn error(&self, message: impl fmt::Display) -> CaseError {
        self.error_at(self.pos, message)
    }

    fn error_at(&self, pos: Pos, message: impl fmt::Display) -> CaseError {
        CaseError::new(pos, format!("case `{}`: {message}", self.case.name))
    }

    fn no_object(&self) -> Result<(), CaseError> {
        match self.case.object {
            Some(_) => Err(self.error("`object:` needs `bucket:`")),
            None => Ok(()),
        }
    }

    /// `allow`/`deny` resolved; the error names no case (it says which actor).
    fn resolve(&self, allow: &Who, deny: &Who) -> Result<Expectations, CaseError> {
        resolve(allow, deny, self.actors)
            .map_err(|(at, message)| CaseError::new(at.unwrap_or(self.pos), message))
    }

    /// The names under `unreviewed:`, each an actor of the file.
    fn unreviewed(&self, list: &[Spanned<String>]) -> Result<Vec<String>, CaseError> {
        list.iter()
            .map(|name| {
                if self.actors.contains(&name.value.as_str()) {
                    Ok(name.value.clone())
                } else {
                    Err(self.error_at(
                        Pos::of(name),
                        format!(
                            "unreviewed: `{}` is not an actor of this file (actors: {})",
                            name.value,
                            self.actors.join(", ")
                        ),
                    ))
                }
            })
            .collect()
    }

    fn rows(&self, bucket: bool) -> Result<RowCase, CaseError> {
        let case = self.case;
        if case.returns.is_some() || case.ordered {
            return Err(self.error(
                "`returns:` of a table case goes under `select:` (`select: { allow: [...], returns: [...] }`)",
            ));
        }
        if let Some(then) = &case.then {
            return Err(self.error_at(
                Pos::of(then),
                "`then:` of a table case goes under the operation it follows (`update: { set: …, then: … }`)",
            ));
        }
        if case.allow.is_some()
            || case.deny.is_some()
            || case.sqlstate.is_some()
            || case.returns_rows
        {
            return Err(self.error(
                "`allow:`/`deny:` go under an operation (`select: { allow: [...] }`) for table cases",
            ));
        }
        if case.select.is_none()
            && case.insert.is_none()
            && case.update.is_none()
            && case.delete.is_none()
        {
            return Err(
                self.error("no operation: give `select:`, `insert:`, `update:` or `delete:`")
            );
        }
        let mut ops = Vec::new();
        if let Some(select) = &case.select {
            if let Some(ordered) = &select.ordered {
                return Err(self.error_at(
                    Pos::of(ordered),
                    "a table's rows come in no order: `ordered:` is for `sql:` cases",
                ));
            }
            if let Some(returns) = &select.returns {
                if returns_rows_wanted(&returns.value) != Ok(true) {
                    return Err(self.error_at(
                        Pos::of(returns),
                        "`returns:` of a select is the target rows: a list of objects naming the columns compared, e.g. `[{ id: 1, title: x }]`",
                    ));
                }
            }
            if let Some(then) = &select.then {
                return Err(self.error_at(
                    Pos::of(then),
                    "a select changes nothing for `then:` to check; use `returns:` for what it reads",
                ));
            }
            let op = select.expect();
            ops.push(RowOp {
                action: RowAction::Select {
                    returns: select.returns.as_ref().map(|r| r.value.clone()),
                },
                rules: self.rules(
                    op.allow,
                    op.deny,
                    op.deny_sqlstate,
                    op.deny_on,
                    None,
                    op.unreviewed,
                )?,
            });
        }
        if let Some(insert) = &case.insert {
            let op = insert.expect();
            let rules = self.rules(
                op.allow,
                op.deny,
                op.deny_sqlstate,
                op.deny_on,
                op.then,
                op.unreviewed,
            )?;
            // A bucket's row always has its bucket (and object): values of its own are extra.
            if insert.values.is_empty() && !bucket {
                return Err(self.error("`insert:` needs `values:`"));
            }
            ops.push(RowOp {
                action: RowAction::Insert {
                    values: insert.values.clone(),
                },
                rules,
            });
        }
        if let Some(update) = &case.update {
            let op = update.expect();
            let rules = self.rules(
                op.allow,
                op.deny,
                op.deny_sqlstate,
                op.deny_on,
                op.then,
                op.unreviewed,
            )?;
            if update.set.is_empty() {
                return Err(self.error("`update:` needs `set:`"));
            }
            ops.push(RowOp {
                action: RowAction::Update {
                    set: update.set.clone(),
                },
                rules,
            });
        }
        if let Some(delete) = &case.delete {
            let op = delete.expect();
            ops.push(RowOp {
                action: RowAction::Delete,
                rules: self.rules(
                    op.allow,
                    op.deny,
                    op.deny_sqlstate,
                    op.deny_on,
                    op.then,
                    op.unreviewed,
                )?,
            });
        }
        Ok(RowCase {
            filter: case.filter.clone(),
            key: case.key.clone(),
            ops,
        })
    }

    /// The rules of one operation of a table or bucket case.
    fn rules(
        &self,
        allow: &Who,
        deny: &Who,
        deny_sqlstate: Option<&SqlStates>,
        deny_on: Option<DenyOn>,
        then: Option<&Spanned<Then>>,
        unreviewed: &[Spanned<String>],
    ) -> Result<Rules, CaseError> {
        let expectations = self.resolve(allow, deny)?;
        let unreviewed = self.unreviewed(unreviewed)?;
        Ok(Rules {
            expectations,
            unreviewed,
            deny_sqlstates: states(self.case.deny_sqlstate.as_ref())
                .chain(states(deny_sqlstate))
                .collect(),
            deny_on_error: self.case.deny_on.or(deny_on) == Some(DenyOn::Error),
            then: then.cloned(),
        })
    }

    fn sql(&self, sql: &str) -> Result<SqlCase, CaseError> {
        let case = self.case;
        if case.select.is_some()
            || case.insert.is_some()
            || case.update.is_some()
            || case.delete.is_some()
            || case.filter.is_some()
        {
            return Err(self.error(
                "an `sql:` case takes `allow:`/`deny:` (and `sqlstate:`), not table operations or `where:`",
            ));
        }
        if let Some(returns) = &case.returns {
            returns_rows_wanted(&returns.value)
                .map_err(|message| self.error_at(Pos::of(returns), message))?;
        }
        self.ordered_needs_rows(case.ordered, case.returns.as_ref(), self.pos, "")?;
        let allow = case.allow.clone().unwrap_or_default();
        let deny = case.deny.clone().unwrap_or_default();
        let expectations = self.resolve(&allow, &deny)?;
        if case.sqlstate.is_some() && case.deny_sqlstate.is_some() {
            return Err(self.error("give `deny_sqlstate: [..]` or the older `sqlstate:`, not both"));
        }
        if let Some(state) = &case.sqlstate {
            if state.len() != 5 || !state.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(self.error(format!("sqlstate `{state}` is not a 5-character SQLSTATE")));
            }
        }
        let unreviewed = self.unreviewed(&case.unreviewed)?;
        Ok(SqlCase {
            sql: sql.to_owned(),
            rules: Rules {
                expectations,
                unreviewed,
                deny_sqlstates: case
                    .sqlstate
                    .iter()
                    .cloned()
                    .chain(states(case.deny_sqlstate.as_ref()))
                    .collect(),
                deny_on_error: case.deny_on == Some(DenyOn::Error),
                then: case.then.clone(),
            },
            returns_rows: case.returns_rows,
            returns: case.returns.as_ref().map(|r| r.value.clone()),
            ordered: case.ordered,
        })
    }

    /// `ordered: true` compares rows, so `returns:` must be rows.
    fn ordered_needs_rows(
        &self,
        ordered: bool,
        returns: Option<&Spanned<Value>>,
        pos: Pos,
        step: &str,
    ) -> Result<(), CaseError> {
        if ordered && returns.is_none_or(|r| returns_rows_wanted(&r.value) != Ok(true)) {
            return Err(self.error_at(
                pos,
                format!("{step}`ordered: true` compares `returns:` rows in order: give `returns:` as a list of rows"),
            ));
        }
        Ok(())
    }

    fn steps(&self, steps: &[Spanned<StepSpec>]) -> Result<Vec<Step>, CaseError> {
        let case = self.case;
        if case.select.is_some()
            || case.insert.is_some()
            || case.update.is_some()
            || case.delete.is_some()
            || case.filter.is_some()
            || case.allow.is_some()
            || case.deny.is_some()
            || case.sqlstate.is_some()
            || case.returns.is_some()
            || case.then.is_some()
            || case.returns_rows
            || case.ordered
        {
            return Err(self.error(
                "a `steps:` case has its expectations on each step (`as:`, `sql:`, `expect:`, `then:`, `returns:`…); only `deny_sqlstate:` and `deny_on:` may stand beside it",
            ));
        }
        if steps.is_empty() {
            return Err(self.error("`steps: []` checks nothing"));
        }
        // A scenario whose every step is denied could be denied by its own mistake (a misspelt
        // argument): an allowed step shows the statements can succeed.
        if steps.iter().all(|s| s.value.expect == StepExpect::Deny) {
            return Err(self.error(
                "every step expects deny: allow at least one, so the scenario shows its statements can succeed",
            ));
        }
        steps
            .iter()
            .enumerate()
            .map(|(index, spanned)| {
                let step = &spanned.value;
                let line = spanned.referenced.line() as usize;
                let label = format!("step {}: ", index + 1);
                if !self.actors.contains(&step.actor.value.as_str()) {
                    return Err(self.error_at(
                        Pos::of(&step.actor),
                        format!(
                            "{label}`{}` is not an actor of this file (actors: {})",
                            step.actor.value,
                            self.actors.join(", ")
                        ),
                    ));
                }
                if let Some(returns) = &step.returns {
                    returns_rows_wanted(&returns.value).map_err(|message| {
                        self.error_at(Pos::of(returns), format!("{label}{message}"))
                    })?;
                }
                self.ordered_needs_rows(
                    step.ordered,
                    step.returns.as_ref(),
                    Pos::from(line),
                    &label,
                )?;
                Ok(Step {
                    actor: step.actor.value.clone(),
                    line,
                    sql: step.sql.clone(),
                    expect: match step.expect {
                        StepExpect::Allow => Expect::Allow,
                        StepExpect::Deny => Expect::Deny,
                    },
                    deny_sqlstates: states(case.deny_sqlstate.as_ref())
                        .chain(states(step.deny_sqlstate.as_ref()))
                        .collect(),
                    deny_on_error: case.deny_on.or(step.deny_on) == Some(DenyOn::Error),
                    then: step.then.clone(),
                    returns_rows: step.returns_rows,
                    returns: step.returns.as_ref().map(|r| r.value.clone()),
                    ordered: step.ordered,
                    now: step.now,
                })
            })
            .collect()
    }
}

/// The SQLSTATEs of an optional `deny_sqlstate:`.
fn states(list: Option<&SqlStates>) -> impl Iterator<Item = String> + '_ {
    list.into_iter().flat_map(|l| l.0.iter().cloned())
}
