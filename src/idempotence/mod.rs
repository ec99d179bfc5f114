//! The idempotence stage: pass 2 of the whole pipeline on the pass-1 database, compared with
//! pass 1 by catalog and data fingerprints, each difference blamed on the file whose re-run
//! made it.

pub mod catalog;
pub mod data;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::backend::Server;
use crate::config::ReplayMode;
use crate::error::Result;
use crate::locate::line_mentioning;
use crate::project::{Project, SqlFile};
use crate::replay::{self, PassOptions};
use crate::report::events::{Event, Reporter};
use crate::report::file::FileResult;
use crate::report::{Failure, StageReport, StageVerdict};
use crate::shim::GrantMode;
use crate::stage_id::StageId;
use catalog::Fingerprint;
use data::DataFingerprint;

/// Pass 2 in place on the pass-1 database `database`, then the comparison with pass 1.
pub(crate) async fn stage(
    server: &Server,
    project: &Project,
    mode: GrantMode,
    database: &str,
    pass1_started: Instant,
    reporter: &mut dyn Reporter,
) -> Result<StageReport> {
    let timeout = project.config.replay.statement_timeout;
    let idempotence_started = Instant::now();
    let client = &server.connect(database).await?;
    // The fingerprints are db-ci's own reads, not SQL under test: on a session the
    // project's statement time limit does not watch (a large catalog on a loaded machine
    // outlasts a limit of a second or two, which made a passing project an error).
    let reader = &server.connect_unwatched(database).await?;
    let catalog1 = Fingerprint::read(reader).await?;
    let data1 = DataFingerprint::read(reader).await?;
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
    let mut stage = replay::stage_report(StageId::Idempotence, &pass2, Duration::ZERO, |failure| {
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
        let catalog2 = Fingerprint::read(reader).await?;
        let data2 = DataFingerprint::read(reader).await?;
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
    Ok(stage)
}

/// Which file of pass 2 changed each differing object or table: its name → the file.
type Blame = BTreeMap<String, String>;

/// Finds, for each differing object or table, the last file of pass 2 whose re-run changed
/// it: rebuilds the pass-1 state in a fresh database, then replays pass 2 reading the catalog
/// after each file.
async fn attribute(
    server: &Server,
    project: &Project,
    mode: GrantMode,
    options: PassOptions,
    catalog_changes: &[catalog::ObjectChange],
    data_changes: &[data::TableChange],
    max_shift: f64,
) -> Result<Blame> {
    let mut blame = BTreeMap::new();
    let db = server.unique_name("blame");
    server.create_shimmed_database(&db, mode).await?;
    let client = server.connect(&db).await?;
    let reader = server.connect_unwatched(&db).await?;
    let pass1_options = PassOptions {
        skip_recorded: false,
        honour_exemptions: false,
        ..options
    };
    replay::apply_all(&client, project.files(), pass1_options, |_| {}).await;
    let mut catalog = Fingerprint::read(&reader).await?;
    let mut data = DataFingerprint::read(&reader).await?;
    let files: Vec<&SqlFile> = project.files().collect();
    for file in files {
        let outcomes = replay::apply_all(&client, [file], options, |_| {}).await;
        if !matches!(
            outcomes.first().map(|o| &o.result),
            Some(FileResult::Applied)
        ) {
            continue;
        }
        let catalog_now = Fingerprint::read(&reader).await?;
        let data_now = DataFingerprint::read(&reader).await?;
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
    drop(reader);
    let _ = server.drop_database(&db).await;
    Ok(blame)
}
