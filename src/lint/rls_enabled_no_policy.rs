//! rls_enabled_no_policy (splinter, info): RLS is on but no policy exists, so the API roles
//! see nothing: often a forgotten policy rather than a deliberate lock.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "rls_enabled_no_policy",
    level: Level::Info,
    why: "with RLS on and no policy every API query returns no rows and every write is denied",
    remediation: "add the policies the table needs, or document that only service_role uses it",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    catalog
        .project_tables()
        .filter(|t| scope.exposed(&t.schema) && t.rls && t.policies.is_empty())
        .map(|t| Finding {
            object: t.qualified(),
            detail: "row level security is enabled but the table has no policy".into(),
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
    fn flags_rls_without_policies() {
        let mut with_policy = table("with_policy");
        with_policy
            .policies
            .push(policy("p", "select", &["anon"], Some("true")));
        let catalog = catalog(vec![table("locked"), with_policy]);
        let found = findings(check, &catalog);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.locked");
    }
}
