//! Applying migration and seed files to a database, one clean session state per file, with
//! errors mapped back to the user's file:line:col.

mod pipeline;

use std::time::{Duration, Instant};

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::Client;

use crate::project::{FileKind, SqlFile};
use crate::report::file::{FileFailure, FileOutcome, FileResult, Rerun};
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::shim::platform::{self, Refusal};
use crate::sql;
use crate::sql::{db_error_text, quote_literal};
use crate::stage_id::StageId;
use pipeline::Piped;

/// Options for one pass.
#[derive(Debug, Clone, Copy)]
pub struct PassOptions {
    pub statement_timeout: Duration,
    /// Record migrations and seeds in Supabase's ledger tables.
    pub record_ledger: bool,
    /// Skip migrations already in the ledger (ledger mode, pass 2).
    pub skip_recorded: bool,
    /// Skip files exempted from pass 2.
    pub honour_exemptions: bool,
}

/// Applies `files` in order; stops at the first failure (later files depend on earlier ones).
pub async fn apply_all<'a>(
    client: &Client,
    files: impl IntoIterator<Item = &'a SqlFile>,
    options: PassOptions,
    mut on_file: impl FnMut(&FileOutcome),
) -> Vec<FileOutcome> {
    let mut outcomes = Vec::new();
    for file in files {
        let started = Instant::now();
        let result = if options.honour_exemptions && file.exempt.is_some() {
            FileResult::Exempt(file.exempt.clone().unwrap_or_default())
        } else if options.skip_recorded
            && file.kind == FileKind::Migration
            && is_recorded(client, file).await
        {
            FileResult::SkippedByLedger
        } else if options.skip_recorded
            && file.kind == FileKind::Seed
            && seed_is_recorded(client, file).await
        {
            // The CLI's seed ledger: a seed whose path and hash are recorded is never run
            // again. Whether a re-run would have worked is still worth a note: probed in a
            // transaction that is rolled back, so the database stays as the CLI leaves it.
            FileResult::SeedUpToDate(probe_rerun(client, file, options).await)
        } else {
            match apply_file(client, file, options).await {
                Ok(()) => FileResult::Applied,
                Err(failure) => FileResult::Failed(failure),
            }
        };
        let outcome = FileOutcome {
            file: file.rel.clone(),
            kind: file.kind,
            duration: started.elapsed(),
            result,
        };
        on_file(&outcome);
        let failed = matches!(outcome.result, FileResult::Failed(_));
        outcomes.push(outcome);
        if failed {
            break;
        }
    }
    outcomes
}

async fn is_recorded(client: &Client, file: &SqlFile) -> bool {
    let Some(version) = &file.version else {
        return false;
    };
    client
        .query_opt(
            "select 1 from supabase_migrations.schema_migrations where version = $1",
            &[&version.to_string()],
        )
        .await
        .map(|row| row.is_some())
        .unwrap_or(false)
}

/// Whether the CLI's seed ledger (`supabase_migrations.seed_files`) holds `file` with the
/// hash of its current text: then `db push --include-seed` and `db reset` skip it.
async fn seed_is_recorded(client: &Client, file: &SqlFile) -> bool {
    client
        .query_opt(
            "select 1 from supabase_migrations.seed_files where path = $1 and hash = $2",
            &[&file.rel, &seed_hash(file)],
        )
        .await
        .map(|row| row.is_some())
        .unwrap_or(false)
}

/// The hash the CLI records for a seed: sha256 of the file's bytes, in hex.
fn seed_hash(file: &SqlFile) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(file.text.as_bytes()))
}

/// Runs a seed the ledger would skip once more, rolled back: what a manual re-run raises.
/// A file that cannot run in a transaction block is not probed (it could not be undone).
async fn probe_rerun(client: &Client, file: &SqlFile, options: PassOptions) -> Rerun {
    if file.no_transaction {
        return Rerun::NotProbed;
    }
    match run_file(client, file, options, End::Rollback).await {
        Ok(()) => Rerun::Works,
        Err(failure) => Rerun::Fails(failure),
    }
}

