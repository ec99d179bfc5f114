//! Catalog expectations (`expect:` in db-ci.yaml): counts of tables, views, functions,
//! policies and triggers, and objects that must exist after replay.

use super::model::{Catalog, Table};
use crate::snapshot::expect_config::{Count, ExpectConfig, Object};

/// One expectation's outcome: its name, the config key it comes from, and what is wrong.
pub struct Outcome {
    pub name: String,
    pub key: &'static str,
    pub problem: Option<String>,
}

/// Checks every expectation against `catalog` (object references were parsed with the file).
pub fn check(expect: &ExpectConfig, catalog: &Catalog) -> Vec<Outcome> {
    let tables = catalog.project_tables().count();
    let policies = catalog.tables.iter().map(|t| t.policies.len()).sum();
    let triggers = catalog.tables.iter().map(|t| t.triggers.len()).sum();
    let counts: [(&'static str, Option<Count>, usize); 5] = [
        ("tables", expect.tables, tables),
        ("views", expect.views, catalog.views.len()),
        ("functions", expect.functions, catalog.functions.len()),
        ("policies", expect.policies, policies),
        ("triggers", expect.triggers, triggers),
    ];
    let mut outcomes = Vec::new();
    for (key, want, have) in counts {
        let Some(want) = want else { continue };
        outcomes.push(Outcome {
            name: format!("{key}: {}", want.describe()),
            key,
            problem: (!want.holds(have)).then(|| {
                format!(
                    "expected {} {key}, the replayed catalog has {have}",
                    want.describe()
                )
            }),
        });
    }
    for object in &expect.objects {
        let found = exists(catalog, &object.object);
        outcomes.push(Outcome {
            name: format!("exists: {object}"),
            key: "objects",
            problem: (!found)
                .then(|| format!("expected {object} to exist after replay; it does not")),
        });
    }
    outcomes
}

/// The tables named `table` (at most one) of `catalog`.
fn tables_named<'a>(catalog: &'a Catalog, table: &'a str) -> impl Iterator<Item = &'a Table> {
    catalog
        .tables
        .iter()
        .filter(move |t| t.qualified() == table)
}

fn exists(catalog: &Catalog, object: &Object) -> bool {
    let on = |table| tables_named(catalog, table);
    match object {
        Object::Table(name) => catalog.project_tables().any(|t| t.qualified() == *name),
        Object::View(name) => catalog.views.iter().any(|v| v.qualified() == *name),
        Object::Routine(name) => catalog
            .functions
            .iter()
            .any(|f| format!("{}.{}", f.schema, f.name) == *name || f.signature() == *name),
        Object::Type(name) => catalog
            .types
            .iter()
            .any(|t| format!("{}.{}", t.schema, t.name) == *name),
        Object::Extension(name) => catalog.extensions.iter().any(|e| e.name == *name),
        Object::Policy { name, table } => {
            on(table).any(|t| t.policies.iter().any(|p| p.name == *name))
        }
        Object::Trigger { name, table } => {
            on(table).any(|t| t.triggers.iter().any(|p| p.name == *name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::expect_config::ObjectRef;
    use crate::snapshot::model::Table;

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        for name in ["a", "b"] {
            catalog.tables.push(Table {
                schema: "public".into(),
                name: name.into(),
                kind: crate::sql::kinds::TableKind::Table,
                platform: false,
                owner: "postgres".into(),
                rls: false,
                force_rls: false,
                comment: None,
                partition_of: None,
                columns: vec![],
                constraints: vec![],
                indexes: vec![],
                policies: vec![],
                triggers: vec![],
                grants: vec![],
            });
        }
        catalog
    }

    #[test]
    fn counts_and_objects_pass_and_fail() {
        let expect: ExpectConfig = crate::yaml::parse_yaml(
            "tables: {min: 3}\nviews: 0\nobjects: [table public.a, table public.zz]\n",
            std::path::Path::new("db-ci.yaml"),
        )
        .unwrap();
        let outcomes = check(&expect, &catalog());
        let problems: Vec<_> = outcomes.iter().filter_map(|o| o.problem.clone()).collect();
        assert_eq!(outcomes.len(), 4);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("at least 3 tables"), "{problems:?}");
        assert!(problems[1].contains("public.zz"), "{problems:?}");
    }

    #[test]
    fn counts_that_expect_nothing_are_rejected_where_written() {
        let config =
            |yaml: &str| crate::config::Config::parse(yaml, std::path::Path::new("db-ci.yaml"));
        for (yaml, line, needle) in [
            ("expect:\n  tables: { mni: 999 }\n", 2, "mni"),
            ("expect:\n  tables: {}\n", 2, "expects nothing"),
            ("expect:\n  views: ~\n", 2, "expects nothing"),
            ("expect:\n  policies: {maximum: 0}\n", 2, "maximum"),
            ("expect:\n  triggers: {min: 3, max: 1}\n", 2, "above max"),
            (
                "expect:\n  objects:\n    - gizmo public.a\n",
                3,
                "expect.objects",
            ),
        ] {
            let err = config(yaml).unwrap_err();
            let message = err.to_string();
            assert_eq!(err.exit_code(), crate::error::exit::INPUT);
            assert!(
                message.starts_with(&format!("db-ci.yaml:{line}:")),
                "{yaml}: {message}"
            );
            assert!(message.contains(needle), "{yaml}: {message}");
        }
        let ok = config("expect:\n  tables: {max: 0}\n  views: 0\n  objects: [table public.a]\n")
            .unwrap();
        assert!(matches!(
            ok.section::<ExpectConfig>().tables,
            Some(Count::Between {
                min: None,
                max: Some(0)
            })
        ));
    }

    #[test]
    fn object_references_parse_by_kind_and_print_as_written() {
        for bad in [
            "gizmo public.a",
            "table",
            "table  ",
            "policy own public.t",
            "trigger",
        ] {
            assert_eq!(ObjectRef::parse(bad), None, "{bad}");
        }
        let policy = ObjectRef::parse("policy \"owners read\" on public.a").unwrap();
        assert_eq!(
            policy.object,
            Object::Policy {
                name: "owners read".into(),
                table: "public.a".into()
            }
        );
        assert_eq!(policy.to_string(), "policy \"owners read\" on public.a");
        assert_eq!(
            ObjectRef::parse("procedure public.tidy()").unwrap().object,
            Object::Routine("public.tidy()".into())
        );
        let mut catalog = catalog();
        catalog.tables[0]
            .policies
            .push(crate::snapshot::model::Policy {
                name: "owners read".into(),
                command: crate::sql::kinds::PolicyCommand::Select,
                permissive: true,
                roles: vec![],
                using: None,
                with_check: None,
            });
        assert!(exists(&catalog, &policy.object));
        let elsewhere = ObjectRef::parse("policy \"owners read\" on public.b").unwrap();
        assert!(!exists(&catalog, &elsewhere.object));
    }
}
