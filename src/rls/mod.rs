//! The rls stage: declarative allow/deny matrices run as really impersonated roles.
//!
//! spec (the YAML) → plan (cells with their SQL) → exec (batched, rolled back, parallel on
//! clones) → judge (non-vacuous outcome) → explain (policies for failures) → coverage.

pub mod cli;
pub mod config;
pub mod coverage;
pub mod detail;
pub mod exec;
pub mod explain;
pub mod judge;
pub mod leaks;
mod no_user_id;
pub mod plan;
pub mod record;
mod summary;
#[cfg(test)]
mod test_support;
pub mod unfrozen;
mod verdict;

use crate::report::Observed;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use tokio_postgres::Client;

use self::exec::CellResult;
use self::plan::{Cell, TargetInfo};
use self::record::{Recorded, Recording};
use crate::catalog::{QualifiedName, Which};
use crate::error::{Error, Result};
use crate::policy_tests::cases::Operation;
use crate::policy_tests::{self, PolicyFile};
use crate::report::events::{Event, Reporter};
use crate::report::{Case, CaseVerdict, Failure, RlsCell, StageReport, StageVerdict};
use crate::sql::db_error_text;
use crate::stage::StageContext;

pub use self::cli::RlsOptions;
pub use self::config::{exposed_schemas, RlsConfig, Unreviewed};
use self::detail::{RecordedCell, RlsDetail};
use crate::stage_id::StageId;

const STAGE: StageId = StageId::Rls;

