//! The library API for `cargo test`: run db-ci on a project from a Rust test, assert on the
//! report with the console's failure text, and reach the booted, replayed database (a
//! `tokio_postgres` client, or with the `sqlx` feature a `sqlx::PgPool`) for your own tests.
//!
//! ```no_run
//! use db_ci::testing::Gate;
//!
//! #[tokio::test]
//! async fn migrations_are_safe_to_ship() {
//!     let checked = Gate::new(".").run().await.expect("read the project");
//!     checked.assert_pass();
//!     // Your own checks on the replayed database, while `checked` keeps the server alive.
//!     let client = checked.client().await.unwrap();
//!     let row = client.query_one("select count(*) from profiles", &[]).await.unwrap();
//!     assert_eq!(row.get::<_, i64>(0), 2);
//!     checked.shutdown().await;
//! }
//! ```
//!
//! The backend is chosen as by the CLI: `DB_CI_BACKEND`, `DB_CI_IMAGE`, `DB_CI_DATABASE_URL`
//! apply unless the builder sets them, and `auto` picks a container when an engine and the
//! image are usable, else local PostgreSQL binaries.

mod shared;

use std::path::{Path, PathBuf};

use crate::backend::{BackendKind, BackendOptions};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::report::events::Silent;
use crate::report::human::report_failures_text;
pub use crate::report::level::FailOn;
use crate::report::{Report, StageVerdict, Verdict};
use crate::run::{run_keeping, Replayed};
use crate::stage::RunOptions;
pub use crate::stage_id::StageId;
pub use shared::{Shared, TestDb};

/// What to run: a project directory and the options the CLI's flags stand for.
#[derive(Debug, Clone)]
pub struct Gate {
    dir: PathBuf,
    options: RunOptions,
}

impl Gate {
    /// The project in `dir` (a `db-ci.yaml`, a Supabase CLI layout, or a recognised layout),
    /// with the backend from the `DB_CI_*` environment variables, else `auto`.
    pub fn new(dir: impl AsRef<Path>) -> Gate {
        let mut backend = BackendOptions::default();
        if let Some(kind) = std::env::var("DB_CI_BACKEND")
            .ok()
            .and_then(|k| clap::ValueEnum::from_str(&k, true).ok())
        {
            backend.kind = kind;
        }
        let image_given = std::env::var("DB_CI_IMAGE").ok();
        if let Some(image) = &image_given {
            backend.image = image.clone();
        }
        backend.database_url = std::env::var("DB_CI_DATABASE_URL").ok();
        Gate {
            dir: dir.as_ref().to_owned(),
            options: RunOptions {
                backend,
                seed: Some(u64::from(rand::random::<u32>())),
                image_given: image_given.is_some(),
                caller: crate::caller::Caller::Library,
                ..RunOptions::default()
            },
        }
    }

    /// Where the throwaway PostgreSQL comes from.
    pub fn backend(mut self, kind: BackendKind) -> Gate {
        self.options.backend.kind = kind;
        self
    }

    /// The container image for the container backend.
    pub fn image(mut self, image: impl Into<String>) -> Gate {
        self.options.backend.image = image.into();
        self.options.image_given = true;
        self
    }

    /// A server on which db-ci creates and drops its own databases (the url backend).
    pub fn database_url(mut self, url: impl Into<String>) -> Gate {
        self.options.backend.database_url = Some(url.into());
        self
    }

    /// The property-test seed (by default a random one, as the CLI picks; the report and the
    /// failure text carry it, for replay).
    pub fn seed(mut self, seed: u64) -> Gate {
        self.options.seed = Some(seed);
        self
    }

    /// Runs only these stages after replay (e.g. `[StageId::Rls]`); the others are reported
    /// skipped. Typed, so that a misspelt stage cannot silently skip the one meant.
    pub fn only(mut self, stages: &[StageId]) -> Gate {
        self.options.only = Some(stages.to_vec());
        self
    }

    /// Accept the new catalog snapshot instead of failing on a difference (`--update-snapshot`).
    pub fn update_snapshot(mut self, update: bool) -> Gate {
        self.options
            .stages
            .set(crate::snapshot::SnapshotOptions { update });
        self
    }

