//! The statement time limit, enforced from db-ci's side: a task watches every session of the
//! run and cancels any statement still running at the limit.
//!
//! The server's own `statement_timeout` is a setting the SQL being tested can switch off
//! (`SET statement_timeout = 0`, `set local …`, as pg_dump output starts with): db-ci sets it
//! too, but does not rely on it. The watchdog reads `pg_stat_activity` on its own session and
//! cancels (`pg_cancel_backend`, the same cancel request the protocol sends) every statement of
//! this run's sessions whose `query_start` is older than the limit, in the same statement that
//! finds it, so a statement that just ended is not mistaken for the next one. db-ci's own
//! maintenance sessions (CREATE/DROP DATABASE) carry another name and are never cancelled.

use std::time::Duration;

use tokio_postgres::Client;

/// How often the watchdog looks: a statement ends at most this long after its limit.
pub const TICK: Duration = Duration::from_millis(50);

/// Cancels statements of sessions named `application_name` running longer than `limit`.
const CANCEL_LATE: &str = "select count(pg_cancel_backend(pid)) from pg_stat_activity \
     where application_name = $1 and state = 'active' and pid <> pg_backend_pid() \
     and query_start < clock_timestamp() - make_interval(secs => $2::float8)";

/// Watches until aborted (the [`super::Server`] aborts it when dropped).
pub fn spawn(
    client: Client,
    application_name: String,
    limit: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let seconds = limit.as_secs_f64();
        loop {
            tokio::time::sleep(TICK).await;
            if client
                .query_one(CANCEL_LATE, &[&application_name, &seconds])
                .await
                .is_err()
                && client.is_closed()
            {
                return;
            }
        }
    })
}
