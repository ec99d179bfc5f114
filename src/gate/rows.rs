//! Production's rows on the rehearsal: which tables the pending migrations touch, a copy of
//! their rows (read from production with plain `COPY (select columns) TO`, nothing of the
//! project evaluated there), within a size budget, so that every statement that can fail on
//! existing rows runs on them, after what the earlier pending statements did to them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use futures_util::{SinkExt, StreamExt};
use tokio_postgres::Client;

use super::judge::{human_bytes, Sizes};
use super::trace::StatementTrace;
use crate::live::ReadOnly;
use crate::sql::error::DbError;
use crate::sql::{db_error_text, quote_ident, quote_literal};

/// `schema.name` quoted for SQL.
pub fn quote_relation(name: &str) -> String {
    match name.split_once('.') {
        Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
        None => quote_ident(name),
    }
}

/// The deploy tool's own tables (the migration ledger): their rows are no migration's data.
pub fn bookkeeping(name: &str) -> bool {
    name.starts_with("supabase_migrations.")
}

/// The production tables the pending statements touched on the rehearsal (locked, rewritten,
/// indexed, dropped: a statement that reads or changes a table locks it, inside DO blocks and
/// functions too) that hold rows in production. A statement whose outcome no row changes (a
/// policy, a nullable column added) needs none of them.
pub fn touched(statements: &[StatementTrace], sizes: &Sizes) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let needs_rows = statements
        .iter()
        .filter(|s| !super::rowless::cannot_fail_on_rows(&s.full));
    for statement in needs_rows {
        names.extend(statement.locks.iter().map(|(_, name, _)| name.clone()));
        names.extend(statement.rewritten.iter().cloned());
        names.extend(
            statement
                .indexes_built
                .iter()
                .map(|(_, table)| table.clone()),
        );
        names.extend(statement.dropped.iter().map(|(name, _)| name.clone()));
        // Outside a transaction the trace sees no locks: the statement's words name its table.
        for op in super::shape::operations_within(&statement.full) {
            names.insert(op.table().to_owned());
        }
    }
    names
        .into_iter()
        .filter(|name| !bookkeeping(name) && sizes.get(name).is_some_and(|s| s.holds_rows()))
        .collect()
}

/// Why a table's rows could not be copied: the data checks did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCopied {
    /// The production role cannot read every row: the grant to add.
    Unreadable { table: String, grant: String },
    /// Over `gate.copy_budget_mb`.
    OverBudget {
        table: String,
        bytes: i64,
        budget: i64,
    },
    /// The read failed or ran past the statement timeout.
    ReadFailed { table: String, why: String },
}

impl NotCopied {
    pub fn table(&self) -> &str {
        match self {
            NotCopied::Unreadable { table, .. }
            | NotCopied::OverBudget { table, .. }
            | NotCopied::ReadFailed { table, .. } => table,
        }
    }

    pub fn message(&self) -> String {
        match self {
            NotCopied::Unreadable { table, .. } => format!(
                "not checked: whether production's rows of {table} let the pending migrations \
                 apply: the gate's role cannot read all of them"
            ),
            NotCopied::OverBudget {
                table,
                bytes,
                budget,
            } => format!(
                "not checked: whether production's rows of {table} let the pending migrations \
                 apply: the tables to copy hold {}, over gate.copy_budget_mb ({})",
                human_bytes(*bytes),
                human_bytes(*budget)
            ),
            NotCopied::ReadFailed { table, why } => format!(
                "not checked: whether production's rows of {table} let the pending migrations \
                 apply: reading them failed ({why})"
            ),
        }
    }

    pub fn advice(&self) -> String {
        match self {
            NotCopied::Unreadable { grant, .. } => grant.clone(),
            NotCopied::OverBudget { .. } => "raise gate.copy_budget_mb, or accept it in \
                 gate.allow (kind: not-checked, relation: the table) with the reason"
                .to_owned(),
            NotCopied::ReadFailed { .. } => "raise gate.statement_timeout, or accept it in \
                 gate.allow (kind: not-checked) with the reason"
                .to_owned(),
        }
    }
}

