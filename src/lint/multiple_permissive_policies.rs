//! multiple_permissive_policies (splinter, warn): several permissive policies apply to one
//! API role and command on a table; PostgreSQL evaluates every one of them for each row.

use std::collections::BTreeMap;

use super::{Anchor, Finding, Rule, Scope, API_ROLES};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;
use crate::sql::kinds::PolicyCommand;

pub static RULE: Rule = Rule {
    id: "multiple_permissive_policies",
    level: Level::Warn,
    why: "permissive policies are OR-ed and each is evaluated per row: two for the same role and command cost twice and are harder to review",
    remediation: "merge the policies for each role and command into one (`… OR …`)",
    check,
};

fn check(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    let mut found = Vec::new();
    for table in catalog.tables.iter().filter(|t| scope.exposed(&t.schema)) {
        let mut overlaps: BTreeMap<(&str, PolicyCommand), Vec<&str>> = BTreeMap::new();
        for policy in table.policies.iter().filter(|p| p.permissive) {
            for role in API_ROLES {
                if !policy.roles.iter().any(|r| r == role || r == "public") {
                    continue;
                }
                for command in PolicyCommand::EACH {
                    if policy.command.covers(command) {
                        overlaps
                            .entry((role, command))
                            .or_default()
                            .push(&policy.name);
                    }
                }
            }
        }
        let pairs: Vec<String> = overlaps
            .iter()
            .filter(|(_, names)| names.len() > 1)
            .map(|((role, command), names)| format!("{role} {command}: {}", names.join(" + ")))
            .collect();
        if !pairs.is_empty() {
            found.push(Finding {
                object: table.qualified(),
                detail: format!(
                    "several permissive policies per role and command ({})",
                    pairs.join("; ")
                ),
                anchor: Anchor {
                    kind: "table",
                    name: table.name.clone(),
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

    #[test]
    fn flags_overlapping_permissive_policies() {
        let mut both = table("both");
        both.policies.push(policy(
            "read own",
            "select",
            &["authenticated"],
            Some("true"),
        ));
        both.policies.push(policy(
            "manage own",
            "all",
            &["authenticated"],
            Some("true"),
        ));
        let mut split = table("split");
        split
            .policies
            .push(policy("read", "select", &["anon"], Some("true")));
        split
            .policies
            .push(policy("write", "insert", &["authenticated"], Some("true")));
        let found = findings(check, &catalog(vec![both, split]));
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .detail
                .contains("authenticated select: read own + manage own"),
            "{}",
            found[0].detail
        );
    }
}