inventory::submit!(crate::stage::Registration {
    id: StageId::Rls,
    load: |input| {
        // What only planning finds (a template naming no actor, a denial by any error with
        // nobody allowed), on invented targets since the catalog is not there yet: each
        // case's shape was checked when its file was loaded.
        for file in input.policy_files {
            if let Some(error) = plan::check(file).into_iter().next() {
                return Err(error.pos.error(&file.rel, error.message));
            }
        }
        Ok(Box::new(stage))
    },
    // What a release changes in who may read and write what.
    on_rehearsal: true,
    cli: cli::CLI,
});

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let started = Instant::now();
    let files = match policy_tests::files_for(
        ctx.project,
        ctx.policy_files,
        |f| !f.cases.is_empty(),
        "RLS cases (`cases:`)",
    ) {
        Ok(files) => files,
        Err(reason) => return Ok(StageReport::skipped(STAGE, reason.to_string())),
    };

    // Actors bound to seeded users get their ids and claims from the replayed database.
    let bound: Vec<PolicyFile>;
    // Catalog facts for planning and coverage, read from the replayed database.
    // db-ci's own reads, not SQL under test: the project's statement time limit is not theirs.
    let (plans, relations) = {
        let client = ctx.server.connect_unwatched(ctx.database).await?;
        policy_tests::check_actor_roles(&client, &files).await?;
        bound = policy_tests::bind_existing_users(&client, &files).await?;
        let mut plans = Vec::new();
        for file in &bound {
            let targets = target_info(&client, file).await?;
            plans.push(plan::plan(
                file,
                plan::Catalog::Read(&targets),
                ctx.options.stages.get::<RlsOptions>().record.is_some(),
            ));
        }
        let relations = coverage::exposed_relations(&client, &exposed_schemas(ctx.project)).await?;
        (plans, relations)
    };
    let files: Vec<&PolicyFile> = bound.iter().collect();
    let total: usize = plans.iter().map(|p| p.cells.len() + p.holes.len()).sum();
    reporter.event(&Event::StageStarted { name: STAGE, total });

    let mut report = StageReport::new(STAGE, StageVerdict::Pass);
    report.detail_mut::<RlsDetail>();
    let mut covered = BTreeSet::new();
    let mut clock_notes: Vec<String> = Vec::new();
    for (file, plan) in files.iter().zip(&plans) {
        reporter.event(&Event::CaseStarted {
            stage: STAGE,
            name: &file.rel,
        });
        for error in &plan.errors {
            // Only catalog-dependent errors reach here (a missing table): a broken test.
            report.failures.push(Failure {
                file: file.rel.clone(),
                line: error.pos.line,
                column: error.pos.column,
                message: format!("broken test: {}", error.message),
                notes: Vec::new(),
                statement: None,
            });
        }
        for hole in &plan.holes {
            let case = Case {
                name: format!(
                    "{} / {} as {}",
                    hole.case,
                    hole.operation.as_str(),
                    hole.actor
                ),
                group: file.rel.clone(),
                verdict: CaseVerdict::Broken,
                file: Some(file.rel.clone()),
                line: Some(hole.line),
                duration_ms: 0,
                message: Some(hole.message.clone()),
                cell: Some(RlsCell {
                    case: hole.case.clone(),
                    target: String::new(),
                    actor: hole.actor.clone(),
                    operation: hole.operation,
                    expected: None,
                    observed: Observed::Broken,
                    unreviewed: false,
                }),
            };
            reporter.event(&Event::CaseDone {
                stage: STAGE,
                case: &case,
            });
            report.cases.push(case);
            report.failures.push(Failure {
                file: file.rel.clone(),
                line: hole.line,
                column: None,
                message: hole.message.clone(),
                notes: Vec::new(),
                statement: None,
            });
        }
        for cell in &plan.cells {
            if cell.operation != Operation::Sql {
                covered.insert((cell.target.clone(), cell.operation));
            }
        }
        let recorded = run_file(
            ctx,
            file,
            &plan.cells,
            reporter,
            &mut report,
            &mut clock_notes,
        )
        .await?;
        if !recorded.is_empty() {
            let targets = recorded.iter().map(|r| r.target.clone()).collect();
            let client = ctx.server.connect_unwatched(ctx.database).await?;
            let policies = leaks::read(&client, &targets).await?;
            drop(client);
            keep_recordings(ctx, file, &recorded, &policies, &mut report);
        } else if ctx.options.stages.get::<RlsOptions>().record.is_none() && crate::files::in_ci() {
            let pending = record::pending_path(&file.path);
            if pending.is_file() {
                report.failures.push(Failure {
                    file: format!("{}{}", file.rel, record::PENDING),
                    line: 1,
                    column: None,
                    message: format!(
                        "a recording of {} was never accepted: review it and run `db-ci rls --accept`, or delete it",
                        file.rel
                    ),
                    notes: Vec::new(),
                    statement: None,
                });
            }
        }
    }
    report.detail_mut::<RlsDetail>().unreviewed = Some(
        plans
            .iter()
            .flat_map(|p| &p.cells)
            .filter(|c| c.unreviewed)
            .count(),
    );

    // A recording nobody reviewed is not a verdict on the policy: in CI it fails, unless
    // the project opted into its recordings as a baseline. A recording run (`--record`, or
    // init's check of what it just recorded) reports them instead; the next run fails them.
    if crate::files::in_ci()
        && ctx.options.stages.get::<RlsOptions>().record.is_none()
        && !ctx.options.stages.get::<RlsOptions>().just_recorded
        && ctx.project.config.section::<RlsConfig>().unreviewed == Unreviewed::Fail
    {
        verdict::fail_unreviewed(&mut report);
    }

    report.checks = report.cases.len();
    let minimum = ctx.options.stages.get::<RlsOptions>().min_coverage.or(ctx
        .project
        .config
        .section::<RlsConfig>()
        .min_coverage);
    let coverage = coverage::coverage(&relations, &covered, minimum);
    // No table or view in the exposed schemas: there is no coverage to measure, and a
    // required minimum cannot be met by nothing.
    let nothing_exposed = relations.is_empty().then(|| {
        format!(
            "no coverage to measure: no table or view in the exposed schemas ({})",
            exposed_schemas(ctx.project).join(", ")
        )
    });
    if let (Some(minimum), Some(why)) = (minimum, &nothing_exposed) {
        report.failures.push(Failure {
            file: files[0].rel.clone(),
            line: 1,
            column: None,
            message: format!("RLS coverage cannot meet the minimum {minimum:.1}%: {why}"),
            notes: vec![
                "set `rls.exposed_schemas` in db-ci.yaml to the schemas your API serves".to_owned(),
            ],
            statement: None,
        });
    } else if let Some(minimum) = minimum {
        if coverage.percent + f64::EPSILON < minimum {
            let uncovered: Vec<String> = coverage
                .tables
                .iter()
                .filter_map(|row| {
                    let missing: Vec<&str> = row
                        .commands()
                        .into_iter()
                        .filter(|(_, covered, applies)| !covered && *applies)
                        .map(|(name, _, _)| name)
                        .collect();
                    (!missing.is_empty()).then(|| format!("{} ({})", row.table, missing.join(", ")))
                })
                .collect();
            report.failures.push(Failure {
                file: files[0].rel.clone(),
                line: 1,
                column: None,
                message: format!(
                    "RLS coverage {:.1}% is below the minimum {minimum:.1}%",
                    coverage.percent
                ),
                notes: vec![format!("no cell checks: {}", uncovered.join("; "))],
                statement: None,
            });
        }
    }
    let cells = report.cases.len();
    let passed = report
        .cases
        .iter()
        .filter(|c| c.verdict == CaseVerdict::Pass)
        .count();
    report.verdict = if report.failures.is_empty() {
        StageVerdict::Pass
    } else {
        StageVerdict::Fail
    };
    let measured = match &nothing_exposed {
        Some(why) => why.clone(),
        None => format!(
            "coverage {:.1}% of exposed table commands",
            coverage.percent
        ),
    };
    let recorded = match report.detail_mut::<RlsDetail>().recorded.len() {
        0 => String::new(),
        n => format!(" ({n} of them recorded by this run)"),
    };
    let unreached: String = clock_notes.iter().map(|n| format!("; {n}")).collect();
    report.reason = Some(format!(
        "{}{recorded} in {} file(s); {measured}{unreached}",
        verdict::cells_summary(passed, cells),
        files.len()
    ));
    report.detail_mut::<RlsDetail>().coverage = nothing_exposed.is_none().then_some(coverage);
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Does each target of `file` exist, and what is its primary key?
async fn target_info(
    client: &Client,
    file: &PolicyFile,
) -> Result<BTreeMap<QualifiedName, TargetInfo>> {
    let mut names: Vec<QualifiedName> = file.cases.iter().filter_map(|c| c.relation()).collect();
    names.sort();
    names.dedup();
    let found =
        crate::catalog::relations(client, Which::Named(&names), "the cases' tables").await?;
    Ok(names
        .into_iter()
        .map(|name| {
            let info = found.iter().find(|r| r.name == name).map_or_else(
                TargetInfo::default,
                |relation| TargetInfo {
                    qualified: name.to_string(),
                    exists: true,
                    key: relation.primary_key.clone(),
                    has_xmin: relation.has_xmin(),
                },
            );
            (name, info)
        })
        .collect())
}

