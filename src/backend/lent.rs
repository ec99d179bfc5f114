//! A lent server left as found. Before the first db-ci run on a url server changes anything,
//! the server's roles as found (attributes, memberships, cluster-wide settings) are written
//! down on the server itself, in the comment of a NOLOGIN role of db-ci's ([`LEDGER_ROLE`]),
//! where every concurrent run shares them. The last db-ci run to leave puts the roles back:
//! it drops every role created since (by the shim, or by the project's own migrations), and
//! undoes what was changed on the roles found. A run killed before it could leave is undone
//! by the next run that finds the ledger and no db-ci run alive.
//!
//! Passwords too: each found role's stored password (the hash in `pg_authid`, never the
//! password itself) is kept as the password of a NOLOGIN role of db-ci's
//! ([`PASSWORD_KEEPER`] + the role's oid), which only a superuser can read, as `pg_authid`
//! itself. A comment would show the hash to every user of the server.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::{db_error_text, quote_ident, quote_literal};

/// The role whose comment holds the server's roles as found.
pub const LEDGER_ROLE: &str = "db_ci_found_roles";

/// The name, followed by a role's oid, of the NOLOGIN role that keeps that role's password
/// as found (its hash, stored verbatim as its own).
pub const PASSWORD_KEEPER: &str = "db_ci_found_password_";

/// A server's roles at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    pub roles: Vec<Role>,
    pub members: Vec<Member>,
    /// Role settings for every database (`ALTER ROLE … SET`), by role.
    pub settings: Vec<Setting>,
}

/// One role's attributes. Whether it had a password is written down; the password's hash is
/// kept apart (see [`PASSWORD_KEEPER`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub oid: u32,
    pub name: String,
    pub superuser: bool,
    pub inherit: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub login: bool,
    pub replication: bool,
    pub bypassrls: bool,
    pub connlimit: i32,
    /// `VALID UNTIL`, as text (`None`: no limit).
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Whether it had a password (`None` in a ledger written before db-ci kept passwords:
    /// then passwords are left alone).
    #[serde(default)]
    pub has_password: Option<bool>,
}

/// `member` belongs to `role`, granted by `grantor` (one row of `pg_auth_members`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub role: u32,
    pub member: u32,
    pub grantor: u32,
    pub admin: bool,
}

/// A role's cluster-wide settings as stored (`name=value` each).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub role: u32,
    pub config: Vec<String>,
}

impl Roles {
    pub fn named(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    fn by_oid(&self, oid: u32) -> Option<&Role> {
        self.roles.iter().find(|r| r.oid == oid)
    }

    /// Whether `member` belongs to `role` directly.
    pub fn is_member(&self, role: &str, member: &str) -> bool {
        let (Some(role), Some(member)) = (self.named(role), self.named(member)) else {
            return false;
        };
        self.members
            .iter()
            .any(|m| m.role == role.oid && m.member == member.oid)
    }

    pub fn setting(&self, role: &str) -> &[String] {
        self.named(role)
            .and_then(|r| self.settings.iter().find(|s| s.role == r.oid))
            .map_or(&[], |s| s.config.as_slice())
    }
}

/// One step that puts a server's roles back as found, with what it says it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A role that did not exist: dropped.
    Drop(String),
    /// A statement restoring an attribute or a membership.
    Sql { sql: String, said: String },
    /// A role's settings as found (`None`: it had none).
    Settings {
        role: u32,
        name: String,
        config: Option<Vec<String>>,
    },
}

