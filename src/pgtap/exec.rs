//! Running a parsed test file on a session the way psql with `ON_ERROR_STOP` does, keeping
//! what each statement printed; and resetting a session between files.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::script::{Script, StepKind};
use super::tap::{Death, Output, Pos};
use crate::backend::Server;
use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// What a file printed and how it ended.
#[derive(Debug, Clone)]
pub struct FileRun {
    pub outputs: Vec<Output>,
    pub death: Option<Death>,
    pub duration: Duration,
}

/// Connects a session for test files, with the per-statement timeout.
pub async fn connect(server: &Server, database: &str, timeout: Duration) -> Result<Client> {
    let client = server.connect(database).await?;
    set_timeout(&client, timeout).await?;
    Ok(client)
}

async fn set_timeout(client: &Client, timeout: Duration) -> Result<()> {
    client
        .batch_execute(&format!("set statement_timeout = {}", timeout.as_millis()))
        .await
        .map_err(|e| {
            Error::environment(format!("prepare a pgtap session: {}", db_error_text(&e)))
        })?;
    // `supabase test db` runs the files as the platform's postgres, not a superuser.
    crate::shim::platform::become_postgres(client)
        .await
        .map(|_| ())
        .map_err(|e| Error::environment(format!("prepare a pgtap session: {}", db_error_text(&e))))
}

/// Puts a session back as a new one would be, without reconnecting: what `DISCARD ALL` does,
/// except that cached plans and compiled functions (pgTAP's own) stay warm.
pub async fn reset(client: &Client, timeout: Duration) -> Result<()> {
    // Outside any transaction the file left open (the server warns, harmlessly).
    let _ = client.simple_query("rollback").await;
    client
        .batch_execute(&format!("{}; deallocate all", crate::sql::RESET_SESSION))
        .await
        .map_err(|e| Error::environment(format!("reset a pgtap session: {}", db_error_text(&e))))?;
    set_timeout(client, timeout).await
}

/// Runs `script` on `client`. `pipelined`: every statement is sent at once and the results
/// read in order (one round trip for the file) — only for isolated files, where statements
/// that follow an error run inside a transaction that is rolled back and their output is
/// discarded; otherwise one statement at a time, stopping at the first error, exactly as psql.
pub async fn run_script(client: &Client, script: &Script, pipelined: bool) -> FileRun {
    let started = Instant::now();
    let steps: Vec<_> = script
        .steps
        .iter()
        .take_while(|s| s.kind != StepKind::Quit)
        .collect();
    let mut outputs = Vec::new();
    let mut death = None;
    let results = if pipelined {
        let queries = steps.iter().filter_map(|step| match &step.kind {
            StepKind::Sql { text, .. } => Some(client.simple_query(text)),
            _ => None,
        });
        futures_util::future::join_all(queries).await
    } else {
        Vec::new()
    };
    let mut results = results.into_iter();
    for step in steps {
        let (text, exact) = match &step.kind {
            StepKind::Sql { text, exact } => (text, *exact),
            StepKind::Echo(line) => {
                outputs.push(Output {
                    pos: step.pos.clone(),
                    statement: String::new(),
                    lines: line.lines().map(str::to_owned).collect(),
                });
                continue;
            }
            StepKind::Quit => break,
        };
        let result = if pipelined {
            results.next().expect("one result per statement")
        } else {
            client.simple_query(text).await
        };
        match result {
            Ok(messages) => outputs.push(Output {
                pos: step.pos.clone(),
                statement: text.clone(),
                lines: lines(&messages),
            }),
            Err(error) => {
                death = Some(died(&step.pos, text, exact, &error));
                break;
            }
        }
    }
    FileRun {
        outputs,
        death,
        duration: started.elapsed(),
    }
}

/// The text rows printed, as psql prints them unaligned and tuples-only (columns joined by
/// `|`, one line per line of a value).
fn lines(messages: &[SimpleQueryMessage]) -> Vec<String> {
    let mut lines = Vec::new();
    for message in messages {
        if let SimpleQueryMessage::Row(row) = message {
            let values: Vec<&str> = (0..row.len())
                .map(|i| row.get(i).unwrap_or_default())
                .collect();
            lines.extend(values.join("|").lines().map(str::to_owned));
        }
    }
    lines
}

fn died(pos: &Pos, text: &str, exact: bool, error: &tokio_postgres::Error) -> Death {
    let mut at = pos.clone();
    if exact {
        if let Some(offset) = crate::sql::error_offset(error, text) {
            let (line, column) = crate::sql::line_col(text, offset);
            at.column = if line == 1 {
                pos.column + column - 1
            } else {
                column
            };
            at.line = pos.line + line - 1;
        }
    }
    let mut notes = Vec::new();
    if let Some(db) = error.as_db_error() {
        notes.push(format!("SQLSTATE {}", db.code().code()));
        notes.extend(db.detail().map(|d| format!("detail: {d}")));
        notes.extend(db.hint().map(|h| format!("hint: {h}")));
        notes.extend(db.where_().map(|w| format!("context: {w}")));
    }
    Death {
        pos: at,
        statement: crate::sql::excerpt(text, 6),
        message: db_error_text(error),
        notes,
    }
}