/// Prepares a database for `file`, runs its cells on parallel workers, judges them.
async fn run_file(
    ctx: &StageContext<'_>,
    file: &PolicyFile,
    cells: &[Cell],
    reporter: &mut dyn Reporter,
    report: &mut StageReport,
    clock_notes: &mut Vec<String>,
) -> Result<Vec<Recorded>> {
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = match policy_tests::prepare(ctx.server, ctx.database, file, "rls").await? {
        Ok(prepared) => prepared,
        Err((prepared, failure)) => {
            report.failures.push(Failure {
                file: file.rel.clone(),
                line: failure.line,
                column: None,
                message: format!("broken test: {}", failure.message),
                notes: vec![format!("{} cell(s) of this file were not run", cells.len())],
                statement: None,
            });
            for cell in cells {
                let case = case_for(
                    cell,
                    Observed::Broken,
                    CaseVerdict::Broken,
                    Some("setup failed".to_owned()),
                    0,
                );
                reporter.event(&Event::CaseDone {
                    stage: STAGE,
                    case: &case,
                });
                report.cases.push(case);
            }
            prepared.drop_all(ctx.server).await;
            return Ok(Vec::new());
        }
    };
    let timeout = ctx.project.config.replay.statement_timeout;
    let workers = exec::worker_count(cells.len());
    // Extra workers get clones of the prepared database; the clone needs it disconnected.
    let mut databases = vec![prepared.database.clone()];
    drop(prepared.client);
    for _ in 1..workers {
        let clone = ctx.server.unique_name("rls");
        ctx.server
            .create_database(&clone, Some(&prepared.database))
            .await?;
        databases.push(clone);
    }
    let mut clients = Vec::new();
    for database in &databases {
        clients.push(exec::connect_worker(ctx.server, database, timeout).await?);
    }
    // Readers of the real clock under a frozen one: counted around each cell.
    let unfrozen = unfrozen::locate(ctx.project, &prepared.unfrozen);
    if prepared.unfrozen.iter().any(|u| u.counter.is_some()) {
        for client in &clients {
            client
                .batch_execute(&format!("set {} = on", crate::clock::COUNTERS_SETTING))
                .await
                .map_err(|e| {
                    Error::environment(format!(
                        "count the reads of the real clock: {}",
                        db_error_text(&e)
                    ))
                })?;
        }
    }
    let mut read_by: Vec<(String, Vec<String>)> = Vec::new();

    // A scenario's steps run together, in order, on one worker.
    let (scenarios, indexed): (Vec<_>, Vec<_>) = cells
        .iter()
        .enumerate()
        .partition(|(_, cell)| cell.scenario().is_some());
    let per_worker = indexed.len().div_ceil(workers);
    let chunks: Vec<&[(usize, &Cell)]> = indexed.chunks(per_worker.max(1)).collect();
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<Vec<CellResult>>();
    let work = async {
        let sender = sender;
        let runs = clients
            .iter()
            .zip(&chunks)
            .map(|(client, chunk)| exec::run_on(client, chunk, &sender));
        let mut outcomes = futures_util::future::join_all(runs).await;
        if !scenarios.is_empty() {
            outcomes.push(exec::run_scenarios(&clients[0], &scenarios, &sender).await);
        }
        outcomes
    };
    // Which cell each case of this file stands for, in the order the cases are reported.
    let mut case_cells: Vec<usize> = Vec::with_capacity(cells.len());
    let judge_all = async {
        let mut batch_started = Instant::now();
        while let Some(batch) = receiver.recv().await {
            let per_cell = batch_started.elapsed().as_micros() as u64 / batch.len().max(1) as u64;
            batch_started = Instant::now();
            for result in batch {
                let cell = &cells[result.i];
                let read = result.unfrozen.as_deref().unwrap_or_default();
                let judgement = unfrozen::not_passed(judge::judge(cell, &result), read, &unfrozen);
                for counter in read {
                    match read_by.iter_mut().find(|(c, _)| c == counter) {
                        Some((_, names)) => names.push(case_name(cell)),
                        None => read_by.push((counter.clone(), vec![case_name(cell)])),
                    }
                }
                let case = case_for(
                    cell,
                    judgement.observed,
                    judgement.verdict,
                    judgement.message,
                    per_cell / 1000,
                );
                reporter.event(&Event::CaseDone {
                    stage: STAGE,
                    case: &case,
                });
                report.cases.push(case);
                case_cells.push(result.i);
            }
        }
    };
    let (outcomes, ()) = tokio::join!(work, judge_all);
    for outcome in outcomes {
        outcome?;
    }
    let (failures, notes) = unfrozen::findings(&file.rel, &unfrozen, &read_by);
    report.failures.extend(failures);
    clock_notes.extend(notes);

    let first_new_case = report.cases.len() - cells.len();
    vacuous_sql_cases(
        &clients[0],
        cells,
        &case_cells,
        &mut report.cases[first_new_case..],
    )
    .await;
    let recorded = match ctx.options.stages.get::<RlsOptions>().record {
        Some(mode) => record_cells(
            mode,
            cells,
            &case_cells,
            &mut report.cases[first_new_case..],
        ),
        None => Vec::new(),
    };

    // Failures, explained from the prepared database.
    let mut explained: BTreeMap<(String, String, Operation), Vec<String>> = BTreeMap::new();
    for (offset, cell_index) in case_cells.iter().enumerate() {
        let case = &report.cases[first_new_case + offset];
        if case.verdict == CaseVerdict::Pass {
            continue;
        }
        let cell = &cells[*cell_index];
        let actor = &cell.actor;
        // The claims are in the statement's request.jwt.claims.
        let mut notes = Vec::new();
        if cell.scenario().is_some() {
            notes.push(
                "this step ran after the scenario's earlier steps, in the same transaction"
                    .to_owned(),
            );
        }
        if let Some(relation) = cell.relation() {
            let key = (cell.target.clone(), actor.db_role.clone(), cell.operation);
            if !explained.contains_key(&key) {
                let lines =
                    explain::explain(&clients[0], relation, &actor.db_role, cell.operation).await?;
                explained.insert(key.clone(), lines);
            }
            notes.extend(explained[&key].iter().cloned());
        }
        let message = format!(
            "case `{}`{}: {}",
            cell.case,
            if cell.operation == Operation::Sql {
                String::new()
            } else {
                format!(" on {}", cell.target)
            },
            case.message.clone().unwrap_or_default()
        );
        // A broken case (no target row) reads the same for every actor: say it once.
        if report
            .failures
            .iter()
            .any(|f| f.file == file.rel && f.line == cell.case_line && f.message == message)
        {
            continue;
        }
        report.failures.push(Failure {
            file: file.rel.clone(),
            line: cell.case_line,
            column: None,
            message,
            notes,
            statement: (!cell.op.is_empty()).then(|| {
                format!(
                    "begin;\n{}\n{};\nrollback;",
                    actor.impersonation_sql_for_display(),
                    cell.op
                )
            }),
        });
    }
    drop(clients);
    for database in databases {
        let _ = ctx.server.drop_database(&database).await;
    }
    Ok(recorded)
}

