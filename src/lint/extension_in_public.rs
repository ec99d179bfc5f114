//! extension_in_public (splinter, warn): an extension installed into `public`, where its
//! functions and types are exposed through the API and clutter the project's schema.

use super::{Anchor, Finding, Rule, Scope};
use crate::report::level::Level;
use crate::snapshot::model::Catalog;

pub static RULE: Rule = Rule {
    id: "extension_in_public",
    level: Level::Warn,
    why: "objects of an extension in public are served by the API and mixed with the project's own; Supabase installs extensions into `extensions`",
    remediation: "CREATE EXTENSION … WITH SCHEMA extensions (or ALTER EXTENSION … SET SCHEMA extensions)",
    check,
};

fn check(catalog: &Catalog, _: &Scope<'_>) -> Vec<Finding> {
    catalog
        .extensions
        .iter()
        .filter(|e| e.schema == "public")
        .map(|e| Finding {
            object: e.name.clone(),
            detail: "the extension is installed in schema public".into(),
            anchor: Anchor {
                kind: "extension",
                name: e.name.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::build::*;
    use super::*;
    use crate::snapshot::model::Extension;

    #[test]
    fn flags_extensions_in_public() {
        let mut c = catalog(vec![]);
        c.extensions = vec![
            Extension {
                name: "vector".into(),
                schema: "public".into(),
            },
            Extension {
                name: "pgcrypto".into(),
                schema: "extensions".into(),
            },
        ];
        let found = findings_with_nothing_exposed(check, &c);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].object, "vector");
    }
}
