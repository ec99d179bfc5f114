//! The url backend: an existing server on which db-ci creates and drops its own databases.

use std::str::FromStr;

use super::{BackendKind, Connection, Handle, Host, Server};
use crate::error::{Error, Result};

/// Connects to `url` to manage throwaway databases; never writes into `url`'s own database.
pub async fn connect(url: &str) -> Result<Server> {
    crate::redact::register(url);
    let env = |k: &str| std::env::var(k).ok();
    let expanded = crate::pgservice::expand(url, &env)?;
    let mut config = tokio_postgres::Config::from_str(&expanded)
        .map_err(|e| Error::input(format!("parse --database-url {}: {e}", redact_url(url))))?;
    if let Some(password) = crate::pgpass::password_for(&config, &env) {
        config.password(password);
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => Host::Tcp(h.clone()),
        Some(tokio_postgres::config::Host::Unix(p)) => Host::Socket(p.clone()),
        None => Host::Tcp("localhost".to_owned()),
    };
    let connection = Connection {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        user: config.get_user().unwrap_or("postgres").to_owned(),
        password: config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        maintenance_db: config.get_dbname().unwrap_or("postgres").to_owned(),
    };
    // Said in the header (and the JSON's `backend`) of every run, and once on stderr: the
    // files under test run as a superuser here, unlike on the platform.
    let description = format!(
        "url {} (as its superuser postgres, not demoted as on the platform)",
        connection.redacted(&connection.maintenance_db)
    );
    let mut server = Server::new(
        BackendKind::Url,
        connection,
        description,
        false,
        Handle::Url,
    );
    // First a session tagged with this run, held to the end: from now on no other run takes
    // this run's databases for a dead run's.
    let maintenance = server.connection.maintenance_db.clone();
    let keepalive = server.connect(&maintenance).await?;
    super::sweep::url_databases(&keepalive).await;
    // The server is the user's: check it before the shim changes any cluster-wide role.
    for line in super::roles::prepare(&keepalive, &server.application_name()).await? {
        eprintln!("db-ci: url server: {line}");
    }
    eprintln!("db-ci: note: {}", crate::shim::platform::URL_NOTE);
    server.keepalive = Some(keepalive);
    let mut server = server.identify().await?;
    server.stub_extensions_installed = server.stub_extensions_available().await?;
    Ok(server)
}

impl Server {
    async fn stub_extensions_available(&self) -> Result<bool> {
        let client = self.connect(&self.connection.maintenance_db).await?;
        let row = client
            .query_one(
                "select count(*) from pg_available_extensions where name = 'pg_net'",
                &[],
            )
            .await
            .map_err(|e| Error::environment(format!("read available extensions: {e}")))?;
        Ok(row.get::<_, i64>(0) > 0)
    }
}

/// `url` (or key=value conninfo) with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    crate::redact::register(url);
    crate::redact::scrub(url).into_owned()
}

/// Drops databases from a `Drop` impl, where no async runtime may be usable.
/// Statements this run still has running (a CREATE DATABASE among them, when interrupted) are
/// cancelled first and waited for, so none completes after the drop.
pub(super) fn drop_databases_blocking(
    config: tokio_postgres::Config,
    application_name: String,
    names: Vec<String>,
) {
    let work = move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let Ok((client, conn)) = config.connect(tokio_postgres::NoTls).await else {
                return;
            };
            tokio::spawn(conn);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
            loop {
                let busy = client
                    .query_one(
                        "select count(pg_cancel_backend(pid)) from pg_stat_activity \
                         where application_name like $1 || '%' and state = 'active' \
                         and pid <> pg_backend_pid()",
                        &[&application_name],
                    )
                    .await
                    .map(|row| row.get::<_, i64>(0))
                    .unwrap_or(0);
                if busy == 0 || std::time::Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            for name in names {
                let _ = client
                    .batch_execute(&format!(
                        "drop database if exists {} with (force)",
                        crate::sql::quote_ident(&name)
                    ))
                    .await;
            }
            super::roles::release(&client, &application_name).await;
        });
    };
    let _ = std::thread::spawn(work).join();
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_redacted() {
        let shown = redact_url("postgres://user:s3cret@db.example:5432/app");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"));
    }
}
