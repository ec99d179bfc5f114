//! `db-ci drift --against URL`: the catalog of a live database, read in a verified read-only
//! transaction, compared with the committed snapshot. Never writes; never prints the password.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::project::Project;

/// How long one catalog query on the live database may run.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What a drift check found.
#[derive(Debug)]
pub enum Drift {
    None,
    /// The unified diff from the committed snapshot to the live database.
    Found(String),
}

/// Compares the database at `against` with the snapshot of the project at `dir`.
pub async fn check(dir: &Path, against: &str) -> Result<Drift> {
    let project = Project::discover(dir)?;
    let path = super::snapshot_path(&project);
    let rel = project
        .config
        .section::<super::SnapshotConfig>()
        .relative_path();
    let committed = std::fs::read_to_string(&path).map_err(|e| {
        Error::input(format!(
            "read the committed snapshot {}: {e} (create it with `db-ci run --update-snapshot`)",
            path.display()
        ))
    })?;
    let target = crate::live::Target::parse(against, "--against", |k| std::env::var(k).ok())?;
    let session = crate::live::ReadOnly::open(&target, READ_TIMEOUT).await?;
    let live = super::model::Catalog::read(session.client()).await;
    session.close().await;
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
