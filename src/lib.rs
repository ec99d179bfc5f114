//! db-ci: the CI gate that proves a Supabase-style PostgreSQL project is safe to ship.
//!
//! The binary (`db-ci`) is a thin layer over this library: [`project::Project::discover`]
//! reads a project, [`run::run`] boots a backend and runs the stages, and the returned
//! [`report::Report`] carries the verdict, the JSON contract and the exit code.
//!
//! In a Rust test, [`testing::Gate`] does all of that and keeps the replayed database for
//! your own checks (a `sqlx::PgPool` with the `sqlx` feature).

pub mod actors;
pub mod backend;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod files;
pub mod gate;
pub mod idempotence;
pub mod init;
pub mod keep;
pub mod lint;
pub mod live;
pub(crate) mod locate;
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

pub use stage_id::StageId;
// Events live with the reporters that consume them; `db_ci::events` stays their public path.
pub use report::events;
