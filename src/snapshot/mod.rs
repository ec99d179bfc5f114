//! The snapshot stage: the project's catalog as one deterministic YAML file, compared with
//! the committed one; catalog expectations; and (in [`drift`]) a live database against it.

pub mod config;
pub mod diff;
pub mod drift;
pub mod expect;
pub mod expect_config;
pub mod model;
pub mod render;

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::report::events::Reporter;
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::snapshot::expect_config::ExpectConfig;
use crate::stage::StageContext;

pub use self::config::{SnapshotConfig, DEFAULT_PATH};
use crate::stage_id::StageId;

/// The snapshot file of `project`.
pub fn snapshot_path(project: &Project) -> PathBuf {
    project
        .root
        .join(project.config.section::<SnapshotConfig>().relative_path())
}

/// Reads the catalog inside a read-only, repeatable-read transaction (one consistent view,
/// and a guarantee that reading never writes).
pub async fn read_catalog(client: &tokio_postgres::Client) -> Result<model::Catalog> {
    client
        .batch_execute("begin isolation level repeatable read read only")
        .await
        .map_err(|e| Error::environment(format!("begin a read-only transaction: {e}")))?;
    let catalog = model::Catalog::read(client).await;
    let _ = client.batch_execute("rollback").await;
    catalog
}

/// The snapshot YAML of the database `client` is connected to: what the snapshot stage writes
/// and compares, for library users (e.g. `insta::assert_snapshot!`).
pub async fn catalog_yaml(client: &tokio_postgres::Client, project: &Project) -> Result<String> {
    // The rendering does not depend on the project today; the parameter keeps room for
    // per-project rendering options without breaking callers.
    let _ = project;
    Ok(render::to_yaml(&read_catalog(client).await?))
}

use crate::files::in_ci;

/// Writes the snapshot `text` to `path` whole (never half a snapshot).
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    crate::files::write_atomically(path, text.as_bytes())
        .map_err(|e| Error::input(format!("write the snapshot {}: {e}", path.display())))
}

/// The snapshot stage's options in a run.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// `--update-snapshot`: write the new catalog snapshot instead of failing on a difference.
    pub update: bool,
}

inventory::submit!(crate::stage::Registration {
    id: StageId::Snapshot,
    load: |input| {
        check_snapshot_path(input.project)?;
        Ok(Box::new(stage))
    },
    on_rehearsal: false,
    cli: crate::stage::StageCli {
        flags: |command| {
            command.arg(
                clap::Arg::new("update_snapshot")
                    .long("update-snapshot")
                    .action(clap::ArgAction::SetTrue)
                    .help("Accept the new catalog snapshot: write it instead of failing on a difference"),
            )
        },
        options: |matches, options| {
            let update = matches
                .try_get_one::<bool>("update_snapshot")
                .ok()
                .flatten()
                == Some(&true);
            options.set(SnapshotOptions { update });
        },
        command: Some(crate::stage::StageCommand::plain(
            "snapshot",
            "Replay once, then compare the catalog with the committed snapshot",
        )),
    },
});

/// The committed snapshot, when something is at its path, must be a file: a FIFO would block
/// the run, a broken link or a folder would read as "no snapshot yet".
fn check_snapshot_path(project: &crate::project::Project) -> Result<()> {
    let path = snapshot_path(project);
    crate::files::file_if_present(&path)
        .map(|_| ())
        .map_err(|what| {
            let rel = path.strip_prefix(&project.root).unwrap_or(&path);
            Error::input(format!(
                "read {}: {what}, where the catalog snapshot is expected",
                rel.display()
            ))
        })
}

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let _ = reporter;
    let started = Instant::now();
    let project = ctx.project;
    // db-ci's own read, not SQL under test: the project's statement time limit is not its.
    let client = ctx.server.connect_unwatched(ctx.database).await?;
    let catalog = read_catalog(&client).await?;
    drop(client);
    let mut report = StageReport::new(StageId::Snapshot, StageVerdict::Pass);
    let mut summary = Vec::new();

    if project.config.section::<SnapshotConfig>().enabled {
        let yaml = render::to_yaml(&catalog);
        let (case, failure, what) = compare(
            project,
            &yaml,
            ctx.options.stages.get::<SnapshotOptions>().update,
            ctx.options.caller,
        )?;
        report.cases.push(case);
        report.failures.extend(failure);
        summary.push(what);
    }

    let expect = project.config.section::<ExpectConfig>();
    if !expect.is_empty() {
        let outcomes = expect::check(expect, &catalog);
        let held = outcomes.iter().filter(|o| o.problem.is_none()).count();
        summary.push(format!(
            "{held} of {} catalog expectations hold",
            outcomes.len()
        ));
        for outcome in outcomes {
            let line = config_line(project, outcome.key);
            if let Some(problem) = &outcome.problem {
                report.failures.push(Failure {
                    file: crate::config::FILE_NAME.to_owned(),
                    line,
                    column: None,
                    message: format!("catalog expectation failed: {problem}"),
                    notes: vec![],
                    statement: None,
                });
            }
            report.cases.push(Case {
                name: outcome.name,
                group: "expect".to_owned(),
                verdict: if outcome.problem.is_some() {
                    CaseVerdict::Fail
                } else {
                    CaseVerdict::Pass
                },
                file: Some(crate::config::FILE_NAME.to_owned()),
                line: Some(line),
                duration_ms: 0,
                message: outcome.problem,
                cell: None,
            });
        }
    }

    report.checks = report
        .cases
        .iter()
        .filter(|c| c.verdict != CaseVerdict::Skipped)
        .count();
    report.duration_ms = started.elapsed().as_millis() as u64;
    if report.checks == 0 && !report.cases.is_empty() {
        // Only the missing snapshot: the stage checked nothing.
        return Ok(StageReport {
            duration_ms: report.duration_ms,
            cases: report.cases,
            ..StageReport::skipped(StageId::Snapshot, summary.join("; "))
        });
    }
    if report.cases.is_empty() {
        return Ok(StageReport {
            duration_ms: report.duration_ms,
            ..StageReport::skipped(
                StageId::Snapshot,
                "snapshot.enabled is false and no `expect:` is configured",
            )
        });
    }
    if !report.failures.is_empty() {
        report.verdict = StageVerdict::Fail;
    }
    report.reason = Some(summary.join("; "));
    Ok(report)
}