/// Adds to `tables` the tables their foreign keys join them to, both ways, that hold rows:
/// a statement that changes a row checks (or cascades to) them, which the empty rehearsal
/// never had to.
pub async fn with_neighbours(
    session: &ReadOnly,
    tables: &BTreeSet<String>,
    sizes: &Sizes,
) -> Result<BTreeSet<String>, DbError> {
    let names: Vec<String> = tables.iter().cloned().collect();
    let rows = session
        .client()
        .query(
            "select fn.nspname || '.' || f.relname, tn.nspname || '.' || t.relname \
             from pg_catalog.pg_constraint c \
             join pg_catalog.pg_class f on f.oid = c.conrelid \
             join pg_catalog.pg_namespace fn on fn.oid = f.relnamespace \
             join pg_catalog.pg_class t on t.oid = c.confrelid \
             join pg_catalog.pg_namespace tn on tn.oid = t.relnamespace \
             where c.contype = 'f' and (fn.nspname || '.' || f.relname = any($1) \
               or tn.nspname || '.' || t.relname = any($1))",
            &[&names],
        )
        .await
        .map_err(DbError)?;
    let mut all = tables.clone();
    for row in rows {
        for name in [row.get::<_, String>(0), row.get(1)] {
            if sizes.get(&name).is_some_and(|s| s.holds_rows()) {
                all.insert(name);
            }
        }
    }
    Ok(all)
}

/// Which of `tables` the production role cannot read in full, with the grant to add.
pub async fn unreadable(session: &ReadOnly, tables: &BTreeSet<String>) -> Vec<NotCopied> {
    let mut out = Vec::new();
    for table in tables {
        let regclass = quote_literal(&quote_relation(table));
        let query = format!(
            "select pg_catalog.has_table_privilege({regclass}::regclass, 'select'), \
             pg_catalog.row_security_active({regclass}::regclass), current_user::text"
        );
        let grant = |user: &str, select: bool| {
            let user = crate::sql::quote::quote_ident_if_needed(user);
            match select {
                false => format!(
                    "grant select on {} to {user} (or grant pg_read_all_data to {user}), and \
                     alter role {user} bypassrls",
                    quote_relation(table)
                ),
                true => {
                    format!("alter role {user} bypassrls: row-level security hides rows from it")
                }
            }
        };
        match session.bounded_query(&query).await {
            Ok(Some(rows)) if !rows.is_empty() => {
                let (select, hidden, user): (bool, bool, String) =
                    (rows[0].get(0), rows[0].get(1), rows[0].get(2));
                if !select || hidden {
                    out.push(NotCopied::Unreadable {
                        table: table.clone(),
                        grant: grant(&user, select),
                    });
                }
            }
            Ok(_) => out.push(NotCopied::ReadFailed {
                table: table.clone(),
                why: "the privilege check ran past gate.statement_timeout".to_owned(),
            }),
            Err(why) => out.push(NotCopied::ReadFailed {
                table: table.clone(),
                why: why.to_string(),
            }),
        }
    }
    out
}

/// The tables over the budget, when their sum is: all of them, largest first.
pub fn over_budget(tables: &BTreeSet<String>, sizes: &Sizes, budget: i64) -> Vec<NotCopied> {
    let total: i64 = tables
        .iter()
        .filter_map(|t| sizes.get(t))
        .map(|s| s.bytes.max(0))
        .sum();
    if total <= budget {
        return Vec::new();
    }
    let mut by_size: Vec<(&String, i64)> = tables
        .iter()
        .map(|t| (t, sizes.get(t).map_or(0, |s| s.bytes)))
        .collect();
    by_size.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    by_size
        .into_iter()
        .map(|(table, _)| NotCopied::OverBudget {
            table: table.clone(),
            bytes: total,
            budget,
        })
        .collect()
}