/// While recording: each cell that observed allow or deny where it had no expectation, or
/// another one, becomes a recording. Outside CI its case passes (the recording is the
/// result); in CI it stays a failure that says to record locally. Partial and broken
/// observations are never recorded: they stay failures.
fn record_cells(
    mode: Recording,
    cells: &[Cell],
    case_cells: &[usize],
    cases: &mut [Case],
) -> Vec<Recorded> {
    let writing = mode.writes();
    let mut recorded = Vec::new();
    for (case, cell_index) in cases.iter_mut().zip(case_cells) {
        let cell = &cells[*cell_index];
        let Some(to) = case.cell.as_ref().and_then(|c| c.observed.expectation()) else {
            continue;
        };
        if cell.expect == Some(to) || cell.scenario().is_some() {
            continue;
        }
        let r = Recorded {
            case_index: cell.case_index,
            case: cell.case.clone(),
            line: cell.case_line,
            target: cell.target.clone(),
            operation: cell.operation,
            actor: cell.actor.name.clone(),
            from: cell.expect,
            to,
        };
        if writing {
            case.verdict = CaseVerdict::Pass;
            case.message = Some(format!("recorded: {}", r.describe()));
        } else {
            case.message = Some(format!(
                "{}; recording is off in CI (CI=true): record with `db-ci rls --record` locally, review and commit",
                case.message.as_deref().unwrap_or("no expectation")
            ));
        }
        recorded.push(r);
    }
    recorded
}

