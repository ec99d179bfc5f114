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

mod findings;
mod production;
mod rehearse;
mod verdict;

use std::time::Instant;

use crate::backend::{BackendOptions, Server};
use crate::error::Result;
use crate::live::{ReadOnly, Target};
use crate::project::{Project, SqlFile};
use crate::replay::{self, PassOptions};
use crate::report::events::{Event, Reporter};
use crate::report::file::FileOutcome;
use crate::report::{Failure, Report, RunError, StageReport, StageVerdict, Verdict};
use crate::stage::StageContext;
use crate::stage_id::StageId;

use judge::{Finding, FindingKind};
use production::{read_production, repo_migrations};
use rehearse::{rehearse, Rehearsed};
use verdict::finish;

pub use self::config::{Allow, GateConfig};

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

/// Runs the stages registered to run on the rehearsal (`on_rehearsal`: what the release
/// changes in who may read and write what) on the rehearsed database, after the project's
/// seeds (the stages' matrices are written against seeded data, as in `db-ci run`).
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
    let run_options = crate::stage::RunOptions {
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