/// The columns a copy carries: every stored column (generated ones are computed again).
async fn columns(session: &ReadOnly, table: &str) -> Result<Vec<String>, CopyError> {
    let rows = session
        .bounded_query(&format!(
            "select a.attname::text from pg_catalog.pg_attribute a \
             where a.attrelid = {}::regclass and a.attnum > 0 and not a.attisdropped \
             and a.attgenerated = '' order by a.attnum",
            quote_literal(&quote_relation(table))
        ))
        .await
        .map_err(CopyError::Read)?
        .ok_or(CopyError::ColumnsTimeout)?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Copies `tables`' rows from production into `rehearsal` (triggers and foreign-key checks
/// off while loading: the rows are production's as they are), then moves each owned
/// sequence past the copied values. Returns the rows copied per table.
pub async fn copy(
    session: &ReadOnly,
    rehearsal: &Client,
    tables: &BTreeSet<String>,
) -> Result<BTreeMap<String, u64>, NotCopied> {
    let mut copied = BTreeMap::new();
    rehearsal
        .batch_execute("set session_replication_role = replica")
        .await
        .map_err(|e| NotCopied::ReadFailed {
            table: tables.iter().next().cloned().unwrap_or_default(),
            why: format!("load the rehearsal: {}", db_error_text(&e)),
        })?;
    for table in tables {
        let failed = |why: CopyError| NotCopied::ReadFailed {
            table: table.clone(),
            why: why.to_string(),
        };
        let columns = columns(session, table).await.map_err(failed)?;
        let list = columns
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        let relation = quote_relation(table);
        let rows = copy_one(
            session,
            rehearsal,
            &format!("copy (select {list} from only {relation}) to stdout"),
            &format!("copy {relation} ({list}) from stdin"),
        )
        .await
        .map_err(failed)?;
        copied.insert(table.clone(), rows);
    }
    let names: Vec<String> = tables.iter().map(|t| quote_relation(t)).collect();
    let settle = format!(
        "reset session_replication_role; \
         do $db_ci$ declare r record; m bigint; begin \
         for r in select d.objid::regclass as seq, d.refobjid::regclass as tbl, a.attname \
           from pg_catalog.pg_depend d \
           join pg_catalog.pg_class s on s.oid = d.objid and s.relkind = 'S' \
           join pg_catalog.pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid \
           where d.classid = 'pg_catalog.pg_class'::regclass and d.deptype in ('a', 'i') \
             and d.refobjid = any(array[{}]::regclass[]) \
         loop execute format('select max(%I)::bigint from %s', r.attname, r.tbl) into m; \
           if m is not null then perform pg_catalog.setval(r.seq, m); end if; \
         end loop; end $db_ci$",
        names
            .iter()
            .map(|n| quote_literal(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    rehearsal
        .batch_execute(&settle)
        .await
        .map_err(|e| NotCopied::ReadFailed {
            table: tables.iter().next().cloned().unwrap_or_default(),
            why: format!("set the rehearsal's sequences: {}", db_error_text(&e)),
        })?;
    Ok(copied)
}

/// One table: production's `COPY … TO` streamed into the rehearsal's `COPY … FROM`, under a
/// savepoint so that a failed or timed-out read leaves production's transaction usable.
async fn copy_one(
    session: &ReadOnly,
    rehearsal: &Client,
    out: &str,
    into: &str,
) -> Result<u64, CopyError> {
    let prod = session.client();
    // A table's copy may take longer than one catalog query: the budget bounds its size.
    let timeout = session.statement_timeout.max(COPY_TIMEOUT);
    prod.batch_execute(&format!(
        "savepoint db_ci_copy; set local statement_timeout = {}",
        quote_literal(&format!("{}ms", timeout.as_millis()))
    ))
    .await
    .map_err(|e| CopyError::Read(e.into()))?;
    let result = async {
        let stream = prod
            .copy_out(out)
            .await
            .map_err(|e| read_error(e, session))?;
        let sink = rehearsal.copy_in(into).await.map_err(CopyError::Load)?;
        futures_util::pin_mut!(stream);
        futures_util::pin_mut!(sink);
        let load = CopyError::Load;
        // Production sends a message per row: sent on one by one (a flush each), a million
        // rows took a minute. Gathered into large messages, never flushed before the end.
        let mut batch = Vec::with_capacity(COPY_BATCH);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| read_error(e, session))?;
            batch.extend_from_slice(&chunk);
            if batch.len() >= COPY_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(COPY_BATCH));
                sink.feed(VecDeque::from(full)).await.map_err(load)?;
            }
        }
        if !batch.is_empty() {
            sink.feed(VecDeque::from(batch)).await.map_err(load)?;
        }
        sink.as_mut().finish().await.map_err(CopyError::Load)
    }
    .await;
    let _ = prod.batch_execute("rollback to savepoint db_ci_copy").await;
    result
}

