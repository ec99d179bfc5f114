//! What every stage after replay gets: the project, the options, and the replayed database.

use crate::backend::Server;
use crate::policy_tests::PolicyFile;
use crate::project::Project;
use crate::run::RunOptions;

/// The context a stage runs in. The database holds the state after replay; a stage must leave
/// it as it found it (work in rolled-back transactions or on a `CREATE DATABASE … TEMPLATE`
/// clone of it) so that the stages after it see the same state.
pub struct StageContext<'a> {
    pub project: &'a Project,
    pub options: &'a RunOptions,
    pub server: &'a Server,
    pub database: &'a str,
    /// The project's policy-test files, read before boot (a bad one is exit 2 at once).
    pub policy_files: &'a [PolicyFile],
}
