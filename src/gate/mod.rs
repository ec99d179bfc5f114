//! `db-ci gate --against PROD`: the release gate a deploy runs before production applies its
//! pending migrations. Reads production read-only (ledger, catalog, sizes), rehearses the
//! pending migrations on a throwaway database shaped like it, tracing what each statement
//! locks, rewrites and scans, pre-flights data-dependent failures on production's rows, and
//! gives one verdict: exit 0 safe, 1 blocked, 2 input, 3 environment.

pub mod bodies;
pub mod cli_split;
pub mod config;
pub mod judge;
pub mod ledger;
pub mod platform;
pub mod references;
pub mod rowless;
pub mod rows;
pub mod shape;
pub mod trace;

use std::collections::BTreeMap;
use std::time::Instant;

use crate::backend::{BackendOptions, Server};
use crate::error::{Error, Result};
use crate::events::{Event, Reporter};
use crate::live::{ReadOnly, Target};
use crate::project::{FileKind, Project, SqlFile};
use crate::replay::{self, FileOutcome, PassOptions};
use crate::report::{
    Case, CaseVerdict, Failure, Report, RunError, StageReport, StageVerdict, Verdict,
};
use crate::shim::{self, GrantMode};
use crate::snapshot::model::Catalog;
use crate::stage::StageContext;
use crate::stage_id::StageId;

use judge::{Finding, FindingKind, Size, Sizes};

pub use self::config::{Allow, GateConfig};

/// Whether `allow` accepts `finding`.
fn allows(allow: &Allow, finding: &Finding) -> bool {
    allow.file == finding.file
        && allow
            .relation
            .as_ref()
            .is_none_or(|r| finding.relation.as_deref() == Some(r.as_str()))
        && allow.kind.is_none_or(|k| k == finding.kind)
}

/// What to gate.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// Where the rehearsal server comes from.
    pub backend: BackendOptions,
    /// Production's URL (never printed with its password).
    pub against: String,
    /// `--image` was given: use it as given instead of the default image of production's
    /// major version.
    pub image_given: bool,
}

/// What production holds, read once, read-only.
struct Production {
    version: String,
    major: u32,
    ledger: Vec<ledger::AppliedRow>,
    has_ledger: bool,
    sizes: Sizes,
    catalog: Catalog,
}

/// Runs the gate; environment and input errors are folded into the report.
pub async fn gate(project: &Project, options: &GateOptions, reporter: &mut dyn Reporter) -> Report {
    let started = Instant::now();
    let mut report = Report {
        verdict: Verdict::Pass,
        db_ci_version: env!("CARGO_PKG_VERSION"),
        project: project.root.display().to_string(),
        backend: None,
        server_version: None,
        replay_mode: project.replay_mode().as_str().to_owned(),
        seed: None,
        duration_ms: 0,
        stages: Vec::new(),
        error: None,
    };
    let mut stage = StageReport::new(StageId::Gate, StageVerdict::Pass);
    let mut after = Vec::new();
    if let Err(error) = run(
        project,
        options,
        reporter,
        &mut report,
        &mut stage,
        &mut after,
    )
    .await
    {
        report.error = Some(RunError::from_error(&error));
        stage.verdict = StageVerdict::Skipped;
        stage.reason = Some("the gate stopped before a verdict (see error)".to_owned());
    }
    stage.duration_ms = started.elapsed().as_millis() as u64;
    reporter.event(&Event::StageDone(&stage));
    report.stages.push(stage);
    // The stages that judge the schema production will have: `run` reports them (run on the
    // rehearsal, or skipped with the reason) unless it stopped on an error first.
    if after.is_empty() {
        after = not_rehearsed(
            "the gate stopped before the rehearsal (see error)",
            reporter,
        );
    }
    report.stages.extend(after);
    report.verdict = report.verdict_from_stages();
    report.duration_ms = started.elapsed().as_millis() as u64;
    reporter.event(&Event::RunDone(&report));
    report
}