/// How a file's transaction ends: committed (a pass), or rolled back (a probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Commit,
    Rollback,
}

/// Runs one file: a clean session, then its statements in one transaction (or one by one
/// for files that cannot run in a transaction block).
pub async fn apply_file(
    client: &Client,
    file: &SqlFile,
    options: PassOptions,
) -> Result<(), FileFailure> {
    run_file(client, file, options, End::Commit).await
}

async fn run_file(
    client: &Client,
    file: &SqlFile,
    options: PassOptions,
    end: End,
) -> Result<(), FileFailure> {
    let statements = sql::split(&file.text);
    // The file's statements in one transaction, like the Supabase CLI: an error or a time-out
    // names the statement that was running, and the time limit (enforced by the server's
    // watchdog per statement) applies to each. A file of one statement runs alone, as it
    // would in one batch (CREATE INDEX CONCURRENTLY works there).
    let transaction = !file.no_transaction && (statements.len() > 1 || end == End::Rollback);
    let mut session = reset_session(client, file, options, transaction).await?;
    let close = match end {
        End::Commit => "commit",
        End::Rollback => "rollback",
    };
    // A pipelined file writes its ledger row inside its transaction and has its session
    // checked behind its close, in the same round trip.
    let tail = pipeline::Tail {
        record: match (end, options.record_ledger) {
            (End::Commit, true) => record_sql(file, &statements),
            _ => None,
        },
        check: end == End::Commit && session == platform::Session::Demoted,
    };
    let sent = match (
        transaction,
        pipeline::plan(&file.text, &statements, session),
    ) {
        (true, Some(messages)) => Some(pipeline::send(client, &messages, &tail, close).await),
        _ => None,
    };
    let mut piped_check = None;
    let piped = matches!(sent, Some(Some(_)));
    let closed = match sent {
        Some(Some(Piped::Failed(at, error))) => {
            return Err(map_error(file, &statements[at], &error, options, session))
        }
        Some(Some(Piped::Unrecorded(error))) => {
            return Err(harness_failure(
                file,
                &format!("record the ledger: {}", db_error_text(&error)),
            ))
        }
        Some(Some(Piped::Ran(closed, checked))) => {
            piped_check = Some(checked);
            closed
        }
        retried => {
            if retried.is_some() {
                // Sent as a pipeline, and refused a statement the platform runs as the
                // superuser: rolled back, and run again statement by statement.
                session = reset_session(client, file, options, true).await?;
            }
            by_statement(client, file, &statements, options, session, transaction).await?;
            match transaction {
                true => client.batch_execute(close).await,
                false => Ok(()),
            }
        }
    };
    if end == End::Rollback {
        return closed.map_err(|e| {
            harness_failure(file, &format!("roll back the probe: {}", db_error_text(&e)))
        });
    }
    if let Err(error) = closed {
        // A deferred constraint or trigger raised at the end of the file.
        let last = statements.last().copied().unwrap_or(sql::Statement {
            start: 0,
            end: file.text.len(),
        });
        let mut failure = map_error(file, &last, &error, options, session);
        failure
            .notes
            .push("raised at the end of the file's transaction (COMMIT)".to_owned());
        return Err(failure);
    }
    let checked = match piped_check {
        // Sent behind the close (a demoted session's), or not needed (the superuser's).
        Some(Some(reply)) => reply
            .map_err(crate::shim::left_session::LeftSession::Unread)
            .and_then(|messages| crate::shim::left_session::checked(&messages)),
        Some(None) => Ok(()),
        None => session.check(client).await,
    };
    if let Err(message) = checked {
        return Err(harness_failure(file, &message.to_string()));
    }
    if options.record_ledger && !piped {
        if let Err(e) = record(client, file, &statements).await {
            return Err(harness_failure(
                file,
                &format!("record the ledger: {}", db_error_text(&e)),
            ));
        }
    }
    Ok(())
}

