//! A fingerprint of the rows in user tables, tolerant of clock values: what idempotence
//! compares after pass 1 and pass 2.

use std::collections::BTreeMap;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::error::{Error, Result};
use crate::sql::catalog::{not_extension_member, SYSTEM_SCHEMA_FILTER};
use crate::sql::{db_error_text, quote_ident};

/// Schemas whose rows are bookkeeping, not data: the migration ledger and the pg_net stub's
/// request queue (a webhook trigger fired twice is not a seed that changed data).
const BOOKKEEPING_SCHEMAS: &[&str] = &["supabase_migrations", "net", "cron"];

/// Rows of one table. Clock columns (timestamps, dates) hold epoch seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    pub columns: Vec<String>,
    pub clock: Vec<bool>,
    pub rows: Vec<Vec<Option<String>>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataFingerprint {
    /// `schema.table` → rows.
    pub tables: BTreeMap<String, TableRows>,
}

struct TableSpec {
    name: String,
    columns: Vec<String>,
    clock: Vec<bool>,
    key: Vec<String>,
}

impl DataFingerprint {
    pub async fn read(client: &Client) -> Result<DataFingerprint> {
        let bookkeeping = BOOKKEEPING_SCHEMAS
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let member = not_extension_member("pg_class", "c.oid");
        let specs_sql = format!(
            "select quote_ident(n.nspname) || '.' || quote_ident(c.relname), \
                    array_agg(a.attname::text order by a.attnum), \
                    array_agg((t.typname in ('timestamp', 'timestamptz', 'date'))::text order by a.attnum), \
                    (select array_agg(ka.attname::text order by k.ord) \
                       from pg_index i, unnest(i.indkey) with ordinality k(attnum, ord) \
                       join pg_attribute ka on ka.attnum = k.attnum \
                      where i.indrelid = c.oid and i.indisprimary and ka.attrelid = c.oid) \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped \
             join pg_type t on t.oid = a.atttypid \
             where c.relkind = 'r' and {SYSTEM_SCHEMA_FILTER} and n.nspname not in ({bookkeeping}) \
               and {member} \
             group by n.nspname, c.relname, c.oid order by 1"
        );
        let rows = client
            .query(&specs_sql, &[])
            .await
            .map_err(|e| Error::environment(format!("list user tables: {}", db_error_text(&e))))?;
        let specs: Vec<TableSpec> = rows
            .iter()
            .map(|row| {
                let clock: Vec<String> = row.get(2);
                TableSpec {
                    name: row.get(0),
                    columns: row.get(1),
                    clock: clock.iter().map(|c| c == "true").collect(),
                    key: row.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
                }
            })
            .collect();
        if specs.is_empty() {
            return Ok(DataFingerprint::default());
        }

        let batch: String = specs
            .iter()
            .map(|spec| format!("{};", select_for(spec)))
            .collect();
        let messages = client.simple_query(&batch).await.map_err(|e| {
            Error::environment(format!("read user table rows: {}", db_error_text(&e)))
        })?;
        let mut tables = BTreeMap::new();
        let mut specs_iter = specs.into_iter();
        let mut current = Vec::new();
        for message in messages {
            match message {
                SimpleQueryMessage::Row(row) => {
                    current.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_owned))
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(_) => {
                    if let Some(spec) = specs_iter.next() {
                        tables.insert(
                            spec.name,
                            TableRows {
                                columns: spec.columns,
                                clock: spec.clock,
                                rows: std::mem::take(&mut current),
                            },
                        );
                    }
                }
                _ => {}
            }
        }
        Ok(DataFingerprint { tables })
    }

    /// Differences from `self` (after pass 1) to `after` (after pass 2). Clock values may move
    /// forward by at most `max_clock_shift` seconds: a row stamped with `now()` (or
    /// `now() - interval …`) in both passes is the same row.
    pub fn diff(&self, after: &DataFingerprint, max_clock_shift: f64) -> Vec<TableChange> {
        let mut changes = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            self.tables.keys().chain(after.tables.keys()).collect();
        for name in names {
            let (Some(a), Some(b)) = (self.tables.get(name), after.tables.get(name)) else {
                continue; // a table that appeared or vanished is a catalog difference
            };
            if a.columns != b.columns {
                continue; // likewise
            }
            if a.rows.len() != b.rows.len() {
                changes.push(TableChange {
                    table: name.clone(),
                    summary: format!(
                        "{} rows after pass 1, {} after pass 2",
                        a.rows.len(),
                        b.rows.len()
                    ),
                    sample: sample_extra_rows(a, b),
                });
                continue;
            }
            for (row_a, row_b) in a.rows.iter().zip(&b.rows) {
                if let Some(column) = first_difference(a, row_a, row_b, max_clock_shift) {
                    changes.push(TableChange {
                        table: name.clone(),
                        summary: format!(
                            "column {} changed from {} to {}",
                            a.columns[column],
                            show(&row_a[column]),
                            show(&row_b[column])
                        ),
                        sample: vec![
                            format!("pass 1: {}", render_row(a, row_a)),
                            format!("pass 2: {}", render_row(a, row_b)),
                        ],
                    });
                    break;
                }
            }
        }
        changes
    }
}

