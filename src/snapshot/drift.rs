//! `db-ci drift --against URL`: the catalog of a live database, read in a verified read-only
//! transaction, compared with the committed snapshot. Never writes; never prints the password.

use std::path::Path;
use std::str::FromStr;

use crate::backend::url::redact_url;
use crate::error::{exit, Error, Result};
use crate::project::Project;

/// What a drift check found.
#[derive(Debug)]
pub enum Drift {
    None,
    /// The unified diff from the committed snapshot to the live database.
    Found(String),
}

/// `db-ci drift --against URL`: prints the outcome and returns the exit code (0 no drift,
/// 1 drift, 2 input, 3 environment).
pub async fn drift_command(dir: &Path, against: &str) -> i32 {
    match check(dir, against).await {
        Ok(Drift::None) => {
            println!(
                "no drift: {} matches the committed snapshot",
                redact_url(against)
            );
            exit::PASS
        }
        Ok(Drift::Found(diff)) => {
            println!(
                "drift: {} differs from the committed snapshot (- committed, + live):\n{diff}",
                redact_url(against)
            );
            exit::FAIL
        }
        Err(error) => {
            eprintln!("error: failed to {}", crate::redact::scrub(&error.render()));
            error.exit_code()
        }
    }
}

/// Compares the database at `against` with the snapshot of the project at `dir`.
pub async fn check(dir: &Path, against: &str) -> Result<Drift> {
    let project = Project::discover(dir)?;
    let path = super::snapshot_path(&project);
    let rel = project.config.snapshot.relative_path();
    let committed = std::fs::read_to_string(&path).map_err(|e| {
        Error::input(format!(
            "read the committed snapshot {}: {e} (create it with `db-ci run --update-snapshot`)",
            path.display()
        ))
    })?;
    let safe_url = redact_url(against);
    let config = tokio_postgres::Config::from_str(against)
        .map_err(|e| Error::input(format!("parse --against {safe_url}: {e}")))?;
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| {
        Error::environment(format!(
            "connect to {safe_url}: {}",
            crate::backend::db_error_text(&e)
        ))
    })?;
    let connection = tokio::spawn(connection);
    let live = read_only_catalog(&client, &safe_url).await;
    drop(client);
    connection.abort();
    let live = super::render::to_yaml(&live?);
    Ok(
        match super::diff::unified(
            &committed,
            &live,
            &format!("{rel} (committed)"),
            "live database",
        ) {
            None => Drift::None,
            Some(diff) => Drift::Found(diff),
        },
    )
}

/// Makes the session read-only, proves it is, and reads the catalog; refuses otherwise.
async fn read_only_catalog(
    client: &tokio_postgres::Client,
    safe_url: &str,
) -> Result<super::model::Catalog> {
    let refuse = |why: String| {
        Error::environment(format!(
            "make the session on {safe_url} read-only ({why}): refusing to read it"
        ))
    };
    client
        .batch_execute(
            "set session characteristics as transaction read only; \
             begin isolation level repeatable read read only",
        )
        .await
        .map_err(|e| refuse(crate::backend::db_error_text(&e)))?;
    let row = client
        .query_one("show transaction_read_only", &[])
        .await
        .map_err(|e| refuse(crate::backend::db_error_text(&e)))?;
    let read_only: String = row.get(0);
    if read_only != "on" {
        let _ = client.batch_execute("rollback").await;
        return Err(refuse(format!("transaction_read_only is {read_only}")));
    }
    let catalog = super::model::Catalog::read(client).await;
    let _ = client.batch_execute("rollback").await;
    catalog
}