    /// Run on a server of another major version than `supabase/config.toml`'s
    /// `[db] major_version` instead of stopping (`--any-server-version`).
    pub fn any_server_version(mut self, any: bool) -> Gate {
        self.options.any_server_version = any;
        self
    }

    /// The lowest lint level that fails the run, over `lint.fail_level` (`--fail-on-lint`).
    pub fn fail_on_lint(mut self, level: FailOn) -> Gate {
        self.options.stages.set(crate::lint::LintOptions {
            fail_on: Some(level),
        });
        self
    }

    /// Fail the rls stage when fewer than `percent` of the exposed (table, command) pairs have
    /// a cell, over `rls.min_coverage` (`--min-coverage`).
    pub fn min_coverage(mut self, percent: f64) -> Gate {
        self.options
            .stages
            .edit(|rls: &mut crate::rls::RlsOptions| rls.min_coverage = Some(percent));
        self
    }

    /// Reads the project, boots the backend, runs the stages, and keeps the server with the
    /// replayed database for the caller. Fails only when the project cannot be read (exit 2);
    /// a run that stopped on its environment (exit 3) is an `Ok` whose report says so.
    pub async fn run(self) -> Result<Checked> {
        let project = Project::find(&self.dir)?;
        let (report, replayed) = run_keeping(&project, &self.options, &mut Silent).await;
        Ok(Checked {
            #[cfg(feature = "sqlx")]
            pool: tokio::sync::OnceCell::new(),
            replayed,
            report,
            project,
        })
    }
}

/// A finished run: its report, and the server holding the replayed database until
/// [`Checked::shutdown`] or drop.
pub struct Checked {
    // Declared before `replayed`: fields drop in order, so the pool closes before the server
    // it is connected to goes away.
    #[cfg(feature = "sqlx")]
    pool: tokio::sync::OnceCell<sqlx::PgPool>,
    replayed: Option<Replayed>,
    report: Report,
    project: Project,
}

impl Checked {
    pub fn report(&self) -> &Report {
        &self.report
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The server and the database after replay (pass 1), if the run got as far as booting.
    pub fn replayed(&self) -> Option<&Replayed> {
        self.replayed.as_ref()
    }

    /// Every failure as the console prints it, and the summary line.
    pub fn failure_text(&self) -> String {
        report_failures_text(&self.report)
    }

    /// Panics unless every stage passed or was skipped, with the console's failure text.
    #[track_caller]
    pub fn assert_pass(&self) {
        if self.report.verdict != Verdict::Pass {
            panic!(
                "db-ci: {} did not pass:\n{}",
                self.report.project,
                self.failure_text()
            );
        }
    }

    /// Panics unless the run failed (a check failed, or the run stopped on an error).
    #[track_caller]
    pub fn assert_fail(&self) {
        if self.report.verdict != Verdict::Fail {
            panic!(
                "db-ci: {} passed, a failure was expected:\n{}",
                self.report.project,
                self.failure_text()
            );
        }
    }

    /// Panics unless stage `name` has `verdict`, with the console's failure text.
    #[track_caller]
    pub fn assert_stage(&self, name: StageId, verdict: StageVerdict) {
        let stage = self
            .report
            .stage(name)
            .unwrap_or_else(|| panic!("db-ci: no stage named {name}"));
        if stage.verdict != verdict {
            panic!(
                "db-ci: stage {name} is {:?} ({}), expected {verdict:?}:\n{}",
                stage.verdict,
                stage.reason.as_deref().unwrap_or("no reason given"),
                self.failure_text()
            );
        }
    }

    /// Panics unless stage `stage` reports a failure at `file:line` (`file` relative to the
    /// project, as the report names it).
    #[track_caller]
    pub fn assert_failure_at(&self, stage: StageId, file: &str, line: usize) {
        let found = self
            .report
            .stage(stage)
            .is_some_and(|s| s.failures.iter().any(|f| f.file == file && f.line == line));
        if !found {
            panic!(
                "db-ci: no {stage} failure at {file}:{line}; the run reported:\n{}",
                self.failure_text()
            );
        }
    }

    fn database(&self) -> Result<&Replayed> {
        self.replayed.as_ref().ok_or_else(|| {
            Error::environment(format!(
                "reach the replayed database: the run stopped before it existed ({})",
                self.report
                    .error
                    .as_ref()
                    .map_or("no error recorded".to_owned(), |e| e.message())
            ))
        })
    }

    /// A new `tokio_postgres` client on the replayed database, as the superuser. It must not
    /// be used after [`Checked::shutdown`].
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        let replayed = self.database()?;
        replayed.server.connect(&replayed.database).await
    }