/// What puts `now` back to `found`: new roles dropped, found roles' attributes, memberships
/// among them and their settings restored. `granted_by`: the server takes `GRANTED BY` on a
/// revoke (PostgreSQL 16 keeps one grant per grantor).
pub fn restore_plan(found: &Roles, now: &Roles, granted_by: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for role in &now.roles {
        if found.by_oid(role.oid).is_none() && role.name != LEDGER_ROLE {
            steps.push(Step::Drop(role.name.clone()));
        }
    }
    for was in &found.roles {
        let Some(is) = now.by_oid(was.oid) else {
            continue;
        };
        let flags = [
            (was.superuser, is.superuser, "SUPERUSER"),
            (was.inherit, is.inherit, "INHERIT"),
            (was.createrole, is.createrole, "CREATEROLE"),
            (was.createdb, is.createdb, "CREATEDB"),
            (was.login, is.login, "LOGIN"),
            (was.replication, is.replication, "REPLICATION"),
            (was.bypassrls, is.bypassrls, "BYPASSRLS"),
        ];
        let mut clauses: Vec<String> = flags
            .iter()
            .filter(|(was, is, _)| was != is)
            .map(|(was, _, name)| format!("{}{name}", if *was { "" } else { "NO" }))
            .collect();
        if was.connlimit != is.connlimit {
            clauses.push(format!("CONNECTION LIMIT {}", was.connlimit));
        }
        if was.valid_until != is.valid_until {
            match &was.valid_until {
                Some(until) => clauses.push(format!("VALID UNTIL {}", quote_literal(until))),
                // No statement sets it back to none: the catalog is written, as for settings.
                None => steps.push(Step::Sql {
                    sql: format!(
                        "update pg_catalog.pg_authid set rolvaliduntil = null where oid = {}",
                        is.oid
                    ),
                    said: format!("{}: VALID UNTIL removed", is.name),
                }),
            }
        }
        if !clauses.is_empty() {
            steps.push(Step::Sql {
                sql: format!("ALTER ROLE {} {}", quote_ident(&is.name), clauses.join(" ")),
                said: format!("{}: {}", is.name, clauses.join(" ")),
            });
        }
    }
    // Memberships among the roles found (the rest go with the roles dropped).
    let name = |oid: u32| now.by_oid(oid).map(|r| r.name.clone());
    for m in &now.members {
        let among_found = found.by_oid(m.role).is_some() && found.by_oid(m.member).is_some();
        let was = found
            .members
            .iter()
            .any(|f| f.role == m.role && f.member == m.member && f.grantor == m.grantor);
        if !among_found || was {
            continue;
        }
        let (Some(role), Some(member), Some(grantor)) =
            (name(m.role), name(m.member), name(m.grantor))
        else {
            continue;
        };
        let by = if granted_by {
            format!(" GRANTED BY {}", quote_ident(&grantor))
        } else {
            String::new()
        };
        steps.push(Step::Sql {
            sql: format!(
                "REVOKE {} FROM {}{by}",
                quote_ident(&role),
                quote_ident(&member)
            ),
            said: format!("{member}: no longer a member of {role}"),
        });
    }
    for f in &found.members {
        let still = now
            .members
            .iter()
            .any(|m| m.role == f.role && m.member == f.member);
        let (Some(role), Some(member)) = (name(f.role), name(f.member)) else {
            continue;
        };
        if !still {
            let admin = if f.admin { " WITH ADMIN OPTION" } else { "" };
            steps.push(Step::Sql {
                sql: format!(
                    "GRANT {} TO {}{admin}",
                    quote_ident(&role),
                    quote_ident(&member)
                ),
                said: format!("{member}: a member of {role} again"),
            });
        }
    }
    for was in &found.roles {
        let Some(is) = now.by_oid(was.oid) else {
            continue;
        };
        let config = |roles: &Roles| {
            roles
                .settings
                .iter()
                .find(|s| s.role == was.oid)
                .map(|s| s.config.clone())
        };
        let (before, after) = (config(found), config(now));
        if before != after {
            steps.push(Step::Settings {
                role: was.oid,
                name: is.name.clone(),
                config: before,
            });
        }
    }
    steps
}

impl Step {
    /// What the step restores, for the output.
    pub fn said(&self) -> String {
        match self {
            Step::Drop(name) => format!("dropped {name}"),
            Step::Sql { said, .. } => said.clone(),
            Step::Settings { name, config, .. } => match config {
                Some(config) => format!("{name}: settings back to {}", config.join(", ")),
                None => format!("{name}: settings removed"),
            },
        }
    }
}

/// The server's roles now (the ledger role aside).
pub async fn read(client: &Client) -> Result<Roles> {
    let fail = |e: tokio_postgres::Error| {
        Error::environment(format!("read the server's roles: {}", db_error_text(&e)))
    };
    // `pg_authid`, not `pg_roles`: whether a role has a password (db-ci is a superuser here).
    let roles = client
        .query(
            "select oid, rolname::text, rolsuper, rolinherit, rolcreaterole, rolcreatedb, \
             rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil::text, \
             rolpassword is not null from pg_catalog.pg_authid \
             where rolname <> $1 and not starts_with(rolname, $2) order by oid",
            &[&LEDGER_ROLE, &PASSWORD_KEEPER],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| Role {
            oid: r.get(0),
            name: r.get(1),
            superuser: r.get(2),
            inherit: r.get(3),
            createrole: r.get(4),
            createdb: r.get(5),
            login: r.get(6),
            replication: r.get(7),
            bypassrls: r.get(8),
            connlimit: r.get(9),
            valid_until: r.get(10),
            has_password: Some(r.get(11)),
        })
        .collect();
    let members = client
        .query(
            "select roleid, member, grantor, admin_option from pg_catalog.pg_auth_members \
             order by 1, 2, 3",
            &[],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| Member {
            role: r.get(0),
            member: r.get(1),
            grantor: r.get(2),
            admin: r.get(3),
        })
        .collect();
    let settings = client
        .query(
            "select setrole, setconfig::text[] from pg_catalog.pg_db_role_setting \
             where setdatabase = 0 and setrole <> 0 order by 1",
            &[],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| Setting {
            role: r.get(0),
            config: r.get::<_, Option<Vec<String>>>(1).unwrap_or_default(),
        })
        .collect();
    Ok(Roles {
        roles,
        members,
        settings,
    })
}

