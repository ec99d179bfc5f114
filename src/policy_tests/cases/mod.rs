//! The `cases:` format of policy-test files: what each RLS case says is allowed and denied.
//!
//! This module owns a case as written (its target, steps and per-operation specs); `parse`
//! makes it one kind of case with its shape checked; `results`
//! checks what a `then:` and a `returns:` got, `sqlstate` says which errors are a denial, and
//! `expectations` resolves allow/deny lists into one expectation per actor.

mod expectations;
mod parse;
mod results;
mod sqlstate;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

pub use self::expectations::{resolve, Expect, Expectations, Operation, Who};
pub use self::parse::{
    parse_cases, Case, CaseError, CaseKind, RowAction, RowCase, RowOp, Rules, SqlCase, Step,
};
pub use self::results::{
    compare_returns, returns_rows_wanted, shorten, then_holds, EmptyQuery, Mismatch, NotRows, Rows,
    Then, Unheld,
};
pub use self::sqlstate::{error_may_deny, is_sqlstate, DenyOn, SqlStates};

/// One case as written: a target (table, view, storage object or SQL) and the expectations
/// per operation, every key optional; [`parse_cases`] makes it a [`Case`] of one kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: String,
    /// A table or view, optionally schema-qualified (default schema `public`).
    pub table: Option<Spanned<String>>,
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