/// A clean session for a file (`DISCARD ALL`, the time limit, the platform's `postgres`),
/// and the file's transaction begun when `begin`: sent together, one round trip.
async fn reset_session(
    client: &Client,
    file: &SqlFile,
    options: PassOptions,
    begin: bool,
) -> Result<platform::Session, FileFailure> {
    let timeout = format!(
        "set statement_timeout = {}",
        quote_literal(&format!("{}ms", options.statement_timeout.as_millis()))
    );
    // DISCARD ALL cannot share an implicit transaction with anything else: each is its own
    // message. As the platform runs it: a `postgres` that is not a superuser.
    let (discarded, limited, session, begun) = tokio::join!(
        client.batch_execute("discard all"),
        client.batch_execute(&timeout),
        platform::become_postgres(client),
        async {
            match begin {
                true => client.batch_execute("begin").await,
                false => Ok(()),
            }
        },
    );
    for reset in [discarded, limited] {
        reset.map_err(|e| {
            harness_failure(file, &format!("reset the session: {}", db_error_text(&e)))
        })?;
    }
    let session = session.map_err(|e| {
        harness_failure(
            file,
            &format!("become the platform's postgres: {}", db_error_text(&e)),
        )
    })?;
    begun.map_err(|e| harness_failure(file, &format!("begin the file: {}", db_error_text(&e))))?;
    Ok(session)
}

/// Runs the file's statements one by one, each waited for (a statement the platform runs
/// its own way, or a file outside a transaction); a failure rolls the transaction back.
async fn by_statement(
    client: &Client,
    file: &SqlFile,
    statements: &[sql::Statement],
    options: PassOptions,
    session: platform::Session,
    transaction: bool,
) -> Result<(), FileFailure> {
    for statement in statements {
        if let Err(refusal) = session
            .execute(client, statement.text(&file.text), transaction)
            .await
        {
            if transaction {
                // The whole file rolls back.
                let _ = client.batch_execute("rollback").await;
            }
            return Err(match refusal {
                Refusal::Server(error) => map_error(file, statement, &error, options, session),
                Refusal::Platform(message) => platform_failure(file, statement, message),
            });
        }
    }
    Ok(())
}

async fn record(
    client: &Client,
    file: &SqlFile,
    statements: &[sql::Statement],
) -> Result<(), tokio_postgres::Error> {
    match file.kind {
        FileKind::Migration => {
            let Some(version) = &file.version else {
                return Ok(());
            };
            let texts: Vec<String> = statements
                .iter()
                .map(|s| s.text(&file.text).to_owned())
                .collect();
            client
                .execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements) \
                     values ($1, $2, $3) on conflict (version) do nothing",
                    &[&version.to_string(), &file.ledger_name(), &texts],
                )
                .await?;
        }
        FileKind::Seed => {
            let hash = seed_hash(file);
            client
                .execute(
                    "insert into supabase_migrations.seed_files (path, hash) values ($1, $2) \
                     on conflict (path) do update set hash = excluded.hash",
                    &[&file.rel, &hash],
                )
                .await?;
        }
    }
    Ok(())
}

/// [`record`]'s row as one simple query, for a file sent as a pipeline; `None` where there
/// is nothing to record (a migration without a version). Values are dollar-quoted: the file
/// may have changed how its session reads quoted strings (`standard_conforming_strings`).
fn record_sql(file: &SqlFile, statements: &[sql::Statement]) -> Option<String> {
    match file.kind {
        FileKind::Migration => {
            let version = file.version.as_ref()?;
            let texts: Vec<String> = statements
                .iter()
                .map(|s| dollar_quote(s.text(&file.text)))
                .collect();
            Some(format!(
                "insert into supabase_migrations.schema_migrations (version, name, statements) \
                 values ({}, {}, array[{}]::text[]) on conflict (version) do nothing",
                dollar_quote(&version.to_string()),
                dollar_quote(&file.ledger_name()),
                texts.join(", ")
            ))
        }
        FileKind::Seed => Some(format!(
            "insert into supabase_migrations.seed_files (path, hash) values ({}, {}) \
             on conflict (path) do update set hash = excluded.hash",
            dollar_quote(&file.rel),
            dollar_quote(&seed_hash(file))
        )),
    }
}

