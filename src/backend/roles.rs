//! The url backend's cluster roles. The server is the user's, and roles are cluster-wide:
//! before the shim runs, db-ci checks who it is connected as, refuses to change roles an
//! administrator set up differently (unless the user opts in), creates the missing ones
//! itself, marks them as its own and says so; the last db-ci run on the server drops them.

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// Set to `1` to let db-ci change the attributes of existing roles the shim relies on.
pub const ADOPT_ENV: &str = "DB_CI_URL_ADOPT_ROLES";

/// The comment on every role db-ci created: how the last run finds what to drop.
pub const MARK: &str = "db-ci: created for throwaway databases; dropped when no db-ci run uses it";

/// The roles the shim creates when missing (`postgres` aside: the url user must be it).
pub const SHIM_ROLES: &[&str] = &[
    "anon",
    "authenticated",
    "service_role",
    "authenticator",
    "supabase_admin",
    "supabase_auth_admin",
    "supabase_storage_admin",
    "supabase_functions_admin",
    "dashboard_user",
    "pgbouncer",
];

/// Attributes the shim enforces on existing roles: (role, pg_roles column, wanted, clause).
const ENFORCED: &[(&str, &str, bool, &str)] = &[
    ("anon", "rolinherit", true, "INHERIT"),
    ("authenticated", "rolinherit", true, "INHERIT"),
    ("service_role", "rolinherit", true, "INHERIT"),
    ("service_role", "rolbypassrls", true, "BYPASSRLS"),
    ("authenticator", "rolinherit", false, "NOINHERIT"),
    ("supabase_admin", "rolsuper", true, "SUPERUSER"),
];

/// One existing role's attributes the shim looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleAttrs {
    pub name: String,
    pub inherit: bool,
    pub bypassrls: bool,
    pub superuser: bool,
}

impl RoleAttrs {
    fn get(&self, column: &str) -> bool {
        match column {
            "rolinherit" => self.inherit,
            "rolbypassrls" => self.bypassrls,
            _ => self.superuser,
        }
    }
}

/// The changes the shim would make to existing roles, as `role: CLAUSE`.
pub fn conflicts(existing: &[RoleAttrs]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, column, want, clause) in ENFORCED {
        if let Some(role) = existing.iter().find(|r| r.name == *name) {
            if role.get(column) != *want {
                found.push(format!("{name}: {clause}"));
            }
        }
    }
    found
}

/// Why a connected user cannot give results that match the local backend, if it cannot.
pub fn refuse_user(user: &str, superuser: bool) -> Option<String> {
    if user == "postgres" && superuser {
        return None;
    }
    Some(format!(
        "use the url backend as `{user}`: it must connect as the server's superuser `postgres` \
         (connected as `{user}`, superuser: {superuser}). The shim creates cluster roles and the \
         catalog snapshot records `postgres` as the owner, so results as another user would differ \
         from the local backend"
    ))
}

async fn existing_roles(client: &Client) -> Result<Vec<RoleAttrs>> {
    let rows = client
        .query(
            "select rolname::text, rolinherit, rolbypassrls, rolsuper from pg_catalog.pg_roles \
             where rolname = any($1)",
            &[&SHIM_ROLES],
        )
        .await
        .map_err(|e| {
            Error::environment(format!("read the server's roles: {}", db_error_text(&e)))
        })?;
    Ok(rows
        .iter()
        .map(|r| RoleAttrs {
            name: r.get(0),
            inherit: r.get(1),
            bypassrls: r.get(2),
            superuser: r.get(3),
        })
        .collect())
}