/// Writes `file`'s recordings where the mode says (never in CI) and lists them in the report.
fn keep_recordings(
    ctx: &StageContext<'_>,
    file: &PolicyFile,
    recorded: &[Recorded],
    policies: &BTreeMap<String, Vec<leaks::Policy>>,
    report: &mut StageReport,
) {
    // What looks like a leak first, with its policies: a recording takes whatever the
    // database did.
    let reviewed: Vec<leaks::Reviewed> = recorded
        .iter()
        .map(|r| {
            leaks::review(
                r,
                file.cases.iter().find(|c| c.index == r.case_index),
                file.actors.get(&r.actor),
                policies.get(&r.target).map_or(&[], Vec::as_slice),
            )
        })
        .collect();
    let lines = leaks::for_review(recorded, &reviewed);
    let mode = ctx
        .options
        .stages
        .get::<RlsOptions>()
        .record
        .expect("recordings only while recording");
    let target = if !mode.writes() {
        Err(NotWritten::Ci)
    } else {
        record::rewrite(&file.text, &file.spec, recorded)
            .map_err(|error| NotWritten::Rewrite {
                file: file.rel.clone(),
                error,
            })
            .and_then(|text| {
                let (path, rel, text) = match mode {
                    Recording::Pending => (
                        record::pending_path(&file.path),
                        format!("{}{}", file.rel, record::PENDING),
                        record::pending_text(&file.text, &text),
                    ),
                    Recording::Write | Recording::Init => {
                        (file.path.clone(), file.rel.clone(), text)
                    }
                };
                crate::files::write_atomically(&path, text.as_bytes())
                    .map(|()| rel)
                    .map_err(|e| NotWritten::Write {
                        path: path.display().to_string(),
                        error: e.to_string(),
                    })
            })
    };
    let written_to = target.as_ref().ok().cloned();
    report
        .detail_mut::<RlsDetail>()
        .recorded
        .extend(
            recorded
                .iter()
                .zip(&reviewed)
                .map(|(r, review)| RecordedCell {
                    file: file.rel.clone(),
                    line: r.line,
                    case: r.case.clone(),
                    target: r.target.clone(),
                    actor: r.actor.clone(),
                    operation: r.operation.as_str().to_owned(),
                    from: r.from.map(|e| e.as_str().to_owned()),
                    to: r.to.as_str().to_owned(),
                    written_to: written_to.clone(),
                    looks_like_leak: review.leak.clone(),
                    policies: review.policies.clone(),
                }),
        );
    let message = match (&target, mode) {
        (Ok(_), Recording::Write | Recording::Init) => return,
        (Ok(pending), Recording::Pending) => format!(
            "{} expectation(s) recorded in {pending}, not yet accepted: review them, then run `db-ci rls --accept`",
            recorded.len()
        ),
        (Err(why), _) => format!("{} expectation(s) not recorded: {why}", recorded.len()),
    };
    report.failures.push(Failure {
        file: file.rel.clone(),
        line: 1,
        column: None,
        message,
        notes: lines,
        statement: None,
    });
}