/// How many bytes of rows go to the rehearsal in one message.
const COPY_BATCH: usize = 256 * 1024;

/// The least time a table's copy may take on production.
const COPY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Why a table's rows did not reach the rehearsal.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the read ran past {}", humantime::format_duration(*.0))]
    ReadTimeout(std::time::Duration),
    #[error("{0}")]
    Read(DbError),
    #[error("load the rehearsal: {}", db_error_text(.0))]
    Load(tokio_postgres::Error),
    #[error("reading its columns ran past gate.statement_timeout")]
    ColumnsTimeout,
}

fn read_error(e: tokio_postgres::Error, session: &ReadOnly) -> CopyError {
    if e.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) {
        CopyError::ReadTimeout(session.statement_timeout.max(COPY_TIMEOUT))
    } else {
        CopyError::Read(e.into())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::judge::Size;
    use super::*;

    fn statement(text: &str, locks: &[&str]) -> StatementTrace {
        StatementTrace {
            file: "migrations/0030_x.sql".into(),
            line: 1,
            text: text.into(),
            full: text.into(),
            locks: locks
                .iter()
                .map(|r| ("AccessShareLock".to_owned(), r.to_string(), 'r'))
                .collect(),
            rewritten: Vec::new(),
            indexes_built: Vec::new(),
            dropped: Vec::new(),
            duration: Duration::ZERO,
            held: Duration::ZERO,
            lock_timeout_set: false,
        }
    }

    fn sizes() -> Sizes {
        [
            ("public.messages", 1000.0, 80_000),
            ("public.rooms", 10.0, 8192),
            ("public.empty", 0.0, 0),
        ]
        .into_iter()
        .map(|(n, rows, bytes)| (n.to_owned(), Size { rows, bytes }))
        .collect()
    }

    #[test]
    fn touched_tables_are_the_locked_ones_that_hold_rows() {
        let traced = [
            statement(
                "do $$ begin update messages set x = 1; end $$",
                &["public.messages"],
            ),
            statement("select 1", &["public.empty", "public.new_table"]),
            // No lock seen (outside a transaction): the statement names its table.
            statement(
                "create unique index concurrently r on public.rooms (name)",
                &[],
            ),
        ];
        assert_eq!(
            touched(&traced, &sizes()).into_iter().collect::<Vec<_>>(),
            ["public.messages", "public.rooms"]
        );
    }

    #[test]
    fn the_budget_is_for_all_tables_together() {
        let tables: BTreeSet<String> = ["public.messages".to_owned(), "public.rooms".to_owned()]
            .into_iter()
            .collect();
        assert!(over_budget(&tables, &sizes(), 100_000).is_empty());
        let over = over_budget(&tables, &sizes(), 50_000);
        assert_eq!(over.len(), 2);
        assert_eq!(over[0].table(), "public.messages");
        assert!(
            over[0].message().contains("over gate.copy_budget_mb"),
            "{}",
            over[0].message()
        );
    }
}
