//! rls_policy_always_true (splinter, warn): a permissive write policy for the API roles whose
//! USING or WITH CHECK is literally `true`: RLS is on but lets every write through.

use super::{per_policy, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "rls_policy_always_true",
    level: Level::Warn,
    why: "a write policy that is always true lets any anon or authenticated caller insert, change or delete every row",
    remediation: "restrict the policy (e.g. `auth.uid() = user_id`) or limit it to service_role",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    let is_true = |e: &Option<String>| e.as_deref().is_some_and(|e| e.trim() == "true");
    per_policy(catalog, |policy| {
        let for_api = policy
            .roles
            .iter()
            .any(|r| r == "public" || r == "anon" || r == "authenticated");
        (policy.permissive
            && for_api
            && policy.command.writes()
            && (is_true(&policy.using) || is_true(&policy.with_check)))
        .then(|| {
            format!(
                "a permissive {} policy for {} that is always true",
                policy.command,
                policy.roles.join(", ")
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_always_true_writes_for_api_roles_only() {
        let mut t = table("notes");
        t.policies.push(policy(
            "anyone edits",
            "update",
            &["authenticated"],
            Some("true"),
        ));
        t.policies
            .push(policy("anyone reads", "select", &["anon"], Some("true")));
        t.policies.push(policy(
            "service writes",
            "all",
            &["service_role"],
            Some("true"),
        ));
        t.policies.push(policy(
            "owner edits",
            "update",
            &["authenticated"],
            Some("(auth.uid() = user_id)"),
        ));
        let found = findings_with_nothing_exposed(check, &catalog(vec![t]));
        assert_eq!(found.len(), 1);
        assert!(found[0].object.contains("anyone edits"));
    }
}
