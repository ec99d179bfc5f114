//! Per-test databases: one boot and one replay per test binary ([`Shared`]), then for each
//! test its own copy of the replayed database ([`TestDb`]), dropped when the test ends.
//!
//! Every `#[tokio::test]` runs on a runtime of its own that ends with the test, so nothing
//! that outlives a test may live on one: the server, its run and the copies are made and
//! dropped on a runtime of this process ([`runtime`]); the client and the pool a test gets
//! are opened on the test's own runtime. The servers stop when the test binary exits (an
//! `atexit` hook); a binary killed outright leaves them to the next run's sweep, as any
//! killed run does.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::{OnceCell, RwLock};

use super::{Checked, Gate};
use crate::backend::copier::{self, Copier};
use crate::backend::{Connection, Server};
use crate::error::{Error, Result};
use crate::report::{Report, StageVerdict};
use crate::sql::db_error_text;
use crate::stage_id::StageId;

/// A project replayed once per test binary, handing each test a copy of the result.
///
/// ```no_run
/// use db_ci::testing::{Gate, Shared};
///
/// static PROJECT: Shared = Shared::new(|| Gate::new(env!("CARGO_MANIFEST_DIR")));
///
/// #[tokio::test]
/// async fn a_new_profile_starts_empty() {
///     let db = PROJECT.database_with(&["tests/fixtures/alice.sql"]).await;
///     let row = db.client().query_one("select count(*) from profiles", &[]).await.unwrap();
///     assert_eq!(row.get::<_, i64>(0), 1);
/// }
/// ```
pub struct Shared {
    gate: fn() -> Gate,
    base: OnceCell<std::result::Result<Arc<Base>, Arc<Error>>>,
}

impl Shared {
    /// The project `gate` describes; nothing runs until the first test asks for a database.
    pub const fn new(gate: fn() -> Gate) -> Shared {
        Shared {
            gate,
            base: OnceCell::const_new(),
        }
    }

    /// A fresh copy of the replayed database for this test. Panics with the run's failure
    /// text when the project cannot be replayed (a failing later stage does not stop it: see
    /// [`Shared::assert_pass`]).
    pub async fn database(&self) -> TestDb {
        self.database_with(&[]).await
    }

    /// Like [`Shared::database`], with `fixtures` (SQL files, relative to the directory
    /// `cargo test` runs in: the crate's) applied to the copy in order, as the superuser.
    pub async fn database_with(&self, fixtures: &[&str]) -> TestDb {
        match self.try_database_with(fixtures).await {
            Ok(db) => db,
            Err(e) => panic!("db-ci: {e}"),
        }
    }

    /// Like [`Shared::database_with`], returning the error instead of panicking.
    pub async fn try_database_with(&self, fixtures: &[&str]) -> Result<TestDb> {
        let base = self.base().await?;
        let name = base.copy().await?;
        // From here the copy is dropped with `db`, whatever happens next.
        let mut db = TestDb {
            client: None,
            #[cfg(feature = "sqlx")]
            pool: None,
            name,
            base,
        };
        let client = db.connect().await?;
        for fixture in fixtures {
            apply_fixture(&client, Path::new(fixture)).await?;
        }
        #[cfg(feature = "sqlx")]
        {
            db.pool = Some(db.base.pool(&db.name));
        }
        db.client = Some(client);
        Ok(db)
    }

    /// The report of the shared run (every stage the gate selected).
    pub async fn report(&self) -> Result<Report> {
        let base = self.base().await?;
        let kept = base.kept.read().await;
        Ok(kept.as_ref().expect(EXITING).checked.report().clone())
    }

    /// Panics unless the shared run passed, with the console's failure text: the gate's
    /// verdict, checked once per test binary.
    pub async fn assert_pass(&self) {
        let base = match self.base().await {
            Ok(base) => base,
            Err(e) => panic!("db-ci: {e}"),
        };
        let kept = base.kept.read().await;
        kept.as_ref().expect(EXITING).checked.assert_pass();
    }

    async fn base(&self) -> Result<Arc<Base>> {
        let made = self
            .base
            .get_or_init(|| {
                let gate = (self.gate)();
                on_shared_thread(move || async move { Base::boot(gate).await.map_err(Arc::new) })
            })
            .await;
        made.clone().map_err(|e| (*e).clone())
    }
}

const EXITING: &str = "db-ci: the shared server is gone: the test binary is exiting";

/// A test's own copy of the replayed database, with a client (and with the `sqlx` feature a
/// pool) opened on the test's runtime. Dropping it — at the end of the test, passed or
/// panicked — drops the database.
pub struct TestDb {
    // Closed before the database is dropped (see `Drop`).
    client: Option<tokio_postgres::Client>,
    #[cfg(feature = "sqlx")]
    pool: Option<sqlx::PgPool>,
    name: String,
    base: Arc<Base>,
}

