//! no_primary_key (splinter, info): a table without a primary key: rows cannot be addressed
//! one by one (PostgREST updates, logical replication, realtime).

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;
use crate::sql::kinds::{ConstraintKind, TableKind};

pub static RULE: Rule = Rule {
    id: "no_primary_key",
    level: Level::Info,
    why: "without a primary key rows have no stable identity: duplicates creep in, and replication and realtime cannot identify updated rows",
    remediation: "ALTER TABLE … ADD PRIMARY KEY (…)",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    catalog
        .project_tables()
        .filter(|t| t.kind != TableKind::Foreign && t.partition_of.is_none())
        .filter(|t| {
            !t.constraints
                .iter()
                .any(|c| c.kind == ConstraintKind::PrimaryKey)
        })
        .map(|t| Finding {
            object: t.qualified(),
            detail: "the table has no primary key".into(),
            anchor: Anchor {
                kind: "table",
                name: t.name.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_tables_without_primary_key() {
        let mut bare = table("bare");
        bare.constraints.clear();
        let found = findings_with_nothing_exposed(check, &catalog(vec![bare, table("keyed")]));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.bare");
    }
}
