//! Turning cases into cells: for each actor × operation, the SQL run as admin before, as the
//! actor, and as admin after, so that the outcome can be judged non-vacuously.
//!
//! This module owns the plan's types and the walk over a file's cases; each kind of case is
//! planned in its own module (`table`, `sql_case`, `steps`), the SQL of a table cell is built
//! in `table_sql`, text is filled in for an actor in `render`, and `wire` writes a cell as
//! the JSON the batch function reads.

mod render;
mod sql_case;
mod steps;
mod table;
mod table_sql;
#[cfg(test)]
mod tests;
mod wire;

use self::sql_case::plan_sql;
use self::steps::plan_steps;
use self::table::plan_table;
use crate::yaml::Pos;

use std::collections::BTreeMap;

use serde_json::Value;

pub use self::render::{literal, returning_rows};
pub use self::wire::cell_json;
use crate::actors::Actor;
use crate::policy_tests::cases::{CaseSpec, Expect, Expectations, Operation, SqlStates, Target};
use crate::policy_tests::PolicyFile;

/// How the actor's statement's result is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// A `select count(*)`: the number of target rows the actor sees.
    Count,
    /// DML or an RPC: the number of rows affected, or the error.
    Rows,
}

/// One cell: actor × operation × case.
#[derive(Debug, Clone)]
pub struct Cell {
    pub file: String,
    pub case: String,
    pub case_line: usize,
    /// `schema.table`, or `sql`.
    pub target: String,
    pub operation: Operation,
    /// The actor it runs as, resolved (and bound to its seeded user) when planned.
    pub actor: Actor,
    /// `None` while recording (`rls --record`): the cell has no expectation yet and what it
    /// observes becomes one.
    pub expect: Option<Expect>,
    /// The case's index in the file's `cases:`, where a recording is written.
    pub case_index: usize,
    /// The actor is listed under the operation's `unreviewed:`: a recorded expectation
    /// nobody reviewed yet.
    pub unreviewed: bool,
    /// The SQLSTATEs that mean denied besides 42501 (`sqlstate:`, `deny_sqlstate:`).
    pub deny_sqlstates: Vec<String>,
    /// `deny_on: error`: any error that does not say the statement is wrong is a denial.
    pub deny_on_error: bool,
    /// Admin query before: (count, rows already as `set` wants, keys, fingerprint).
    pub before: Option<String>,
    /// The statement run as the actor.
    pub op: String,
    pub op_kind: OpKind,
    /// Admin query after, with the keys of `before` as `$1`: (count, rows as `set` wants,
    /// fingerprint).
    pub after: Option<String>,
    /// `then:` post-conditions, rendered for the actor, run as admin after the statement.
    pub then: Vec<String>,
    /// `returns:` rendered for the actor; the statement then also returns its rows as JSON.
    pub returns: Option<Returns>,
    /// The case's target-row condition, for messages.
    pub filter: String,
    /// Why the cell cannot run (a broken test found while planning), e.g. no key columns.
    pub broken: Option<String>,
    /// For a step of a `steps:` scenario: the scenario (its case's line) it belongs to;
    /// its steps run together, in order, in one transaction.
    pub scenario: Option<usize>,
    /// The frozen clock (`now:` of the case, else of the file).
    pub now: Option<crate::clock::Frozen>,
    /// For a step: its case's clock (the file's), under which its probes run too, so a
    /// denial at the step's own `now:` counts when the statement succeeds at another.
    pub base_now: Option<crate::clock::Frozen>,
    /// Whom the statement is run again as, rolled back, to show it can succeed or return
    /// rows for someone (admin with and without the actor's claims, then each of these
    /// actors): for a `returns: []` and for a step expected to be denied. Empty: no probe.
    pub probe_actors: Vec<Actor>,
}

/// Whether `returns` asks for no row at all: what an actor who sees nothing returns, and
/// what a statement over no row returns too.
pub fn returns_nothing(returns: Option<&Returns>) -> bool {
    returns.is_some_and(|r| r.want.as_array().is_some_and(Vec::is_empty))
}

/// Every actor of `file`, for a cell's probes.
fn all_actors(file: &PolicyFile) -> Vec<Actor> {
    file.actors
        .names()
        .filter_map(|name| file.actors.get(name))
        .cloned()
        .collect()
}

/// What an allowed cell's statement must return (see
/// [`crate::policy_tests::cases::compare_returns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Returns {
    pub want: Value,
    pub ordered: bool,
}

/// A case-level problem found while planning: the matrix has a hole or a case is malformed.
#[derive(Debug, Clone)]
pub struct Hole {
    pub case: String,
    pub line: usize,
    pub operation: Operation,
    pub actor: String,
    pub message: String,
}

/// Facts about a target table read from the catalog before planning.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    /// `schema.table` as written in the catalog.
    pub qualified: String,
    pub exists: bool,
    /// Primary key columns (empty for views and tables without one).
    pub key: Vec<String>,
    /// A table whose rows carry `xmin`: a row the actor's statement wrote is found by that
    /// (the row as written, whatever a BEFORE trigger made of the values sent). Views are
    /// read back by the values sent.
    pub has_xmin: bool,
}

/// What planning knows of the database a file will run on.
#[derive(Debug, Clone, Copy)]
pub enum Catalog<'a> {
    /// Before boot, where only input errors are wanted: a table case is planned against no
    /// key and no `xmin` (they decide how a cell finds its rows, and whether it is broken at
    /// run time, never whether the input is wrong), and a missing table is not known yet.
    NotRead,
    /// After replay: the facts of every target, by `(schema, table)`.
    Read(&'a BTreeMap<(String, String), TargetInfo>),
}

