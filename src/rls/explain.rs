//! What a failing cell's reader needs to fix the policy without opening the database: RLS
//! flags, the policies with their USING and WITH CHECK, the actor's grant, how a view reads.

use tokio_postgres::Client;

use crate::catalog::QualifiedName;
use crate::error::{Error, Result};
use crate::policy_tests::cases::Operation;
use crate::sql::db_error_text;
use crate::sql::kinds::{PolicyCommand, RelationKind};

/// Notes describing `target` as seen by `role` for `operation`.
pub async fn explain(
    client: &Client,
    target: &QualifiedName,
    role: &str,
    operation: Operation,
) -> Result<Vec<String>> {
    let QualifiedName {
        schema,
        name: table,
    } = target;
    let failed = |e: tokio_postgres::Error| {
        Error::environment(format!(
            "read the policies of {target}: {}",
            db_error_text(&e)
        ))
    };
    let mut notes = Vec::new();
    let relation = client
        .query_opt(
            "select c.relkind::text, c.relrowsecurity, c.relforcerowsecurity, \
                    pg_catalog.pg_get_userbyid(c.relowner)::text, coalesce(array_to_string(c.reloptions, ','), '') \
             from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = $1 and c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(failed)?;
    let Some(relation) = relation else {
        return Ok(notes);
    };
    let kind = RelationKind::from_code(relation.get(0));
    let (enabled, forced): (bool, bool) = (relation.get(1), relation.get(2));
    let owner: String = relation.get(3);
    let options: String = relation.get(4);
    if kind.is_view() {
        if options.contains("security_invoker=true") || options.contains("security_invoker=on") {
            notes.push(format!(
                "{target} is a view with security_invoker: its tables' RLS applies to the caller"
            ));
        } else {
            notes.push(format!(
                "{target} is a view without security_invoker, owned by {owner}: it reads its tables with {owner}'s rights, so their RLS does not filter for the caller (add `with (security_invoker = true)`)"
            ));
        }
    } else if !enabled {
        notes.push(format!(
            "RLS is DISABLED on {target}: every role with a grant sees and changes every row"
        ));
    } else {
        notes.push(format!(
            "RLS is enabled on {target}{}",
            if forced { " (forced)" } else { "" }
        ));
    }
    if operation != Operation::Sql {
        let privilege = match operation {
            Operation::Select => "SELECT",
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            _ => "DELETE",
        };
        let granted: bool = client
            .query_one(
                "select pg_catalog.has_table_privilege($1, format('%I.%I', $2::text, $3::text), $4)",
                &[&role, &schema, &table, &privilege],
            )
            .await
            .map_err(failed)?
            .get(0);
        if !granted {
            notes.push(format!(
                "{role} has no {privilege} privilege on {target}: a missing GRANT denies before any policy is read"
            ));
        }
    }
    let policies = client
        .query(
            "select policyname::text, permissive::text, cmd::text, roles::text, qual, with_check \
             from pg_catalog.pg_policies where schemaname = $1 and tablename = $2 order by policyname",
            &[&schema, &table],
        )
        .await
        .map_err(failed)?;
    if policies.is_empty() && enabled && !kind.is_view() {
        notes.push(format!(
            "no policy on {target}: RLS denies every row to every role without BYPASSRLS"
        ));
    }
    // The policies that decide this command first; the others only counted. An SQL case may
    // run any command, so every policy decides it.
    let asked = match operation {
        Operation::Select => Some(PolicyCommand::Select),
        Operation::Insert => Some(PolicyCommand::Insert),
        Operation::Update => Some(PolicyCommand::Update),
        Operation::Delete => Some(PolicyCommand::Delete),
        Operation::Sql => None,
    };
    let command_of = |policy: &tokio_postgres::Row| PolicyCommand::from_word(policy.get(2));
    let decides = |command: Option<PolicyCommand>| {
        asked.is_none_or(|asked| command.is_some_and(|command| command.covers(asked)))
    };
    let others = policies.iter().filter(|p| !decides(command_of(p))).count();
    for policy in policies.iter().filter(|p| decides(command_of(p))) {
        let name: String = policy.get(0);
        let permissive: String = policy.get(1);
        let command: String = policy.get(2);
        let roles: String = policy.get(3);
        let using: Option<String> = policy.get(4);
        let check: Option<String> = policy.get(5);
        let mut line = format!(
            "policy \"{name}\" ({}) FOR {command} TO {roles}",
            permissive.to_lowercase()
        );
        if let Some(using) = using {
            line.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = check {
            line.push_str(&format!(" WITH CHECK ({check})"));
        }
        notes.push(line);
    }
    if others > 0 {
        notes.push(format!(
            "(and {others} polic{} on {target} for other commands)",
            if others == 1 { "y" } else { "ies" }
        ));
    }
    Ok(notes)
}
