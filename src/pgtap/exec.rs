//! Running a parsed test file the way psql runs it for pg_prove (`--no-align --quiet
//! --pset tuples_only=true --set ON_ERROR_STOP=1`): variables, conditionals, the output
//! settings that change what pg_prove reads, stopping (or not) at an error; and the one
//! place a session for test files is opened and put back as a new one would be.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use super::script::{Meta, PsqlError, Script, Step, StepKind};
use super::tap::{Death, Output, Pos};
use super::vars;
use crate::backend::Server;
use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// What a file printed and how it ended.
#[derive(Debug, Clone)]
pub struct FileRun {
    pub outputs: Vec<Output>,
    /// psql stopped here (ON_ERROR_STOP): a non-zero exit status, which fails the file.
    pub death: Option<Death>,
    /// Errors psql reported and went on from (ON_ERROR_STOP off, an invalid `\if`).
    pub errors: Vec<Death>,
    pub duration: Duration,
}

/// Connects a session for test files: the only place one is opened, so a change of role
/// or settings for pgTAP sessions is made here.
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

/// Puts a session back as a new one (pg_prove starts a psql per file) would be, without
/// reconnecting: what `DISCARD ALL` does, except that cached plans and compiled functions
/// (pgTAP's own) stay warm.
pub async fn reset(client: &Client, timeout: Duration) -> Result<()> {
    // Outside any transaction the file left open, which psql's exit would roll back.
    let _ = client.simple_query("rollback").await;
    client
        .batch_execute(&format!("{}; deallocate all", crate::sql::RESET_SESSION))
        .await
        .map_err(|e| Error::environment(format!("reset a pgtap session: {}", db_error_text(&e))))?;
    set_timeout(client, timeout).await
}

/// psql's output settings that change what pg_prove reads.
#[derive(Debug, Clone)]
struct Format {
    aligned: bool,
    tuples_only: bool,
    footer: bool,
    null: String,
    fieldsep: String,
}

impl Default for Format {
    /// pg_prove's: `--no-align --pset tuples_only=true`.
    fn default() -> Self {
        Format {
            aligned: false,
            tuples_only: true,
            footer: true,
            null: String::new(),
            fieldsep: "|".to_owned(),
        }
    }
}

/// One `\if` level.
#[derive(Debug, Clone, Copy)]
struct Cond {
    /// The enclosing level runs.
    outer: bool,
    /// The current branch runs.
    active: bool,
    /// A branch of this `\if` ran (or was chosen) already.
    taken: bool,
}

/// psql's state while it runs one file.
struct Psql {
    vars: BTreeMap<String, String>,
    on_error_stop: bool,
    format: Format,
    conds: Vec<Cond>,
    /// The last statement sent (what `\gset` after a `;` sends again).
    last_query: Option<String>,
    /// `\echo -n` text waiting for the rest of its line.
    partial: Option<String>,
    outputs: Vec<Output>,
    errors: Vec<Death>,
}

