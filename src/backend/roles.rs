//! The url backend's cluster roles. The server is the user's, and roles are cluster-wide:
//! before the shim runs, db-ci checks who it is connected as, refuses to change roles an
//! administrator set up differently (unless the user opts in), creates the missing ones
//! itself and says so, and never lets a role that can log in become an API role. What it
//! created or changed, the last db-ci run on the server puts back ([`super::lent`]).

use tokio_postgres::Client;

use super::lent::{self, Role, Roles};
use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// Set to `1` to let db-ci change the attributes of existing roles the shim relies on.
pub const ADOPT_ENV: &str = "DB_CI_URL_ADOPT_ROLES";

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

/// Attributes the shim enforces on existing roles: (role, attribute, wanted, clause).
const ENFORCED: &[(&str, Attribute, bool, &str)] = &[
    ("anon", Attribute::Inherit, true, "INHERIT"),
    ("authenticated", Attribute::Inherit, true, "INHERIT"),
    ("service_role", Attribute::Inherit, true, "INHERIT"),
    ("service_role", Attribute::BypassRls, true, "BYPASSRLS"),
    ("authenticator", Attribute::Inherit, false, "NOINHERIT"),
    ("supabase_admin", Attribute::Superuser, true, "SUPERUSER"),
];

/// The memberships the shim grants: (granted role, member).
pub const MEMBERSHIPS: &[(&str, &str)] = &[
    ("anon", "authenticator"),
    ("authenticated", "authenticator"),
    ("service_role", "authenticator"),
    ("anon", "postgres"),
    ("authenticated", "postgres"),
    ("service_role", "postgres"),
];

/// The cluster-wide role settings the shim makes: (role, setting, value).
pub const SETTINGS: &[(&str, &str, &str)] = &[
    ("anon", "statement_timeout", "3s"),
    ("authenticated", "statement_timeout", "8s"),
    ("authenticator", "statement_timeout", "8s"),
    ("authenticator", "lock_timeout", "8s"),
];

#[derive(Debug, Clone, Copy)]
enum Attribute {
    Inherit,
    BypassRls,
    Superuser,
}

impl Attribute {
    fn of(self, role: &Role) -> bool {
        match self {
            Attribute::Inherit => role.inherit,
            Attribute::BypassRls => role.bypassrls,
            Attribute::Superuser => role.superuser,
        }
    }
}

/// Whether the shim may make `member` a member of an API role. Never a role that can log
/// in: with its password, anyone could become `service_role` (and bypass RLS) through it
/// while a run lasts. A superuser may (it can become any role anyway), and so may the
/// throwaway cluster's own `postgres` (the url backend requires `postgres` be a superuser).
/// The shim's SQL applies the same rule.
pub fn may_join(member: &Role) -> bool {
    !member.login || member.superuser || member.name == "postgres"
}

/// What the shim would change on the roles that exist, one `role: change` each: what a run
/// refuses to do without the user's consent.
pub fn changes(existing: &Roles) -> Vec<String> {
    let mut found = Vec::new();
    for (name, attribute, want, clause) in ENFORCED {
        if existing
            .named(name)
            .is_some_and(|role| attribute.of(role) != *want)
        {
            found.push(format!("{name}: {clause}"));
        }
    }
    for (granted, member) in MEMBERSHIPS {
        let joins = existing.named(member).is_some_and(may_join);
        if existing.named(granted).is_some() && joins && !existing.is_member(granted, member) {
            found.push(format!("{member}: GRANT {granted}"));
        }
    }
    for (role, setting, value) in SETTINGS {
        let wanted = format!("{setting}={value}");
        if existing.named(role).is_some() && !existing.setting(role).contains(&wanted) {
            found.push(format!("{role}: SET {setting} = {value}"));
        }
    }
    found
}

/// The roles that can log in and are therefore kept out of the API roles, with the roles
/// they are kept out of.
pub fn kept_out(existing: &Roles) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for role in existing.roles.iter().filter(|r| !may_join(r)) {
        let out: Vec<&str> = MEMBERSHIPS
            .iter()
            .filter(|(_, member)| *member == role.name)
            .map(|(granted, _)| *granted)
            .collect();
        if !out.is_empty() {
            lines.push(format!(
                "left {} out of {}: it can log in, and no role that can log in is made able \
                 to become them",
                role.name,
                out.join(", ")
            ));
        }
    }
    lines
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

