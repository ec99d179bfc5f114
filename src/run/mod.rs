//! The sequencer of `db-ci run`: load every stage (all input checked), boot, shim, replay
//! (pass 1), then idempotence beside the stages after replay (taken in
//! [`StageId::after_replay`] order by two lanes, a clone of the replayed database and, once
//! pass 2 passes, the replayed database itself; run through the stage registry, [`Stages`]),
//! reported in that order.

use std::cell::RefCell;
use std::time::Instant;

use crate::backend::Server;
use crate::error::Result;
use crate::project::Project;
use crate::replay::{self, PassOptions};
use crate::report::events::{Event, Reporter};
use crate::report::{Report, RunError, StageReport, StageVerdict, Verdict};
use crate::shim::GrantMode;
use crate::stage::{RunOptions, StageContext, Stages};
use crate::stage_id::StageId;
use relay::Relay;

mod relay;

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
        skipped: &project.skipped,
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
            report.error = Some(RunError::from_error(&error));
        }
    }
    // Every stage the run did not reach is listed, skipped, with the reason.
    let why = if report.error.is_some() {
        "the run stopped before this stage (see error)"
    } else {
        "an earlier stage failed"
    };
    for name in StageId::run() {
        if report.stage(name).is_none() {
            let stage = StageReport::skipped(name, why);
            reporter.event(&Event::StageDone(&stage));
            report.stages.push(stage);
        }
    }
    report.verdict = report.verdict_from_stages();
    report.duration_ms = started.elapsed().as_millis() as u64;
    reporter.event(&Event::RunDone(&report));
    (report, replayed)
}

/// The stages after replay no lane has taken yet, in report order: each lane (a database in
/// the replayed state) takes the next one when it is free, so a stage runs as soon as either
/// database is free for it, and the report keeps its order through the relay.
struct Queue(RefCell<std::collections::VecDeque<StageId>>);

impl Queue {
    fn all() -> Queue {
        Queue(RefCell::new(StageId::after_replay().collect()))
    }

    fn take(&self) -> Option<StageId> {
        self.0.borrow_mut().pop_front()
    }
}

/// Runs, one after another, the stages after replay the relay still waits for (none that
/// ended, all that were taken back) that `queue` still holds, each reported through the relay.
async fn later_stages(stages: &Stages, ctx: &StageContext<'_>, relay: &Relay<'_>, queue: &Queue) {
    while let Some(name) = queue.take() {
        let mut sink = relay.sink(name);
        if !relay.heard(&sink) {
            break;
        }
        if relay.ended(name) {
            continue;
        }
        let stage = match ctx.options.selected(name) {
            false => Ok(StageReport::skipped(name, "not selected")),
            true => stages.run(name, ctx, &mut sink).await.unwrap_or_else(|| {
                Ok(StageReport::skipped(
                    name,
                    "not registered in this build of db-ci",
                ))
            }),
        };
        relay.done(sink, stage);
    }
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
    // Every stage's input is read and checked before boot: a problem is exit 2 at once.
    let stages = Stages::load_selected(project, options.only.as_deref())?;
    let boot = Instant::now();
    let server = crate::backend::version::start(
        &options.backend,
        crate::backend::version::VersionPolicy {
            major: project.supabase.major_version,
            image_given: options.image_given,
            any_version: options.any_server_version,
            caller: options.caller,
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
    server.create_shimmed_database(&pass1_db, mode).await?;
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
    let mut replay_stage =
        replay::stage_report(StageId::Replay, &pass1, pass1_started.elapsed(), |_| {
            Vec::new()
        });
    if let (Some(reason), false) = (&mut replay_stage.reason, project.skipped.is_empty()) {
        let files: Vec<&str> = project.skipped.iter().map(|(f, _)| f.as_str()).collect();
        reason.push_str(&format!(
            "; not applied, as the Supabase CLI skips them: {}",
            files.join(", ")
        ));
    }
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

    drop(client);

    // The later stages see the replayed state after pass 2; they run even when idempotence
    // failed, since a failed pass-2 file rolled back and the database still holds a complete
    // replay. Beside each other, one server core each: pass 2 and its comparisons in place,
    // the later stages one after another on a clone of the pass-1 state made before pass 2
    // (a stage that clones it needs it to itself). When pass 2 leaves the state as pass 1 did
    // (the idempotence stage passes) they saw what they would have seen after it, and the
    // pass-1 database, free again, takes the later stages the clone has not begun: the two
    // lanes share them, each taking the next when it is free. Otherwise they are taken back
    // and run again after pass 2, as a sequential run does.
    let beside = !options.sequential
        && options.selected(StageId::Idempotence)
        && StageId::after_replay().any(|name| options.selected(name));
    let ahead_db = match beside {
        true => {
            let name = server.unique_name("replayed");
            server.create_database(&name, Some(&pass1_db)).await?;
            Some(name)
        }
        false => None,
    };
    let ctx = StageContext {
        project,
        options,
        server: &server,
        database: &pass1_db,
        policy_files: &stages.policy_files,
    };
    let ahead_ctx = ahead_db
        .as_deref()
        .map(|database| StageContext { database, ..ctx });
    let relay = Relay::new(
        &mut *reporter,
        std::iter::once(StageId::Idempotence)
            .chain(StageId::after_replay())
            .collect(),
    );
    let queue = Queue::all();
    let pass2 = async {
        let mut sink = relay.sink(StageId::Idempotence);
        let result = match options.selected(StageId::Idempotence) {
            false => Ok(StageReport::skipped(StageId::Idempotence, "not selected")),
            true => {
                crate::idempotence::stage(
                    &server,
                    project,
                    mode,
                    &pass1_db,
                    pass1_started,
                    &mut sink,
                )
                .await
            }
        };
        let same_state = matches!(&result, Ok(stage) if stage.verdict != StageVerdict::Fail);
        if !same_state {
            relay.take_back();
        }
        relay.done(sink, result);
        if same_state && ahead_ctx.is_some() {
            later_stages(&stages, &ctx, &relay, &queue).await;
        }
    };
    let mut taken_back = false;
    match &ahead_ctx {
        Some(ahead_ctx) => {
            let ahead = async {
                later_stages(&stages, ahead_ctx, &relay, &queue).await;
            };
            futures_util::future::join(pass2, ahead).await;
            taken_back = relay.was_taken_back();
        }
        None => pass2.await,
    }
    // Not run yet, or taken back: on the state after pass 2.
    let rest = match taken_back {
        true => Queue::all(),
        false => queue,
    };
    later_stages(&stages, &ctx, &relay, &rest).await;
    if let Some(ahead_db) = &ahead_db {
        // Its space back now (the server drops what is left when it stops).
        let _ = server.drop_database(ahead_db).await;
    }
    let (stages_done, error) = relay.finish();
    report.stages.extend(stages_done);
    if let Some(error) = error {
        return Err(error);
    }
    *replayed = Some(Replayed {
        server,
        database: pass1_db,
    });
    Ok(())
}