/// Everything planned from one file.
#[derive(Debug, Default)]
pub struct Plan {
    pub cells: Vec<Cell>,
    pub holes: Vec<Hole>,
    /// Input errors (exit 2): where and message.
    pub errors: Vec<(Pos, String)>,
}

/// The target table of a case (storage cases target `storage.objects`).
pub fn case_target(case: &CaseSpec) -> Option<(String, String)> {
    case.target().ok().and_then(|target| target.relation())
}

/// Plans every cell of every case in `file` against what is known of the `catalog`.
/// `record`: actors with no expectation get a cell that records one (`rls --record`)
/// instead of a hole.
pub fn plan(file: &PolicyFile, catalog: Catalog<'_>, record: bool) -> Plan {
    let mut plan = Plan::default();
    let actor_names: Vec<&str> = file.actors.names().collect();
    if actor_names.contains(&"me") {
        plan.errors.push((
            Pos::from(crate::policy_tests::key_line(&file.text, "actors").unwrap_or(1)),
            "an actor may not be called `me`: `{{me.id}}` means the acting actor".to_owned(),
        ));
        return plan;
    }
    for (case_index, spanned) in file.spec.cases.iter().enumerate() {
        let case = &spanned.value;
        let line = spanned.referenced.line() as usize;
        let pos = Pos::of(spanned);
        let target = match case.target() {
            Ok(target) => target,
            Err(message) => {
                plan.errors.push((pos, message));
                continue;
            }
        };
        let at = CaseAt {
            file,
            case,
            case_index,
            line,
            pos,
            actor_names: &actor_names,
            record,
            catalog,
        };
        match &target {
            Target::Steps(steps) => plan_steps(&mut plan, file, case, case_index, line, pos, steps),
            Target::Sql(sql) => plan_sql(&mut plan, &at, sql),
            Target::Table { .. } | Target::Bucket { .. } => {
                let (schema, table) = target
                    .relation()
                    .expect("a table or a bucket has a relation");
                plan_table(&mut plan, &at, &schema, &table);
            }
        }
    }
    for cell in &mut plan.cells {
        cell.base_now = file
            .spec
            .cases
            .get(cell.case_index)
            .and_then(|c| c.value.now)
            .or(file.spec.now);
        cell.now = cell.now.or(cell.base_now);
        // Under a frozen clock the case's own SQL (its statement, `where:`, values and
        // `then:`) reads it too, not only the project's objects.
        if cell.now.is_some() {
            let frozen = |text: &mut String| *text = crate::clock::rewrite(text);
            frozen(&mut cell.op);
            cell.then.iter_mut().for_each(frozen);
            for admin in [&mut cell.before, &mut cell.after].into_iter().flatten() {
                frozen(admin);
            }
        }
    }
    plan
}

/// One case being planned, with what every kind of case is planned against.
struct CaseAt<'a> {
    file: &'a PolicyFile,
    case: &'a CaseSpec,
    case_index: usize,
    line: usize,
    /// The case's own position, where its input errors point.
    pos: Pos,
    actor_names: &'a [&'a str],
    record: bool,
    catalog: Catalog<'a>,
}

/// The SQLSTATEs of an optional `deny_sqlstate:`.
fn states(list: Option<&SqlStates>) -> impl Iterator<Item = String> + '_ {
    list.into_iter().flat_map(|l| l.0.iter().cloned())
}

/// The actors of an operation to run: each expectation, and while recording each actor
/// without one (`None`).
fn planned(expectations: &Expectations, record: bool) -> Vec<(String, Option<Expect>)> {
    let mut planned: Vec<(String, Option<Expect>)> = expectations
        .cells
        .iter()
        .map(|(actor, expect)| (actor.clone(), Some(*expect)))
        .collect();
    if record {
        planned.extend(expectations.missing.iter().map(|a| (a.clone(), None)));
    }
    planned
}

/// The names under `unreviewed:`, each an actor of the file.
fn unreviewed_actors(
    list: &[serde_saphyr::Spanned<String>],
    actors: &[&str],
    case: &str,
) -> Result<Vec<String>, (Pos, String)> {
    list.iter()
        .map(|name| {
            if actors.contains(&name.value.as_str()) {
                Ok(name.value.clone())
            } else {
                Err((
                    Pos::of(name),
                    format!(
                        "case `{case}`: unreviewed: `{}` is not an actor of this file (actors: {})",
                        name.value,
                        actors.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

fn add_holes(
    plan: &mut Plan,
    case: &CaseSpec,
    line: usize,
    operation: Operation,
    missing: &[String],
) {
    for actor in missing {
        plan.holes.push(Hole {
            case: case.name.clone(),
            line,
            operation,
            actor: actor.clone(),
            message: format!(
                "broken test: actor `{actor}` has no expectation for {} in case `{}`: list it under allow or deny, or write `deny: others`, or record what the database does with `db-ci rls --record`",
                operation.as_str(),
                case.name
            ),
        });
    }
}

/// The input errors of `file`'s cases that need no catalog (unknown actors, malformed cases),
/// so a bad matrix is exit 2 before anything boots.
pub fn check(file: &PolicyFile) -> Vec<(Pos, String)> {
    plan(file, Catalog::NotRead, false).errors
}