/// Locks role changes (as the shim does) in a transaction, and counts the db-ci runs on the
/// server other than `own` (this run's application name).
async fn lock_and_count_others(client: &Client, own: &str) -> Result<i64> {
    client
        .batch_execute("begin; lock table pg_catalog.pg_authid in share row exclusive mode")
        .await
        .map_err(|e| {
            Error::environment(format!("lock the server's roles: {}", db_error_text(&e)))
        })?;
    client
        .query_one(
            "select count(*) from pg_stat_activity where application_name like 'db-ci %' \
             and application_name not like $1 || '%'",
            &[&own],
        )
        .await
        .map(|r| r.get(0))
        .map_err(|e| Error::environment(format!("count db-ci runs: {}", db_error_text(&e))))
}

/// What the ledger role's comment holds: the roles as found and, apart, what else in the
/// cluster a run may leave ([`super::outside`]; `None` in a ledger of an older db-ci).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Ledger {
    #[serde(flatten)]
    roles: Roles,
    #[serde(default)]
    cluster: Option<super::outside::Cluster>,
}

async fn ledger(client: &Client) -> Result<Option<Ledger>> {
    let row = client
        .query_opt(
            "select d.description from pg_catalog.pg_roles r \
             join pg_catalog.pg_shdescription d on d.objoid = r.oid \
             and d.classoid = 'pg_catalog.pg_authid'::regclass where r.rolname = $1",
            &[&LEDGER_ROLE],
        )
        .await
        .map_err(|e| Error::environment(format!("read db-ci's ledger: {}", db_error_text(&e))))?;
    Ok(row.and_then(|r| serde_json::from_str(&r.get::<_, String>(0)).ok()))
}

/// Writes the server's roles down before this run changes anything, unless a live run did
/// already; a ledger no run is alive to use is a killed run's, undone first. Returns what
/// was undone, one line each.
pub async fn enter(client: &Client, own: &str) -> Result<Vec<String>> {
    let others = match lock_and_count_others(client, own).await {
        Ok(n) => n,
        Err(e) => {
            let _ = client.batch_execute("rollback").await;
            return Err(e);
        }
    };
    let result = async {
        let mut lines = Vec::new();
        match ledger(client).await? {
            Some(found) if others == 0 => {
                let undone = put_back(client, &found.roles).await?;
                if !undone.is_empty() {
                    lines.push(format!(
                        "undid what an interrupted db-ci run left on the server's roles: {}",
                        undone.join("; ")
                    ));
                }
            }
            Some(_) => {}
            None => {
                let found = Ledger {
                    roles: read(client).await?,
                    cluster: Some(super::outside::read(client).await?),
                };
                let json = serde_json::to_string(&found).unwrap_or_default();
                client
                    .batch_execute(&format!(
                        "create role {} nologin; comment on role {} is {}",
                        quote_ident(LEDGER_ROLE),
                        quote_ident(LEDGER_ROLE),
                        quote_literal(&json)
                    ))
                    .await
                    .map_err(|e| {
                        Error::environment(format!(
                            "write down the server's roles: {}",
                            db_error_text(&e)
                        ))
                    })?;
                keep_passwords(client).await?;
            }
        }
        Ok::<_, Error>(lines)
    }
    .await;
    let end = if result.is_ok() { "commit" } else { "rollback" };
    let _ = client.batch_execute(end).await;
    result
}

