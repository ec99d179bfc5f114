//! The stages in order: boot, shim, replay (pass 1), idempotence (pass 2 and comparison),
//! then the stages later issues build.

use std::time::{Duration, Instant};

use crate::backend::{BackendOptions, Server};
use crate::catalog::Fingerprint;
use crate::config::ReplayMode;
use crate::data::DataFingerprint;
use crate::error::Result;
use crate::events::{Event, Reporter};
use crate::locate::line_mentioning;
use crate::project::{Project, SqlFile};
use crate::replay::{self, FileOutcome, FileResult, PassOptions};
use crate::report::{
    Case, CaseVerdict, Failure, Report, RunError, StageReport, StageVerdict, Verdict,
};
use crate::shim::{self, GrantMode};
use crate::stage::StageContext;
use crate::stage_id::StageId;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub backend: BackendOptions,
    /// Printed for replay of property tests.
    pub seed: Option<u64>,
    /// Accept the new catalog snapshot (write it) instead of failing on a difference.
    pub update_snapshot: bool,
    /// Fail the rls stage below this coverage percentage (overrides the config).
    pub min_coverage: Option<f64>,
    /// The lowest lint level that fails the run (overrides `lint.fail_level`).
    pub fail_on_lint: Option<crate::lint::FailOn>,
    /// The stages after replay to run; `None` runs them all. Replay always runs (every other
    /// stage works on its result); a stage left out is reported skipped, "not selected".
    pub only: Option<Vec<StageId>>,
    /// The container image was given (`--image`/`DB_CI_IMAGE`): used as given, not re-tagged
    /// to the project's `[db] major_version`.
    pub image_given: bool,
    /// Run on a server of another major version than the project's `[db] major_version`.
    pub any_server_version: bool,
}

impl RunOptions {
    fn selected(&self, stage: StageId) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| stage == StageId::Replay || only.contains(&stage))
    }
}

/// A booted server with the project replayed into a database: what later stages and library
/// users work with. Dropping it tears everything down.
pub struct Replayed {
    pub server: Server,
    /// The database holding the state after pass 1.
    pub database: String,
}

/// Runs every stage on `project` and returns the report; an environment error is folded into
/// the report (exit 3) so the JSON still gets written.
pub async fn run(project: &Project, options: &RunOptions, reporter: &mut dyn Reporter) -> Report {
    let (report, replayed) = run_keeping(project, options, reporter).await;
    if let Some(replayed) = replayed {
        replayed.server.shutdown().await;
    }
    report
}