impl Psql {
    fn new() -> Psql {
        let mut vars = BTreeMap::new();
        vars.insert("ON_ERROR_STOP".to_owned(), "1".to_owned());
        Psql {
            vars,
            on_error_stop: true,
            format: Format::default(),
            conds: Vec::new(),
            last_query: None,
            partial: None,
            outputs: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn active(&self) -> bool {
        self.conds.last().is_none_or(|c| c.active)
    }

    fn print(&mut self, pos: &Pos, statement: &str, mut lines: Vec<String>) {
        if let Some(partial) = self.partial.take() {
            match lines.first_mut() {
                Some(first) => first.insert_str(0, &partial),
                None => {
                    self.partial = Some(partial);
                    return;
                }
            }
        }
        if lines.is_empty() {
            return;
        }
        self.outputs.push(Output {
            pos: pos.clone(),
            statement: statement.to_owned(),
            lines,
        });
    }

    /// A statement's result, printed as psql prints it with the current settings.
    fn print_result(&mut self, pos: &Pos, statement: &str, messages: &[SimpleQueryMessage]) {
        let lines = render(&self.format, messages);
        self.print(pos, statement, lines);
    }

    /// An error psql reports: it stops the file with ON_ERROR_STOP, else it is noted.
    fn error(&mut self, death: Death) -> Option<Death> {
        if self.on_error_stop {
            Some(death)
        } else {
            self.errors.push(death);
            None
        }
    }

    fn set_var(&mut self, name: &str, value: Option<String>) -> std::result::Result<(), PsqlError> {
        if name == "ON_ERROR_STOP" {
            // psql's hook: `\set X` means on, `\unset X` means off; an invalid value is
            // refused and the variable keeps its value.
            let value = match value.as_deref() {
                None => "off".to_owned(),
                Some("") => "on".to_owned(),
                Some(v) => v.to_owned(),
            };
            let Some(on) = vars::parse_bool(&value) else {
                return Err(PsqlError::Refused(format!(
                    "unrecognized value \"{value}\" for \"ON_ERROR_STOP\": Boolean expected"
                )));
            };
            self.on_error_stop = on;
            self.vars.insert(name.to_owned(), value);
            return Ok(());
        }
        match value {
            Some(value) => self.vars.insert(name.to_owned(), value),
            None => self.vars.remove(name),
        };
        Ok(())
    }
}

/// The lines psql prints for a statement's results.
fn render(format: &Format, messages: &[SimpleQueryMessage]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut columns: Option<Vec<String>> = None;
    let mut rows: Vec<String> = Vec::new();
    let mut flush = |columns: &mut Option<Vec<String>>, rows: &mut Vec<String>| {
        let Some(names) = columns.take() else {
            return;
        };
        let mut table = Vec::new();
        if !format.tuples_only {
            table.push(names.join(&format.fieldsep));
        }
        let count = rows.len();
        for row in rows.drain(..) {
            table.extend(row.split('\n').map(str::to_owned));
        }
        if !format.tuples_only && format.footer {
            table.push(if count == 1 {
                "(1 row)".to_owned()
            } else {
                format!("({count} rows)")
            });
        }
        if format.aligned {
            // Aligned output starts every line with a space (border 1) and ends a result
            // with an empty line: none of it is TAP but `Bail out!`, which TAP allows
            // indented. Widths and `+` markers are not reproduced: they never make a line
            // TAP.
            for line in &mut table {
                line.insert(0, ' ');
            }
            table.push(String::new());
        }
        lines.extend(table);
    };
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(description) => {
                flush(&mut columns, &mut rows);
                columns = Some(description.iter().map(|c| c.name().to_owned()).collect());
            }
            SimpleQueryMessage::Row(row) => {
                let values: Vec<String> = (0..row.len())
                    .map(|i| {
                        row.get(i)
                            .map_or_else(|| format.null.clone(), str::to_owned)
                    })
                    .collect();
                rows.push(values.join(&format.fieldsep));
            }
            SimpleQueryMessage::CommandComplete(_) => flush(&mut columns, &mut rows),
            _ => {}
        }
    }
    flush(&mut columns, &mut rows);
    lines
}

/// What a statement does to the transaction block, by its first words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Opens,
    Closes,
    /// `ROLLBACK TO`: recovers an aborted block, so statements after it run again.
    Recovers,
    Neither,
}

fn block_effect(text: &str) -> Block {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .take(3)
        .map(str::to_ascii_lowercase)
        .collect();
    let word = |i: usize| words.get(i).map_or("", String::as_str);
    match word(0) {
        "begin" | "start" => Block::Opens,
        "rollback" if word(1) == "to" || word(2) == "to" => Block::Recovers,
        "commit" | "end" | "rollback" | "abort" => Block::Closes,
        "prepare" if word(1) == "transaction" => Block::Closes,
        _ => Block::Neither,
    }
}

