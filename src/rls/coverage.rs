//! Coverage: which commands of each exposed table or view no cell checks.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::policy_tests::cases::Operation;
use crate::report::{Coverage, CoverageRow};
use crate::sql::catalog::not_extension_member;
use crate::sql::db_error_text;

/// An exposed relation and the commands it supports.
#[derive(Debug, Clone)]
pub struct Relation {
    /// `schema.table`
    pub name: String,
    /// insert, update, delete supported (select always is).
    pub writable: [bool; 3],
}

/// The tables, views and materialized views of `schemas` a project made (extension members
/// excluded), with the commands each supports (`pg_relation_is_updatable`).
pub async fn exposed_relations(client: &Client, schemas: &[String]) -> Result<Vec<Relation>> {
    let rows = client
        .query(
            &format!(
                "select n.nspname::text || '.' || c.relname::text, pg_catalog.pg_relation_is_updatable(c.oid, true) \
                 from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
                 where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any($1) and {} \
                 order by 1",
                not_extension_member("pg_class", "c.oid")
            ),
            &[&schemas],
        )
        .await
        .map_err(|e| Error::environment(format!("list the exposed tables: {}", db_error_text(&e))))?;
    // pg_relation_is_updatable's bits: 1 << CMD_UPDATE(2), 1 << CMD_INSERT(3), 1 << CMD_DELETE(4).
    Ok(rows
        .iter()
        .map(|r| {
            let bits: i32 = r.get(1);
            Relation {
                name: r.get(0),
                writable: [bits & 8 != 0, bits & 4 != 0, bits & 16 != 0],
            }
        })
        .collect())
}

/// Coverage of `relations` by the (target, operation) pairs that have at least one cell.
pub fn coverage(
    relations: &[Relation],
    covered: &BTreeSet<(String, Operation)>,
    minimum: Option<f64>,
) -> Coverage {
    let mut rows = Vec::new();
    let (mut total, mut hit) = (0, 0);
    for relation in relations {
        let applies = [
            true,
            relation.writable[0],
            relation.writable[1],
            relation.writable[2],
        ];
        let mut seen = [false; 4];
        let mut not_applicable = Vec::new();
        for (i, operation) in Operation::TABLE_OPERATIONS.iter().enumerate() {
            seen[i] = covered.contains(&(relation.name.clone(), *operation));
            if applies[i] {
                total += 1;
                hit += usize::from(seen[i]);
            } else if !seen[i] {
                not_applicable.push(operation.as_str().to_owned());
            }
        }
        let [select, insert, update, delete] = seen;
        rows.push(CoverageRow {
            table: relation.name.clone(),
            select,
            insert,
            update,
            delete,
            not_applicable,
        });
    }
    Coverage {
        tables: rows,
        // Nothing exposed is nothing measured: never a 100% that a minimum would accept.
        percent: if total == 0 {
            0.0
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
    fn nothing_exposed_is_not_full_coverage() {
        let c = coverage(&[], &BTreeSet::new(), Some(80.0));
        assert_eq!(c.percent, 0.0);
        assert!(c.tables.is_empty());
    }

    #[test]
    fn coverage_counts_each_table_command_pair() {
        let table = |name: &str| Relation {
            name: name.to_owned(),
            writable: [true; 3],
        };
        let matview = Relation {
            name: "public.m".to_owned(),
            writable: [false; 3],
        };
        let relations = vec![table("public.a"), table("public.b"), matview];
        let covered: BTreeSet<_> = [
            ("public.a".to_owned(), Operation::Select),
            ("public.a".to_owned(), Operation::Insert),
            ("public.z".to_owned(), Operation::Select),
        ]
        .into_iter()
        .collect();
        let c = coverage(&relations, &covered, Some(50.0));
        // 2 of 9 applicable pairs: the materialized view counts for select only.
        assert_eq!(c.percent, 22.2);
        assert_eq!(
            c.tables[2].not_applicable,
            vec!["insert", "update", "delete"]
        );
        assert!(c.tables[0].select && c.tables[0].insert && !c.tables[0].update);
        assert!(!c.tables[1].select);
    }
}