    /// The catalog of the replayed database as the snapshot stage renders it: sorted, no OIDs,
    /// the same text on every backend. Feed it to insta: `insta::assert_snapshot!(yaml)`.
    pub async fn catalog_yaml(&self) -> Result<String> {
        let client = self.client().await?;
        crate::snapshot::catalog_yaml(&client, &self.project).await
    }

    /// A `postgres://` URL of the replayed database, with the password if the server has one:
    /// for tools of your own. Never print it.
    pub fn database_url(&self) -> Result<String> {
        let replayed = self.database()?;
        Ok(replayed.server.connection.url(&replayed.database))
    }

    /// A `sqlx` pool on the replayed database (made on first use, then shared). It borrows
    /// `self`, which keeps the server alive; a clone of it must not outlive `self`: after
    /// [`Checked::shutdown`] or drop, its connections fail.
    #[cfg(feature = "sqlx")]
    pub async fn pg_pool(&self) -> Result<&sqlx::PgPool> {
        let replayed = self.database()?;
        self.pool
            .get_or_try_init(|| async {
                let connection = &replayed.server.connection;
                let options = pg_connect_options(connection, &replayed.database);
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await
                    .map_err(|e| {
                        Error::environment(format!(
                            "connect a sqlx pool to {}: {e}",
                            connection.redacted(&replayed.database)
                        ))
                    })
            })
            .await
    }

    /// What `db-ci run --keep` does: prints a URL (without the password) to the replayed
    /// database, waits for Ctrl-C, then shuts down as [`Checked::shutdown`]. For a test you
    /// want to poke at by hand: `checked.keep().await` instead of `shutdown()`.
    pub async fn keep(self) {
        #[cfg(feature = "sqlx")]
        if let Some(pool) = self.pool.get() {
            pool.close().await;
        }
        if let Some(replayed) = self.replayed {
            replayed.keep().await;
        }
    }

    /// Closes the pool, drops the databases db-ci made and stops the server, waiting for it.
    pub async fn shutdown(self) {
        #[cfg(feature = "sqlx")]
        if let Some(pool) = self.pool.get() {
            pool.close().await;
        }
        if let Some(replayed) = self.replayed {
            replayed.server.shutdown().await;
        }
    }
}

/// How a `sqlx` pool reaches `database`, named as a test's (never the password in a log).
#[cfg(feature = "sqlx")]
fn pg_connect_options(
    connection: &crate::backend::Connection,
    database: &str,
) -> sqlx::postgres::PgConnectOptions {
    let mut options = sqlx::postgres::PgConnectOptions::new_without_pgpass()
        .port(connection.port)
        .username(&connection.user)
        .database(database)
        .application_name("db-ci-test");
    options = match &connection.host {
        crate::backend::Host::Tcp(host) => options.host(host),
        crate::backend::Host::Socket(dir) => options.socket(dir),
    };
    if let Some(password) = &connection.password {
        options = options.password(password);
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_setters_land_in_each_stages_own_options() {
        let gate = Gate::new(".")
            .update_snapshot(true)
            .fail_on_lint(FailOn::Warn)
            .min_coverage(50.0);
        let stages = &gate.options.stages;
        assert!(stages.get::<crate::snapshot::SnapshotOptions>().update);
        assert_eq!(
            stages.get::<crate::lint::LintOptions>().fail_on,
            Some(FailOn::Warn)
        );
        assert_eq!(
            stages.get::<crate::rls::RlsOptions>().min_coverage,
            Some(50.0)
        );
    }
}