impl TestDb {
    /// A `tokio_postgres` client on this test's database, as the superuser.
    pub fn client(&self) -> &tokio_postgres::Client {
        self.client
            .as_ref()
            .expect("the client lives as long as the database")
    }

    /// A `sqlx` pool on this test's database (connections opened on first use).
    #[cfg(feature = "sqlx")]
    pub fn pg_pool(&self) -> &sqlx::PgPool {
        self.pool
            .as_ref()
            .expect("the pool lives as long as the database")
    }

    /// The database's name (`db_ci_<run>_<n>_test`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A `postgres://` URL of this database, with the password if the server has one: for
    /// tools of your own. Never print it.
    pub fn database_url(&self) -> String {
        self.base.connection.url(&self.name)
    }

    async fn connect(&self) -> Result<tokio_postgres::Client> {
        let mut config = self.base.connection.config(&self.name);
        config.application_name("db-ci-test");
        // Spawned on the caller's runtime: the test's own.
        crate::backend::connect_config(&config, &self.base.connection.redacted(&self.name)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.client = None;
        #[cfg(feature = "sqlx")]
        {
            self.pool = None;
        }
        let base = self.base.clone();
        let name = std::mem::take(&mut self.name);
        // On the shared runtime: the test's may be ending (or unwinding) as this runs. The
        // drop forces off any session the test left open.
        runtime().spawn(async move { base.drop_copy(&name).await });
    }
}

/// The server of one [`Shared`] project, its replayed database, and how tests reach it.
struct Base {
    /// `None` once the process is exiting and the server is gone.
    kept: RwLock<Option<Kept>>,
    connection: Connection,
    /// Copies made ahead, while tests run: a test takes one without waiting for the server.
    ahead: Mutex<Ahead>,
}

/// The copies made ahead, and how many are being made.
#[derive(Default)]
struct Ahead {
    ready: Vec<String>,
    making: usize,
}

/// How many copies are kept ready or on their way: enough that tests on both cores of a
/// small machine find one ready while the copier's sessions make the next.
const AHEAD: usize = 4;

struct Kept {
    // Before `checked`: its session closes before the server stops.
    copier: Copier,
    checked: Checked,
}

impl Kept {
    fn server(&self) -> &Server {
        &self
            .checked
            .replayed()
            .expect("kept only once replayed")
            .server
    }
}

impl Base {
    /// Runs the gate (on the shared runtime) and keeps its server for the tests.
    async fn boot(gate: Gate) -> Result<Arc<Base>> {
        let checked = gate.run().await?;
        let replay = checked.report().stage(StageId::Replay);
        let replayed_fine = replay.is_some_and(|s| s.verdict == StageVerdict::Pass);
        let Some(replayed) = checked.replayed().filter(|_| replayed_fine) else {
            let text = checked.failure_text();
            let project = checked.report().project.clone();
            checked.shutdown().await;
            return Err(Error::environment(format!(
                "replay {project} for the tests' databases: there is no replayed database to \
                 copy:\n{text}"
            )));
        };
        let copier = match replayed.server.copier(&replayed.database).await {
            Ok(copier) => copier,
            Err(e) => {
                checked.shutdown().await;
                return Err(e);
            }
        };
        let base = Arc::new(Base {
            connection: replayed.server.connection.clone(),
            kept: RwLock::new(Some(Kept { copier, checked })),
            ahead: Mutex::new(Ahead::default()),
        });
        stop_at_exit(base.clone());
        Ok(base)
    }

    /// A copy of the replayed database nobody used: one made ahead, else a new one.
    async fn copy(self: &Arc<Self>) -> Result<String> {
        let ahead = self.ahead().ready.pop();
        self.make_ahead();
        match ahead {
            Some(name) => Ok(name),
            None => {
                let base = self.clone();
                on_shared(async move { base.make_copy().await }).await
            }
        }
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, Ahead> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tops the copies made ahead up to [`AHEAD`], on the shared runtime, as many at a time
    /// as the copier has sessions to make them on.
    fn make_ahead(self: &Arc<Self>) {
        let mut ahead = self.ahead();
        while ahead.ready.len() + ahead.making < AHEAD && ahead.making < copier::MAKERS {
            ahead.making += 1;
            let base = self.clone();
            runtime().spawn(async move {
                let made = base.make_copy().await;
                let mut ahead = base.ahead();
                ahead.making -= 1;
                // On an error the test that finds none makes its own copy and reports it.
                if let Ok(name) = made {
                    ahead.ready.push(name);
                    drop(ahead);
                    base.make_ahead();
                }
            });
        }
    }

    /// A new copy of the replayed database (`CREATE DATABASE … TEMPLATE`).
    async fn make_copy(&self) -> Result<String> {
        let kept = self.kept.read().await;
        let kept = kept.as_ref().ok_or_else(|| Error::environment(EXITING))?;
        let name = kept.server().unique_name("test");
        kept.copier.copy(kept.server(), &name).await?;
        Ok(name)
    }

    async fn drop_copy(&self, name: &str) {
        if let Some(kept) = self.kept.read().await.as_ref() {
            let _ = kept.copier.drop(kept.server(), name).await;
        }
    }

    #[cfg(feature = "sqlx")]
    fn pool(&self, database: &str) -> sqlx::PgPool {
        // Lazy: no connection until the test uses it, and then on the test's runtime.
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect_lazy_with(super::pg_connect_options(&self.connection, database))
    }
}

/// The runtime the shared servers live on: the process's own, never a test's.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("db-ci-shared")
            .enable_all()
            .build()
            .expect("start db-ci's runtime for shared servers")
    })
}