async fn run(
    project: &Project,
    options: &GateOptions,
    reporter: &mut dyn Reporter,
    report: &mut Report,
    stage: &mut StageReport,
    after: &mut Vec<StageReport>,
) -> Result<()> {
    // Read before anything connects: a bad matrix is exit 2 at once, as in `db-ci run`.
    let stages = crate::stage::Stages::load(project)?;
    let target = Target::parse(&options.against, "--against", |k| std::env::var(k).ok())?;
    let repo = repo_migrations(project);
    let prod_timeout = project.config.section::<GateConfig>().statement_timeout;
    let session = ReadOnly::open(&target, prod_timeout).await?;
    let prod = read_production(&session).await?;
    let analysis = ledger::analyse(&repo, &prod.ledger);
    let mut findings: Vec<Finding> = Vec::new();
    for problem in &analysis.problems {
        findings.push(Finding {
            kind: FindingKind::Ledger,
            blocks: true,
            file: problem
                .file()
                .unwrap_or("supabase_migrations.schema_migrations")
                .to_owned(),
            line: 1,
            relation: None,
            message: problem.message(),
            advice: vec![problem.advice().to_owned()],
            statement: None,
            allowed: None,
        });
    }
    let pending: Vec<&SqlFile> = analysis
        .pending
        .iter()
        .map(|&i| &project.migrations[i])
        .collect();
    let applied: Vec<&SqlFile> = analysis
        .applied
        .iter()
        .map(|&i| &project.migrations[i])
        .collect();
    let mut notes = vec![format!(
        "production {} (PostgreSQL {}): {} applied, {} pending{}",
        target.shown,
        prod.version,
        applied.len(),
        pending.len(),
        if pending.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                pending
                    .iter()
                    .map(|f| f.rel.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    )];
    if !prod.has_ledger {
        notes.push(
            "production has no supabase_migrations.schema_migrations: every migration counts as \
             pending"
                .to_owned(),
        );
    }
    if !analysis.not_compared.is_empty() {
        notes.push(format!(
            "the ledger stored no statements for {}: edits after apply not checked there",
            analysis.not_compared.join(", ")
        ));
    }

    if !analysis.problems.is_empty() {
        session.close().await;
        notes.push("rehearsal skipped: the ledger must be consistent first".to_owned());
        after.extend(not_rehearsed(
            "no rehearsal: the ledger must be consistent first",
            reporter,
        ));
        finish(project, stage, findings, notes, 0);
        return Ok(());
    }
    if pending.is_empty() {
        session.close().await;
        notes.push("nothing to apply".to_owned());
        after.extend(not_rehearsed(
            "nothing to apply: production has every migration (`db-ci run` checks them)",
            reporter,
        ));
        finish(project, stage, findings, notes, 0);
        return Ok(());
    }

    // The rehearsal: a throwaway server of production's major version.
    let boot = Instant::now();
    // Local binaries or the default image of production's major version when there are any;
    // a server of another version is refused below with both versions named.
    let server = crate::backend::version::start(
        &options.backend,
        crate::backend::version::VersionPolicy {
            major: Some(prod.major),
            image_given: options.image_given,
            any_version: true,
            ..Default::default()
        },
    )
    .await?;
    // The rehearsal replays the project's migrations: the same limit as a run's, enforced
    // from db-ci's side whatever the SQL does to the server's own.
    server
        .limit_statements(project.config.replay.statement_timeout)
        .await?;
    report.backend = Some(server.description.clone());
    report.server_version = Some(server.version.clone());
    reporter.event(&Event::BackendReady {
        description: &server.description,
        duration: boot.elapsed(),
    });
    let outcome = rehearse(
        project,
        &server,
        &session,
        &prod,
        &applied,
        &pending,
        &mut findings,
        &mut notes,
    )
    .await;
    session.close().await;
    let outcome = match outcome {
        Ok(rehearsed) => after_rehearsal(
            project, options, &server, &stages, &rehearsed, &pending, reporter,
        )
        .await
        .map(|stages| (rehearsed.checks, stages)),
        Err(error) => Err(error),
    };
    server.shutdown().await;
    let (checks, stages) = outcome?;
    after.extend(stages);
    finish(project, stage, findings, notes, checks);
    Ok(())
}

/// The stages after the rehearsal, skipped because `why`.
fn not_rehearsed(why: &str, reporter: &mut dyn Reporter) -> Vec<StageReport> {
    crate::stage::on_rehearsal()
        .map(|name| {
            let stage = StageReport::skipped(name, why);
            reporter.event(&Event::StageDone(&stage));
            stage
        })
        .collect()
}

/// The rehearsal's outcome: how many checks it made and, when every pending migration
/// applied on a rehearsal that matches production, the database holding the result.
struct Rehearsed {
    checks: usize,
    database: Option<String>,
}

/// Runs the stages registered to run on the rehearsal (`on_rehearsal`: what the release
/// changes in who may read and write what) on the rehearsed database, after the project's seeds (the stages'
/// matrices are written against seeded data, as in `db-ci run`).
async fn after_rehearsal(
    project: &Project,
    options: &GateOptions,
    server: &Server,
    stages: &crate::stage::Stages,
    rehearsed: &Rehearsed,
    pending: &[&SqlFile],
    reporter: &mut dyn Reporter,
) -> Result<Vec<StageReport>> {
    let Some(database) = &rehearsed.database else {
        return Ok(not_rehearsed(
            "the rehearsal did not reach the state after the pending migrations (see the gate's \
             findings)",
            reporter,
        ));
    };
    let client = server.connect(database).await?;
    let seeds = replay::apply_all(
        &client,
        project.seeds.iter(),
        PassOptions {
            statement_timeout: project.config.replay.statement_timeout,
            record_ledger: false,
            skip_recorded: false,
            honour_exemptions: false,
        },
        |_| {},
    )
    .await;
    // The stages clone the database: no session may stay connected to it.
    drop(client);
    if let Some(failure) = seeds.iter().find_map(FileOutcome::failure) {
        let why = format!(
            "the seeds fail after the pending migrations ({}:{}: {})",
            failure.file, failure.line, failure.message
        );
        return Ok(crate::stage::on_rehearsal()
            .map(|name| {
                let stage = StageReport {
                    verdict: StageVerdict::Fail,
                    failures: vec![Failure {
                        file: failure.file.clone(),
                        line: failure.line,
                        column: Some(failure.column),
                        message: format!(
                            "seed fails after the pending migrations: {}",
                            failure.message
                        ),
                        notes: failure.notes.clone(),
                        statement: Some(failure.statement.clone()).filter(|s| !s.is_empty()),
                    }],
                    reason: Some(why.clone()),
                    ..StageReport::new(name, StageVerdict::Fail)
                };
                reporter.event(&Event::StageDone(&stage));
                stage
            })
            .collect());
    }
    let run_options = crate::run::RunOptions {
        backend: options.backend.clone(),
        changed_by: pending.iter().map(|f| f.rel.clone()).collect(),
        ..Default::default()
    };
    let ctx = StageContext {
        project,
        options: &run_options,
        server,
        database,
        policy_files: &stages.policy_files,
    };
    let mut reports = Vec::new();
    for name in crate::stage::on_rehearsal() {
        let Some(stage) = stages.run(name, &ctx, reporter).await else {
            continue;
        };
        let stage = stage?;
        reporter.event(&Event::StageDone(&stage));
        reports.push(stage);
    }
    Ok(reports)
}

#[allow(clippy::too_many_arguments)]
async fn rehearse(
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
    server.create_database(&database, None).await?;
    shim::apply(
        &server.connect_unwatched(&database).await?,
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

/// A function whose body no longer validates after the pending migrations, pointing at the
/// last pending statement that names what its error names (the change that broke it).
fn broken_body(
    function: &str,
    message: &str,
    traced: &[trace::StatementTrace],
    last: &SqlFile,
) -> Finding {
    let names = bodies::quoted_names(message);
    let culprit = traced.iter().rev().find(|s| {
        let text = s.full.to_lowercase();
        names.iter().any(|name| text.contains(name.as_str()))
    });
    let (file, line) = culprit.map_or_else(|| (last.rel.clone(), 1), |s| (s.file.clone(), s.line));
    Finding {
        kind: FindingKind::FunctionBody,
        blocks: true,
        file,
        line,
        relation: None,
        message: format!(
            "function {function} no longer works after this migration: {message} (every call \
             fails in production)"
        ),
        advice: vec![format!(
            "change {function} in the same release (create or replace it without what is \
             removed), or keep what it uses until it no longer does"
        )],
        statement: culprit.map(|s| s.text.clone()),
        allowed: None,
    }
}

/// A new policy that opens a table to the anon key: found on the pending statement that
/// writes it, with or without RLS matrices.
fn anon_policy(statement: &trace::StatementTrace) -> Option<Finding> {
    let (table, policy) = shape::opens_to_anon(&statement.full)?;
    Some(Finding {
        kind: FindingKind::OpensToAnon,
        blocks: true,
        file: statement.file.clone(),
        line: statement.line,
        relation: Some(table.clone()),
        message: format!(
            "policy \"{policy}\" lets anyone with the anon key read every row of {table} \
             (permissive, to anon, using (true))"
        ),
        advice: vec![
            "write the condition a signed-out reader must meet, or grant the policy to \
             authenticated; or accept it in gate.allow (kind: opens-to-anon) with the reason"
                .to_owned(),
        ],
        statement: Some(statement.text.clone()),
        allowed: None,
    })
}

/// Dropped tables that hold production rows; dropped columns of them; renames clients see.
fn destructive(statement: &trace::StatementTrace, sizes: &Sizes) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |relation: &str, message: String, advice: &str| {
        findings.push(Finding {
            kind: FindingKind::Destructive,
            blocks: true,
            file: statement.file.clone(),
            line: statement.line,
            relation: Some(relation.to_owned()),
            message,
            advice: vec![advice.to_owned()],
            statement: Some(statement.text.clone()),
            allowed: None,
        })
    };
    for (name, kind) in &statement.dropped {
        let Some(size) = sizes.get(name) else {
            continue;
        };
        if matches!(kind, 'r' | 'p' | 'm') && size.holds_rows() {
            push(
                name,
                format!(
                    "drops {name}, which holds {} in production",
                    size.describe()
                ),
                "keep the table until nothing reads it, and drop it in a later release after a \
                 backup; or accept it in gate.allow with the reason",
            );
        }
    }
    for op in shape::operations_within(&statement.full) {
        match op {
            shape::Operation::DropColumn { table, column } => {
                if let Some(size) = sizes.get(&table).filter(|s| s.holds_rows()) {
                    push(
                        &table,
                        format!(
                            "drops column {table}.{column}, holding data in {} production rows",
                            judge::human_count(size.rows)
                        ),
                        "stop writing and reading the column first, and drop it in a later \
                         release; or accept it in gate.allow with the reason",
                    );
                }
            }
            shape::Operation::Truncate { ref table }
            | shape::Operation::DeleteAll { ref table }
            | shape::Operation::UpdateAll { ref table } => {
                let table = table.clone();
                let Some(size) = sizes.get(&table).filter(|s| s.holds_rows()) else {
                    continue;
                };
                let rows = match size.rows < 0.0 {
                    true => format!("its rows ({})", judge::human_bytes(size.bytes)),
                    false => format!("its {} rows", judge::human_count(size.rows)),
                };
                let (what, advice) = match op {
                    shape::Operation::Truncate { .. } => (
                        format!("truncates {table}: data loss, {rows} in production are deleted"),
                        "delete only the rows meant to go (with a WHERE), after a backup; or \
                         accept it in gate.allow with the reason",
                    ),
                    shape::Operation::DeleteAll { .. } => (
                        format!(
                            "deletes every row of {table} (no WHERE): data loss, {rows} in \
                             production"
                        ),
                        "add the WHERE that names the rows meant to go; or accept it in \
                         gate.allow with the reason",
                    ),
                    _ => (
                        format!(
                            "updates every row of {table} (no WHERE): data loss, the old values \
                             of {rows} in production are overwritten"
                        ),
                        "add the WHERE that names the rows meant to change (a backfill: `where \
                         column is null`); or accept it in gate.allow with the reason",
                    ),
                };
                push(&table, what, advice)
            }
            shape::Operation::RenameTable { table, to } if sizes.contains_key(&table) => push(
                &table,
                format!(
                    "renames {table} to {to}: clients, RPCs and function bodies that name \
                     {table} break the moment it applies"
                ),
                "add the new name as a view (or the new table beside the old) and move clients \
                 over before removing the old name",
            ),
            shape::Operation::RenameColumn { table, column, to } if sizes.contains_key(&table) => {
                push(
                    &table,
                    format!(
                        "renames column {table}.{column} to {to}: clients and function bodies \
                         that name it break the moment it applies"
                    ),
                    "add the new column, write both, move readers, then drop the old one",
                )
            }
            _ => {}
        }
    }
    findings
}

fn repo_migrations(project: &Project) -> Vec<ledger::RepoMigration> {
    project
        .migrations
        .iter()
        .filter(|f| f.kind == FileKind::Migration)
        .filter_map(|f| {
            Some(ledger::RepoMigration {
                version: f.version.clone()?,
                file: f.rel.clone(),
                text: f.text.clone(),
            })
        })
        .collect()
}

async fn read_production(session: &ReadOnly) -> Result<Production> {
    let fail = |what: &str, e: String| {
        Error::environment(format!("read {what} from {}: {e}", session.shown))
    };
    let client = session.client();
    let row = client
        .query_one(
            "select current_setting('server_version'), current_setting('server_version_num')::int",
            &[],
        )
        .await
        .map_err(|e| fail("the server version", crate::sql::db_error_text(&e)))?;
    let version: String = row.get(0);
    let major = (row.get::<_, i32>(1) / 10000) as u32;
    let has_ledger: bool = client
        .query_one(
            "select to_regclass('supabase_migrations.schema_migrations') is not null",
            &[],
        )
        .await
        .map_err(|e| fail("the ledger", crate::sql::db_error_text(&e)))?
        .get(0);
    let mut ledger = Vec::new();
    if has_ledger {
        let full = "select version::text, name::text, statements::text[] \
                    from supabase_migrations.schema_migrations order by version";
        let bare = "select version::text, null::text, null::text[] \
                    from supabase_migrations.schema_migrations order by version";
        let rows = match session.bounded_query(full).await {
            Ok(Some(rows)) => rows,
            // Older ledgers have no name/statements columns.
            _ => session
                .bounded_query(bare)
                .await
                .map_err(|e| {
                    fail(
                        "the ledger",
                        format!(
                            "{e} (the role needs USAGE on schema supabase_migrations and SELECT \
                             on its schema_migrations)"
                        ),
                    )
                })?
                .ok_or_else(|| fail("the ledger", "statement timeout".to_owned()))?,
        };
        ledger = rows
            .iter()
            .map(|row| ledger::AppliedRow {
                version: row.get(0),
                name: row.get(1),
                statements: row.get(2),
            })
            .collect();
    }
    let rows = client
        .query(
            "select n.nspname || '.' || c.relname, c.reltuples::float8, c.relpages::int8, \
             pg_relation_size(c.oid)::int8, current_setting('block_size')::int8 \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r', 'p', 'm') \
             and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')",
            &[],
        )
        .await
        .map_err(|e| fail("relation sizes", crate::sql::db_error_text(&e)))?;
    let sizes = rows
        .iter()
        .map(|row| {
            (
                row.get::<_, String>(0),
                Size {
                    rows: judge::estimate_rows(row.get(1), row.get(2), row.get(3), row.get(4)),
                    bytes: row.get(3),
                },
            )
        })
        .collect();
    let catalog = Catalog::read(client).await?;
    Ok(Production {
        version,
        major,
        ledger,
        has_ledger,
        sizes,
        catalog,
    })
}

/// Applies `gate.allow`, and turns findings into the stage's failures and cases.
fn finish(
    project: &Project,
    stage: &mut StageReport,
    mut findings: Vec<Finding>,
    notes: Vec<String>,
    checks: usize,
) {
    for finding in &mut findings {
        if let Some(allow) = project
            .config
            .section::<GateConfig>()
            .allow
            .iter()
            .find(|a| allows(a, finding))
        {
            finding.allowed = Some(allow.reason.clone());
        }
    }
    let blocking = findings
        .iter()
        .filter(|f| f.blocks && f.allowed.is_none())
        .count();
    stage.checks = checks.max(1);
    for finding in &findings {
        let blocks = finding.blocks && finding.allowed.is_none();
        let mut finding_notes = finding
            .advice
            .iter()
            .map(|a| format!("safe: {a}"))
            .collect::<Vec<_>>();
        if finding.kind == FindingKind::Drift {
            finding_notes = finding.advice.clone();
        }
        if let Some(reason) = &finding.allowed {
            finding_notes.insert(0, format!("allowed by gate.allow: {reason}"));
        }
        if blocks {
            stage.failures.push(Failure {
                file: finding.file.clone(),
                line: finding.line,
                column: None,
                message: finding.message.clone(),
                notes: finding_notes,
                statement: finding.statement.clone(),
            });
        }
        stage.cases.push(Case {
            name: format!(
                "{}:{} {}",
                finding.file,
                finding.line,
                finding.kind.as_str()
            ),
            group: finding.file.clone(),
            verdict: if blocks {
                CaseVerdict::Fail
            } else {
                CaseVerdict::Pass
            },
            file: Some(finding.file.clone()),
            line: Some(finding.line),
            duration_ms: 0,
            message: Some(if blocks {
                finding.message.clone()
            } else if let Some(reason) = &finding.allowed {
                format!("allowed ({reason}): {}", finding.message)
            } else {
                format!("warning: {}", finding.message)
            }),
            cell: None,
        });
    }
    let warnings: Vec<String> = findings
        .iter()
        .filter(|f| !(f.blocks && f.allowed.is_none()))
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.message))
        .collect();
    let mut reason = notes.join("; ");
    if !warnings.is_empty() {
        reason.push_str(&format!("; not blocking: {}", warnings.join("; ")));
    }
    if blocking > 0 {
        stage.verdict = StageVerdict::Fail;
        reason = format!("blocked by {blocking} finding(s); {reason}");
    } else {
        reason = format!("safe to apply; {reason}");
    }
    stage.reason = Some(reason);
}
