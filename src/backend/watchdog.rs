//! The statement time limit, enforced from db-ci's side: a task watches every session of the
//! run and stops any statement still running at the limit.
//!
//! The server's own `statement_timeout` is a setting the SQL being tested can switch off
//! (`SET statement_timeout = 0`, `set local …`, as pg_dump output starts with): db-ci sets it
//! too, but does not rely on it. The run's sessions are known by their backend pid, recorded
//! when db-ci opens them ([`Sessions`]) — not by `application_name`, which a statement can
//! change. The watchdog reads `pg_stat_activity` on its own session and cancels
//! (`pg_cancel_backend`, the same cancel request the protocol sends) every statement of those
//! sessions whose `query_start` is older than the limit. A statement that ignores the cancel
//! (a PL/pgSQL loop catching `query_canceled`) still runs [`GRACE`] later: its session is
//! terminated (`pg_terminate_backend`), which no SQL can catch. db-ci's own work (the shim,
//! CREATE/DROP DATABASE) runs on sessions that are never recorded; no name exempts a session.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// How often the watchdog looks: a statement ends at most this long after its limit.
pub const TICK: Duration = Duration::from_millis(50);

/// How long a cancelled statement may go on before its session is terminated.
pub const GRACE: Duration = Duration::from_secs(1);

/// The backend pids of this run's sessions, shared by the server and its watchdog.
pub type Sessions = Arc<Mutex<BTreeSet<i32>>>;

/// The run's statements running longer than the limit: pid and start (epoch seconds).
const LATE: &str = "select pid, extract(epoch from query_start)::float8 from pg_stat_activity \
     where pid = any($1) and state = 'active' and pid <> pg_backend_pid() \
     and query_start < clock_timestamp() - make_interval(secs => $2::float8)";

/// What to do with a late statement, judged from when it was first cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Cancel,
    Wait,
    Terminate,
}

fn judge(first_cancel: Option<Instant>, now: Instant) -> Action {
    match first_cancel {
        None => Action::Cancel,
        Some(at) if now.duration_since(at) >= GRACE => Action::Terminate,
        Some(_) => Action::Wait,
    }
}

/// Watches until aborted (the [`super::Server`] aborts it when dropped).
pub fn spawn(client: Client, sessions: Sessions, limit: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let seconds = limit.as_secs_f64();
        // (pid, query start) → when it was first cancelled: the same statement, not the next
        // one of the same session.
        let mut cancelled: BTreeMap<(i32, u64), Instant> = BTreeMap::new();
        loop {
            tokio::time::sleep(TICK).await;
            let pids: Vec<i32> = sessions.lock().unwrap().iter().copied().collect();
            if pids.is_empty() {
                continue;
            }
            let rows = match client.query(LATE, &[&pids, &seconds]).await {
                Ok(rows) => rows,
                Err(_) if client.is_closed() => return,
                Err(_) => continue,
            };
            let now = Instant::now();
            let late: Vec<(i32, u64)> = rows
                .iter()
                .map(|r| (r.get::<_, i32>(0), r.get::<_, f64>(1).to_bits()))
                .collect();
            cancelled.retain(|key, _| late.contains(key));
            for key in late {
                let sql = match judge(cancelled.get(&key).copied(), now) {
                    Action::Wait => continue,
                    Action::Cancel => {
                        cancelled.insert(key, now);
                        "select pg_cancel_backend($1)"
                    }
                    Action::Terminate => "select pg_terminate_backend($1)",
                };
                let _ = client.execute(sql, &[&key.0]).await;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_statement_is_cancelled_then_its_session_ended_after_the_grace() {
        let t0 = Instant::now();
        assert_eq!(judge(None, t0), Action::Cancel);
        assert_eq!(judge(Some(t0), t0 + GRACE / 2), Action::Wait);
        assert_eq!(judge(Some(t0), t0 + GRACE), Action::Terminate);
    }
}
