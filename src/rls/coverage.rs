//! Coverage: which commands of each exposed table or view no cell checks.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::spec::Operation;
use crate::backend::db_error_text;
use crate::error::{Error, Result};
use crate::report::{Coverage, CoverageRow};

/// The tables, views and materialized views of `schemas` a project made (extension members
/// and the platform's own objects excluded), as `schema.table`.
pub async fn exposed_relations(client: &Client, schemas: &[String]) -> Result<Vec<String>> {
    let rows = client
        .query(
            "select n.nspname::text || '.' || c.relname::text \
             from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any($1) \
               and not exists (select 1 from pg_catalog.pg_depend d \
                               where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e') \
             order by 1",
            &[&schemas],
        )
        .await
        .map_err(|e| Error::environment(format!("list the exposed tables: {}", db_error_text(&e))))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Coverage of `relations` by the (target, operation) pairs that have at least one cell.
pub fn coverage(
    relations: &[String],
    covered: &BTreeSet<(String, Operation)>,
    minimum: Option<f64>,
) -> Coverage {
    let mut by_table: BTreeMap<&str, [bool; 4]> = BTreeMap::new();
    for relation in relations {
        let mut row = [false; 4];
        for (i, operation) in Operation::TABLE_OPERATIONS.iter().enumerate() {
            row[i] = covered.contains(&(relation.clone(), *operation));
        }
        by_table.insert(relation, row);
    }
    let total = by_table.len() * 4;
    let hit: usize = by_table
        .values()
        .map(|r| r.iter().filter(|b| **b).count())
        .sum();
    Coverage {
        tables: by_table
            .into_iter()
            .map(|(table, [select, insert, update, delete])| CoverageRow {
                table: table.to_owned(),
                select,
                insert,
                update,
                delete,
            })
            .collect(),
        percent: if total == 0 {
            100.0
        } else {
            (hit as f64 * 1000.0 / total as f64).round() / 10.0
        },
        minimum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_counts_each_table_command_pair() {
        let relations = vec!["public.a".to_owned(), "public.b".to_owned()];
        let covered: BTreeSet<_> = [
            ("public.a".to_owned(), Operation::Select),
            ("public.a".to_owned(), Operation::Insert),
            ("public.z".to_owned(), Operation::Select),
        ]
        .into_iter()
        .collect();
        let c = coverage(&relations, &covered, Some(50.0));
        assert_eq!(c.percent, 25.0);
        assert!(c.tables[0].select && c.tables[0].insert && !c.tables[0].update);
        assert!(!c.tables[1].select);
    }
}
