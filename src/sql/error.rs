//! What a server error says, in words db-ci can print, and whether it is the time limit.

/// The message a statement cancelled by the watchdog reports.
pub const TIMEOUT_MESSAGE: &str = "canceling statement due to statement timeout";

/// Whether `error` is a statement the time limit stopped: the server's own timeout or the
/// watchdog's cancel.
pub fn is_timeout(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED) || is_ended(error)
}

/// Whether the session was ended under the statement: the watchdog terminates a session
/// whose statement ignored its cancel (the server sends the same for an administrator's
/// `pg_terminate_backend`, which db-ci's throwaway servers have no other source of).
fn is_ended(error: &tokio_postgres::Error) -> bool {
    error.as_db_error().is_some_and(|db| {
        db.code() == &tokio_postgres::error::SqlState::ADMIN_SHUTDOWN
            && db.message().contains("administrator command")
    })
}

/// A server error, shown as db-ci prints it ([`db_error_text`]).
#[derive(Debug, thiserror::Error)]
#[error("{}", db_error_text(.0))]
pub struct DbError(#[from] pub tokio_postgres::Error);

/// A statement db-ci sent that failed: what it was for, and the server's error. Its text
/// reads after "failed to": `read the server version: permission denied …`.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {}", db_error_text(.source))]
pub struct QueryFailed {
    pub what: String,
    pub source: tokio_postgres::Error,
}

impl QueryFailed {
    /// For `map_err`: the error of the statement sent to `what`.
    pub fn to(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> QueryFailed {
        let what = what.into();
        move |source| QueryFailed { what, source }
    }
}

/// The text of a database error: the server's message when there is one.
pub fn db_error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        // Only db-ci cancels its sessions' statements: the time limit's watchdog did.
        Some(db) if is_timeout(error) && db.message().contains("user request") => {
            format!("{} (db-ci cancelled it)", TIMEOUT_MESSAGE)
        }
        Some(_) if is_ended(error) => format!(
            "{TIMEOUT_MESSAGE} (db-ci ended the session: the statement went on after it was \
             cancelled)"
        ),
        Some(db) => db.message().to_owned(),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}
