//! db-ci: the CI gate that proves a Supabase-style PostgreSQL project is safe to ship.
//!
//! The binary (`db-ci`) is a thin layer over this library: [`project::Project::discover`]
//! reads a project, [`run::run`] boots a backend and runs the stages, and the returned
//! [`report::Report`] carries the verdict, the JSON contract and the exit code.
//!
//! In a Rust test, [`testing::Gate`] does all of that and keeps the replayed database for
//! your own checks (a `sqlx::PgPool` with the `sqlx` feature).
//!
//! # Module layers
//!
//! No module imports a module above it (tests aside). Bottom to top; a module may use any
//! module on a line below its own:
//!
//! 1. `caller`, `diag` (a problem in a user's file, at its position), `files`, `interrupt`,
//!    `redact`, `sql`, `stage_id`: leaves; then `error` (the errors that stop a run, an input
//!    error a `diag`).
//! 2. `actors`, `catalog` (relation names as SQL reads them), `clock`, `pgpass` (the
//!    password libpq would find), `pgservice` (libpq's service files), `shim`, `yaml`.
//! 3. `backend`; `config` (`db-ci.yaml`: the keys every run reads, and the registry of the
//!    stages' sections, each a type in its stage's folder, so config imports no stage).
//! 4. `live`; `project` (reads the project and its config).
//! 5. `locate`; `policy_tests` (the policy-test files and their `cases:`/`properties:`
//!    formats); then `report` (its RLS cells name the cases' operations and expectations;
//!    with `report::events`, `report::file`, the per-file outcomes replay produces, and
//!    `report::level`, the lint levels).
//! 6. `replay`; `stage` (the spine: the stage registry, what every stage gets, the loaded
//!    stages a run sequences).
//! 7. The stages: `idempotence`, `pgtap`, `props`, `rls`, `snapshot`; then `lint` (it reads
//!    the catalog through `snapshot`, the exposed schemas through `rls`).
//! 8. `run` (boots a backend, runs replay and idempotence, then the registered stages).
//! 9. `gate`, `init`, `keep`, `testing`; then `cli`.
//!
//! A type a lower module needs lives in the lower module, and every user names it there: an
//! item has one path (`report::level::FailOn`, `policy_tests::cases::Operation`,
//! `stage::RunOptions`), never a `pub use` in a higher module giving it a second one. A module
//! may re-export its own submodules' items as its facade; `testing` re-exports the types its
//! builder takes (`StageId`, `FailOn`), the library's documented test API.
//!
//! # Adding a stage
//!
//! A variant of [`stage_id::StageId`] (its place among the variants is its place in the run)
//! and a folder `src/<stage>/` declared here, which submits its [`stage::Registration`]: what
//! it checks before boot, what it runs, whether the gate runs it on its rehearsal, and its
//! command line ([`stage::StageCli`]: its flags, read into its typed options in
//! [`stage::RunOptions::stages`], and its own command). Its report payload is a type of its
//! own implementing [`report::detail::StageDetail`], which serializes its JSON fields and
//! renders it on the console, in JUnit and in the GitHub job summary; when it reads
//! `db-ci.yaml`, its [`config::Section`]. Nothing else names the stage: `docs/architecture.md`
//! says how this was checked.

pub mod actors;
pub mod backend;
pub mod caller;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod diag;
pub mod error;
pub mod files;
pub mod gate;
pub mod idempotence;
pub mod init;
pub mod interrupt;
pub mod keep;
pub mod lint;
pub mod live;
pub(crate) mod locate;
pub mod pgpass;
pub mod pgservice;
pub mod pgtap;
pub mod policy_tests;
pub mod project;
pub mod props;
pub mod redact;
pub mod replay;
pub mod report;
pub mod rls;
pub mod run;
pub mod shim;
pub mod snapshot;
pub mod sql;
pub mod stage;
pub mod stage_id;
pub mod testing;
pub mod yaml;

// The versions `db_ci::testing` hands out (a `PgPool`, a `Client`): a test names their types
// through these paths, so its own dependencies can never be of another version.
#[cfg(feature = "sqlx")]
pub use sqlx;
pub use tokio_postgres;
