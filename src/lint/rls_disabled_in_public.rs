//! rls_disabled_in_public (splinter, error): a table in an exposed schema that the API roles
//! can reach has row level security off, so every row is theirs to read and write.

use super::{api_reachable, Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "rls_disabled_in_public",
    level: Level::Error,
    why: "PostgREST serves this table to anon and authenticated, and without RLS the grants are the only check: anyone with the anon key reads and writes every row",
    remediation: "ALTER TABLE … ENABLE ROW LEVEL SECURITY and add policies, or REVOKE the API roles' privileges",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    catalog
        .project_tables()
        .filter(|t| scope.exposed(&t.schema) && !t.rls && api_reachable(&t.grants, &[]))
        .map(|t| Finding {
            object: t.qualified(),
            detail: "row level security is disabled on a table the API roles can reach".into(),
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
    fn flags_an_exposed_table_without_rls_only() {
        let mut open = table("open");
        open.rls = false;
        let mut revoked = table("revoked");
        revoked.rls = false;
        revoked.grants.retain(|g| g.grantee == "service_role");
        let catalog = catalog(vec![open, revoked, table("guarded")]);
        let found = findings(check, &catalog);
        assert_eq!(
            found.iter().map(|f| f.object.as_str()).collect::<Vec<_>>(),
            ["public.open"]
        );
        assert!(findings_with_nothing_exposed(check, &catalog).is_empty());
    }
}
