//! materialized_view_in_api (splinter, warn): a materialized view in an exposed schema that
//! anon or authenticated can select. A materialized view has no RLS: every row it holds is
//! served to every caller with the grant.

use super::{api_reachable, Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "materialized_view_in_api",
    level: Level::Warn,
    why: "materialized views cannot have row level security: the API serves all their rows to anyone with SELECT",
    remediation: "REVOKE SELECT ON … FROM anon, authenticated (read it through a function that filters), or move it to a schema the API does not expose",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    catalog
        .views
        .iter()
        .filter(|v| v.materialized && scope.exposed(&v.schema))
        .filter(|v| api_reachable(&v.grants, &["SELECT"]))
        .map(|v| Finding {
            object: v.qualified(),
            detail: "the API roles can select every row of this materialized view".into(),
            anchor: Anchor {
                kind: "view",
                name: v.name.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_selectable_materialized_views_only() {
        let mut catalog = catalog(vec![]);
        let mut exposed_matview = view("stats", false, &[]);
        exposed_matview.materialized = true;
        let mut revoked = view("private_stats", false, &[]);
        revoked.materialized = true;
        revoked.grants = vec![grant("service_role", &["SELECT"])];
        catalog.views = vec![exposed_matview, revoked, view("plain", true, &[])];
        let found = findings(check, &catalog);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.stats");
    }
}