/// `text` as a dollar-quoted literal, with a tag `text` does not contain.
fn dollar_quote(text: &str) -> String {
    let mut tag = "$dbci$".to_owned();
    let mut n = 0;
    // The first tag in the text and its close must be the close itself.
    while format!("{text}{tag}").find(&tag) != Some(text.len()) {
        n += 1;
        tag = format!("$dbci{n}$");
    }
    format!("{tag}{text}{tag}")
}

fn harness_failure(file: &SqlFile, message: &str) -> FileFailure {
    FileFailure {
        file: file.rel.clone(),
        line: 1,
        column: 1,
        message: message.to_owned(),
        notes: Vec::new(),
        sqlstate: String::new(),
        statement: String::new(),
    }
}

/// A statement the platform refuses though this server would run it (see
/// `shim::platform`), at the statement's start.
fn platform_failure(file: &SqlFile, statement: &sql::Statement, message: String) -> FileFailure {
    let text = statement.text(&file.text);
    let leading = text.len() - text.trim_start().len();
    let (line, column) = sql::line_col(&file.text, statement.start + leading);
    FileFailure {
        file: file.rel.clone(),
        line,
        column,
        message,
        notes: vec![platform::PLATFORM_NOTE.to_owned()],
        sqlstate: "42501".to_owned(),
        statement: sql::excerpt(text, 4),
    }
}