/// How a run without a committed snapshot under CI starts its reason.
const NO_SNAPSHOT: &str = "no committed catalog snapshot";

/// Compares the rendered catalog with the committed snapshot (writing it when asked or when
/// it is missing outside CI): the case, its failure, and a summary.
fn compare(
    project: &Project,
    yaml: &str,
    update: bool,
    caller: Caller,
) -> Result<(Case, Option<Failure>, String)> {
    let rel = project.config.section::<SnapshotConfig>().relative_path();
    let path = snapshot_path(project);
    let case = |verdict, message: Option<String>, line| Case {
        name: format!("catalog matches {rel}"),
        group: "snapshot".to_owned(),
        verdict,
        file: Some(rel.clone()),
        line,
        duration_ms: 0,
        message,
        cell: None,
    };
    let failure = |line: usize, message: String, diff: Option<String>, note: &str| Failure {
        file: rel.clone(),
        line,
        column: None,
        message,
        notes: vec![note.to_owned()],
        statement: diff,
    };
    let committed = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::input(format!(
                "read the snapshot {}: {e}",
                path.display()
            )))
        }
    };
    match committed {
        Some(committed) if committed == yaml => Ok((
            case(CaseVerdict::Pass, None, None),
            None,
            format!("catalog identical to {rel}"),
        )),
        _ if update => {
            write_atomically(&path, yaml)?;
            Ok((
                case(CaseVerdict::Pass, None, None),
                None,
                format!("wrote {rel} (--update-snapshot): commit it"),
            ))
        }
        None if in_ci() => {
            // Nothing to compare with is no finding of the project (a first run in CI): the
            // check is skipped, saying how to start it, never passed. CI writes no file.
            let message = format!(
                "{NO_SNAPSHOT} at {rel}: nothing to compare the catalog with (CI=true writes \
                 none); run {} locally and commit the file to start reviewing schema changes",
                caller.update_snapshot()
            );
            Ok((
                case(CaseVerdict::Skipped, Some(message.clone()), Some(1)),
                None,
                message,
            ))
        }
        None => {
            write_atomically(&path, yaml)?;
            Ok((
                case(CaseVerdict::Pass, None, None),
                None,
                format!("no snapshot yet: wrote {rel}, commit it"),
            ))
        }
        Some(committed) => {
            let line = diff::first_changed_line(&committed, yaml);
            let (added, removed) = diff::counts(&committed, yaml);
            let unified = diff::unified(
                &committed,
                yaml,
                &format!("{rel} (committed)"),
                "database after replay",
            );
            let message = format!(
                "the catalog differs from the committed snapshot {rel} (+{added} -{removed} lines)"
            );
            Ok((
                case(CaseVerdict::Fail, Some(message.clone()), Some(line)),
                Some(failure(
                    line,
                    message,
                    unified,
                    &format!(
                        "review the diff; if the change is intended, accept it with {} and commit the file",
                        caller.update_snapshot()
                    ),
                )),
                "snapshot differs".to_owned(),
            ))
        }
    }
}

/// The line of `key:` under `expect:` in db-ci.yaml, else 1.
fn config_line(project: &Project, key: &str) -> usize {
    let text =
        std::fs::read_to_string(project.root.join(crate::config::FILE_NAME)).unwrap_or_default();
    crate::yaml::key_line(&text, &["expect", key])
        .or_else(|| crate::yaml::key_line(&text, &["expect"]))
        .unwrap_or(1)
}
