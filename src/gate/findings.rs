//! What a traced pending statement means for production, read from its text and production's
//! sizes: destructive changes to tables holding rows, policies that open a table to the anon
//! key, and function bodies it broke. Pure logic.

use crate::project::SqlFile;

use super::judge::{self, Finding, FindingKind, Sizes};
use super::{bodies, shape, trace};

/// A function whose body no longer validates after the pending migrations, pointing at the
/// last pending statement that names what its error names (the change that broke it).
pub(super) fn broken_body(
    function: &str,
    message: &str,
    traced: &[trace::StatementTrace],
    last: &SqlFile,
) -> Finding {
    let names = bodies::quoted_names(message);
    let culprit = traced.iter().rev().find(|s| {
        let text = s.full.to_lowercase();
        names.iter().any(|name| text.contains(name.as_str()))
    });
    let (file, line) = culprit.map_or_else(|| (last.rel.clone(), 1), |s| (s.file.clone(), s.line));
    Finding {
        kind: FindingKind::FunctionBody,
        blocks: true,
        file,
        line,
        relation: None,
        message: format!(
            "function {function} no longer works after this migration: {message} (every call \
             fails in production)"
        ),
        advice: vec![format!(
            "change {function} in the same release (create or replace it without what is \
             removed), or keep what it uses until it no longer does"
        )],
        statement: culprit.map(|s| s.text.clone()),
        allowed: None,
    }
}

/// A new policy that opens a table to the anon key: found on the pending statement that
/// writes it, with or without RLS matrices.
pub(super) fn anon_policy(statement: &trace::StatementTrace) -> Option<Finding> {
    let (table, policy) = shape::opens_to_anon(&statement.full)?;
    Some(Finding {
        kind: FindingKind::OpensToAnon,
        blocks: true,
        file: statement.file.clone(),
        line: statement.line,
        relation: Some(table.clone()),
        message: format!(
            "policy \"{policy}\" lets anyone with the anon key read every row of {table} \
             (permissive, to anon, using (true))"
        ),
        advice: vec![
            "write the condition a signed-out reader must meet, or grant the policy to \
             authenticated; or accept it in gate.allow (kind: opens-to-anon) with the reason"
                .to_owned(),
        ],
        statement: Some(statement.text.clone()),
        allowed: None,
    })
}

