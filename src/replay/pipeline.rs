//! A file's transaction sent to the server as one pipeline: every statement (as the platform
//! runs it, [`steps`]) and the closing COMMIT or ROLLBACK go out before any reply is read, as
//! the Supabase CLI sends a migration. The server never waits for db-ci between statements;
//! the first reply that is an error names the statement that failed (the server refuses
//! every later one: the transaction is aborted, and the close rolls it back), so the error's
//! position is exact.

use std::borrow::Cow;

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::shim::left_session::CHECK_QUERY;
use crate::shim::platform::{superuser_would_run, Session};
use crate::shim::steps::steps;
use crate::sql::Statement;

/// The messages that run a file, each with the index of its statement.
pub(super) type Messages<'a> = Vec<(usize, Cow<'a, str>)>;

/// What goes out behind a file's statements in the same pipeline, so a file costs two round
/// trips (the session reset, then this) whatever it holds.
pub(super) struct Tail {
    /// The ledger row, written inside the file's transaction: it commits with the file or
    /// not at all.
    pub record: Option<String>,
    /// Read after the close: what the file left the session as ([`CHECK_QUERY`]).
    pub check: bool,
}

/// How a file sent as a pipeline ended.
pub(super) enum Piped {
    /// Every statement ran; the reply to the close, and to the check when one was sent.
    Ran(
        Result<(), tokio_postgres::Error>,
        Option<Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>>,
    ),
    /// Statement `.0` failed with `.1`; the file rolled back.
    Failed(usize, tokio_postgres::Error),
    /// Every statement ran, and writing the ledger row failed; the file rolled back.
    Unrecorded(tokio_postgres::Error),
}

/// The messages of every statement of `text`; `None` when one of them needs its reply read
/// before what follows is sent.
pub(super) fn plan<'a>(
    text: &'a str,
    statements: &[Statement],
    session: Session,
) -> Option<Messages<'a>> {
    let mut messages = Vec::with_capacity(statements.len());
    for (at, statement) in statements.iter().enumerate() {
        for step in steps(session, statement.text(text))? {
            messages.push((at, step));
        }
    }
    Some(messages)
}

/// Sends `messages`, the tail's ledger row, `close` (`commit` or `rollback`) in the open
/// transaction, then the tail's check, and reads every reply. `None` when the first failure
/// is one the platform would have retried as the superuser: the file rolled back, and is to
/// be run statement by statement.
pub(super) async fn send(
    client: &Client,
    messages: &Messages<'_>,
    tail: &Tail,
    close: &str,
) -> Option<Piped> {
    // Each request goes out on its future's first poll, and the joins poll them in order.
    let (replies, recorded, closed, checked) = futures_util::future::join4(
        futures_util::future::join_all(messages.iter().map(|(_, text)| client.batch_execute(text))),
        async {
            match &tail.record {
                Some(record) => Some(client.batch_execute(record).await),
                None => None,
            }
        },
        client.batch_execute(close),
        async {
            match tail.check {
                true => Some(client.simple_query(CHECK_QUERY).await),
                false => None,
            }
        },
    )
    .await;
    for ((at, _), reply) in messages.iter().zip(replies) {
        if let Err(error) = reply {
            if superuser_would_run(&error) {
                return None;
            }
            return Some(Piped::Failed(*at, error));
        }
    }
    if let Some(Err(error)) = recorded {
        return Some(Piped::Unrecorded(error));
    }
    Some(Piped::Ran(closed, checked))
}
