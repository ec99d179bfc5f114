//! A file's transaction sent to the server as one pipeline: every statement (as the platform
//! runs it, [`steps`]) and the closing COMMIT or ROLLBACK go out before any reply is read, as
//! the Supabase CLI sends a migration. The server never waits for db-ci between statements;
//! the first reply that is an error names the statement that failed (the server refuses
//! every later one: the transaction is aborted, and the close rolls it back), so the error's
//! position is exact.

use std::borrow::Cow;

use tokio_postgres::Client;

use crate::shim::platform::{superuser_would_run, Session};
use crate::shim::steps::steps;
use crate::sql::Statement;

/// The messages that run a file, each with the index of its statement.
pub(super) type Messages<'a> = Vec<(usize, Cow<'a, str>)>;

/// How a file sent as a pipeline ended.
pub(super) enum Piped {
    /// Every statement ran; the reply to the close.
    Ran(Result<(), tokio_postgres::Error>),
    /// Statement `.0` failed with `.1`; the file rolled back.
    Failed(usize, tokio_postgres::Error),
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

/// Sends `messages` then `close` (`commit` or `rollback`) in the open transaction, and reads
/// every reply. `None` when the first failure is one the platform would have retried as the
/// superuser: the file rolled back, and is to be run statement by statement.
pub(super) async fn send(client: &Client, messages: &Messages<'_>, close: &str) -> Option<Piped> {
    // Each request goes out on its future's first poll, and join_all polls them in order.
    let replies = futures_util::future::join_all(
        messages
            .iter()
            .map(|(_, text)| client.batch_execute(text))
            .chain([client.batch_execute(close)]),
    )
    .await;
    let mut replies = replies.into_iter();
    for (at, _) in messages {
        if let Some(Err(error)) = replies.next() {
            if superuser_would_run(&error) {
                return None;
            }
            return Some(Piped::Failed(*at, error));
        }
    }
    Some(Piped::Ran(replies.next().unwrap_or(Ok(()))))
}
