//! auth_users_exposed (splinter, error): a view or materialized view the API roles can select
//! reads `auth.users` with its owner's rights: emails and metadata of every user leak.

use super::{api_reachable, Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "auth_users_exposed",
    level: Level::Error,
    why: "auth.users holds every user's email, phone and metadata; a view over it served by the API hands them to anyone with the anon key",
    remediation: "revoke SELECT on the view from anon and authenticated, set security_invoker = true, or move it out of the exposed schemas",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    catalog
        .views
        .iter()
        .filter(|v| scope.exposed(&v.schema) && (v.materialized || !v.security_invoker))
        .filter(|v| v.reads.iter().any(|(name, _)| name == "auth.users"))
        .filter(|v| api_reachable(&v.grants, &["SELECT"]))
        .map(|v| Finding {
            object: v.qualified(),
            detail: "reads auth.users with its owner's rights and the API roles can select it"
                .into(),
            anchor: Anchor {
                kind: if v.materialized {
                    "materialized view"
                } else {
                    "view"
                },
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
    fn flags_views_over_auth_users() {
        let mut catalog = catalog(vec![]);
        let mut revoked = view("revoked", false, &[("auth.users", false)]);
        revoked.grants.clear();
        catalog.views = vec![
            view("users_view", false, &[("auth.users", false)]),
            view("invoker", true, &[("auth.users", false)]),
            revoked,
        ];
        let found = findings(check, &catalog);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.users_view");
    }
}
