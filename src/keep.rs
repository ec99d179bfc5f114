//! `--keep`: after a run, hand the replayed database to the user (a URL without the password,
//! which goes into a private pgpass file instead) until Ctrl-C, then tear everything down.

use std::io::Write;

use std::sync::atomic::{AtomicI32, Ordering};

use crate::backend::{Connection, Host};
use crate::run::Replayed;

/// The run's exit code while its database is kept: Ctrl-C is then how the user says "done",
/// not an interruption, so the process still exits with the verdict.
static VERDICT_WHILE_KEPT: AtomicI32 = AtomicI32::new(-1);

/// Records the verdict's exit code before [`Replayed::keep`] waits for Ctrl-C.
pub fn hold_verdict(code: i32) {
    VERDICT_WHILE_KEPT.store(code, Ordering::SeqCst);
}

/// The exit code to end with when Ctrl-C comes while a database is kept.
pub fn verdict_while_kept() -> Option<i32> {
    let code = VERDICT_WHILE_KEPT.load(Ordering::SeqCst);
    (code >= 0).then_some(code)
}

impl Replayed {
    /// Prints how to reach the replayed database, waits for Ctrl-C, then shuts the server
    /// down (dropping every database db-ci made).
    pub async fn keep(self) {
        let pgpass = match pgpass_file(&self.server.connection, &self.database) {
            Ok(pgpass) => pgpass,
            Err(e) => {
                eprintln!("error: write a pgpass file for --keep: {e}");
                self.server.shutdown().await;
                return;
            }
        };
        let mut out = std::io::stdout();
        let _ = writeln!(
            out,
            "{}",
            keep_message(
                &self.server.connection,
                &self.database,
                pgpass.as_ref().map(|(_, path)| path.as_path())
            )
        );
        let _ = out.flush();
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("tearing down the kept database");
        self.server.shutdown().await;
        drop(pgpass);
    }
}

/// The URL of `database` without any password.
pub fn url_without_password(connection: &Connection, database: &str) -> String {
    let mut connection = connection.clone();
    connection.password = None;
    connection.url(database)
}

fn keep_message(
    connection: &Connection,
    database: &str,
    pgpass: Option<&std::path::Path>,
) -> String {
    let url = url_without_password(connection, database);
    let mut text = format!("\nkept: the replayed database is at\n  {url}\n");
    match pgpass {
        Some(path) => text.push_str(&format!(
            "  its password is in {} (removed at teardown): PGPASSFILE={} psql '{url}'\n",
            path.display(),
            path.display()
        )),
        None => text.push_str(&format!("  psql '{url}'\n")),
    }
    if connection.user != "postgres" {
        // db-ci's own cluster: the harness's superuser, not the platform's postgres.
        text.push_str(&format!(
            "  as the superuser {}; `set session authorization postgres` acts as migrations do\n",
            connection.user
        ));
    }
    text.push_str("press Ctrl-C to tear it down");
    text
}

/// A pgpass file (mode 0600, in a private temporary directory) holding the password, if the
/// server has one.
fn pgpass_file(
    connection: &Connection,
    database: &str,
) -> std::io::Result<Option<(tempfile::TempDir, std::path::PathBuf)>> {
    let Some(password) = &connection.password else {
        return Ok(None);
    };
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    let host = match &connection.host {
        Host::Tcp(host) => host.clone(),
        Host::Socket(dir) => dir.display().to_string(),
    };
    // The owner in the name lets a later run remove it when this one is killed (SIGKILL).
    let prefix = match crate::backend::owner::Owner::current() {
        Some(me) => format!(
            "{}{}-{}-",
            crate::backend::sweep::KEEP_PREFIX,
            me.pid,
            me.start
        ),
        None => crate::backend::sweep::KEEP_PREFIX.to_owned(),
    };
    let dir = tempfile::Builder::new().prefix(&prefix).tempdir()?;
    let path = dir.path().join("pgpass");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode_0600()
        .open(&path)?;
    writeln!(
        file,
        "{}:{}:{}:{}:{}",
        escape(&host),
        connection.port,
        escape(database),
        escape(&connection.user),
        escape(password)
    )?;
    Ok(Some((dir, path)))
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_url_never_holds_the_password() {
        let connection = Connection {
            host: Host::Tcp("127.0.0.1".to_owned()),
            port: 5433,
            user: "postgres".to_owned(),
            password: Some("s3cret:pw".to_owned()),
            maintenance_db: "postgres".to_owned(),
        };
        let (_dir, path) = pgpass_file(&connection, "db_ci_1").unwrap().unwrap();
        let message = keep_message(&connection, "db_ci_1", Some(&path));
        assert!(
            message.contains("postgres://postgres@127.0.0.1:5433/db_ci_1"),
            "{message}"
        );
        assert!(!message.contains("s3cret"), "{message}");
        let pgpass = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pgpass, "127.0.0.1:5433:db_ci_1:postgres:s3cret\\:pw\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
