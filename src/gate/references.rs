//! Functions a release drops or renames while other functions' bodies still call them.
//! PostgreSQL tracks what a view or a policy uses, so dropping a function they need fails (or
//! takes them along with CASCADE, which the rls stage on the rehearsal then sees); it does not
//! track what a PL/pgSQL or SQL function body calls: such a release applies cleanly and every
//! caller fails at run time.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::judge::{Finding, FindingKind};
use super::trace::RehearsalError;
use crate::sql::catalog::{not_extension_member, SYSTEM_SCHEMA_FILTER};

/// The project's routines by oid: `schema.name` and the identity arguments.
pub type Routines = BTreeMap<i64, (String, String)>;

fn project_routines_where() -> String {
    format!(
        "{SYSTEM_SCHEMA_FILTER} and {}",
        not_extension_member("pg_proc", "p.oid")
    )
}

/// Every routine of the project's schemas.
pub async fn routines(client: &Client) -> Result<Routines, RehearsalError> {
    let sql = format!(
        "select p.oid::int8, n.nspname || '.' || p.proname, \
                pg_catalog.pg_get_function_identity_arguments(p.oid) \
         from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace \
         where {}",
        project_routines_where()
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| RehearsalError::server(&e))?;
    Ok(rows
        .iter()
        .map(|row| (row.get::<_, i64>(0), (row.get(1), row.get(2))))
        .collect())
}

/// The bodies of the project's SQL and PL/pgSQL routines: (`schema.name(args)`, source).
async fn bodies(client: &Client) -> Result<Vec<(String, String)>, RehearsalError> {
    let sql = format!(
        "select n.nspname || '.' || p.proname || '(' || \
                pg_catalog.pg_get_function_identity_arguments(p.oid) || ')', p.prosrc \
         from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace \
         join pg_catalog.pg_language l on l.oid = p.prolang \
         where l.lanname in ('sql', 'plpgsql') and {}",
        project_routines_where()
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| RehearsalError::server(&e))?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// What happened to a routine whose name no longer resolves after the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gone {
    /// `schema.name`, as callers wrote it.
    pub name: String,
    pub arguments: String,
    /// The new `schema.name` when renamed (or moved), `None` when dropped.
    pub renamed_to: Option<String>,
}

