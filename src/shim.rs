//! The Supabase platform shim: versioned SQL and stub extensions shipped in the binary,
//! applied to every throwaway database before the project's migrations.

pub mod left_session;
pub mod platform;
pub mod steps;

use include_dir::{include_dir, Dir};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::db_error_text;

static SQL: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/shim/sql");
static EXTENSIONS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/src/shim/extensions");

/// Which default privileges `public` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantMode {
    /// Supabase's classic default: ALL on new objects to anon, authenticated, service_role.
    Classic,
    /// The 2026 default for new projects: new tables are not exposed to the API roles.
    NoExpose,
}

impl GrantMode {
    pub fn from_expose(expose_new_tables: bool) -> GrantMode {
        if expose_new_tables {
            GrantMode::Classic
        } else {
            GrantMode::NoExpose
        }
    }

    /// Whether a shim or test file named `name` applies in this mode.
    pub fn includes(self, name: &str) -> bool {
        match self {
            GrantMode::Classic => !name.contains(".no-expose."),
            GrantMode::NoExpose => !name.contains(".classic."),
        }
    }
}

/// The stub and emulated extensions' control and script files, by file name (every one is
/// listed, real, emulated or missing, in docs/extensions.md).
pub fn stub_extension_files() -> Vec<(&'static str, &'static [u8])> {
    let mut files: Vec<(&'static str, &'static [u8])> = EXTENSIONS
        .files()
        .filter_map(|f| Some((f.path().file_name()?.to_str()?, f.contents())))
        .filter(|(name, _)| name.ends_with(".control") || name.ends_with(".sql"))
        .collect();
    files.sort();
    files
}

/// Whether our stub replaces a real extension of the same name. pg_cron can only be created
/// when preloaded and in the one database `cron.database_name` names, which a throwaway
/// database never is; its stub records jobs instead.
pub fn stub_overrides_real(file_name: &str) -> bool {
    file_name == "pg_cron.control"
}

/// The shim's SQL files for `mode`, in the order they apply.
pub fn sql_files(mode: GrantMode) -> Vec<(&'static str, &'static str)> {
    let mut files: Vec<(&'static str, &'static str)> = SQL
        .files()
        .filter_map(|f| Some((f.path().file_name()?.to_str()?, f.contents_utf8()?)))
        .filter(|(name, _)| name.ends_with(".sql") && mode.includes(name))
        .collect();
    files.sort();
    files
}

/// The name of a database that holds the shim for `mode` and nothing else, on a server that
/// keeps one (a run's server started from the local backend's cache or a container's seed):
/// a copy of it is a shimmed database, without running the shim again. Named by the shim's
/// SQL, so that a database another db-ci version left is never taken for it.
pub fn template_name(mode: GrantMode) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (name, sql) in sql_files(mode) {
        hasher.update(name.as_bytes());
        hasher.update((sql.len() as u64).to_le_bytes());
        hasher.update(sql.as_bytes());
    }
    let word = match mode {
        GrantMode::Classic => "classic",
        GrantMode::NoExpose => "no_expose",
    };
    format!("db_ci_shim_{word}_{}", hex::encode(&hasher.finalize()[..6]))
}

/// Applies the shim to the database `client` is connected to, as its superuser. db-ci's own
/// setup, not SQL under test: callers give it a session the statement time limit does not
/// watch (`Server::connect_unwatched`), so a loaded machine cannot time it out.
pub async fn apply(client: &Client, mode: GrantMode) -> Result<()> {
    for (name, sql) in sql_files(mode) {
        client.batch_execute(sql).await.map_err(|e| {
            let position = crate::sql::error_offset(&e, sql)
                .map(|offset| {
                    let (line, col) = crate::sql::line_col(sql, offset);
                    format!(":{line}:{col}")
                })
                .unwrap_or_default();
            Error::environment(format!(
                "apply the platform shim (src/shim/sql/{name}{position}): {}",
                db_error_text(&e)
            ))
        })?;
    }
    // Connections opened later read the database-level search_path the shim set.
    Ok(())
}