/// Maps a server error to the file position of the offending token, or of the statement.
fn map_error(
    file: &SqlFile,
    statement: &sql::Statement,
    error: &tokio_postgres::Error,
    options: PassOptions,
    session: platform::Session,
) -> FileFailure {
    let text = statement.text(&file.text);
    let mut offset = statement.start;
    let mut notes = Vec::new();
    let mut sqlstate = String::new();
    if let Some(db) = error.as_db_error() {
        sqlstate = db.code().code().to_owned();
        match db.position() {
            Some(ErrorPosition::Original(position)) => {
                offset = statement.start + sql::char_position_to_offset(text, *position as usize);
            }
            Some(ErrorPosition::Internal { query, .. }) => {
                notes.push(format!("in the query: {}", sql::excerpt(query, 3)));
            }
            None => {}
        }
        if let Some(detail) = db.detail() {
            notes.push(format!("detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            notes.push(format!("hint: {hint}"));
        }
        if let Some(context) = db.where_() {
            // Where a trigger or function raised it: its name and line inside its body.
            notes.push(format!("context: {}", context.replace('\n', "\n  ")));
        }
    }
    let message = db_error_text(error);
    let hint = error
        .as_db_error()
        .and_then(|db| db.hint())
        .unwrap_or_default();
    notes.extend(session.refusal_note(&sqlstate, &message, hint));
    if crate::sql::error::is_timeout(error) && message.contains("statement timeout") {
        notes.push(format!(
            "db-ci stops a statement after {} (replay.statement_timeout in db-ci.yaml)",
            humantime::format_duration(options.statement_timeout)
        ));
    }
    if let Some(extension) = missing_extension(&message) {
        notes.push(format!(
            "the server db-ci booted has no extension `{extension}`, and the Supabase shim does not \
             provide it: use an image that has it (--image), or install it for the local binaries"
        ));
    }
    let (line, column) = sql::line_col(&file.text, offset);
    FileFailure {
        file: file.rel.clone(),
        line,
        column,
        message,
        notes,
        sqlstate,
        statement: sql::excerpt(text, 4),
    }
}

fn missing_extension(message: &str) -> Option<String> {
    // PostgreSQL 15+: `extension "x" is not available`; older: `could not open extension
    // control file ".../x.control"`.
    if let Some(rest) = message.strip_prefix("extension \"") {
        if let Some((name, tail)) = rest.split_once('"') {
            if tail.contains("not available") {
                return Some(name.to_owned());
            }
        }
    }
    if message.contains("could not open extension control file") {
        let name = message.rsplit('/').next()?.split(".control").next()?;
        return Some(name.to_owned());
    }
    None
}

/// Advice for a statement that fails when it runs a second time.
pub fn rerun_advice(statement: &str, sqlstate: &str, kind: FileKind) -> Vec<String> {
    let lower = statement.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    let mut notes = Vec::new();
    let guard = match words.as_slice() {
        ["create", "policy", ..] => Some("precede it with DROP POLICY IF EXISTS … ON …"),
        ["create", "trigger", ..] => {
            Some("use CREATE OR REPLACE TRIGGER, or DROP TRIGGER IF EXISTS … ON … first")
        }
        ["create", "type", ..] => {
            Some("wrap it in a DO block that checks pg_type, or catch duplicate_object")
        }
        ["create", "table", w, ..] if *w != "if" => Some("use CREATE TABLE IF NOT EXISTS"),
        ["create", "index", ..] | ["create", "unique", "index", ..] => {
            Some("use CREATE INDEX IF NOT EXISTS with an explicit name")
        }
        ["create", "function", ..] | ["create", "procedure", ..] => Some("use CREATE OR REPLACE"),
        ["create", "view", ..] => Some("use CREATE OR REPLACE VIEW"),
        ["alter", "table", ..]
            if lower.contains(" add column ") && !lower.contains("if not exists") =>
        {
            Some("use ADD COLUMN IF NOT EXISTS")
        }
        ["alter", "table", ..] if lower.contains(" add constraint ") => {
            Some("drop the constraint IF EXISTS first, or check pg_constraint in a DO block")
        }
        ["insert", ..] if sqlstate == "23505" => {
            Some("make the seed an upsert: INSERT … ON CONFLICT … DO UPDATE/NOTHING")
        }
        _ => None,
    };
    if let Some(guard) = guard {
        notes.push(format!("not re-runnable: {guard}"));
    }
    if kind == FileKind::Migration {
        notes.push(
            "if your migrations are applied once through the Supabase ledger (supabase db push), \
             set `replay: {mode: ledger}` in db-ci.yaml: pass 2 then proves a second deploy is a \
             no-op, running only what the CLI would (nothing already in its migration or seed \
             ledger)"
                .to_owned(),
        );
    }
    notes
}

/// The stage report of one replay pass: a case per file, a failure per file that failed.
pub fn stage_report(
    name: StageId,
    outcomes: &[FileOutcome],
    duration: Duration,
    extra_notes: impl Fn(&FileFailure) -> Vec<String>,
) -> StageReport {
    let mut failures = Vec::new();
    for outcome in outcomes {
        if let Some(f) = outcome.failure() {
            let mut notes = f.notes.clone();
            notes.extend(extra_notes(f));
            failures.push(Failure {
                file: f.file.clone(),
                line: f.line,
                column: Some(f.column),
                message: f.message.clone(),
                notes,
                statement: Some(f.statement.clone()).filter(|s| !s.is_empty()),
            });
        }
    }
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o.result, FileResult::Applied))
        .count();
    let skipped = outcomes.len() - applied - failures.len();
    let cases = outcomes
        .iter()
        .map(|outcome| {
            let (verdict, line, message) = match &outcome.result {
                FileResult::Applied => (CaseVerdict::Pass, None, None),
                FileResult::SkippedByLedger => (
                    CaseVerdict::Skipped,
                    None,
                    Some("recorded in the ledger".to_owned()),
                ),
                FileResult::SeedUpToDate(rerun) => (
                    CaseVerdict::Skipped,
                    None,
                    Some(format!("{SEED_UP_TO_DATE}{}", rerun_note(rerun))),
                ),
                FileResult::Exempt(reason) => (
                    CaseVerdict::Skipped,
                    None,
                    Some(format!("exempt: {reason}")),
                ),
                FileResult::Failed(f) => (CaseVerdict::Fail, Some(f.line), Some(f.message.clone())),
            };
            Case {
                name: outcome.file.clone(),
                group: name.as_str().to_owned(),
                verdict,
                file: Some(outcome.file.clone()),
                line,
                duration_ms: outcome.duration.as_millis() as u64,
                message,
                cell: None,
            }
        })
        .collect();
    let verdict = if failures.is_empty() {
        StageVerdict::Pass
    } else {
        StageVerdict::Fail
    };
    let not_rerunnable: Vec<String> = outcomes
        .iter()
        .filter_map(|o| match &o.result {
            FileResult::SeedUpToDate(Rerun::Fails(f)) => {
                Some(format!("{} ({})", f.location(), f.message))
            }
            _ => None,
        })
        .collect();
    let mut reason = if skipped > 0 {
        format!("{applied} files applied, {skipped} skipped (ledger or exempt)")
    } else {
        format!("{applied} files applied")
    };
    if !not_rerunnable.is_empty() {
        reason.push_str(&format!(
            "; note: not re-runnable by hand, though the seed ledger never re-runs it: {}",
            not_rerunnable.join(", ")
        ));
    }
    StageReport {
        reason: Some(reason).filter(|_| failures.is_empty()),
        checks: outcomes.len(),
        duration_ms: duration.as_millis() as u64,
        failures,
        cases,
        ..StageReport::new(name, verdict)
    }
}