/// Runs `work` on the shared runtime and waits for it from whichever runtime asks.
async fn on_shared<F>(work: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime().spawn(work).await {
        Ok(output) => output,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("db-ci: the shared runtime dropped its work: {e}"),
    }
}

/// Runs the future `make` returns on a thread of its own, in the shared runtime's context:
/// for work that is not `Send` (a run); what it spawns lands on the shared runtime.
async fn on_shared_thread<M, F>(make: M) -> F::Output
where
    M: FnOnce() -> F + Send + 'static,
    F: Future,
    F::Output: Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("db-ci-shared-boot".to_owned())
        .spawn(move || {
            let _ = sender.send(runtime().block_on(make()));
        })
        .expect("start a thread for db-ci's shared server");
    match receiver.await {
        Ok(output) => output,
        Err(_) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("db-ci: the shared server's thread ended without a result"),
        },
    }
}

/// The bases whose servers the process stops as it exits.
static LIVE: Mutex<Vec<Arc<Base>>> = Mutex::new(Vec::new());

fn stop_at_exit(base: Arc<Base>) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // SAFETY: registers a plain function; its work runs on a thread it joins, so no panic
        // unwinds into C.
        unsafe {
            libc::atexit(stop_all);
        }
    });
    LIVE.lock().unwrap_or_else(|p| p.into_inner()).push(base);
}

/// Stops every shared server: `cargo test`'s binary is exiting (statics are never dropped).
extern "C" fn stop_all() {
    let bases = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|p| p.into_inner()));
    if bases.is_empty() {
        return;
    }
    // On a thread of its own: the exiting thread's thread-locals (tokio's context among them)
    // are already destroyed when exit handlers run.
    let stopping = std::thread::Builder::new()
        .name("db-ci-shared-stop".to_owned())
        .spawn(move || stop(bases));
    if let Ok(thread) = stopping {
        let _ = thread.join();
    }
}

/// A panic here ends this thread only: the exiting one joins it and goes on.
fn stop(bases: Vec<Arc<Base>>) {
    runtime().block_on(async {
        for base in bases {
            // A copy still being dropped finishes first; a stuck one is not waited for long
            // (the next run's sweep removes what is left).
            let Ok(mut kept) =
                tokio::time::timeout(Duration::from_secs(5), base.kept.write()).await
            else {
                continue;
            };
            if let Some(Kept { copier, checked }) = kept.take() {
                drop(copier);
                let _ = tokio::time::timeout(Duration::from_secs(30), checked.shutdown()).await;
            }
        }
    });
}

/// Applies one fixture file in one round trip; an error names the file at line:col.
async fn apply_fixture(client: &tokio_postgres::Client, path: &Path) -> Result<()> {
    let sql = std::fs::read_to_string(path)
        .map_err(|e| Error::input(format!("read the fixture {}: {e}", path.display())))?;
    client.batch_execute(&sql).await.map_err(|e| {
        let (line, column) = e
            .as_db_error()
            .and_then(|db| db.position())
            .and_then(|p| match p {
                tokio_postgres::error::ErrorPosition::Original(at) => Some(*at as usize),
                tokio_postgres::error::ErrorPosition::Internal { .. } => None,
            })
            .map_or((1, 1), |at| line_column(&sql, at));
        Error::at(
            path.display().to_string(),
            line,
            Some(column),
            format!("apply the fixture: {}", db_error_text(&e)),
        )
    })
}

/// The 1-based line and column of PostgreSQL's 1-based character position in `text`.
fn line_column(text: &str, position: usize) -> (usize, usize) {
    let before: String = text.chars().take(position.saturating_sub(1)).collect();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_position_is_the_line_and_column_in_the_fixture() {
        let sql = "insert into a values (1);\n  insert into é values (2);\n";
        assert_eq!(line_column(sql, 1), (1, 1));
        // The second `insert` starts at character 29 (the `é` counts once).
        assert_eq!(line_column(sql, 29), (2, 3));
        assert_eq!(line_column(sql, 41), (2, 15));
    }
}