/// When no other db-ci run is on the server: puts the roles back as the ledger says and
/// removes the ledger. Returns what was put back (nothing while another run is alive).
pub async fn leave(client: &Client, own: &str) -> Vec<String> {
    let Ok(others) = lock_and_count_others(client, own).await else {
        let _ = client.batch_execute("rollback").await;
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut cluster = None;
    if others == 0 {
        if let Ok(Some(found)) = ledger(client).await {
            cluster = found.cluster.clone();
            match put_back(client, &found.roles).await {
                Ok(done) => lines = done,
                Err(e) => eprintln!("db-ci: warning: could not restore the server's roles: {e}"),
            }
            let _ = client
                .batch_execute(&format!("drop role if exists {}", quote_ident(LEDGER_ROLE)))
                .await;
            drop_password_keepers(client).await;
        }
    }
    if client.batch_execute("commit").await.is_err() {
        let _ = client.batch_execute("rollback").await;
        return Vec::new();
    }
    // Neither DROP TABLESPACE nor ALTER SYSTEM runs in a transaction block: after the commit.
    if let Some(found) = cluster {
        lines.extend(super::outside::put_back(client, &found).await);
    }
    lines
}

/// Keeps every role's stored password as the password of a NOLOGIN keeper role. The server
/// stores a password given already hashed as it is, so the keeper holds the same hash.
async fn keep_passwords(client: &Client) -> Result<()> {
    client
        .batch_execute(&format!(
            "do $$ declare r record; begin \
               for r in select oid, rolpassword from pg_catalog.pg_authid \
                 where rolpassword is not null and rolname <> {ledger} \
                 and not starts_with(rolname, {prefix}) loop \
                 execute format('create role %I nologin password %L', {prefix} || r.oid, \
                   r.rolpassword); \
               end loop; end $$",
            ledger = quote_literal(LEDGER_ROLE),
            prefix = quote_literal(PASSWORD_KEEPER),
        ))
        .await
        .map_err(|e| {
            Error::environment(format!(
                "keep the server's passwords as found: {}",
                db_error_text(&e)
            ))
        })
}

async fn drop_password_keepers(client: &Client) {
    let _ = client
        .batch_execute(&format!(
            "do $$ declare r record; begin \
               for r in select rolname from pg_catalog.pg_authid \
                 where starts_with(rolname, {prefix}) loop \
                 execute format('drop role %I', r.rolname); \
               end loop; end $$",
            prefix = quote_literal(PASSWORD_KEEPER),
        ))
        .await;
}

/// Puts back the password of every found role whose stored hash differs from its keeper's
/// (or that had none and has one now). Says which roles, never the hash.
async fn restore_passwords(client: &Client, found: &Roles) -> Result<Vec<String>> {
    let rows = client
        .query(
            "select a.oid, a.rolname::text, a.rolpassword is distinct from k.rolpassword, \
             k.rolpassword, a.rolpassword is not null \
             from pg_catalog.pg_authid a left join pg_catalog.pg_authid k \
             on k.rolname = $1 || a.oid::text",
            &[&PASSWORD_KEEPER],
        )
        .await
        .map_err(|e| {
            Error::environment(format!(
                "read the server's passwords: {}",
                db_error_text(&e)
            ))
        })?;
    let mut done = Vec::new();
    for row in rows {
        let (oid, name, differs, kept, has): (u32, String, bool, Option<String>, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let Some(was) = found.by_oid(oid) else {
            continue;
        };
        let (sql, said) = match was.has_password {
            // The hash is given back as it was stored (the server keeps a hash as given).
            Some(true) if differs && kept.is_some() => (
                format!(
                    "alter role {} password {}",
                    quote_ident(&name),
                    quote_literal(kept.as_deref().unwrap_or_default())
                ),
                format!("{name}: password as found"),
            ),
            Some(false) if has => (
                format!("alter role {} password null", quote_ident(&name)),
                format!("{name}: password removed"),
            ),
            _ => continue,
        };
        let _ = client.batch_execute("savepoint db_ci_step").await;
        match client.batch_execute(&sql).await {
            Ok(()) => {
                let _ = client.batch_execute("release savepoint db_ci_step").await;
                done.push(said);
            }
            Err(e) => {
                let _ = client
                    .batch_execute("rollback to savepoint db_ci_step")
                    .await;
                eprintln!(
                    "db-ci: warning: could not restore the server's roles ({said}): {}",
                    db_error_text(&e)
                );
            }
        }
    }
    Ok(done)
}

/// Runs [`restore_plan`] step by step, each in a savepoint: a role that still owns something
/// elsewhere stays (and is named in a warning) without undoing the rest.
async fn put_back(client: &Client, found: &Roles) -> Result<Vec<String>> {
    let now = read(client).await?;
    let version: i32 = client
        .query_one("select current_setting('server_version_num')::int", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    let mut done = Vec::new();
    let mut dropped = Vec::new();
    for step in restore_plan(found, &now, version >= 160000) {
        let _ = client.batch_execute("savepoint db_ci_step").await;
        let result = match &step {
            Step::Drop(name) => {
                client
                    .batch_execute(&format!("drop role {}", quote_ident(name)))
                    .await
            }
            Step::Sql { sql, .. } => client.batch_execute(sql).await,
            Step::Settings { role, config, .. } => {
                // As stored: `ALTER ROLE … SET` would re-parse each value (a list, a unit).
                let deleted = client
                    .execute(
                        "delete from pg_catalog.pg_db_role_setting \
                         where setdatabase = 0 and setrole = $1",
                        &[role],
                    )
                    .await;
                match (deleted, config) {
                    (Ok(_), Some(config)) => client
                        .execute(
                            "insert into pg_catalog.pg_db_role_setting values (0, $1, $2)",
                            &[role, config],
                        )
                        .await
                        .map(|_| ()),
                    (result, _) => result.map(|_| ()),
                }
            }
        };
        match result {
            Ok(()) => {
                let _ = client.batch_execute("release savepoint db_ci_step").await;
                match step {
                    Step::Drop(name) => dropped.push(name),
                    other => done.push(other.said()),
                }
            }
            Err(e) => {
                let _ = client
                    .batch_execute("rollback to savepoint db_ci_step")
                    .await;
                eprintln!(
                    "db-ci: warning: could not restore the server's roles ({}): {}",
                    step.said(),
                    db_error_text(&e)
                );
            }
        }
    }
    done.extend(restore_passwords(client, found).await?);
    if !dropped.is_empty() {
        done.insert(0, format!("removed roles {}", dropped.join(", ")));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(oid: u32, name: &str) -> Role {
        Role {
            oid,
            name: name.into(),
            inherit: true,
            connlimit: -1,
            ..Role::default()
        }
    }

    fn found() -> Roles {
        Roles {
            roles: vec![
                role(10, "postgres"),
                role(20, "anon"),
                role(30, "authenticator"),
            ],
            members: vec![],
            settings: vec![Setting {
                role: 20,
                config: vec!["search_path=\"$user\", public".into()],
            }],
        }
    }

    #[test]
    fn nothing_changed_needs_nothing() {
        assert_eq!(restore_plan(&found(), &found(), true), []);
    }

    #[test]
    fn new_roles_go_and_found_roles_come_back_as_they_were() {
        let mut now = found();
        now.roles.push(role(40, "app_reader"));
        now.roles.push(role(50, LEDGER_ROLE));
        now.roles[2].inherit = false;
        now.members.push(Member {
            role: 20,
            member: 30,
            grantor: 10,
            admin: false,
        });
        // A membership of a new role goes with the role.
        now.members.push(Member {
            role: 40,
            member: 30,
            grantor: 10,
            admin: false,
        });
        now.settings = vec![
            Setting {
                role: 20,
                config: vec!["statement_timeout=3s".into()],
            },
            Setting {
                role: 30,
                config: vec!["lock_timeout=8s".into()],
            },
        ];
        let plan = restore_plan(&found(), &now, true);
        let said: Vec<String> = plan.iter().map(Step::said).collect();
        assert_eq!(
            said,
            [
                "dropped app_reader",
                "authenticator: INHERIT",
                "authenticator: no longer a member of anon",
                "anon: settings back to search_path=\"$user\", public",
                "authenticator: settings removed",
            ]
        );
        let sql: Vec<&str> = plan
            .iter()
            .filter_map(|s| match s {
                Step::Sql { sql, .. } => Some(sql.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            sql,
            [
                r#"ALTER ROLE "authenticator" INHERIT"#,
                r#"REVOKE "anon" FROM "authenticator" GRANTED BY "postgres""#
            ]
        );
        assert!(!restore_plan(&found(), &now, false)
            .iter()
            .any(|s| matches!(s, Step::Sql { sql, .. } if sql.contains("GRANTED BY"))));
    }

    #[test]
    fn a_membership_taken_away_is_granted_again() {
        let mut was = found();
        was.members.push(Member {
            role: 20,
            member: 30,
            grantor: 10,
            admin: true,
        });
        let plan = restore_plan(&was, &found(), true);
        assert_eq!(
            plan,
            [Step::Sql {
                sql: r#"GRANT "anon" TO "authenticator" WITH ADMIN OPTION"#.into(),
                said: "authenticator: a member of anon again".into()
            }]
        );
    }
}
