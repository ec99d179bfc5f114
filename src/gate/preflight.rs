//! Pre-flight on production, read-only and bounded: would production's current rows violate a
//! new NOT NULL, CHECK, UNIQUE or foreign key, or fail a type change? One cheap existence query
//! per operation under the session's statement timeout; over budget it says "not checked".

use super::judge::{Finding, FindingKind, Sizes};
use super::shape::{self, ConstraintKind, Operation};
use super::trace::StatementTrace;
use crate::live::ReadOnly;
use crate::sql::quote_ident;

fn quote_relation(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(name),
    }
}

fn all_not_null(columns: &[String], alias: &str) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{} is not null", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// The query that finds a violating row, and what it checks, for one operation on a table
/// production has.
pub fn violation_query(op: &Operation) -> Option<(String, String, String)> {
    Some(match op {
        Operation::SetNotNull { table, column } => (
            table.clone(),
            format!(
                "select exists (select 1 from {} where {} is null)",
                quote_relation(table),
                quote_ident(column)
            ),
            format!("SET NOT NULL on {column}: production has rows where {column} is null"),
        ),
        Operation::AddConstraint {
            table,
            kind,
            not_valid: false,
        } => match kind {
            ConstraintKind::Check(expression) => (
                table.clone(),
                format!(
                    "select exists (select 1 from {} where not ({expression}))",
                    quote_relation(table)
                ),
                format!("CHECK ({expression}): production has rows that violate it"),
            ),
            ConstraintKind::Unique(columns) | ConstraintKind::PrimaryKey(columns)
                if !columns.is_empty() =>
            {
                let list = columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", ");
                (
                    table.clone(),
                    format!(
                        "select exists (select 1 from {} t where {} group by {list} having count(*) > 1)",
                        quote_relation(table),
                        all_not_null(columns, "t")
                    ),
                    format!(
                        "{} ({}): production has duplicate rows",
                        kind.describe(),
                        columns.join(", ")
                    ),
                )
            }
            ConstraintKind::ForeignKey {
                columns,
                references,
                referenced,
            } if !columns.is_empty() && columns.len() == referenced.len() => {
                let matches = columns
                    .iter()
                    .zip(referenced)
                    .map(|(c, r)| format!("r.{} = t.{}", quote_ident(r), quote_ident(c)))
                    .collect::<Vec<_>>()
                    .join(" and ");
                (
                    table.clone(),
                    format!(
                        "select exists (select 1 from {} t where {} and not exists \
                         (select 1 from {} r where {matches}))",
                        quote_relation(table),
                        all_not_null(columns, "t"),
                        quote_relation(references)
                    ),
                    format!(
                        "FOREIGN KEY ({}) REFERENCES {references}: production has rows that \
                         reference nothing",
                        columns.join(", ")
                    ),
                )
            }
            _ => return None,
        },
        Operation::AlterType {
            table,
            column,
            new_type,
        } => (
            table.clone(),
            // The cast fails on the first value that does not convert.
            format!(
                "select count(({}::{new_type})) >= 0 from {}",
                quote_ident(column),
                quote_relation(table)
            ),
            format!("TYPE {new_type} on {column}: a production value does not convert"),
        ),
        _ => return None,
    })
}

/// Pre-flights the operations of one statement that touch production's tables.
pub async fn check(session: &ReadOnly, statement: &StatementTrace, sizes: &Sizes) -> Vec<Finding> {
    let mut findings = Vec::new();
    for op in shape::operations(&statement.text) {
        let Some((table, query, violated)) = violation_query(&op) else {
            continue;
        };
        if !sizes.get(&table).is_some_and(|s| s.holds_rows()) {
            continue;
        }
        let finding = |kind, blocks, message: String, advice: Vec<String>| Finding {
            kind,
            blocks,
            file: statement.file.clone(),
            line: statement.line,
            relation: Some(table.clone()),
            message,
            advice,
            statement: Some(statement.text.clone()),
            allowed: None,
        };
        // Row-level security would hide the very rows that violate: an existence query that
        // sees nothing proves nothing.
        let hidden = session
            .bounded_query(&format!(
                "select row_security_active({}::regclass)",
                crate::sql::quote_literal(&quote_relation(&table))
            ))
            .await;
        if !matches!(&hidden, Ok(Some(rows)) if rows.first().is_some_and(|r| !r.get::<_, bool>(0)))
        {
            findings.push(finding(
                FindingKind::NotChecked,
                false,
                format!(
                    "not checked: whether production's rows of {table} satisfy {}: row-level \
                     security hides rows from this role (give it BYPASSRLS)",
                    violated.split(':').next().unwrap_or(&violated)
                ),
                Vec::new(),
            ));
            continue;
        }
        match session.bounded_query(&query).await {
            Ok(Some(rows)) => {
                let violates = match &op {
                    Operation::AlterType { .. } => false,
                    _ => rows.first().is_some_and(|r| r.get::<_, bool>(0)),
                };
                if violates {
                    findings.push(finding(
                        FindingKind::DataViolation,
                        true,
                        format!("{violated}: this migration would fail in production ({table})"),
                        vec![
                            "fix the data first (a backfill migration before this one), or add \
                             the constraint NOT VALID so it applies to new rows only"
                                .to_owned(),
                        ],
                    ));
                }
            }
            Ok(None) => findings.push(finding(
                FindingKind::NotChecked,
                false,
                format!(
                    "not checked: whether production's rows of {table} satisfy {} (the query ran \
                     past gate.statement_timeout, {})",
                    violated.split(':').next().unwrap_or(&violated),
                    humantime::format_duration(session.statement_timeout)
                ),
                vec!["raise gate.statement_timeout, or check the data by hand".to_owned()],
            )),
            Err(message) => {
                let conversion = matches!(op, Operation::AlterType { .. });
                if conversion {
                    findings.push(finding(
                        FindingKind::DataViolation,
                        true,
                        format!("{violated} ({message}): this migration would fail in production"),
                        vec![
                            "convert or clean the values first, in a migration of its own"
                                .to_owned(),
                        ],
                    ));
                } else {
                    findings.push(finding(
                        FindingKind::NotChecked,
                        false,
                        format!("not checked: {table} ({message}; the role may need SELECT on it, e.g. pg_read_all_data)"),
                        Vec::new(),
                    ));
                }
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_for_each_constraint() {
        let ops = shape::operations("alter table messages alter column room_id set not null");
        let (table, query, _) = violation_query(&ops[0]).unwrap();
        assert_eq!(table, "public.messages");
        assert_eq!(
            query,
            "select exists (select 1 from \"public\".\"messages\" where \"room_id\" is null)"
        );
        let ops = shape::operations("alter table t add constraint u unique (a, b)");
        let (_, query, _) = violation_query(&ops[0]).unwrap();
        assert!(
            query.contains("group by \"a\", \"b\" having count(*) > 1"),
            "{query}"
        );
        let ops = shape::operations("alter table t add foreign key (r) references rooms (id)");
        let (_, query, _) = violation_query(&ops[0]).unwrap();
        assert!(
            query.contains(
                "not exists (select 1 from \"public\".\"rooms\" r where r.\"id\" = t.\"r\")"
            ),
            "{query}"
        );
        // NOT VALID applies to new rows only: nothing to pre-flight.
        let ops = shape::operations("alter table t add constraint c check (a > 0) not valid");
        assert!(violation_query(&ops[0]).is_none());
    }
}