/// Runs `script` on `client` as psql would for pg_prove. Statements inside a transaction
/// block that was opened successfully are sent together (one round trip): an error there
/// aborts the block, so psql's stopping after it and the server refusing everything after
/// it until the block ends are the same; nothing that ends a block is sent that way.
pub async fn run_script(client: &Client, script: &Script) -> FileRun {
    let started = Instant::now();
    let mut psql = Psql::new();
    let mut death = None;
    let mut in_block = false;
    let steps = &script.steps;
    let mut i = 0;
    while i < steps.len() {
        let step = &steps[i];
        i += 1;
        match &step.kind {
            StepKind::Meta { command, args } => {
                match meta(client, &mut psql, step, *command, args).await {
                    Flow::Next => {}
                    Flow::Stop(d) => {
                        death = d;
                        break;
                    }
                }
                continue;
            }
            StepKind::Error(_) | StepKind::Sql { .. } if !psql.active() => continue,
            StepKind::Error(message) => {
                if let Some(d) = psql.error(meta_death(&step.pos, message.clone())) {
                    death = Some(d);
                    break;
                }
            }
            StepKind::Sql { text: raw, gset } => {
                let text = vars::interpolate(raw, &psql.vars);
                psql.last_query = Some(text.clone());
                if let Some(prefix) = gset {
                    if let Some(d) = run_gset(client, &mut psql, step, &text, prefix).await {
                        death = Some(d);
                        break;
                    }
                    continue;
                }
                // The run of plain statements after this one that stays inside the block.
                let batched = in_block && block_effect(&text) == Block::Neither;
                let mut batch = vec![(step, text)];
                if batched {
                    while let Some(next) = steps.get(i) {
                        let StepKind::Sql {
                            text: raw,
                            gset: None,
                        } = &next.kind
                        else {
                            break;
                        };
                        let text = vars::interpolate(raw, &psql.vars);
                        if block_effect(&text) != Block::Neither {
                            break;
                        }
                        batch.push((next, text));
                        i += 1;
                    }
                }
                let results = futures_util::future::join_all(
                    batch.iter().map(|(_, text)| client.simple_query(text)),
                )
                .await;
                let mut stopped = false;
                for ((step, text), result) in batch.iter().zip(results) {
                    psql.last_query = Some(text.clone());
                    match result {
                        Ok(messages) => {
                            match block_effect(text) {
                                Block::Opens => in_block = true,
                                Block::Closes => in_block = false,
                                Block::Recovers | Block::Neither => {}
                            }
                            psql.print_result(&step.pos, text, &messages);
                        }
                        Err(error) => {
                            let exact = matches!(&step.kind, StepKind::Sql { text: raw, .. } if raw == text);
                            let lost = error.is_closed();
                            if let Some(d) = psql.error(died(&step.pos, text, exact, &error)) {
                                death = Some(d);
                                stopped = true;
                                break;
                            }
                            if lost {
                                // psql exits 2 when the connection goes.
                                death = psql.errors.pop();
                                stopped = true;
                                break;
                            }
                            // A failed COMMIT still ends the block; a failed BEGIN opened none.
                            if block_effect(text) == Block::Closes {
                                in_block = false;
                            }
                        }
                    }
                }
                if stopped {
                    break;
                }
            }
        }
    }
    if death.is_none() && !psql.conds.is_empty() {
        // psql reports the missing \endif and exits with an error status.
        let pos = steps
            .last()
            .map_or_else(|| script.first(), |s| s.pos.clone());
        death = Some(meta_death(
            &pos,
            "reached the end of the file without finding the closing \\endif".to_owned(),
        ));
    }
    if let Some(partial) = psql.partial.take() {
        let pos = steps
            .last()
            .map_or_else(|| script.first(), |s| s.pos.clone());
        psql.outputs.push(Output {
            pos,
            statement: String::new(),
            lines: vec![partial],
        });
    }
    FileRun {
        outputs: psql.outputs,
        death,
        errors: psql.errors,
        duration: started.elapsed(),
    }
}