/// Checks the server and creates the shim's roles on it; returns what it created, changed
/// or left alone, one line each, for the output. `own` is this run's application name.
pub async fn prepare(client: &Client, own: &str) -> Result<Vec<String>> {
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
    // Written down before anything changes: the last run out puts it all back.
    let mut lines = lent::enter(client, own).await?;
    let before = lent::read(client).await?;
    let changes = changes(&before);
    let adopt = std::env::var(ADOPT_ENV).is_ok_and(|v| v == "1");
    if !changes.is_empty() && !adopt {
        return Err(Error::environment(format!(
            "use this server: roles the Supabase shim relies on exist, and db-ci would change \
             them for everyone on the server while it runs ({}). Set {ADOPT_ENV}=1 to let it \
             (the last db-ci run on the server puts them back), or give db-ci a server of its \
             own (--backend local or container)",
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
    let after = lent::read(client).await?;
    let created: Vec<&str> = after
        .roles
        .iter()
        .filter(|r| before.named(&r.name).is_none())
        .map(|r| r.name.as_str())
        .collect();
    if !created.is_empty() {
        lines.push(format!(
            "created roles {} (NOLOGIN; dropped by the last db-ci run on this server)",
            created.join(", ")
        ));
    }
    for change in changes {
        lines.push(format!(
            "changed role {change} ({ADOPT_ENV}=1; put back by the last db-ci run on this server)"
        ));
    }
    lines.extend(kept_out(&before));
    Ok(lines)
}

/// When no other db-ci run (sessions named `db-ci …` other than `own`, this run's
/// application name) is on the server: puts its roles back as the first run found them.
/// Returns what it did, one line each (also printed).
pub async fn release(client: &Client, own: &str) -> Vec<String> {
    let lines = lent::leave(client, own).await;
    for line in &lines {
        let line = match line.strip_prefix("removed roles ") {
            Some(names) => format!("removed roles {names} (no db-ci run uses them)"),
            None if line.starts_with("removed ") => line.clone(),
            None => format!("restored role {line}"),
        };
        eprintln!("db-ci: {line}");
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::lent::{Member, Setting};

    fn role(oid: u32, name: &str, login: bool) -> Role {
        Role {
            oid,
            name: name.into(),
            inherit: true,
            login,
            ..Role::default()
        }
    }

    #[test]
    fn changes_to_existing_roles_are_listed_and_new_ones_are_not() {
        let mut service_role = role(30, "service_role", false);
        service_role.bypassrls = false;
        let mut existing = Roles {
            roles: vec![
                role(10, "postgres", true),
                service_role,
                role(20, "anon", false),
            ],
            ..Roles::default()
        };
        existing.roles[0].superuser = true;
        assert_eq!(
            changes(&existing),
            [
                "service_role: BYPASSRLS",
                "postgres: GRANT anon",
                "postgres: GRANT service_role",
                "anon: SET statement_timeout = 3s",
            ]
        );
        existing.roles[1].bypassrls = true;
        existing.members = vec![
            Member {
                role: 20,
                member: 10,
                grantor: 10,
                admin: false,
            },
            Member {
                role: 30,
                member: 10,
                grantor: 10,
                admin: false,
            },
        ];
        existing.settings = vec![Setting {
            role: 20,
            config: vec!["statement_timeout=3s".into()],
        }];
        assert!(changes(&existing).is_empty(), "{:?}", changes(&existing));
        assert!(changes(&Roles::default()).is_empty());
    }

    #[test]
    fn a_role_that_can_log_in_never_joins_the_api_roles() {
        let mut existing = Roles {
            roles: vec![
                role(20, "anon", false),
                role(30, "service_role", false),
                role(40, "authenticator", true),
            ],
            ..Roles::default()
        };
        existing.roles[1].bypassrls = true;
        existing.roles[2].inherit = false;
        let found = changes(&existing);
        assert!(!found.iter().any(|c| c.contains("GRANT")), "{found:?}");
        assert_eq!(
            kept_out(&existing),
            [
                "left authenticator out of anon, authenticated, service_role: it can log in, and \
              no role that can log in is made able to become them"
            ]
        );
        // NOLOGIN, or a superuser: it may.
        existing.roles[2].login = false;
        assert!(changes(&existing).contains(&"authenticator: GRANT anon".to_owned()));
        let mut admin = role(50, "authenticator", true);
        admin.superuser = true;
        assert!(may_join(&admin));
    }

    #[test]
    fn the_lists_match_what_the_shim_sql_does() {
        let sql: String = crate::shim::sql_files(crate::shim::GrantMode::Classic)
            .into_iter()
            .find(|(name, _)| name.starts_with("000_roles"))
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        for (granted, member) in MEMBERSHIPS {
            assert!(
                sql.contains(&format!("('{granted}','{member}')")),
                "{granted} {member}"
            );
        }
        for (role, setting, value) in SETTINGS {
            assert!(
                sql.contains(&format!("('{role}','{setting}','{value}')")),
                "{role}"
            );
        }
        for (role, _, _, clause) in ENFORCED {
            assert!(sql.contains(&format!("'{clause}')")), "{role} {clause}");
        }
        assert!(
            sql.contains("rolcanlogin"),
            "the shim applies the login rule too"
        );
    }

    #[test]
    fn only_the_postgres_superuser_matches_the_local_backend() {
        assert_eq!(refuse_user("postgres", true), None);
        assert!(refuse_user("app", true).unwrap().contains("`app`"));
        assert!(refuse_user("postgres", false).is_some());
    }
}
