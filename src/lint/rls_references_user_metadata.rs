//! rls_references_user_metadata (splinter, error): a policy trusts `user_metadata`, which
//! every user can edit about themselves.

use super::{per_policy, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "rls_references_user_metadata",
    level: Level::Error,
    why: "user_metadata (raw_user_meta_data) is editable by the user through auth.updateUser(): a policy that trusts it lets users grant themselves access",
    remediation: "decide access from app_metadata (set only by the server) or from a table the user cannot write",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    per_policy(catalog, |policy| {
        let text = format!(
            "{} {}",
            policy.using.as_deref().unwrap_or_default(),
            policy.with_check.as_deref().unwrap_or_default()
        );
        (text.contains("user_metadata") || text.contains("raw_user_meta_data"))
            .then(|| "the policy reads user_metadata, which the user can change".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_policies_reading_user_metadata() {
        let mut t = table("docs");
        t.policies.push(policy(
            "admins",
            "select",
            &["authenticated"],
            Some("((auth.jwt() -> 'user_metadata'::text) ->> 'role'::text) = 'admin'::text"),
        ));
        t.policies.push(policy(
            "app admins",
            "select",
            &["authenticated"],
            Some("((auth.jwt() -> 'app_metadata'::text) ->> 'role'::text) = 'admin'::text"),
        ));
        let found = findings_with_nothing_exposed(check, &catalog(vec![t]));
        assert_eq!(found.len(), 1);
        assert!(found[0].object.contains("\"admins\""));
    }
}