enum Flow {
    Next,
    Stop(Option<Death>),
}

fn meta_death(pos: &Pos, message: String) -> Death {
    Death {
        pos: pos.clone(),
        statement: String::new(),
        message,
        notes: Vec::new(),
    }
}

async fn meta(client: &Client, psql: &mut Psql, step: &Step, command: Meta, args: &str) -> Flow {
    let pos = &step.pos;
    // Conditionals are followed even in skipped branches; nothing else is, and nothing
    // there is interpolated (as in psql).
    match command {
        Meta::If => {
            let outer = psql.active();
            let value = if outer {
                condition(psql, pos, args)
            } else {
                false
            };
            psql.conds.push(Cond {
                outer,
                active: outer && value,
                taken: value,
            });
            return Flow::Next;
        }
        Meta::Elif | Meta::Else => {
            let Some(cond) = psql.conds.last().copied() else {
                return stop_or_next(
                    psql,
                    pos,
                    format!(
                        "\\{}: no matching \\if",
                        if command == Meta::Else {
                            "else"
                        } else {
                            "elif"
                        }
                    ),
                );
            };
            let value = if !cond.outer || cond.taken {
                false
            } else if command == Meta::Else {
                true
            } else {
                condition(psql, pos, args)
            };
            let last = psql.conds.last_mut().unwrap();
            last.active = cond.outer && value;
            last.taken |= value;
            return Flow::Next;
        }
        Meta::Endif => {
            if psql.conds.pop().is_none() {
                return stop_or_next(psql, pos, "\\endif: no matching \\if".to_owned());
            }
            return Flow::Next;
        }
        _ if !psql.active() => return Flow::Next,
        _ => {}
    }
    let words = match vars::words(args, &psql.vars) {
        Ok(words) => words,
        Err(e) => return stop_or_next(psql, pos, e.to_string()),
    };
    match command {
        Meta::Set => {
            let Some((name, value)) = words.split_first() else {
                return Flow::Next;
            };
            if let Err(e) = psql.set_var(name, Some(value.concat())) {
                return stop_or_next(psql, pos, e.to_string());
            }
        }
        Meta::Unset => {
            if let Some(name) = words.first() {
                if let Err(e) = psql.set_var(name, None) {
                    return stop_or_next(psql, pos, e.to_string());
                }
            }
        }
        Meta::Echo => {
            let (newline, words) = match words.split_first() {
                Some((first, rest)) if first == "-n" => (false, rest),
                _ => (true, &words[..]),
            };
            let text = words.join(" ");
            if newline {
                let lines = text.split('\n').map(str::to_owned).collect();
                psql.print(pos, "", lines);
            } else {
                let partial = psql.partial.take().unwrap_or_default() + &text;
                psql.partial = Some(partial);
            }
        }
        Meta::GsetLast => {
            let Some(query) = psql.last_query.clone() else {
                return stop_or_next(psql, pos, "\\gset: no query to send".to_owned());
            };
            if let Some(d) = run_gset(client, psql, step, &query, args).await {
                return Flow::Stop(Some(d));
            }
        }
        Meta::ToggleAligned => psql.format.aligned = !psql.format.aligned,
        Meta::TuplesOnly => {
            psql.format.tuples_only = match words.first() {
                None => !psql.format.tuples_only,
                Some(v) => match vars::parse_bool(v) {
                    Some(b) => b,
                    None => {
                        return stop_or_next(
                            psql,
                            pos,
                            format!("\\t: unrecognized value \"{v}\": Boolean expected"),
                        )
                    }
                },
            }
        }
        Meta::Pset => {
            if let Err(e) = pset(&mut psql.format, &words) {
                return stop_or_next(psql, pos, e.to_string());
            }
        }
        Meta::Quit => return Flow::Stop(None),
        Meta::Nothing => {}
        Meta::If | Meta::Elif | Meta::Else | Meta::Endif => unreachable!("handled above"),
    }
    Flow::Next
}