/// An `sql:` case must show it can succeed, like a table case must have target rows: when
/// no actor's cell observed allow (rows returned, or success), its statement runs as admin
/// (in a transaction rolled back); if it returns no row or fails there too, the case checks
/// nothing (a misspelt id, a function that never returns rows) and every cell is broken.
async fn vacuous_sql_cases(
    client: &Client,
    cells: &[Cell],
    case_cells: &[usize],
    cases: &mut [Case],
) {
    // Sql cases by their line: the reported positions of their cells.
    let mut by_case: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (position, index) in case_cells.iter().enumerate() {
        // A scenario's allowed step shows it can succeed (planning requires one).
        if cells[*index].operation == Operation::Sql && cells[*index].scenario().is_none() {
            by_case
                .entry(cells[*index].case_line)
                .or_default()
                .push(position);
        }
    }
    for positions in by_case.values() {
        let judged = |p: &usize| cases[*p].cell.as_ref().map(|c| c.observed);
        if positions
            .iter()
            .any(|p| matches!(judged(p), Some(Observed::Allow) | Some(Observed::Broken)))
        {
            continue;
        }
        let cell = &cells[case_cells[positions[0]]];
        let admin = as_admin(client, cell).await;
        let Err(why) = admin else { continue };
        let message = format!(
            "broken test: the statement {why} for every actor and as admin: the case checks nothing \
             (a misspelt id or argument?); make it succeed for someone, e.g. create the rows in `setup:`"
        );
        for p in positions {
            let case = &mut cases[*p];
            case.verdict = CaseVerdict::Broken;
            case.message = Some(message.clone());
            if let Some(cell) = case.cell.as_mut() {
                cell.observed = Observed::Broken;
            }
        }
    }
}

