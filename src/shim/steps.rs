//! A statement under test as the messages that run it the platform's way with no reply read
//! in between ([`steps`]): what lets a file's transaction go to the server as one pipeline.
//! A statement whose way depends on a reply (a refusal to retry as the superuser, an event
//! trigger's function owner) or that ends the file's transaction has none.

use std::borrow::Cow;

use super::platform::{route, Route, Session};

/// What resets the session to the platform's `postgres` after a statement run otherwise.
const AGAIN_POSTGRES: &str = "set session authorization postgres";

/// The messages that run `statement` in an open transaction as [`Session::execute`] would,
/// each to be sent as its own simple query, in order; the first error among their replies is
/// the statement's. `None` where only [`Session::execute`] runs it as the platform does.
pub fn steps(session: Session, statement: &str) -> Option<Vec<Cow<'_, str>>> {
    if ends_transaction(statement) {
        return None;
    }
    if session == Session::Superuser {
        return Some(vec![Cow::Borrowed(statement)]);
    }
    match route(statement) {
        // What the server may refuse `postgres` and supautils would run as the superuser
        // (`Session::execute` retries it from a savepoint) cannot be told from its leading
        // words: inside a DO block, a role's attributes.
        Route::AsPostgres if retried_as_superuser(statement) => None,
        Route::AsPostgres => Some(vec![Cow::Borrowed(statement)]),
        Route::ThenPostgresAgain => Some(vec![
            Cow::Borrowed(statement),
            Cow::Borrowed(AGAIN_POSTGRES),
        ]),
        Route::AsSuperuser { after } => {
            let mut steps = vec![
                Cow::Borrowed("reset session authorization"),
                Cow::Borrowed(statement),
            ];
            steps.extend(after.into_iter().map(Cow::Owned));
            steps.push(Cow::Borrowed(AGAIN_POSTGRES));
            Some(steps)
        }
        Route::EventTrigger { .. } | Route::Refused(_) => None,
    }
}

/// Whether the statement may be refused to `postgres` in a way supautils avoids: it names an
/// extension (created from a DO block or a function) or a role attribute only the superuser
/// grants on PostgreSQL 15.
fn retried_as_superuser(statement: &str) -> bool {
    ["extension", "bypassrls", "replication"]
        .iter()
        .any(|word| mentions(statement, word))
}

/// Whether the statement ends or nests the file's transaction (`COMMIT;` in a migration,
/// savepoints): then a statement after a failed one could still run, and the file needs its
/// replies one by one. (A procedure cannot commit inside the file's transaction block.)
fn ends_transaction(statement: &str) -> bool {
    matches!(
        first_word(statement).as_str(),
        "commit"
            | "end"
            | "rollback"
            | "abort"
            | "begin"
            | "start"
            | "savepoint"
            | "release"
            | "prepare"
    )
}

/// The statement's first word, lowercased, comments skipped.
fn first_word(statement: &str) -> String {
    let mut rest = statement;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if rest.starts_with("/*") {
            rest = rest.split_once("*/").map_or("", |(_, tail)| tail);
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Whether `word` (lowercase) occurs in `text` as a whole word, in any case.
fn mentions(text: &str, word: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let identifier = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    lower.match_indices(word).any(|(at, _)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + word.len()..].chars().next();
        !before.is_some_and(identifier) && !after.is_some_and(identifier)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(statement: &str) -> Option<Vec<String>> {
        steps(Session::Demoted, statement)
            .map(|steps| steps.into_iter().map(Cow::into_owned).collect())
    }

    #[test]
    fn plain_statements_are_one_step() {
        assert_eq!(
            texts("create table public.t (id int)"),
            Some(vec!["create table public.t (id int)".to_owned()])
        );
        // A schema named like the keyword is no extension.
        assert!(texts("select extensions.uuid_generate_v4()").is_some());
    }

    #[test]
    fn the_superuser_route_is_spelt_out() {
        assert_eq!(
            texts("create publication p for all tables"),
            Some(vec![
                "reset session authorization".to_owned(),
                "create publication p for all tables".to_owned(),
                "alter publication \"p\" owner to postgres".to_owned(),
                AGAIN_POSTGRES.to_owned(),
            ])
        );
        assert_eq!(
            texts("reset session authorization"),
            Some(vec![
                "reset session authorization".to_owned(),
                AGAIN_POSTGRES.to_owned()
            ])
        );
    }

    #[test]
    fn what_needs_a_reply_has_no_steps() {
        for statement in [
            "commit",
            "-- done\nCOMMIT",
            "savepoint a",
            "rollback to savepoint a",
            "set session authorization supabase_admin",
            "create event trigger e on ddl_command_end execute function f()",
            "do $$ begin create extension pg_trgm; end $$",
            "create extension plpython3u",
            "create role r bypassrls",
        ] {
            assert_eq!(texts(statement), None, "{statement}");
        }
        // A DO block's `begin` is not the file's.
        assert!(texts("do $$ begin perform 1; end $$").is_some());
        // The superuser runs everything as it is, but a file's COMMIT still ends it.
        assert!(steps(Session::Superuser, "create role r bypassrls").is_some());
        assert!(steps(Session::Superuser, "commit").is_none());
    }
}
