//! duplicate_index (splinter, warn): two indexes of one table with the same definition: every
//! write maintains both, queries use one.

use std::collections::BTreeMap;

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "duplicate_index",
    level: Level::Warn,
    why: "identical indexes double the write cost and the disk space for no read benefit",
    remediation:
        "DROP INDEX the copies, keeping one (often a re-run of an unnamed CREATE INDEX made them)",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for table in catalog.project_tables() {
        let mut by_shape: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for index in &table.indexes {
            by_shape.entry(&index.shape).or_default().push(&index.name);
        }
        for names in by_shape.values().filter(|n| n.len() > 1) {
            found.push(Finding {
                object: format!("{}.{}", table.schema, names.join(",")),
                detail: format!(
                    "indexes {} on {} are identical",
                    names.join(", "),
                    table.qualified()
                ),
                anchor: Anchor {
                    kind: "index",
                    name: names[names.len() - 1].to_owned(),
                },
            });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;
    use crate::snapshot::model::Index;

    fn index(name: &str, shape: &str) -> Index {
        Index {
            name: name.into(),
            definition: String::new(),
            columns: vec![2],
            partial: false,
            shape: shape.into(),
        }
    }

    #[test]
    fn flags_identical_indexes() {
        let mut t = table("t");
        t.indexes = vec![
            index("t_a_idx", "CREATE INDEX ON public.t USING btree (a)"),
            index("t_a_idx1", "CREATE INDEX ON public.t USING btree (a)"),
            index("t_b_idx", "CREATE INDEX ON public.t USING btree (b)"),
        ];
        let found = findings_with_nothing_exposed(check, &catalog(vec![t]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.t_a_idx,t_a_idx1");
    }
}
