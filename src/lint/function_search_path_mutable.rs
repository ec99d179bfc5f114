//! function_search_path_mutable (splinter, warn): a function without a pinned `search_path`
//! resolves unqualified names through whatever path its caller has.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;
use crate::sql::kinds::RoutineKind;

pub static RULE: Rule = Rule {
    id: "function_search_path_mutable",
    level: Level::Warn,
    why: "the function's behaviour depends on the caller's search_path: a different path resolves its table and function names to other objects",
    remediation: "add `SET search_path = ''` (schema-qualifying names) or `SET search_path = public` to the function",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    catalog
        .functions
        .iter()
        .filter(|f| {
            matches!(f.kind, RoutineKind::Function | RoutineKind::Procedure)
                && !f.pins_search_path()
        })
        .map(|f| Finding {
            object: f.signature(),
            detail: "no search_path is set on the function".into(),
            anchor: Anchor {
                kind: f.kind.as_str(),
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
    fn flags_functions_without_search_path() {
        let mut c = catalog(vec![]);
        c.functions = vec![
            function("loose", false, &[]),
            function("pinned", false, &["search_path=public"]),
        ];
        let found = findings_with_nothing_exposed(check, &c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "public.loose()");
    }
}