/// What a pass-2 seed skipped by the seed ledger says, before its re-run note.
pub const SEED_UP_TO_DATE: &str =
    "seed unchanged in supabase_migrations.seed_files (path and hash): not run again, as the \
     Supabase CLI does not run it";

/// The note on a seed the ledger skipped: whether a manual re-run would work.
pub fn rerun_note(rerun: &Rerun) -> String {
    match rerun {
        Rerun::Works => "; a re-run works too".to_owned(),
        Rerun::Fails(f) => format!(
            "; note: re-run by hand (psql -f) it fails at {}: {} (the platform never re-runs it, \
             so this is not a failure)",
            f.location(),
            f.message
        ),
        Rerun::NotProbed => {
            "; not probed for re-runs (it cannot run in a transaction block)".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_missing_extensions() {
        assert_eq!(
            missing_extension("extension \"postgis\" is not available").as_deref(),
            Some("postgis")
        );
        assert_eq!(
            missing_extension(
                "could not open extension control file \"/usr/share/postgresql/15/extension/postgis.control\": No such file or directory"
            )
            .as_deref(),
            Some("postgis")
        );
        assert_eq!(missing_extension("relation \"x\" does not exist"), None);
    }

    #[test]
    fn dollar_quoting_survives_any_text() {
        assert_eq!(dollar_quote("a 'b' \\n"), "$dbci$a 'b' \\n$dbci$");
        assert_eq!(dollar_quote("x $dbci$ y"), "$dbci1$x $dbci$ y$dbci1$");
        // A text ending in `$` next to the tag must not close it early.
        assert_eq!(dollar_quote("x $dbci"), "$dbci1$x $dbci$dbci1$");
        assert_eq!(dollar_quote(""), "$dbci$$dbci$");
    }

    #[test]
    fn advice_names_the_guard() {
        let notes = rerun_advice("CREATE POLICY p ON t", "42710", FileKind::Migration);
        assert!(notes[0].contains("DROP POLICY IF EXISTS"));
        assert!(notes[1].contains("mode: ledger"));
        let notes = rerun_advice("insert into t values (1)", "23505", FileKind::Seed);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("ON CONFLICT"));
    }
}
