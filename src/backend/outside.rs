//! What a run may leave on a lent server outside its databases and roles: tablespaces and
//! `ALTER SYSTEM` settings (a project's migrations run as the superuser there). Written down
//! with the roles as found ([`super::lent`]); the last run to leave drops the tablespaces and
//! resets the settings that are new, and names in a warning a setting that was there and
//! changed. Only a digest of each setting's value is written down: the ledger is a comment
//! every user of the server can read, and a setting may hold a secret (`primary_conninfo`).

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::{db_error_text, quote_ident};

/// The cluster's tablespaces and `postgresql.auto.conf` settings at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    pub tablespaces: Vec<String>,
    /// `name` and a digest of its value, for each setting `ALTER SYSTEM` wrote.
    pub system: Vec<(String, String)>,
}

pub async fn read(client: &Client) -> Result<Cluster> {
    let fail = |e: tokio_postgres::Error| {
        Error::environment(format!(
            "read the server's tablespaces and ALTER SYSTEM settings: {}",
            db_error_text(&e)
        ))
    };
    let tablespaces = client
        .query(
            "select spcname::text from pg_catalog.pg_tablespace order by 1",
            &[],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let system = client
        .query(
            "select name, coalesce(setting, '') from pg_catalog.pg_file_settings \
             where sourcefile like '%/postgresql.auto.conf' order by seqno",
            &[],
        )
        .await
        .map_err(fail)?
        .iter()
        .map(|r| (r.get::<_, String>(0), digest(&r.get::<_, String>(1))))
        .collect();
    Ok(Cluster {
        tablespaces,
        system,
    })
}

fn digest(value: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(value.as_bytes())[..8])
}

/// What puts `now` back to `found`: statements (each outside a transaction, as the server
/// requires for both) with what each says, and warnings for what is not put back.
pub fn undo(found: &Cluster, now: &Cluster) -> (Vec<(String, String)>, Vec<String>) {
    let mut steps = Vec::new();
    let mut warnings = Vec::new();
    for name in &now.tablespaces {
        if !found.tablespaces.contains(name) {
            steps.push((
                format!("drop tablespace {}", quote_ident(name)),
                format!("removed tablespace {name}"),
            ));
        }
    }
    for (name, value) in &now.system {
        match found.system.iter().find(|(n, _)| n == name) {
            None => {
                // A name is a (dotted) identifier; anything else is not put in SQL.
                if name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                {
                    steps.push((
                        format!("alter system reset {name}"),
                        format!("removed ALTER SYSTEM setting {name}"),
                    ));
                }
            }
            Some((_, was)) if was != value => warnings.push(format!(
                "ALTER SYSTEM setting {name} was changed during the runs and is not put back \
                 (its value is not written down)"
            )),
            Some(_) => {}
        }
    }
    (steps, warnings)
}

/// Runs the steps of [`undo`], each on its own; one that fails is a warning naming it.
pub async fn put_back(client: &Client, found: &Cluster) -> Vec<String> {
    let now = match read(client).await {
        Ok(now) => now,
        Err(e) => {
            eprintln!("db-ci: warning: {e}");
            return Vec::new();
        }
    };
    let (steps, warnings) = undo(found, &now);
    for warning in warnings {
        eprintln!("db-ci: warning: {warning}");
    }
    let mut done = Vec::new();
    let mut reload = false;
    for (sql, said) in steps {
        match client.batch_execute(&sql).await {
            Ok(()) => {
                reload |= sql.starts_with("alter system");
                done.push(said);
            }
            Err(e) => eprintln!(
                "db-ci: warning: could not put the server back ({said}): {}",
                db_error_text(&e)
            ),
        }
    }
    if reload {
        let _ = client
            .batch_execute("select pg_catalog.pg_reload_conf()")
            .await;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_objects_go_and_a_changed_found_setting_is_named() {
        let found = Cluster {
            tablespaces: vec!["pg_default".into(), "theirs".into()],
            system: vec![("work_mem".into(), digest("4MB"))],
        };
        let now = Cluster {
            tablespaces: vec!["pg_default".into(), "theirs".into(), "made here".into()],
            system: vec![
                ("work_mem".into(), digest("8MB")),
                ("pgaudit.log".into(), digest("all")),
                ("bad name; drop".into(), digest("x")),
            ],
        };
        let (steps, warnings) = undo(&found, &now);
        let sql: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            sql,
            [
                "drop tablespace \"made here\"",
                "alter system reset pgaudit.log"
            ]
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("work_mem"), "{warnings:?}");
        assert_eq!(undo(&found, &found), (vec![], vec![]));
    }
}