/// Like [`run`], and hands back the server with the replayed database (when the run got that
/// far) for the caller's own checks; dropping it tears everything down.
pub async fn run_keeping(
    project: &Project,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
) -> (Report, Option<Replayed>) {
    let started = Instant::now();
    reporter.event(&Event::ProjectRead {
        root: &project.root.display().to_string(),
        layout: &project.layout,
        migrations: project.migrations.len(),
        seeds: project.seeds.len(),
        mode: project.replay_mode().as_str(),
        mode_reason: &project.mode_reason,
    });
    let mut report = Report {
        verdict: Verdict::Pass,
        db_ci_version: env!("CARGO_PKG_VERSION"),
        project: project.root.display().to_string(),
        backend: None,
        server_version: None,
        replay_mode: project.replay_mode().as_str().to_owned(),
        seed: options.seed,
        duration_ms: 0,
        stages: Vec::new(),
        error: None,
    };
    let mut replayed = None;
    match run_stages(project, options, reporter, &mut report, &mut replayed).await {
        Ok(()) => {}
        Err(error) => {
            report.error = Some(RunError {
                kind: match error.exit_code() {
                    crate::error::exit::INPUT => "input",
                    _ => "environment",
                },
                message: error.render(),
            });
        }
    }
    // Every stage the run did not reach is listed, skipped, with the reason.
    let why = if report.error.is_some() {
        "the run stopped before this stage (see error)"
    } else {
        "an earlier stage failed"
    };
    for name in StageId::RUN {
        if report.stage(name).is_none() {
            let stage = StageReport::skipped(name, why);
            reporter.event(&Event::StageDone(&stage));
            report.stages.push(stage);
        }
    }
    report.verdict = if report.error.is_none()
        && report
            .stages
            .iter()
            .all(|s| s.verdict != StageVerdict::Fail)
    {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    report.duration_ms = started.elapsed().as_millis() as u64;
    reporter.event(&Event::RunDone(&report));
    (report, replayed)
}

fn push_stage(report: &mut Report, reporter: &mut dyn Reporter, stage: StageReport) {
    reporter.event(&Event::StageDone(&stage));
    report.stages.push(stage);
}

async fn run_stages(
    project: &Project,
    options: &RunOptions,
    reporter: &mut dyn Reporter,
    report: &mut Report,
    replayed: &mut Option<Replayed>,
) -> Result<()> {
    // Policy tests are read before boot: a file that does not parse is exit 2 at once.
    let policy_files = crate::policy_tests::load(project)?;
    // So are pgTAP files: an unsupported psql meta-command is exit 2 naming its line.
    let pgtap_suite = crate::pgtap::load(project)?;
    let boot = Instant::now();
    let server = crate::backend::version::start(
        &options.backend,
        crate::backend::version::VersionPolicy {
            major: project.supabase.major_version,
            image_given: options.image_given,
            any_version: options.any_server_version,
        },
    )
    .await?;
    // Enforced from db-ci's side for every statement of the run: SQL under test can switch
    // the server's own statement_timeout off.
    server
        .limit_statements(project.config.replay.statement_timeout)
        .await?;
    report.backend = Some(server.description.clone());
    report.server_version = Some(server.version.clone());
    reporter.event(&Event::BackendReady {
        description: &server.description,
        duration: boot.elapsed(),
    });

    let mode = GrantMode::from_expose(project.config.shim.expose_new_tables);
    let shim_started = Instant::now();
    let pass1_db = server.unique_name("pass1");
    server.create_database(&pass1_db, None).await?;
    {
        let client = server.connect(&pass1_db).await?;
        shim::apply(&client, mode).await?;
    }
    reporter.event(&Event::ShimApplied {
        grants: match mode {
            GrantMode::Classic => "classic",
            GrantMode::NoExpose => "no-expose",
        },
        duration: shim_started.elapsed(),
    });

    // Pass 1: everything applies from scratch.
    let timeout = project.config.replay.statement_timeout;
    let pass1_started = Instant::now();
    let client = server.connect(&pass1_db).await?;
    let pass1 = replay::apply_all(
        &client,
        project.files(),
        PassOptions {
            statement_timeout: timeout,
            record_ledger: true,
            skip_recorded: false,
            honour_exemptions: false,
        },
        |outcome| reporter.event(&Event::FileDone { pass: 1, outcome }),
    )
    .await;
    let replay_stage = stage_from_pass(StageId::Replay, &pass1, pass1_started.elapsed(), |_| {
        Vec::new()
    });
    let replay_failed = replay_stage.verdict == StageVerdict::Fail;
    push_stage(report, reporter, replay_stage);
    if replay_failed {
        drop(client);
        *replayed = Some(Replayed {
            server,
            database: pass1_db,
        });
        return Ok(());
    }

    if options.selected(StageId::Idempotence) {
        idempotence(
            &server,
            project,
            mode,
            &client,
            pass1_started,
            reporter,
            report,
        )
        .await?;
    } else {
        push_stage(
            report,
            reporter,
            StageReport::skipped(StageId::Idempotence, "not selected"),
        );
    }
    drop(client);

    // The later stages see the replayed state; they run even when idempotence failed, since
    // a failed pass-2 file rolled back and the database still holds a complete replay.
    let ctx = StageContext {
        project,
        options,
        server: &server,
        database: &pass1_db,
        policy_files: &policy_files,
    };
    for name in StageId::AFTER_REPLAY {
        let stage = if !options.selected(name) {
            StageReport::skipped(name, "not selected")
        } else {
            match name {
                StageId::Rls => crate::rls::stage(&ctx, reporter).await?,
                StageId::Properties => crate::props::stage(&ctx, reporter).await?,
                StageId::Pgtap => crate::pgtap::stage(&ctx, &pgtap_suite, reporter).await?,
                StageId::Snapshot => crate::snapshot::stage(&ctx, reporter).await?,
                StageId::Lint => crate::lint::stage(&ctx, reporter).await?,
                // Run above (replay, idempotence) or by another command (gate).
                StageId::Replay | StageId::Idempotence | StageId::Gate => continue,
            }
        };
        push_stage(report, reporter, stage);
    }
    *replayed = Some(Replayed {
        server,
        database: pass1_db,
    });
    Ok(())
}

/// Pass 2 in place on the pass-1 database, then the comparison with pass 1.
async fn idempotence(
    server: &Server,
    project: &Project,
    mode: GrantMode,
    client: &tokio_postgres::Client,
    pass1_started: Instant,
    reporter: &mut dyn Reporter,
    report: &mut Report,
) -> Result<()> {
    let timeout = project.config.replay.statement_timeout;
    let idempotence_started = Instant::now();
    let catalog1 = Fingerprint::read(client).await?;
    let data1 = DataFingerprint::read(client).await?;
    // Pass 2 runs on the same database: when it is idempotent the state is the same, and
    // only a failure pays for rebuilding the pass-1 state (to attribute differences).
    let pass2_options = PassOptions {
        statement_timeout: timeout,
        record_ledger: true,
        skip_recorded: project.replay_mode() == ReplayMode::Ledger,
        honour_exemptions: true,
    };
    let pass2 = replay::apply_all(client, project.files(), pass2_options, |outcome| {
        reporter.event(&Event::FileDone { pass: 2, outcome })
    })
    .await;
    let mut stage = stage_from_pass(StageId::Idempotence, &pass2, Duration::ZERO, |failure| {
        let kind = project
            .files()
            .find(|f| f.rel == failure.file)
            .map(|f| f.kind)
            .unwrap_or(crate::project::FileKind::Migration);
        let strict = project.replay_mode() == ReplayMode::Strict;
        let mut notes =
            vec!["this file succeeded in pass 1 and failed when run a second time".to_owned()];
        notes.extend(
            replay::rerun_advice(&failure.statement, &failure.sqlstate, kind)
                .into_iter()
                .filter(|n| strict || !n.contains("mode: ledger")),
        );
        notes
    });
    if stage.verdict != StageVerdict::Fail {
        let catalog2 = Fingerprint::read(client).await?;
        let data2 = DataFingerprint::read(client).await?;
        let max_shift = pass1_started.elapsed().as_secs_f64() + 2.0;
        let catalog_changes = catalog1.diff(&catalog2);
        let data_changes = data1.diff(&data2, max_shift);
        stage.checks = catalog1.objects.len() + data1.tables.len();
        if !catalog_changes.is_empty() || !data_changes.is_empty() {
            let blame = attribute(
                server,
                project,
                mode,
                pass2_options,
                &catalog_changes,
                &data_changes,
                max_shift,
            )
            .await?;
            stage.verdict = StageVerdict::Fail;
            stage.reason = None;
            // The files pass 2 re-ran: where a difference the rebuilt replay did not
            // reproduce is blamed (never "(unknown)").
            let rerun: Vec<&str> = pass2
                .iter()
                .filter(|o| matches!(o.result, FileResult::Applied))
                .map(|o| o.file.as_str())
                .collect();
            let not_reproduced = "the rebuilt replay did not reproduce this difference (the re-run's \
                 effect depends on randomness, the clock or state outside the database): this is the \
                 last file re-run in pass 2 that writes or names it";
            for change in &catalog_changes {
                let (file, guessed) = match blame.get(change.key()) {
                    Some(file) => (file.clone(), false),
                    None => (
                        crate::locate::likely_file(project, &rerun, change.key())
                            .or_else(|| project.files().last().map(|f| f.rel.as_str()))
                            .unwrap_or_default()
                            .to_owned(),
                        true,
                    ),
                };
                let definition = catalog2
                    .objects
                    .get(change.key())
                    .or_else(|| catalog1.objects.get(change.key()))
                    .map_or("", String::as_str);
                let line = line_mentioning(project, &file, change.key(), definition);
                stage.failures.push(Failure {
                    file,
                    line,
                    column: None,
                    message: format!("catalog differs after pass 2: {}", change.describe()),
                    notes: vec![if guessed {
                        not_reproduced.to_owned()
                    } else {
                        "a re-run of this file left the schema different from the first run"
                            .to_owned()
                    }],
                    statement: None,
                });
            }
            for change in &data_changes {
                let key = format!("rows {}", change.table);
                let (file, guessed) = match blame.get(&key) {
                    Some(file) => (file.clone(), false),
                    None => (
                        crate::locate::likely_file(project, &rerun, &key)
                            .or_else(|| project.files().last().map(|f| f.rel.as_str()))
                            .unwrap_or_default()
                            .to_owned(),
                        true,
                    ),
                };
                let line = line_mentioning(project, &file, &key, "");
                let mut notes = change.sample.clone();
                if guessed {
                    notes.push(not_reproduced.to_owned());
                }
                stage.failures.push(Failure {
                    file,
                    line,
                    column: None,
                    message: format!(
                        "data differs after pass 2 in table {}: {}",
                        change.table, change.summary
                    ),
                    notes,
                    statement: None,
                });
            }
        }
    }
    stage.duration_ms = idempotence_started.elapsed().as_millis() as u64;
    if stage.verdict == StageVerdict::Pass {
        stage.reason = Some(format!(
            "{}; {} catalog objects and {} tables identical after pass 2",
            stage.reason.as_deref().unwrap_or("pass 2 applied"),
            catalog1.objects.len(),
            data1.tables.len()
        ));
    }
    push_stage(report, reporter, stage);
    Ok(())
}
fn stage_from_pass(
    name: StageId,
    outcomes: &[FileOutcome],
    duration: Duration,
    extra_notes: impl Fn(&replay::FileFailure) -> Vec<String>,
) -> StageReport {
    let mut failures = Vec::new();
    for outcome in outcomes {
        if let FileResult::Failed(f) = &outcome.result {
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
    StageReport {
        reason: Some(if skipped > 0 {
            format!("{applied} files applied, {skipped} skipped (ledger or exempt)")
        } else {
            format!("{applied} files applied")
        })
        .filter(|_| failures.is_empty()),
        checks: outcomes.len(),
        duration_ms: duration.as_millis() as u64,
        failures,
        cases,
        ..StageReport::new(name, verdict)
    }
}

/// Finds, for each differing object or table, the last file of pass 2 whose re-run changed
/// it: rebuilds the pass-1 state in a fresh database, then replays pass 2 reading the catalog
/// after each file.
async fn attribute(
    server: &Server,
    project: &Project,
    mode: GrantMode,
    options: PassOptions,
    catalog_changes: &[crate::catalog::ObjectChange],
    data_changes: &[crate::data::TableChange],
    max_shift: f64,
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut blame = std::collections::BTreeMap::new();
    let db = server.unique_name("blame");
    server.create_database(&db, None).await?;
    let client = server.connect(&db).await?;
    shim::apply(&client, mode).await?;
    let pass1_options = PassOptions {
        skip_recorded: false,
        honour_exemptions: false,
        ..options
    };
    replay::apply_all(&client, project.files(), pass1_options, |_| {}).await;
    let mut catalog = Fingerprint::read(&client).await?;
    let mut data = DataFingerprint::read(&client).await?;
    let files: Vec<&SqlFile> = project.files().collect();
    for file in files {
        let outcomes = replay::apply_all(&client, [file], options, |_| {}).await;
        if !matches!(
            outcomes.first().map(|o| &o.result),
            Some(FileResult::Applied)
        ) {
            continue;
        }
        let catalog_now = Fingerprint::read(&client).await?;
        let data_now = DataFingerprint::read(&client).await?;
        let touched: Vec<String> = catalog
            .diff(&catalog_now)
            .iter()
            .map(|c| c.key().to_owned())
            .collect();
        for change in catalog_changes {
            if touched.iter().any(|k| k == change.key()) {
                blame.insert(change.key().to_owned(), file.rel.clone());
            }
        }
        let touched_tables: Vec<String> = data
            .diff(&data_now, max_shift)
            .into_iter()
            .map(|c| c.table)
            .collect();
        for change in data_changes {
            if touched_tables.contains(&change.table) {
                blame.insert(format!("rows {}", change.table), file.rel.clone());
            }
        }
        catalog = catalog_now;
        data = data_now;
    }
    drop(client);
    let _ = server.drop_database(&db).await;
    Ok(blame)
}
