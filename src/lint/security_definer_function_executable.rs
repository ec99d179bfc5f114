//! anon_security_definer_function_executable and authenticated_security_definer_function_executable
//! (splinter, warn): an API role may call a SECURITY DEFINER function through `/rpc`.

use super::{granted, Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static ANON: Rule = Rule {
    id: "anon_security_definer_function_executable",
    level: Level::Warn,
    why: "anon may call this SECURITY DEFINER function through the API; it runs with its owner's rights, past RLS",
    remediation: "REVOKE EXECUTE ON FUNCTION … FROM anon, PUBLIC (or make it SECURITY INVOKER)",
    check: check_anon,
};

pub static AUTHENTICATED: Rule = Rule {
    id: "authenticated_security_definer_function_executable",
    level: Level::Warn,
    why: "every signed-in user may call this SECURITY DEFINER function through the API; it runs with its owner's rights, past RLS",
    remediation: "REVOKE EXECUTE ON FUNCTION … FROM authenticated, PUBLIC unless every user should run it, and check its arguments",
    check: check_authenticated,
};

fn check_anon(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    check(catalog, scope, "anon")
}

fn check_authenticated(catalog: &Catalog, scope: &Scope<'_>) -> Vec<Finding> {
    check(catalog, scope, "authenticated")
}

fn check(catalog: &Catalog, scope: &Scope<'_>, role: &str) -> Vec<Finding> {
    catalog
        .functions
        .iter()
        .filter(|f| f.security_definer && scope.exposed(&f.schema))
        // Trigger functions cannot be called through /rpc.
        .filter(|f| !matches!(f.returns.as_deref(), Some("trigger" | "event_trigger")))
        .filter(|f| granted(&f.grants, role, &["EXECUTE"]))
        .map(|f| Finding {
            object: f.signature(),
            detail: format!("{role} may execute this SECURITY DEFINER function"),
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
    fn flags_definer_functions_the_api_roles_may_run() {
        let mut c = catalog(vec![]);
        let mut revoked = function("revoked", true, &["search_path="]);
        revoked.grants = vec![grant("authenticated", &["EXECUTE"])];
        let mut trigger = function("on_insert", true, &["search_path="]);
        trigger.returns = Some("trigger".into());
        c.functions = vec![
            function("open", true, &["search_path="]),
            revoked,
            trigger,
            function("invoker", false, &[]),
        ];
        let exposed = exposed();
        let scope = Scope {
            exposed_schemas: &exposed,
        };
        let anon: Vec<_> = check_anon(&c, &scope)
            .into_iter()
            .map(|f| f.object)
            .collect();
        let auth: Vec<_> = check_authenticated(&c, &scope)
            .into_iter()
            .map(|f| f.object)
            .collect();
        assert_eq!(anon, ["public.open()"]);
        assert_eq!(auth, ["public.open()", "public.revoked()"]);
    }
}
