//! What a file left the platform's session as: the check after every file that it is still
//! the platform's `postgres` ([`CHECK_QUERY`], judged by [`checked`]), sent on its own or
//! behind a pipelined file's close.

use tokio_postgres::SimpleQueryMessage;

use super::platform::PLATFORM_ROLE;

/// How a file left the platform's session otherwise than as `postgres`, or why that could
/// not be read.
#[derive(Debug, thiserror::Error)]
pub enum LeftSession {
    #[error(
        "the file left its session authorised as `{session}` (current role `{current}`): on the \
         platform `postgres` cannot change its session authorization"
    )]
    Authorised { session: String, current: String },
    #[error("{}", crate::sql::db_error_text(.0))]
    Unread(tokio_postgres::Error),
    #[error("read the session's user: no row")]
    NoRow,
}

/// What [`Session::check`] reads: the session's user and role after a file (a demoted
/// session only). A file sent as one pipeline sends it behind its close ([`checked`]).
pub const CHECK_QUERY: &str = "select session_user::text, current_user::text";

/// [`Session::check`]'s verdict on the reply to [`CHECK_QUERY`].
pub fn checked(messages: &[SimpleQueryMessage]) -> Result<(), LeftSession> {
    let row = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some((
            row.get(0).unwrap_or_default().to_owned(),
            row.get(1).unwrap_or_default().to_owned(),
        )),
        _ => None,
    });
    let Some((session, current)) = row else {
        return Err(LeftSession::NoRow);
    };
    if session != PLATFORM_ROLE {
        return Err(LeftSession::Authorised { session, current });
    }
    Ok(())
}
