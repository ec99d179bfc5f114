//! unindexed_foreign_keys (splinter, info): a foreign key whose columns lead no index, so
//! deletes on the referenced table and joins scan the whole table.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;
use crate::sql::kinds::ConstraintKind;

pub static RULE: Rule = Rule {
    id: "unindexed_foreign_keys",
    level: Level::Info,
    why: "without an index on the referencing columns every delete or key update on the referenced table scans this table, and joins along the key are slow",
    remediation: "CREATE INDEX ON <table> (<foreign key columns>)",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for table in catalog.project_tables() {
        for fk in table
            .constraints
            .iter()
            .filter(|c| c.kind == ConstraintKind::ForeignKey)
        {
            let mut wanted = fk.columns.clone();
            wanted.sort();
            let covered = table.indexes.iter().any(|index| {
                index.columns.len() >= wanted.len() && {
                    let mut lead = index.columns[..wanted.len()].to_vec();
                    lead.sort();
                    lead == wanted
                }
            });
            if !covered {
                found.push(Finding {
                    object: format!("{}.{}", table.qualified(), fk.name),
                    detail: format!("no index leads with the columns of {}", fk.definition),
                    anchor: Anchor {
                        kind: "table",
                        name: table.name.clone(),
                    },
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;
    use crate::snapshot::model::{Constraint, Index};

    fn fk(name: &str, columns: Vec<i16>) -> Constraint {
        Constraint {
            name: name.into(),
            kind: ConstraintKind::ForeignKey,
            definition: "FOREIGN KEY (x) REFERENCES public.p(id)".into(),
            columns,
            references: Some("public.p".into()),
        }
    }

    #[test]
    fn flags_foreign_keys_no_index_leads_with() {
        let mut t = table("t");
        t.constraints.push(fk("t_a_fkey", vec![2]));
        t.constraints.push(fk("t_b_fkey", vec![3]));
        t.indexes.push(Index {
            name: "t_b_c_idx".into(),
            definition: String::new(),
            columns: vec![3, 4],
            partial: false,
            shape: String::new(),
        });
        let found = findings_with_nothing_exposed(check, &catalog(vec![t]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.t.t_a_fkey");
    }
}