/// How an sql cell's statement came out empty as admin, as a fragment after "the statement".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EmptyAsAdmin {
    #[error("returns no row")]
    NoRow,
    #[error("fails ({0})")]
    Fails(String),
    #[error("succeeds but `then: {query}` fails ({error})")]
    ThenFails { query: String, error: String },
    #[error("succeeds but `then: {query}` does not hold (it {unheld})")]
    ThenUnheld {
        query: String,
        unheld: crate::policy_tests::cases::Unheld,
    },
}

/// Why a recording stayed out of its matrix, as a fragment after "not recorded:".
#[derive(Debug, thiserror::Error)]
enum NotWritten {
    #[error("recording is off in CI (CI=true)")]
    Ci,
    #[error("write the recording into {file}: {error}")]
    Rewrite {
        file: String,
        error: record::RewriteError,
    },
    #[error("write {path}: {error}")]
    Write { path: String, error: String },
}

/// Runs an sql cell's statement as admin, rolled back: `Err` says how it came out empty.
async fn as_admin(client: &Client, cell: &Cell) -> std::result::Result<(), EmptyAsAdmin> {
    if client.batch_execute("begin").await.is_err() {
        return Ok(()); // cannot tell: never turn a verdict on a harness problem
    }
    // The actors ran under the case's frozen clock; admin must see the same instant, or a
    // row that only exists "then" would make admin's run differ from theirs.
    if let Some(now) = cell.now {
        if crate::clock::freeze(client, now, crate::clock::Scope::Transaction)
            .await
            .is_err()
        {
            let _ = client.batch_execute("rollback").await;
            return Ok(());
        }
    }
    let outcome = if cell.op_kind == plan::OpKind::Count {
        match client.query_one(cell.op.as_str(), &[]).await {
            Ok(row) if row.get::<_, i64>(0) > 0 => Ok(()),
            Ok(_) => Err(EmptyAsAdmin::NoRow),
            Err(e) => Err(EmptyAsAdmin::Fails(db_error_text(&e))),
        }
    } else {
        client
            .batch_execute(&cell.op)
            .await
            .map_err(|e| EmptyAsAdmin::Fails(db_error_text(&e)))
    };
    // A call that succeeds must also be able to make its `then:` hold.
    let outcome = match outcome {
        Ok(()) => then_as_admin(client, cell).await,
        Err(e) => Err(e),
    };
    let _ = client.batch_execute("rollback").await;
    outcome
}

/// Runs the `then:` queries of `cell` after its statement ran as admin.
async fn then_as_admin(client: &Client, cell: &Cell) -> std::result::Result<(), EmptyAsAdmin> {
    for query in &cell.then {
        let sql =
            format!("select coalesce(json_agg(dbci_then), '[]')::text from ({query}) dbci_then");
        let rows: String = match client.query_one(sql.as_str(), &[]).await {
            Ok(row) => row.get(0),
            Err(e) => {
                return Err(EmptyAsAdmin::ThenFails {
                    query: query.clone(),
                    error: db_error_text(&e),
                })
            }
        };
        if let Err(unheld) = crate::policy_tests::cases::then_holds(&rows) {
            return Err(EmptyAsAdmin::ThenUnheld {
                query: query.clone(),
                unheld,
            });
        }
    }
    Ok(())
}

fn case_name(cell: &Cell) -> String {
    format!(
        "{} / {} as {}",
        cell.case,
        cell.operation.as_str(),
        cell.actor.name
    )
}

fn case_for(
    cell: &Cell,
    observed: Observed,
    verdict: CaseVerdict,
    message: Option<String>,
    duration_ms: u64,
) -> Case {
    Case {
        name: case_name(cell),
        group: cell.file.clone(),
        verdict,
        file: Some(cell.file.clone()),
        line: Some(cell.case_line),
        duration_ms,
        message,
        cell: Some(RlsCell {
            case: cell.case.clone(),
            target: cell.target.clone(),
            actor: cell.actor.name.clone(),
            operation: cell.operation,
            expected: cell.expect,
            observed,
            unreviewed: cell.unreviewed,
        }),
    }
}
