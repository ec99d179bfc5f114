//! Catalog expectations (`expect:` in db-ci.yaml): counts of tables, views, functions,
//! policies and triggers, and objects that must exist after replay.

use serde::Deserialize;

use super::model::{Catalog, Table};
use crate::error::{Error, Result};

/// `expect:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectConfig {
    /// The project's tables (platform tables excluded).
    #[serde(default, deserialize_with = "some_count")]
    pub tables: Option<Count>,
    /// Views and materialized views.
    #[serde(default, deserialize_with = "some_count")]
    pub views: Option<Count>,
    /// Functions and procedures.
    #[serde(default, deserialize_with = "some_count")]
    pub functions: Option<Count>,
    /// Policies, also those on platform tables such as `storage.objects`.
    #[serde(default, deserialize_with = "some_count")]
    pub policies: Option<Count>,
    #[serde(default, deserialize_with = "some_count")]
    pub triggers: Option<Count>,
    /// Objects that must exist: `table public.profiles`, `view public.v`,
    /// `function public.handle_new_user`, `policy "name" on public.t`,
    /// `trigger on_auth_user_created on auth.users`, `type public.mood`, `extension vector`.
    #[serde(default, deserialize_with = "object_references")]
    pub objects: Vec<ObjectRef>,
}

/// One `expect.objects` entry, parsed while db-ci.yaml is read; printed as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    text: String,
    object: Object,
}

/// What an `expect.objects` entry names. Names are `schema.name` (a routine may give its
/// arguments too), an extension's is bare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Object {
    Table(String),
    View(String),
    /// `function …` or `procedure …`.
    Routine(String),
    Type(String),
    Extension(String),
    Policy {
        name: String,
        table: String,
    },
    Trigger {
        name: String,
        table: String,
    },
}

impl ObjectRef {
    /// `None` when `reference` has no form db-ci understands.
    pub fn parse(reference: &str) -> Option<ObjectRef> {
        let (kind, rest) = reference.split_once(' ').unwrap_or((reference, ""));
        let rest = rest.trim();
        let named = |make: fn(String) -> Object| (!rest.is_empty()).then(|| make(rest.to_owned()));
        let on = || {
            let (name, table) = rest.rsplit_once(" on ")?;
            Some((
                name.trim().trim_matches('"').to_owned(),
                table.trim().to_owned(),
            ))
        };
        let object = match kind {
            "table" => named(Object::Table)?,
            "view" => named(Object::View)?,
            "function" | "procedure" => named(Object::Routine)?,
            "type" => named(Object::Type)?,
            "extension" => named(Object::Extension)?,
            "policy" => {
                let (name, table) = on()?;
                Object::Policy { name, table }
            }
            "trigger" => {
                let (name, table) = on()?;
                Object::Trigger { name, table }
            }
            _ => return None,
        };
        Some(ObjectRef {
            text: reference.to_owned(),
            object,
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl ExpectConfig {
    pub fn is_empty(&self) -> bool {
        self.tables.is_none()
            && self.views.is_none()
            && self.functions.is_none()
            && self.policies.is_none()
            && self.triggers.is_none()
            && self.objects.is_empty()
    }
}

/// An exact count (`38`) or bounds (`{min: 33}`, `{min: 1, max: 5}`).
#[derive(Debug, Clone, Copy)]
pub enum Count {
    Exactly(usize),
    Between {
        min: Option<usize>,
        max: Option<usize>,
    },
}

/// `{min, max}` as written: strict, so `{mni: 999}` is an error, not "any number".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bounds {
    min: Option<usize>,
    max: Option<usize>,
}

/// A count that expects something: a number, or bounds with `min` or `max`. An empty value
/// (`~`, `{}`) would be an expectation that always holds, so it is an input error.
impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::{self, MapAccess, Visitor};
        struct CountVisitor;
        const WANT: &str = "a number, or `{min: N}`, `{max: N}`, `{min: N, max: M}`";
        impl<'de> Visitor<'de> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(WANT)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                usize::try_from(v)
                    .map(Count::Exactly)
                    .map_err(|_| E::custom(format!("{v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                Err(E::custom(format!("{v}: a count is not negative")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
                Err(E::custom(format!(
                    "an empty count expects nothing: write {WANT}"
                )))
            }
            fn visit_none<E: de::Error>(self) -> Result<Count, E> {
                self.visit_unit()
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Count, A::Error> {
                let bounds = Bounds::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (bounds.min, bounds.max) {
                    (None, None) => Err(de::Error::custom(format!(
                        "`{{}}` expects nothing: write {WANT}"
                    ))),
                    (Some(min), Some(max)) if min > max => Err(de::Error::custom(format!(
                        "min {min} is above max {max}: no catalog can hold it"
                    ))),
                    (min, max) => Ok(Count::Between { min, max }),
                }
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

/// `tables: ~` is not "no expectation" but a mistake: every count given must expect something.
fn some_count<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Count>, D::Error> {
    Count::deserialize(deserializer).map(Some)
}

/// Object references, each parsed while the file is read.
fn object_references<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ObjectRef>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|reference| {
            ObjectRef::parse(reference)
                .ok_or_else(|| serde::de::Error::custom(bad_reference(reference)))
        })
        .collect()
}

impl Count {
    fn holds(self, n: usize) -> bool {
        match self {
            Count::Exactly(want) => n == want,
            Count::Between { min, max } => min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m),
        }
    }

    fn describe(self) -> String {
        match self {
            Count::Exactly(n) => format!("exactly {n}"),
            Count::Between {
                min: Some(a),
                max: Some(b),
            } => format!("between {a} and {b}"),
            Count::Between {
                min: Some(a),
                max: None,
            } => format!("at least {a}"),
            Count::Between {
                min: None,
                max: Some(b),
            } => format!("at most {b}"),
            Count::Between { .. } => "any number".to_owned(),
        }
    }
}

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

fn bad_reference(reference: &str) -> Error {
    Error::input(format!(
        "read `expect.objects` entry {reference:?} in db-ci.yaml: write `table schema.name`, \
         `view …`, `function …`, `type …`, `extension name`, `policy \"name\" on schema.table` \
         or `trigger name on schema.table`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::model::Table;

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        for name in ["a", "b"] {
            catalog.tables.push(Table {
                schema: "public".into(),
                name: name.into(),
                kind: crate::snapshot::model::TableKind::Table,
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
        let config = |yaml: &str| {
            crate::yaml::parse_yaml::<crate::config::Config>(
                yaml,
                std::path::Path::new("db-ci.yaml"),
            )
        };
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
            ok.expect.tables,
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
                command: crate::snapshot::model::PolicyCommand::Select,
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
