//! The rehearsal: a throwaway database built from production's applied migrations, checked
//! against production's catalog, then the pending migrations traced on it and run again on a
//! copy of production's rows. What it finds is handed back as findings.

use std::collections::BTreeMap;

use crate::backend::Server;
use crate::error::{Error, Result};
use crate::live::ReadOnly;
use crate::project::{Project, SqlFile};
use crate::replay::{self, PassOptions};
use crate::report::file::FileOutcome;
use crate::shim::GrantMode;
use crate::snapshot::model::Catalog;

use super::config::GateConfig;
use super::findings::{anon_policy, broken_body, destructive};
use super::judge::{self, Finding, FindingKind, Sizes};
use super::production::Production;
use super::{bodies, platform, references, rows, shape, trace};

/// The rehearsal's outcome: how many checks it made and, when every pending migration
/// applied on a rehearsal that matches production, the database holding the result.
pub(super) struct Rehearsed {
    pub(super) checks: usize,
    pub(super) database: Option<String>,
}

/// Builds the rehearsal on `server` and traces `pending` on it, adding what it finds to
/// `findings` and what it did to `notes`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn rehearse(
    project: &Project,
    server: &Server,
    session: &ReadOnly,
    prod: &Production,
    applied: &[&SqlFile],
    pending: &[&SqlFile],
    findings: &mut Vec<Finding>,
    notes: &mut Vec<String>,
) -> Result<Rehearsed> {
    if server.major != prod.major {
        return Err(Error::environment(format!(
            "rehearse on a server like production's: production runs PostgreSQL {} (major {}), \
             the rehearsal server {} (major {}); pick an image or binaries of major {} \
             (--image, PG_BIN)",
            prod.version, prod.major, server.version, server.major, prod.major
        )));
    }
    let database = server.unique_name("gate");
    server
        .create_shimmed_database(
            &database,
            GrantMode::from_expose(project.config.shim.expose_new_tables),
        )
        .await?;
    // A session opened after the shim: the database's settings it made (the search path with
    // `extensions`, as on Supabase) apply only to sessions that start after them.
    let client = server.connect(&database).await?;
    let timeout = project.config.replay.statement_timeout;
    // The tracing's observer connection opens while the applied migrations replay.
    let (outcomes, observer) = tokio::join!(
        replay::apply_all(
            &client,
            applied.iter().copied(),
            PassOptions {
                statement_timeout: timeout,
                record_ledger: true,
                skip_recorded: false,
                honour_exemptions: false,
            },
            |_| {},
        ),
        async {
            match pending.is_empty() {
                true => Ok(None),
                false => server.connect(&database).await.map(Some),
            }
        }
    );
    let observer = observer?;
    let failed = outcomes.iter().find_map(FileOutcome::failure);
    // Production's rows are copied into a twin of the rehearsal as it stands now, before the
    // pending migrations: they run there on the rows, after the trace says which tables they
    // touch. A template copy needs the database without sessions.
    // The ledger's rows are the deploy tool's, never a migration's to change.
    let needs_rows = failed.is_none()
        && prod
            .sizes
            .iter()
            .any(|(name, size)| size.holds_rows() && !rows::bookkeeping(name));
    let (client, observer, rows_database) = match needs_rows {
        true => {
            drop((client, observer));
            let rows_database = server.unique_name("gate_rows");
            server
                .create_database(&rows_database, Some(&database))
                .await?;
            let (client, observer) =
                tokio::join!(server.connect(&database), server.connect(&database));
            (client?, Some(observer?), Some(rows_database))
        }
        false => (client, observer, None),
    };
    if let Some(failure) = failed {
        findings.push(Finding {
            kind: FindingKind::RehearsalFailed,
            blocks: true,
            file: failure.file.clone(),
            line: failure.line,
            relation: None,
            message: format!(
                "an applied migration fails on an empty database, so the rehearsal cannot be \
                 built: {}",
                failure.message
            ),
            advice: failure.notes.clone(),
            statement: Some(failure.statement.clone()).filter(|s| !s.is_empty()),
            allowed: None,
        });
        return Ok(Rehearsed {
            checks: applied.len(),
            database: None,
        });
    }
    // The rehearsal is built: the tracing's first catalog read starts, beside the comparison.
    let mut carried = observer.map_or_else(trace::Carried::default, trace::Carried::observed_by);
    // The rehearsal stands for production only if their catalogs match.
    // Inside a transaction, as on production: the catalog read pins its search path locally.
    let begin = |e: tokio_postgres::Error| {
        Error::environment(format!(
            "read the rehearsal's catalog: {}",
            crate::sql::db_error_text(&e)
        ))
    };
    client
        .batch_execute("begin read only")
        .await
        .map_err(begin)?;
    let rehearsal = Catalog::read(&client).await;
    client.batch_execute("rollback").await.map_err(begin)?;
    let rehearsal = rehearsal?;
    // Only what the project's migrations own: the platform is the host's, not drift.
    let texts: Vec<&str> = applied.iter().map(|f| f.text.as_str()).collect();
    let ours = crate::snapshot::render::to_yaml(&platform::project_owned(&rehearsal, &texts));
    let theirs = crate::snapshot::render::to_yaml(&platform::project_owned(&prod.catalog, &texts));
    if let Some(diff) = crate::snapshot::diff::unified(
        &ours,
        &theirs,
        "rehearsal (the repository's applied migrations)",
        "production",
    ) {
        findings.push(Finding {
            kind: FindingKind::Drift,
            blocks: true,
            file: applied
                .last()
                .map(|f| f.rel.clone())
                .unwrap_or_else(|| "(no applied migration)".to_owned()),
            line: 1,
            relation: None,
            message: "production's schema has drifted from its applied migrations: the \
                      rehearsal cannot be trusted (- rehearsal, + production)"
                .to_owned(),
            advice: vec![
                diff,
                "bring the hand-made change into a migration (`supabase db diff`), or undo it \
                 in production"
                    .to_owned(),
            ],
            statement: None,
            allowed: None,
        });
        return Ok(Rehearsed {
            checks: applied.len() + 1,
            database: None,
        });
    }
    let mut checks = applied.len() + 1;
    let rehearse_error = |file: &SqlFile, e: trace::RehearsalError| {
        Error::environment(format!("rehearse {}: {e}", file.rel))
    };
    let mut routines = match pending.first() {
        Some(first) => references::routines(&client)
            .await
            .map_err(|e| rehearse_error(first, e))?,
        None => references::Routines::new(),
    };
    // The bodies that do not validate before the pending migrations are not theirs to answer.
    let mut checker = bodies::Checker::new();
    let invalid_before = match pending.first() {
        Some(first) => checker
            .invalid(&client)
            .await
            .map_err(|e| rehearse_error(first, e))?,
        None => BTreeMap::new(),
    };
    let mut traced = Vec::new();
    for file in pending {
        let trace = trace::apply(&client, file, timeout, true, &mut carried)
            .await
            .map_err(|e| Error::environment(format!("rehearse {}: {e}", file.rel)))?;
        if let Some((line, message)) = &trace.failed {
            findings.push(Finding {
                kind: FindingKind::RehearsalFailed,
                blocks: true,
                file: file.rel.clone(),
                line: *line,
                relation: None,
                message: format!("fails on a database shaped like production: {message}"),
                advice: Vec::new(),
                statement: None,
                allowed: None,
            });
            return Ok(Rehearsed {
                checks,
                database: None,
            });
        }
        traced.extend(trace.statements.iter().cloned());
        let now = references::routines(&client)
            .await
            .map_err(|e| rehearse_error(file, e))?;
        findings.extend(
            references::check(&client, file, &routines, &now)
                .await
                .map_err(|e| rehearse_error(file, e))?,
        );
        routines = now;
        notes.push(format!(
            "rehearsed {} ({} statements, {:.0} ms)",
            file.rel,
            trace.statements.len(),
            trace.duration.as_secs_f64() * 1000.0
        ));
    }
    if let Some(last) = pending.last() {
        let invalid_after = checker
            .invalid(&client)
            .await
            .map_err(|e| rehearse_error(last, e))?;
        for (function, message) in invalid_after {
            if invalid_before.get(&function) == Some(&message) {
                continue;
            }
            findings.push(broken_body(&function, &message, &traced, last));
        }
        if checker.lacked_plpgsql_check() {
            notes.push(
                "plpgsql_check is not installed on the rehearsal's server: PL/pgSQL bodies \
                 were not checked against the new schema (SQL bodies were)"
                    .to_owned(),
            );
        }
    }
    checker.remove(&client).await;
    let mut sizes = prod.sizes.clone();
    if let Some(rows_database) = rows_database {
        let checked = on_production_rows(
            project,
            server,
            session,
            &rows_database,
            pending,
            &traced,
            &mut sizes,
            findings,
            notes,
        )
        .await;
        let _ = server.drop_database(&rows_database).await;
        checks += checked?;
    }
    for statement in &traced {
        checks += 1;
        findings.extend(judge::judge_statement(statement, &sizes));
        findings.extend(destructive(statement, &sizes));
        findings.extend(anon_policy(statement));
    }
    Ok(Rehearsed {
        checks,
        database: Some(database),
    })
}