/// Dropped tables that hold production rows; dropped columns of them; renames clients see.
pub(super) fn destructive(statement: &trace::StatementTrace, sizes: &Sizes) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |relation: &str, message: String, advice: &str| {
        findings.push(Finding {
            kind: FindingKind::Destructive,
            blocks: true,
            file: statement.file.clone(),
            line: statement.line,
            relation: Some(relation.to_owned()),
            message,
            advice: vec![advice.to_owned()],
            statement: Some(statement.text.clone()),
            allowed: None,
        })
    };
    for (name, kind) in &statement.dropped {
        let Some(size) = sizes.get(name) else {
            continue;
        };
        if matches!(kind, 'r' | 'p' | 'm') && size.holds_rows() {
            push(
                name,
                format!(
                    "drops {name}, which holds {} in production",
                    size.describe()
                ),
                "keep the table until nothing reads it, and drop it in a later release after a \
                 backup; or accept it in gate.allow with the reason",
            );
        }
    }
    for op in shape::operations_within(&statement.full) {
        match op {
            shape::Operation::DropColumn { table, column } => {
                if let Some(size) = sizes.get(&table).filter(|s| s.holds_rows()) {
                    push(
                        &table,
                        format!(
                            "drops column {table}.{column}, holding data in {} production rows",
                            judge::human_count(size.rows)
                        ),
                        "stop writing and reading the column first, and drop it in a later \
                         release; or accept it in gate.allow with the reason",
                    );
                }
            }
            shape::Operation::Truncate { ref table }
            | shape::Operation::DeleteAll { ref table }
            | shape::Operation::UpdateAll { ref table } => {
                let table = table.clone();
                let Some(size) = sizes.get(&table).filter(|s| s.holds_rows()) else {
                    continue;
                };
                let rows = match size.rows < 0.0 {
                    true => format!("its rows ({})", judge::human_bytes(size.bytes)),
                    false => format!("its {} rows", judge::human_count(size.rows)),
                };
                let (what, advice) = match op {
                    shape::Operation::Truncate { .. } => (
                        format!("truncates {table}: data loss, {rows} in production are deleted"),
                        "delete only the rows meant to go (with a WHERE), after a backup; or \
                         accept it in gate.allow with the reason",
                    ),
                    shape::Operation::DeleteAll { .. } => (
                        format!(
                            "deletes every row of {table} (no WHERE): data loss, {rows} in \
                             production"
                        ),
                        "add the WHERE that names the rows meant to go; or accept it in \
                         gate.allow with the reason",
                    ),
                    _ => (
                        format!(
                            "updates every row of {table} (no WHERE): data loss, the old values \
                             of {rows} in production are overwritten"
                        ),
                        "add the WHERE that names the rows meant to change (a backfill: `where \
                         column is null`); or accept it in gate.allow with the reason",
                    ),
                };
                push(&table, what, advice)
            }
            shape::Operation::RenameTable { table, to } if sizes.contains_key(&table) => push(
                &table,
                format!(
                    "renames {table} to {to}: clients, RPCs and function bodies that name \
                     {table} break the moment it applies"
                ),
                "add the new name as a view (or the new table beside the old) and move clients \
                 over before removing the old name",
            ),
            shape::Operation::RenameColumn { table, column, to } if sizes.contains_key(&table) => {
                push(
                    &table,
                    format!(
                        "renames column {table}.{column} to {to}: clients and function bodies \
                         that name it break the moment it applies"
                    ),
                    "add the new column, write both, move readers, then drop the old one",
                )
            }
            _ => {}
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::gate::judge::Size;

    fn statement(sql: &str) -> trace::StatementTrace {
        trace::StatementTrace {
            file: "m.sql".to_owned(),
            line: 3,
            text: sql.to_owned(),
            full: sql.to_owned(),
            locks: Vec::new(),
            rewritten: Vec::new(),
            indexes_built: Vec::new(),
            dropped: Vec::new(),
            duration: Duration::ZERO,
            held: Duration::ZERO,
            lock_timeout_set: false,
        }
    }

    fn sizes(tables: &[(&str, f64)]) -> Sizes {
        tables
            .iter()
            .map(|(t, rows)| {
                (
                    t.to_string(),
                    Size {
                        rows: *rows,
                        bytes: 8192,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn data_loss_is_found_only_where_production_holds_rows() {
        let sizes = sizes(&[("public.posts", 5.0), ("public.empty", 0.0)]);
        let found = |sql: &str| -> Vec<String> {
            destructive(&statement(sql), &sizes)
                .into_iter()
                .map(|f| f.message)
                .collect()
        };
        assert!(found("delete from posts")[0].starts_with("deletes every row of public.posts"));
        assert!(found("update posts set a = 1")[0].starts_with("updates every row"));
        assert!(found("truncate posts")[0].starts_with("truncates public.posts"));
        assert!(found("alter table posts drop column a")[0].starts_with("drops column"));
        assert!(found("delete from empty").is_empty());
        assert!(found("delete from posts where id = 1").is_empty());
        // A rename breaks clients whether or not the table holds rows.
        assert!(found("alter table empty rename to e2")[0].starts_with("renames public.empty"));
        assert!(found("alter table unknown rename to u2").is_empty());
        let mut dropped = statement("drop table posts");
        dropped.dropped = vec![("public.posts".to_owned(), 'r')];
        let findings = destructive(&dropped, &sizes);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].relation.as_deref(), Some("public.posts"));
        assert_eq!((findings[0].file.as_str(), findings[0].line), ("m.sql", 3));
    }

    #[test]
    fn an_open_policy_is_found_on_its_statement() {
        let finding =
            anon_policy(&statement("create policy \"read\" on notes using (true)")).unwrap();
        assert_eq!(finding.kind, FindingKind::OpensToAnon);
        assert_eq!(finding.relation.as_deref(), Some("public.notes"));
        assert!(
            finding.message.contains("policy \"read\""),
            "{}",
            finding.message
        );
        assert!(anon_policy(&statement("create policy p on notes using (false)")).is_none());
    }

    #[test]
    fn a_broken_body_points_at_the_last_statement_naming_what_it_lost() {
        let traced = [
            statement("alter table notes rename column label to title"),
            statement("create index i on notes (id)"),
        ];
        let last = SqlFile {
            rel: "last.sql".to_owned(),
            path: "last.sql".into(),
            kind: crate::project::FileKind::Migration,
            version: None,
            text: String::new(),
            no_transaction: false,
            exempt: None,
            cli_name: None,
        };
        let finding = broken_body(
            "public.f()",
            "column \"label\" does not exist",
            &traced,
            &last,
        );
        assert_eq!(
            finding.statement.as_deref(),
            Some("alter table notes rename column label to title")
        );
        let finding = broken_body("public.f()", "no name quoted", &traced, &last);
        assert_eq!((finding.file.as_str(), finding.line), ("last.sql", 1));
    }
}
