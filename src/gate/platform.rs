//! What of a catalog the project's migrations own, for the drift comparison between the
//! rehearsal and production: the platform (db-ci's shim on one side, whatever Supabase or
//! another host installed on the other) differs in extensions, schemas, owners, default
//! privileges and RLS flags of its own tables, and that is not drift. Those are compared only
//! where the applied migrations changed them. Pure logic.

use std::sync::OnceLock;

use regex::Regex;

use crate::snapshot::model::Catalog;

fn lower(texts: &[&str]) -> String {
    texts.join("\n").to_lowercase()
}

/// Names the migrations create with `create <what> [if not exists] name`.
fn created(texts: &str, what: &'static str) -> Vec<String> {
    static EXTENSION: OnceLock<Regex> = OnceLock::new();
    static SCHEMA: OnceLock<Regex> = OnceLock::new();
    let cell = match what {
        "extension" => &EXTENSION,
        _ => &SCHEMA,
    };
    let pattern = cell.get_or_init(|| {
        Regex::new(&format!(
            r#"create\s+{what}\s+(?:if\s+not\s+exists\s+)?"?([\w-]+)"?"#
        ))
        .expect("a valid pattern")
    });
    pattern
        .captures_iter(texts)
        .map(|c| c[1].to_owned())
        .collect()
}

/// `catalog` less what belongs to the platform, given the applied migrations' `texts`.
pub fn project_owned(catalog: &Catalog, texts: &[&str]) -> Catalog {
    let texts = lower(texts);
    let mut owned = catalog.clone();
    let extensions = created(&texts, "extension");
    owned
        .extensions
        .retain(|e| extensions.iter().any(|name| name == &e.name.to_lowercase()));
    let schemas = created(&texts, "schema");
    owned.schemas.retain_mut(|schema| {
        if schema.name == "public" {
            // Its owner and grants are the platform's unless a migration changed them.
            schema.owner.clear();
            if !texts.contains("schema public") {
                schema.grants.clear();
            }
            return true;
        }
        schemas
            .iter()
            .any(|name| name == &schema.name.to_lowercase())
    });
    // A platform table is listed for the project's policies and triggers on it; its owner,
    // grants and RLS flags are the platform's unless a migration set the flags.
    for table in owned.tables.iter_mut().filter(|t| t.platform) {
        table.owner.clear();
        table.grants.clear();
        let names = [
            table.qualified().to_lowercase(),
            format!("\"{}\".\"{}\"", table.schema, table.name).to_lowercase(),
        ];
        let sets_rls = texts.split(';').any(|statement| {
            statement.contains("row level security")
                && names.iter().any(|name| statement.contains(name.as_str()))
        });
        if !sets_rls {
            table.rls = false;
            table.force_rls = false;
        }
    }
    if !texts.contains("alter default privileges") {
        owned.default_privileges.clear();
    }
    owned
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::model::{DefaultPrivileges, Extension, Grant, Schema, Table};
    use crate::sql::kinds::TableKind;

    fn table(schema: &str, name: &str, platform: bool, rls: bool) -> Table {
        Table {
            schema: schema.into(),
            name: name.into(),
            kind: TableKind::Table,
            platform,
            owner: "supabase_auth_admin".into(),
            rls,
            force_rls: false,
            comment: None,
            partition_of: None,
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            policies: Vec::new(),
            triggers: Vec::new(),
            grants: vec![Grant {
                grantee: "anon".into(),
                privileges: vec!["SELECT".into()],
            }],
        }
    }

    /// Production on a platform built another way than the shim.
    fn production() -> Catalog {
        Catalog {
            schemas: vec![
                Schema {
                    name: "private".into(),
                    owner: "postgres".into(),
                    comment: None,
                    grants: Vec::new(),
                },
                Schema {
                    name: "public".into(),
                    owner: "pg_database_owner".into(),
                    comment: None,
                    grants: Vec::new(),
                },
                Schema {
                    name: "_supavisor".into(),
                    owner: "supabase_admin".into(),
                    comment: None,
                    grants: Vec::new(),
                },
            ],
            extensions: ["pg_stat_statements", "pgcrypto", "citext"]
                .into_iter()
                .map(|name| Extension {
                    name: name.into(),
                    schema: "extensions".into(),
                })
                .collect(),
            tables: vec![
                table("auth", "users", true, true),
                table("public", "rooms", false, true),
            ],
            default_privileges: vec![DefaultPrivileges {
                role: "supabase_admin".into(),
                schema: Some("public".into()),
                object_type: "tables".into(),
                grants: Vec::new(),
            }],
            ..Catalog::default()
        }
    }

    #[test]
    fn the_platform_is_left_out_and_the_project_kept() {
        let migrations = [
            "create extension if not exists citext with schema extensions;\n\
                           create schema private;\n\
                           create table public.rooms (id int);\n\
                           alter table public.rooms enable row level security;",
        ];
        let owned = project_owned(&production(), &migrations);
        let names = |c: &Catalog| {
            c.extensions
                .iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&owned), ["citext"]);
        assert_eq!(
            owned
                .schemas
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["private", "public"]
        );
        assert!(owned.default_privileges.is_empty());
        let users = &owned.tables[0];
        assert!(!users.rls && users.owner.is_empty() && users.grants.is_empty());
        // The project's own table is compared whole.
        assert_eq!(owned.tables[1], production().tables[1]);
    }

    #[test]
    fn what_the_migrations_changed_on_the_platform_is_compared() {
        let migrations = ["alter table auth.users enable row level security;\n\
                           alter default privileges in schema public grant select on tables to anon;"];
        let owned = project_owned(&production(), &migrations);
        assert!(owned.tables[0].rls);
        assert_eq!(owned.default_privileges.len(), 1);
        // A project extension missing in production is still a difference.
        let mut without = production();
        without.extensions.retain(|e| e.name != "citext");
        let migrations = ["create extension citext;"];
        assert_ne!(
            project_owned(&without, &migrations),
            project_owned(&production(), &migrations)
        );
    }
}
