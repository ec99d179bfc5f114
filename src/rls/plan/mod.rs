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

use std::collections::BTreeMap;

use serde_json::Value;

pub use self::render::{literal, returning_rows};
pub use self::wire::cell_json;
use crate::actors::Actor;
use crate::catalog::QualifiedName;
use crate::policy_tests::cases::{Case, CaseError, CaseKind, Expect, Expectations, Operation};
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
    /// The statement run as the actor.
    pub op: String,
    pub op_kind: OpKind,
    /// `then:` post-conditions, rendered for the actor, run as admin after the statement.
    pub then: Vec<String>,
    /// `returns:` rendered for the actor; the statement then also returns its rows as JSON.
    pub returns: Option<Returns>,
    /// What only a cell of its kind of case carries.
    pub kind: CellKind,
    /// The frozen clock (`now:` of the case, else of the file).
    pub now: Option<crate::clock::Frozen>,
    /// For a step: its case's clock (the file's), under which its probes run too, so a
    /// denial at the step's own `now:` counts when the statement succeeds at another.
    pub base_now: Option<crate::clock::Frozen>,
}

/// What a cell of one kind of case carries that the others do not.
#[derive(Debug, Clone)]
pub enum CellKind {
    /// A table, view or storage cell: admin reads around the actor's statement show what it
    /// did to the target rows.
    Rows {
        relation: QualifiedName,
        /// Admin query before: (count, rows already as `set` wants, keys, fingerprint).
        before: Option<String>,
        /// Admin query after, with the keys of `before` as `$1`: (count, rows as `set`
        /// wants, fingerprint).
        after: Option<String>,
        /// The case's target-row condition, for messages.
        filter: String,
        /// Why the cell cannot run (a broken test found while planning), e.g. no key columns.
        broken: Option<String>,
    },
    /// An `sql:` cell.
    Call {
        /// Whom the statement is run again as, rolled back, to show it returns rows for
        /// someone (admin with and without the actor's claims, then each of these actors):
        /// for a `returns: []`. Empty: no probe.
        probe_actors: Vec<Actor>,
    },
    /// A step of a `steps:` scenario: its steps run together, in order, in one transaction.
    Step {
        /// The scenario's case line.
        scenario: usize,
        /// As for a call, and for a step expected to be denied: someone it succeeds for.
        probe_actors: Vec<Actor>,
    },
}

impl Cell {
    /// The relation a table or storage cell reads or writes.
    pub fn relation(&self) -> Option<&QualifiedName> {
        match &self.kind {
            CellKind::Rows { relation, .. } => Some(relation),
            CellKind::Call { .. } | CellKind::Step { .. } => None,
        }
    }

    pub fn before(&self) -> Option<&str> {
        match &self.kind {
            CellKind::Rows { before, .. } => before.as_deref(),
            CellKind::Call { .. } | CellKind::Step { .. } => None,
        }
    }

    pub fn after(&self) -> Option<&str> {
        match &self.kind {
            CellKind::Rows { after, .. } => after.as_deref(),
            CellKind::Call { .. } | CellKind::Step { .. } => None,
        }
    }

    /// The target-row condition of a table or storage cell; empty for the others.
    pub fn filter(&self) -> &str {
        match &self.kind {
            CellKind::Rows { filter, .. } => filter,
            CellKind::Call { .. } | CellKind::Step { .. } => "",
        }
    }

    /// Why a table cell cannot run, when planning found it broken.
    pub fn broken(&self) -> Option<&str> {
        match &self.kind {
            CellKind::Rows { broken, .. } => broken.as_deref(),
            CellKind::Call { .. } | CellKind::Step { .. } => None,
        }
    }

    /// For a step: its scenario (its case's line).
    pub fn scenario(&self) -> Option<usize> {
        match &self.kind {
            CellKind::Step { scenario, .. } => Some(*scenario),
            CellKind::Rows { .. } | CellKind::Call { .. } => None,
        }
    }

    /// Whom the statement is run again as (see [`CellKind::Call`]).
    pub fn probe_actors(&self) -> &[Actor] {
        match &self.kind {
            CellKind::Call { probe_actors } | CellKind::Step { probe_actors, .. } => probe_actors,
            CellKind::Rows { .. } => &[],
        }
    }
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

/// What an allowed cell's statement must return (see [`crate::policy_tests::cases::compare_returns`]).
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
    /// After replay: the facts of every target, by name.
    Read(&'a BTreeMap<QualifiedName, TargetInfo>),
}

/// Everything planned from one file.
#[derive(Debug, Default)]
pub struct Plan {
    pub cells: Vec<Cell>,
    pub holes: Vec<Hole>,
    /// Input errors (exit 2), each at its position.
    pub errors: Vec<CaseError>,
}

/// Plans every cell of every case in `file` against what is known of the `catalog`.
/// `record`: actors with no expectation get a cell that records one (`rls --record`)
/// instead of a hole.
pub fn plan(file: &PolicyFile, catalog: Catalog<'_>, record: bool) -> Plan {
    let mut plan = Plan::default();
    for case in &file.cases {
        let at = CaseAt {
            file,
            case,
            record,
            catalog,
        };
        let first = plan.cells.len();
        match &case.kind {
            CaseKind::Steps(steps) => plan_steps(&mut plan, &at, steps),
            CaseKind::Sql(sql) => plan_sql(&mut plan, &at, sql),
            CaseKind::Table { rows, .. } | CaseKind::Bucket { rows, .. } => {
                plan_table(&mut plan, &at, rows)
            }
        }
        let base_now = case.now.or(file.spec.now);
        for cell in &mut plan.cells[first..] {
            cell.base_now = base_now;
        }
    }
    for cell in &mut plan.cells {
        cell.now = cell.now.or(cell.base_now);
        // Under a frozen clock the case's own SQL (its statement, `where:`, values and
        // `then:`) reads it too, not only the project's objects.
        if cell.now.is_some() {
            let frozen = |text: &mut String| *text = crate::clock::rewrite(text);
            frozen(&mut cell.op);
            cell.then.iter_mut().for_each(frozen);
            if let CellKind::Rows { before, after, .. } = &mut cell.kind {
                before.iter_mut().chain(after.iter_mut()).for_each(frozen);
            }
        }
    }
    plan
}

/// One case being planned, with what every kind of case is planned against.
struct CaseAt<'a> {
    file: &'a PolicyFile,
    case: &'a Case,
    record: bool,
    catalog: Catalog<'a>,
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

fn add_holes(plan: &mut Plan, case: &Case, operation: Operation, missing: &[String]) {
    for actor in missing {
        plan.holes.push(Hole {
            case: case.name.clone(),
            line: case.line(),
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

/// The input errors of `file`'s parsed cases that need no catalog (a template naming no
/// actor, a denial by any error with nobody allowed), so a bad matrix is exit 2 before
/// anything boots. A case's shape and its actors were checked when it was parsed.
pub fn check(file: &PolicyFile) -> Vec<CaseError> {
    plan(file, Catalog::NotRead, false).errors
}
