//! Many copies of one database (a `cargo test` test's own database, see
//! `db_ci::testing::Shared`): made over sessions of their own, with the template's owner
//! and settings read once rather than per copy, and dropped over another.
//!
//! Why more than one session: with `STRATEGY FILE_COPY` each copy waits for two checkpoints,
//! and copies made side by side share them (measured on a loaded 2-core machine: one at a
//! time ~70 ms a copy, four at a time ~33 ms a copy); and a drop (a checkpoint of its own, and a wait for the test's session to end)
//! never holds up the copy a test is waiting for.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Statement};

use super::{apply_database_settings, database_owner, database_settings, DatabaseSetting, Server};
use crate::error::{Error, Result};
use crate::sql::{db_error_text, quote_ident};

/// Sessions that make copies, used in turn.
pub const MAKERS: usize = 3;

/// How long a drop waits for the sessions on the copy to end on their own before it forces
/// them off (the server then waits for them in steps of 100 ms).
const DISCONNECT_WAIT: Duration = Duration::from_millis(200);

/// Copies `template` as [`Server::create_database`] would, faster.
pub struct Copier {
    makers: Vec<Client>,
    next: AtomicUsize,
    dropper: Client,
    /// Whether anyone but the dropper is connected to database `$1`.
    connected: Statement,
    template: String,
    owner: String,
    settings: Vec<DatabaseSetting>,
    strategy: &'static str,
}

impl Server {
    /// A copier of `template`, a database of this server.
    pub async fn copier(&self, template: &str) -> Result<Copier> {
        let dropper = self.admin().await?;
        let owner = database_owner(&dropper, template).await?;
        let settings = database_settings(&dropper, template).await?;
        let connected = dropper
            .prepare(
                "select exists (select 1 from pg_catalog.pg_stat_activity \
                 where datname = $1 and pid <> pg_catalog.pg_backend_pid())",
            )
            .await
            .map_err(|e| Error::environment(format!("prepare a copier: {}", db_error_text(&e))))?;
        let mut makers = Vec::with_capacity(MAKERS);
        for _ in 0..MAKERS {
            makers.push(self.admin().await?);
        }
        // FILE_COPY (15 and later) copies the template's files; the default (WAL_LOG) writes
        // every page through shared buffers and the WAL: about twice the server's work per
        // copy, and dropping the copy then evicts its pages one by one.
        let strategy = if self.major >= 15 {
            " strategy file_copy"
        } else {
            ""
        };
        Ok(Copier {
            makers,
            next: AtomicUsize::new(0),
            dropper,
            connected,
            template: template.to_owned(),
            owner,
            settings,
            strategy,
        })
    }
}

impl Copier {
    /// Creates `name` as a copy of the template, with its owner and settings.
    pub async fn copy(&self, server: &Server, name: &str) -> Result<()> {
        let sql = format!(
            "create database {} template {} owner {}{}",
            quote_ident(name),
            quote_ident(&self.template),
            quote_ident(&self.owner),
            self.strategy
        );
        let admin = &self.makers[self.next.fetch_add(1, Ordering::Relaxed) % self.makers.len()];
        server.run_create(admin, &sql, name).await?;
        apply_database_settings(admin, &self.settings, name).await
    }

    /// Drops a copy (any database `server` created), forcing off its sessions.
    pub async fn drop(&self, server: &Server, name: &str) -> Result<()> {
        // A test's session closes as the test's runtime ends, a moment after the copy is
        // given back: a forced drop that finds it still there waits 100 ms for it to go.
        let started = Instant::now();
        while started.elapsed() < DISCONNECT_WAIT {
            match self.dropper.query_one(&self.connected, &[&name]).await {
                Ok(row) if row.get::<_, bool>(0) => {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                _ => break,
            }
        }
        server.drop_database_on(&self.dropper, name).await
    }
}
