//! security_definer_view (splinter, error): a view the API roles can select runs with its
//! owner's rights (no `security_invoker`) over tables protected by RLS, bypassing it.

use super::{api_reachable, Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "security_definer_view",
    level: Level::Error,
    why: "a view runs as its owner unless security_invoker is on; owned by postgres it reads past the RLS of the tables below it",
    remediation: "ALTER VIEW … SET (security_invoker = true) (PostgreSQL 15+), or revoke SELECT from anon and authenticated",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    catalog
        .views
        .iter()
        .filter(|v| !v.materialized && !v.security_invoker && scope.exposed(&v.schema))
        .filter(|v| api_reachable(&v.grants, &["SELECT"]))
        .filter_map(|v| {
            let protected: Vec<&str> =
                v.reads.iter().filter(|(_, rls)| *rls).map(|(n, _)| n.as_str()).collect();
            (!protected.is_empty()).then(|| Finding {
                object: v.qualified(),
                detail: format!(
                    "the API roles can select it and it runs as its owner ({}) over RLS-protected {}",
                    v.owner,
                    protected.join(", ")
                ),
                anchor: Anchor { kind: "view", name: v.name.clone() },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_owner_rights_views_over_rls_tables() {
        let mut catalog = catalog(vec![]);
        catalog.views = vec![
            view("leaky", false, &[("public.profiles", true)]),
            view("invoker", true, &[("public.profiles", true)]),
            view("plain", false, &[("public.tags", false)]),
        ];
        let found = findings(check, &catalog);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.leaky");
    }
}