/// A row may be compared to another; `None` if equal up to clock shifts.
fn first_difference(
    table: &TableRows,
    a: &[Option<String>],
    b: &[Option<String>],
    max_clock_shift: f64,
) -> Option<usize> {
    (0..a.len()).find(|&i| {
        if table.clock[i] {
            match (&a[i], &b[i]) {
                (None, None) => false,
                (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => !(0.0..=max_clock_shift).contains(&(y - x)),
                    _ => x != y,
                },
                _ => true,
            }
        } else {
            a[i] != b[i]
        }
    })
}

fn show(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("'{v}'"),
        None => "NULL".to_owned(),
    }
}

fn render_row(table: &TableRows, row: &[Option<String>]) -> String {
    let mut parts = Vec::new();
    for (i, column) in table.columns.iter().enumerate() {
        if table.clock[i] {
            continue;
        }
        parts.push(format!("{column}={}", show(&row[i])));
        if parts.len() == 6 {
            parts.push("…".to_owned());
            break;
        }
    }
    format!("({})", parts.join(", "))
}

/// Up to three rows present in one pass's data and not the other, ignoring clock columns.
fn sample_extra_rows(a: &TableRows, b: &TableRows) -> Vec<String> {
    let strip = |row: &Vec<Option<String>>| -> Vec<Option<String>> {
        row.iter()
            .enumerate()
            .filter(|(i, _)| !a.clock[*i])
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut pool: Vec<Vec<Option<String>>> = a.rows.iter().map(strip).collect();
    let mut extra = Vec::new();
    for row in &b.rows {
        let key = strip(row);
        if let Some(pos) = pool.iter().position(|r| *r == key) {
            pool.swap_remove(pos);
        } else if extra.len() < 3 {
            extra.push(format!("only after pass 2: {}", render_row(b, row)));
        }
    }
    for row in pool.iter().take(3usize.saturating_sub(extra.len())) {
        let full: Vec<Option<String>> = row.clone();
        let shown: Vec<String> = a
            .columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !a.clock[*i])
            .zip(full.iter())
            .map(|((_, c), v)| format!("{c}={}", show(v)))
            .take(6)
            .collect();
        extra.push(format!("only after pass 1: ({})", shown.join(", ")));
    }
    extra
}

fn select_for(spec: &TableSpec) -> String {
    let exprs: Vec<String> = spec
        .columns
        .iter()
        .zip(&spec.clock)
        .map(|(column, clock)| {
            let c = quote_ident(column);
            if *clock {
                format!("extract(epoch from {c})::text")
            } else {
                format!("{c}::text")
            }
        })
        .collect();
    let order: Vec<String> = if spec.key.is_empty() {
        // No primary key: order by the stable columns first, clock columns last.
        let (stable, clock): (Vec<_>, Vec<_>) =
            (1..=spec.columns.len()).partition(|i| !spec.clock[i - 1]);
        stable
            .into_iter()
            .chain(clock)
            .map(|i| i.to_string())
            .collect()
    } else {
        spec.key.iter().map(|k| quote_ident(k)).collect()
    };
    format!(
        "select {} from {} order by {}",
        exprs.join(", "),
        spec.name,
        order.join(", ")
    )
}

/// One table whose rows differ between the passes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    pub table: String,
    pub summary: String,
    pub sample: Vec<String>,
}
