//! security_definer_search_path (pgspot, warn): a SECURITY DEFINER function without a pinned
//! `search_path` resolves names through the caller's path while running with its owner's
//! rights. Warn, not error: Supabase's own advisor rates the same defect
//! (function_search_path_mutable) a warning and deploys it, so an error here would fail
//! projects the platform ships; a team raises it with `lint.levels`.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "security_definer_search_path",
    level: Level::Warn,
    why: "a SECURITY DEFINER function runs as its owner; with a mutable search_path a caller who can create objects earlier on the path makes it run their code with those rights",
    remediation: "add `SET search_path = ''` (and schema-qualify names) or `SET search_path = public, pg_temp` to the function",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    catalog
        .functions
        .iter()
        .filter(|f| f.security_definer && !f.pins_search_path())
        .map(|f| Finding {
            object: f.signature(),
            detail: "SECURITY DEFINER without a pinned search_path".into(),
            anchor: Anchor {
                kind: "function",
                name: f.name.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;

    #[test]
    fn flags_definer_functions_without_search_path() {
        let mut c = catalog(vec![]);
        c.functions = vec![
            function("open_definer", true, &[]),
            function("pinned_definer", true, &["search_path="]),
            function("invoker", false, &[]),
        ];
        let found = findings_with_nothing_exposed(check, &c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.open_definer()");
    }
}