/// The routines of `before` whose name exists no more in `after` (dropped, renamed or moved
/// to another schema). A name that another overload still carries is left out: calls may
/// still resolve.
pub fn gone(before: &Routines, after: &Routines) -> Vec<Gone> {
    let names_after: std::collections::BTreeSet<&str> =
        after.values().map(|(name, _)| name.as_str()).collect();
    let mut out: Vec<Gone> = before
        .iter()
        .filter(|(_, (name, _))| !names_after.contains(name.as_str()))
        .map(|(oid, (name, arguments))| Gone {
            name: name.clone(),
            arguments: arguments.clone(),
            renamed_to: after.get(oid).map(|(new, _)| new.clone()),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// What a call of the routine `schema.name` looks like in a body: the name followed by `(`,
/// qualified by that schema or not qualified at all (a name qualified by another schema is
/// another routine). Quoted identifiers match too. Case-insensitive, as unquoted identifiers
/// are.
pub fn call_pattern(qualified: &str) -> Option<regex::Regex> {
    let (schema, name) = qualified.split_once('.')?;
    let pattern = format!(
        r#"(?i)(?:^|[^a-z0-9_$."])(?:"?{}"?\s*\.\s*)?"?{}"?\s*\("#,
        regex::escape(schema),
        regex::escape(name)
    );
    regex::Regex::new(&pattern).ok()
}

/// The 1-based line of `text` that drops or renames `name` (else 1).
fn line_of(text: &str, name: &str) -> usize {
    let bare = name.rsplit('.').next().unwrap_or(name).to_lowercase();
    text.lines()
        .position(|line| {
            let line = line.to_lowercase();
            line.contains(&bare)
                && (line.contains("drop") || line.contains("rename") || line.contains("set schema"))
        })
        .map_or(1, |i| i + 1)
}

/// Findings for the routines `file` made disappear while a remaining body still calls them.
pub async fn check(
    client: &Client,
    file: &crate::project::SqlFile,
    before: &Routines,
    after: &Routines,
) -> Result<Vec<Finding>, RehearsalError> {
    let gone = gone(before, after);
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let bodies = bodies(client).await?;
    let mut findings = Vec::new();
    for routine in gone {
        let Some(call) = call_pattern(&routine.name) else {
            continue;
        };
        let callers: Vec<&str> = bodies
            .iter()
            .filter(|(_, body)| call.is_match(body))
            .map(|(caller, _)| caller.as_str())
            .collect();
        if callers.is_empty() {
            continue;
        }
        let what = match &routine.renamed_to {
            Some(new) => format!(
                "renames function {}({}) to {new}",
                routine.name, routine.arguments
            ),
            None => format!("drops function {}({})", routine.name, routine.arguments),
        };
        findings.push(Finding {
            kind: FindingKind::Destructive,
            blocks: true,
            file: file.rel.clone(),
            line: line_of(&file.text, &routine.name),
            relation: None,
            message: format!(
                "{what}, which {} still call{}: a function body is not a dependency PostgreSQL \
                 tracks, so the migration applies and every call fails at run time",
                callers.join(", "),
                if callers.len() == 1 { "s" } else { "" }
            ),
            advice: vec![
                "rewrite or drop the callers in the same migration, or keep the old function \
                 (as a wrapper) until no caller names it"
                    .to_owned(),
            ],
            statement: None,
            allowed: None,
        });
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routines(list: &[(i64, &str, &str)]) -> Routines {
        list.iter()
            .map(|(oid, name, args)| (*oid, (name.to_string(), args.to_string())))
            .collect()
    }

    #[test]
    fn dropped_renamed_and_overloaded_routines() {
        let before = routines(&[
            (1, "public.is_admin", "uid uuid"),
            (2, "public.team_of", "uid uuid"),
            (3, "public.f", "a integer"),
            (4, "public.f", "a text"),
            (5, "public.keep", ""),
        ]);
        let after = routines(&[
            (2, "public.team_of_user", "uid uuid"),
            (4, "public.f", "a text"),
            (5, "public.keep", ""),
        ]);
        let gone = gone(&before, &after);
        assert_eq!(
            gone,
            vec![
                Gone {
                    name: "public.is_admin".into(),
                    arguments: "uid uuid".into(),
                    renamed_to: None
                },
                Gone {
                    name: "public.team_of".into(),
                    arguments: "uid uuid".into(),
                    renamed_to: Some("public.team_of_user".into())
                },
            ]
        );
    }

    fn calls(body: &str, qualified: &str) -> bool {
        call_pattern(qualified).unwrap().is_match(body)
    }

    #[test]
    fn calls_are_told_from_other_schemas_and_mere_words() {
        let name = "public.is_admin";
        assert!(calls("begin return is_admin(auth.uid()); end", name));
        assert!(calls("select public.is_admin(x)", name));
        assert!(calls("select \"public\".\"is_admin\" (x)", name));
        assert!(calls("SELECT PUBLIC.IS_ADMIN(x)", name));
        assert!(!calls("select private.is_admin(x)", name));
        assert!(!calls("select is_admin_of(x)", name));
        assert!(!calls("select not_is_admin(x)", name));
        assert!(!calls("-- is_admin is gone\nselect 1", name));
    }

    #[test]
    fn the_line_is_the_statement_that_drops_it() {
        let text = "-- tidy up\ncreate table t (id int);\nDROP FUNCTION public.is_admin(uuid);\n";
        assert_eq!(line_of(text, "public.is_admin"), 3);
        assert_eq!(line_of("select 1;\n", "public.is_admin"), 1);
    }
}