/// Checks the server and creates the shim's roles on it; returns what it created or changed,
/// one line each, for the output.
pub async fn prepare(client: &Client) -> Result<Vec<String>> {
    let row = client
        .query_one(
            "select current_user::text, rolsuper from pg_catalog.pg_roles where rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::environment(format!("read the connected role: {}", db_error_text(&e))))?;
    let (user, superuser): (String, bool) = (row.get(0), row.get(1));
    if let Some(reason) = refuse_user(&user, superuser) {
        return Err(Error::environment(reason));
    }
    let before = existing_roles(client).await?;
    let changes = conflicts(&before);
    let adopt = std::env::var(ADOPT_ENV).is_ok_and(|v| v == "1");
    if !changes.is_empty() && !adopt {
        return Err(Error::environment(format!(
            "use this server: roles the Supabase shim relies on exist with other attributes \
             ({}), and db-ci would change them for everyone on the server. Set {ADOPT_ENV}=1 to \
             let it, or give db-ci a server of its own (--backend local or container)",
            changes.join(", ")
        )));
    }
    let roles_sql = crate::shim::sql_files(crate::shim::GrantMode::Classic)
        .into_iter()
        .find(|(name, _)| name.starts_with("000_roles"))
        .map(|(_, sql)| sql)
        .unwrap_or_default();
    client.batch_execute(roles_sql).await.map_err(|e| {
        Error::environment(format!("create the shim's roles: {}", db_error_text(&e)))
    })?;
    let after = existing_roles(client).await?;
    let mut lines = Vec::new();
    let created: Vec<&str> = after
        .iter()
        .filter(|r| !before.iter().any(|b| b.name == r.name))
        .map(|r| r.name.as_str())
        .collect();
    for name in &created {
        let sql = format!(
            "comment on role {} is {}",
            crate::sql::quote_ident(name),
            crate::sql::quote_literal(MARK)
        );
        client.batch_execute(&sql).await.map_err(|e| {
            Error::environment(format!(
                "mark role {name} as db-ci's: {}",
                db_error_text(&e)
            ))
        })?;
    }
    if !created.is_empty() {
        lines.push(format!(
            "created roles {} (NOLOGIN; dropped by the last db-ci run on this server)",
            created.join(", ")
        ));
    }
    for change in changes {
        lines.push(format!("changed role {change} ({ADOPT_ENV}=1)"));
    }
    Ok(lines)
}

/// Drops the roles db-ci created when no other db-ci run (sessions named `db-ci …` other
/// than `own`, this run's application name) is on the server; returns their names.
pub async fn release(client: &Client, own: &str) -> Vec<String> {
    // Serialised with the shim's role creation (it takes the same lock).
    if client
        .batch_execute("begin; lock table pg_catalog.pg_authid in share row exclusive mode")
        .await
        .is_err()
    {
        let _ = client.batch_execute("rollback").await;
        return Vec::new();
    }
    let others: i64 = client
        .query_one(
            "select count(*) from pg_stat_activity where application_name like 'db-ci %' \
             and application_name not like $1 || '%'",
            &[&own],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(1);
    let mut dropped = Vec::new();
    if others == 0 {
        let names: Vec<String> = client
            .query(
                "select r.rolname::text from pg_catalog.pg_roles r \
                 join pg_catalog.pg_shdescription d on d.objoid = r.oid \
                 and d.classoid = 'pg_catalog.pg_authid'::regclass where d.description = $1",
                &[&MARK],
            )
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        if !names.is_empty() {
            let list: Vec<String> = names.iter().map(|n| crate::sql::quote_ident(n)).collect();
            match client
                .batch_execute(&format!("drop role if exists {}", list.join(", ")))
                .await
            {
                Ok(()) => dropped = names,
                Err(e) => eprintln!(
                    "db-ci: warning: could not drop the roles db-ci created ({}): {}",
                    names.join(", "),
                    db_error_text(&e)
                ),
            }
        }
    }
    let end = if dropped.is_empty() && others == 0 {
        "rollback"
    } else {
        "commit"
    };
    if client.batch_execute(end).await.is_err() {
        let _ = client.batch_execute("rollback").await;
        dropped.clear();
    }
    if !dropped.is_empty() {
        eprintln!(
            "db-ci: removed roles {} (no db-ci run uses them)",
            dropped.join(", ")
        );
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str, inherit: bool, bypassrls: bool, superuser: bool) -> RoleAttrs {
        RoleAttrs {
            name: name.into(),
            inherit,
            bypassrls,
            superuser,
        }
    }

    #[test]
    fn restricted_roles_are_conflicts() {
        let existing = [
            role("service_role", true, false, false),
            role("anon", true, false, false),
            role("authenticator", false, false, false),
        ];
        assert_eq!(conflicts(&existing), ["service_role: BYPASSRLS"]);
        assert!(conflicts(&[]).is_empty());
    }

    #[test]
    fn only_the_postgres_superuser_matches_the_local_backend() {
        assert_eq!(refuse_user("postgres", true), None);
        assert!(refuse_user("app", true).unwrap().contains("`app`"));
        assert!(refuse_user("postgres", false).is_some());
    }
}
