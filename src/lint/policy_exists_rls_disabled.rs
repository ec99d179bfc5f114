//! policy_exists_rls_disabled (splinter, error): policies were written but row level security
//! is off on their table, so they are ignored.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "policy_exists_rls_disabled",
    level: Level::Error,
    why: "policies only apply when RLS is enabled: the table looks protected in review but is not",
    remediation: "ALTER TABLE … ENABLE ROW LEVEL SECURITY (or drop the unused policies)",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    catalog
        .tables
        .iter()
        .filter(|t| !t.rls && !t.policies.is_empty())
        .map(|t| Finding {
            object: t.qualified(),
            detail: format!(
                "{} polic{} ({}) but row level security is disabled",
                t.policies.len(),
                if t.policies.len() == 1 { "y" } else { "ies" },
                t.policies
                    .iter()
                    .map(|p| format!("{:?}", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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
    fn flags_policies_on_a_table_without_rls() {
        let mut off = table("off");
        off.rls = false;
        off.policies
            .push(policy("own", "select", &["authenticated"], Some("true")));
        let mut on = table("on");
        on.policies
            .push(policy("own", "select", &["authenticated"], Some("true")));
        let catalog = catalog(vec![off, on]);
        let found = findings_with_nothing_exposed(check, &catalog);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.off");
    }
}
