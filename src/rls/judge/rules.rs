//! The non-vacuity rules a cell's outcome must clear before it counts: a `then:` that held,
//! and held only after the statement; a `returns: []` with rows to hide; a denied step that
//! can succeed for someone; an error that is the project refusing, not the values tripping.

use super::super::exec::{CellResult, ProbeResult};
use super::super::plan::{returns_nothing, Cell, OpKind};
use crate::policy_tests::cases::then_holds;

/// Results a cell asked for that the batch did not bring back: a harness fault, so the cell
/// is broken, never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum NotRun {
    #[error("the `then:` queries were not run")]
    Then,
    #[error("the statement was not run again as admin and the other actors")]
    Probes,
}

/// The first `then:` query of `cell` that did not hold, in words (the query and what it
/// returned).
pub(super) fn unheld_then(cell: &Cell, result: &CellResult) -> Result<Option<String>, NotRun> {
    if cell.then.is_empty() {
        return Ok(None);
    }
    let Some(returned) = &result.then else {
        return Err(NotRun::Then);
    };
    for (query, rows) in cell.then.iter().zip(returned) {
        if let Err(what) = then_holds(rows) {
            return Ok(Some(format!("`then: {query}` did not hold: it {what}")));
        }
    }
    Ok(None)
}

/// `then:` that held before the statement as it holds after cannot tell a call that did
/// something from one that did nothing: every query of it already held (as admin, before).
pub(super) fn then_held_before(cell: &Cell, result: &CellResult) -> Option<String> {
    if cell.then.is_empty() {
        return None;
    }
    let before = result.then_before.as_ref()?;
    let held = cell.then.len() == before.len()
        && before
            .iter()
            .all(|rows| rows.as_deref().is_some_and(|rows| then_holds(rows).is_ok()));
    held.then(|| {
        format!(
            "`then: {}` already held before the statement ran: it cannot tell a call that did something from one that did nothing; make `setup:` leave it false",
            cell.then.join("; ")
        )
    })
}

/// Why the error `state` of `result` is a constraint the case's values trip rather than the
/// project refusing: an integrity constraint, a value the server cannot read, or a
/// cardinality error, raised by the server itself (no RAISE or ASSERT of the project's
/// functions or triggers on the way).
pub(super) fn values_tripped(state: &str, result: &CellResult) -> Option<String> {
    if !matches!(state.get(..2), Some("21" | "22" | "23")) {
        return None;
    }
    let raised_by_project = result.context.as_deref().is_some_and(|context| {
        context
            .lines()
            .filter(|line| !line.contains("dbci_"))
            .any(|line| {
                line.trim_end().ends_with("at RAISE") || line.trim_end().ends_with("at ASSERT")
            })
    });
    if raised_by_project {
        return None;
    }
    Some(match &result.constraint {
        Some(name) => format!(" on constraint {name}"),
        None => String::new(),
    })
}

/// Whether `probe` shows the cell's statement succeeding, returning a row where that is how
/// it is read.
fn succeeded(cell: &Cell, probe: &ProbeResult) -> bool {
    let needs_rows = cell.op_kind == OpKind::Count || cell.returns.is_some();
    probe.error.is_none()
        && probe.then_held != Some(false)
        && (!needs_rows || probe.rows.unwrap_or(0) > 0)
}

/// The probes of `result`, or why there are none although the cell asked for them.
fn probes(result: &CellResult) -> Result<&[ProbeResult], NotRun> {
    result.probes.as_deref().ok_or(NotRun::Probes)
}

/// A `returns: []` passes only when there were rows to hide: the statement returns some
/// for admin (RLS bypassed) or for another actor.
pub(super) fn hides_nothing(cell: &Cell, result: &CellResult) -> Option<String> {
    if !returns_nothing(cell.returns.as_ref()) {
        return None;
    }
    let probes = match probes(result) {
        Ok(probes) => probes,
        Err(why) => return Some(why.to_string()),
    };
    if probes
        .iter()
        .any(|p| p.error.is_none() && p.rows.unwrap_or(0) > 0)
    {
        return None;
    }
    Some(format!(
        "`returns: []` for {}, but the statement returns no row for admin or any actor either: there is nothing for it to hide, so a leak would pass (create the rows it must not return in `setup:`)",
        cell.actor.name
    ))
}

/// A denied step passes only when its statement can succeed for someone (admin, or an actor
/// of the file, from the scenario's start or after any of its steps, at the step's clock or
/// its case's): else a misspelt id would pass as a denial.
pub(super) fn denied_step_never_succeeds(cell: &Cell, result: &CellResult) -> Option<String> {
    let probes = match probes(result) {
        Ok(probes) => probes,
        Err(why) => return Some(why.to_string()),
    };
    if probes.iter().any(|p| succeeded(cell, p)) {
        return None;
    }
    let why = probes
        .first()
        .and_then(|admin| admin.error.as_ref())
        .map(|e| format!(" (as admin it fails: {e})"))
        .unwrap_or_default();
    Some(format!(
        "the statement of this denied step succeeds for nobody — not admin, not any actor, at no point of the scenario{why}: the step checks nothing (a misspelt id or argument?); show it can succeed, e.g. a later step where it is allowed"
    ))
}