fn stop_or_next(psql: &mut Psql, pos: &Pos, message: String) -> Flow {
    match psql.error(meta_death(pos, message)) {
        Some(d) => Flow::Stop(Some(d)),
        None => Flow::Next,
    }
}

/// An `\if`/`\elif` expression; an invalid one is reported and taken as false, and psql
/// goes on whatever ON_ERROR_STOP says.
fn condition(psql: &mut Psql, pos: &Pos, args: &str) -> bool {
    let expression = vars::words(args, &psql.vars)
        .map(|w| w.join(" "))
        .unwrap_or_default();
    match vars::parse_bool(&expression) {
        Some(value) => value,
        None => {
            psql.errors.push(meta_death(
                pos,
                format!(
                    "unrecognized value \"{expression}\" for \"\\if expression\": Boolean expected"
                ),
            ));
            false
        }
    }
}

fn pset(format: &mut Format, words: &[String]) -> std::result::Result<(), PsqlError> {
    let Some((option, value)) = words.split_first() else {
        return Ok(());
    };
    let value = value.first();
    let toggle = |current: bool| -> std::result::Result<bool, PsqlError> {
        match value {
            None => Ok(!current),
            Some(v) => vars::parse_bool(v).ok_or_else(|| {
                PsqlError::Refused(format!(
                    "\\pset: unrecognized value \"{v}\" for \"{option}\": Boolean expected"
                ))
            }),
        }
    };
    match option.as_str() {
        "format" => match value.map(String::as_str) {
            Some("aligned") => format.aligned = true,
            Some("unaligned") => format.aligned = false,
            other => {
                return Err(PsqlError::NotReproduced(format!(
                    "\\pset format {}: db-ci prints aligned and unaligned output only",
                    other.unwrap_or("")
                )))
            }
        },
        "tuples_only" => format.tuples_only = toggle(format.tuples_only)?,
        "footer" => format.footer = toggle(format.footer)?,
        "null" => format.null = value.cloned().unwrap_or_default(),
        "fieldsep" => format.fieldsep = value.cloned().unwrap_or_default(),
        "pager" | "pager_min_lines" => {}
        other => {
            return Err(PsqlError::NotReproduced(format!(
                "\\pset {other} changes psql's output in a way db-ci does not reproduce"
            )))
        }
    }
    Ok(())
}

/// Sends `text` and stores its one row in variables, as `\gset [prefix]` does.
async fn run_gset(
    client: &Client,
    psql: &mut Psql,
    step: &Step,
    text: &str,
    args: &str,
) -> Option<Death> {
    let prefix = vars::words(args, &psql.vars)
        .ok()
        .and_then(|w| w.into_iter().next())
        .unwrap_or_default();
    let exact = matches!(&step.kind, StepKind::Sql { text: raw, .. } if raw == text);
    let messages = match client.simple_query(text).await {
        Ok(messages) => messages,
        Err(error) => return psql.error(died(&step.pos, text, exact, &error)),
    };
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for message in &messages {
        match message {
            SimpleQueryMessage::RowDescription(d) => {
                columns = d.iter().map(|c| c.name().to_owned()).collect();
            }
            SimpleQueryMessage::Row(row) => rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect::<Vec<_>>(),
            ),
            _ => {}
        }
    }
    let problem = match rows.len() {
        1 => None,
        0 => Some("no rows returned for \\gset"),
        _ => Some("more than one row returned for \\gset"),
    };
    if let Some(problem) = problem {
        return psql.error(meta_death(&step.pos, problem.to_owned()));
    }
    for (name, value) in columns.iter().zip(rows.remove(0)) {
        if let Err(e) = psql.set_var(&format!("{prefix}{name}"), value) {
            if let Some(d) = psql.error(meta_death(&step.pos, e.to_string())) {
                return Some(d);
            }
        }
    }
    None
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