/// Runs the pending migrations on a copy of production's rows of the tables they touch (in
/// `rows_database`, the rehearsal as it was before them): a statement that fails there on the
/// rows (a NOT NULL, CHECK, UNIQUE, foreign key or cast, in a DO block or a function too,
/// after the backfills before it) would fail in production. Nothing of the project runs on
/// production: its rows are only read. Exact row counts replace the statistics in `sizes`.
/// Returns the number of checks made.
#[allow(clippy::too_many_arguments)]
async fn on_production_rows(
    project: &Project,
    server: &Server,
    session: &ReadOnly,
    rows_database: &str,
    pending: &[&SqlFile],
    traced: &[trace::StatementTrace],
    sizes: &mut Sizes,
    findings: &mut Vec<Finding>,
    notes: &mut Vec<String>,
) -> Result<usize> {
    let touched = rows::touched(traced, sizes);
    if touched.is_empty() {
        notes.push(
            "no pending statement that can fail on existing rows touches a production table \
             that holds rows: no data check needed"
                .to_owned(),
        );
        return Ok(0);
    }
    let tables = rows::with_neighbours(session, &touched, sizes)
        .await
        .map_err(|e| {
            Error::environment(format!("read foreign keys from {}: {e}", session.shown))
        })?;
    let budget = project.config.section::<GateConfig>().copy_budget_mb as i64 * 1024 * 1024;
    let mut missing = rows::unreadable(session, &tables).await;
    if missing.is_empty() {
        missing = rows::over_budget(&tables, sizes, budget);
    }
    // db-ci's own copy of production's rows, bounded by its own budget: not SQL under test.
    let client = server.connect_unwatched(rows_database).await?;
    let mut copied = BTreeMap::new();
    if missing.is_empty() {
        match rows::copy(session, &client, &tables).await {
            Ok(rows) => copied = rows,
            Err(why) => missing.push(why),
        }
    }
    // Where a table was first touched: where a finding about its rows points.
    let first_touch = |table: &str| {
        traced
            .iter()
            .find(|s| {
                s.locks.iter().any(|(_, name, _)| name == table)
                    || s.rewritten.iter().any(|name| name == table)
                    || s.indexes_built.iter().any(|(_, name)| name == table)
                    || s.dropped.iter().any(|(name, _)| name == table)
                    || shape::operations_within(&s.full)
                        .iter()
                        .any(|op| op.table() == table)
            })
            .map(|s| (s.file.clone(), s.line))
    };
    if !missing.is_empty() {
        for why in &missing {
            let (file, line) = first_touch(why.table()).unwrap_or_else(|| {
                (
                    pending.first().map_or_else(String::new, |f| f.rel.clone()),
                    1,
                )
            });
            findings.push(Finding {
                kind: FindingKind::NotChecked,
                blocks: true,
                file,
                line,
                relation: Some(why.table().to_owned()),
                message: why.message(),
                advice: vec![why.advice()],
                statement: None,
                allowed: None,
            });
        }
        return Ok(missing.len());
    }
    for (table, rows) in &copied {
        if let Some(size) = sizes.get_mut(table) {
            size.rows = *rows as f64;
        }
    }
    let described = copied
        .iter()
        .map(|(table, rows)| format!("{table} ({})", judge::human_count(*rows as f64)))
        .collect::<Vec<_>>()
        .join(", ");
    let timeout = project.config.replay.statement_timeout;
    let mut carried = trace::Carried::default();
    for file in pending {
        let outcome = trace::apply(&client, file, timeout, false, &mut carried)
            .await
            .map_err(|e| {
                Error::environment(format!("rehearse {} on production's rows: {e}", file.rel))
            })?;
        if let Some((line, message)) = outcome.failed {
            if message.contains(crate::sql::TIMEOUT_MESSAGE) {
                // Slow is not wrong: the rows were not all seen.
                findings.push(Finding {
                    kind: FindingKind::NotChecked,
                    blocks: true,
                    file: file.rel.clone(),
                    line,
                    relation: None,
                    message: format!(
                        "not checked: whether production's rows ({described}) let this \
                         migration apply: on their copy it ran past replay.statement_timeout"
                    ),
                    advice: vec![
                        "raise replay.statement_timeout, or accept it in gate.allow (kind: \
                         not-checked) with the reason"
                            .to_owned(),
                    ],
                    statement: None,
                    allowed: None,
                });
                break;
            }
            findings.push(Finding {
                kind: FindingKind::DataViolation,
                blocks: true,
                file: file.rel.clone(),
                line,
                relation: (touched.len() == 1)
                    .then(|| touched.iter().next().cloned())
                    .flatten(),
                message: format!(
                    "this migration would fail in production: run on a copy of production's \
                     rows ({described}) it fails: {message}"
                ),
                advice: vec![
                    "fix the data first (a backfill before the statement, in this migration or \
                     an earlier one), or add the constraint NOT VALID so it applies to new rows \
                     only"
                        .to_owned(),
                ],
                statement: None,
                allowed: None,
            });
            break;
        }
    }
    notes.push(format!(
        "ran the pending migrations on a copy of production's rows: {described}"
    ));
    Ok(copied.len())
}
