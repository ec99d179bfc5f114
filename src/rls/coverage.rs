//! Coverage: which commands of each exposed table or view no cell checks.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::detail::{Coverage, CoverageRow};
use crate::catalog::{Relation, Which};
use crate::error::Result;
use crate::policy_tests::cases::Operation;

/// The tables, views and materialized views of `schemas` a project made (extension members
/// excluded), with the commands each supports.
pub async fn exposed_relations(client: &Client, schemas: &[String]) -> Result<Vec<Relation>> {
    crate::catalog::relations(client, Which::MadeIn(schemas), "the exposed tables").await
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
            seen[i] = covered.contains(&(relation.name.to_string(), *operation));
            if applies[i] {
                total += 1;
                hit += usize::from(seen[i]);
            } else if !seen[i] {
                not_applicable.push(operation.as_str().to_owned());
            }
        }
        let [select, insert, update, delete] = seen;
        rows.push(CoverageRow {
            table: relation.name.to_string(),
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
    use crate::sql::kinds::RelationKind;

    #[test]
    fn nothing_exposed_is_not_full_coverage() {
        let c = coverage(&[], &BTreeSet::new(), Some(80.0));
        assert_eq!(c.percent, 0.0);
        assert!(c.tables.is_empty());
    }

    #[test]
    fn coverage_counts_each_table_command_pair() {
        let relation = |name: &str, kind, writable| Relation {
            name: crate::catalog::QualifiedName::new("public", name),
            kind,
            writable,
            primary_key: Vec::new(),
        };
        let table = |name: &str| relation(name, RelationKind::Table, [true; 3]);
        let matview = relation("m", RelationKind::MaterializedView, [false; 3]);
        let relations = vec![table("a"), table("b"), matview];
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
