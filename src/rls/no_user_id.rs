//! `{{me.id}}` of an actor that is no user (anon, service_role): an id no `auth.users` row
//! has, so a write that carries it and gets through RLS fails on the foreign key to users.
//!
//! PostgreSQL checks a row against its table's RLS policies (and BEFORE triggers, and CHECK
//! constraints) before the foreign keys, which are checked after the row is written. So a
//! foreign-key violation on that id in an insert or update is proof that RLS let the row
//! through: where the case expects the actor denied, that is the leak itself, reported as
//! observed allow, never a broken test that hides it. Where the case expects the actor
//! allowed, the write cannot succeed with that id: the case stays a broken test.

use super::exec::CellResult;
use super::judge::Judgement;
use super::plan::Cell;
use crate::policy_tests::cases::{Expect, Operation};
use crate::report::{CaseVerdict, Observed};

/// SQLSTATE foreign_key_violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// The judgement of `result` when it is a non-user's `{{me.id}}` tripping a foreign key
/// after RLS let the write through and the case expects this actor denied; else `None`.
pub fn leak_past_rls(cell: &Cell, result: &CellResult) -> Option<Judgement> {
    if cell.actor.id.is_some()
        || !matches!(cell.operation, Operation::Insert | Operation::Update)
        || cell.expect != Some(Expect::Deny)
        || result.sqlstate.as_deref() != Some(FOREIGN_KEY_VIOLATION)
    {
        return None;
    }
    // The key's value is in the error's detail, unless the actor may not read the table
    // (PostgreSQL then says only "Key is not present…"): then the statement must carry it.
    let own_id = crate::actors::deterministic_id(&cell.actor.name);
    let carried = match result.detail.as_deref() {
        Some(detail) if detail.contains(")=(") => detail.contains(&own_id),
        _ => cell.op.contains(&own_id),
    };
    if !carried {
        return None;
    }
    let constraint = result
        .constraint
        .as_deref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    Some(Judgement {
        observed: Observed::Allow,
        verdict: CaseVerdict::Fail,
        message: Some(format!(
            "{} as {}: expected deny, observed allow (row level security let the row through: it failed only later, on foreign key{constraint}, because `{{{{me.id}}}}` of {} is an id no user has)",
            cell.operation.as_str(),
            cell.actor.name,
            cell.actor.name
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rls::test_support::{actor, cell};

    fn tripped(actor: &str) -> CellResult {
        CellResult {
            sqlstate: Some(FOREIGN_KEY_VIOLATION.to_owned()),
            error: Some("insert or update on table \"notes\" violates foreign key constraint \"notes_owner_id_fkey\"".to_owned()),
            detail: Some(format!(
                "Key (owner_id)=({}) is not present in table \"users\".",
                crate::actors::deterministic_id(actor)
            )),
            constraint: Some("notes_owner_id_fkey".to_owned()),
            ..CellResult::default()
        }
    }

    fn cell_as(name: &str, operation: Operation, expect: Expect) -> Cell {
        let spec = if name == "anon" {
            "anon"
        } else {
            "{ user: alice@example.com }"
        };
        cell(operation, Some(expect), actor(name, spec))
    }

    #[test]
    fn a_non_user_past_rls_on_its_own_id_is_the_leak() {
        let cell = cell_as("anon", Operation::Insert, Expect::Deny);
        let judged = leak_past_rls(&cell, &tripped("anon")).expect("a leak");
        assert_eq!(judged.verdict, CaseVerdict::Fail);
        assert_eq!(judged.observed, Observed::Allow);
        let message = judged.message.unwrap();
        assert!(
            message.starts_with("insert as anon: expected deny, observed allow (row level security let the row through"),
            "{message}"
        );
        assert!(message.contains("notes_owner_id_fkey"), "{message}");
    }

    #[test]
    fn anything_else_is_left_to_the_judge() {
        // Expected allowed: the write cannot succeed with that id (a broken test).
        let allowed = cell_as("anon", Operation::Insert, Expect::Allow);
        assert!(leak_past_rls(&allowed, &tripped("anon")).is_none());
        // A user's id in the key: some other row's owner, not this actor's missing id.
        let mut anon = cell_as("anon", Operation::Insert, Expect::Deny);
        assert!(leak_past_rls(&anon, &tripped("alice")).is_none());
        // No detail (anon may not read the table): the statement must carry anon's id.
        let hidden = CellResult {
            detail: Some("Key is not present in table \"users\".".to_owned()),
            ..tripped("anon")
        };
        assert!(leak_past_rls(&anon, &hidden).is_none());
        anon.op = format!(
            "insert into public.notes (owner_id) values ('{}')",
            crate::actors::deterministic_id("anon")
        );
        assert!(leak_past_rls(&anon, &hidden).is_some());
        // A user: its id exists, so the key names another row.
        let alice = cell_as("alice", Operation::Insert, Expect::Deny);
        assert!(leak_past_rls(&alice, &tripped("alice")).is_none());
        // A function may bypass RLS: its foreign key proves nothing about policies.
        let sql = cell_as("anon", Operation::Sql, Expect::Deny);
        assert!(leak_past_rls(&sql, &tripped("anon")).is_none());
    }
}
