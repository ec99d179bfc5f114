//! auth_rls_initplan (splinter, warn): a policy calls `auth.uid()` / `auth.jwt()` /
//! `current_setting()` directly, so PostgreSQL evaluates it once per row instead of once per
//! query.

use std::sync::OnceLock;

use regex::Regex;

use super::{per_policy, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "auth_rls_initplan",
    level: Level::Warn,
    why: "a bare auth.<function>() in a policy is re-evaluated for every row scanned; wrapped in a sub-select the planner runs it once (an initplan)",
    remediation: "write `(select auth.uid())` instead of `auth.uid()` in USING and WITH CHECK",
    check,
};

/// A call wrapped as the server prints `(select auth.uid())`: `( SELECT auth.uid() AS uid)`.
fn wrapped() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\(\s*SELECT\s+(?:auth\.\w+\(\)|current_setting\([^()]*\))(?:\s+AS\s+\w+)?\s*\)",
        )
        .expect("valid regex")
    })
}

fn bare() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:auth\.(?:uid|jwt|role|email)\(\)|current_setting\()")
            .expect("valid regex")
    })
}

/// Whether `expression` calls an auth function per row.
pub fn calls_per_row(expression: &str) -> bool {
    bare().is_match(&wrapped().replace_all(expression, ""))
}

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    per_policy(catalog, |policy| {
        [&policy.using, &policy.with_check]
            .iter()
            .any(|e| e.as_deref().is_some_and(calls_per_row))
            .then(|| "calls an auth function per row; wrap it as (select auth.uid())".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn bare_calls_are_flagged_wrapped_ones_are_not() {
        assert!(calls_per_row("(auth.uid() = user_id)"));
        assert!(calls_per_row(
            "((( SELECT auth.uid() AS uid) = a) OR (auth.jwt() ->> 'x'::text) = 'y')"
        ));
        assert!(!calls_per_row("(( SELECT auth.uid() AS uid) = user_id)"));
        assert!(!calls_per_row("(( SELECT current_setting('request.jwt.claims'::text, true) AS current_setting) IS NOT NULL)"));
        let mut t = table("t");
        t.policies.push(policy(
            "own",
            "select",
            &["authenticated"],
            Some("(auth.uid() = id)"),
        ));
        t.policies.push(policy(
            "fast",
            "select",
            &["authenticated"],
            Some("(( SELECT auth.uid() AS uid) = id)"),
        ));
        let found = findings_with_nothing_exposed(check, &catalog(vec![t]));
        assert_eq!(found.len(), 1);
        assert!(found[0].object.contains("\"own\""));
    }
}
