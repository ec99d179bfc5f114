//! The pgtap stage: the pgTAP suites Supabase teams already have (`supabase/tests/**`, what
//! `supabase test db` runs), executed by db-ci statement by statement on clones of the
//! replayed database and judged as pg_prove judges them.
//!
//! script (files → statements with file:line:col, psql meta-commands) → exec (sessions,
//! pipelined statements) → tap (TAP lines → assertions and problems) → cases and failures.

pub mod config;
pub mod exec;
pub mod script;
pub mod tap;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use self::exec::FileRun;
use self::script::Script;
use self::tap::{Directive, Judged};
use crate::error::{Error, Result};
use crate::events::{Event, Reporter};
use crate::project::Project;
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::sql::db_error_text;
use crate::stage::StageContext;
use crate::stage_id::StageId;

pub use self::config::PgtapConfig;
use self::config::DEFAULT_PATH;

const STAGE: StageId = StageId::Pgtap;

/// The project's test files, parsed before boot (a bad meta-command is exit 2 at once).
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub scripts: Vec<Script>,
    /// Where we looked, for the skip reason.
    pub paths: Vec<String>,
}

/// Finds and parses the test files: every `*.sql` and `*.pg` under the configured paths,
/// recursively, sorted by path (pg_prove's order).
pub fn load(project: &Project) -> Result<Suite> {
    let config = project.config.section::<PgtapConfig>();
    let mut files = Vec::new();
    let named = config.path_names() != [DEFAULT_PATH];
    for path in &config.paths {
        let full = project.root.join(&path.value);
        if full.is_file() {
            files.push(full);
        } else if full.is_dir() {
            collect(&full, &mut files)?;
        } else if named {
            return Err(Error::input(format!(
                "{}: pgtap.paths: `{}` does not exist",
                crate::yaml::Pos::of(path).at(crate::config::FILE_NAME),
                path.value
            )));
        }
    }
    files.sort();
    files.dedup();
    let mut scripts = Vec::new();
    for path in files {
        let rel = relative(&project.root, &path);
        let text =
            std::fs::read_to_string(&path).map_err(|e| Error::input(format!("read {rel}: {e}")))?;
        let read = |included: &str, relative_to_file: bool, from: &str| {
            read_include(&project.root, included, relative_to_file, from)
        };
        scripts.push(script::parse(&rel, &text, &read).map_err(Error::input)?);
    }
    Ok(Suite {
        scripts,
        paths: config.path_names(),
    })
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| Error::input(format!("read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "sql" || e == "pg") {
            files.push(path);
        }
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `\i` reads relative to the project root (psql's working directory when a project runs
/// its tests from there); `\ir` relative to the including file.
fn read_include(
    root: &Path,
    included: &str,
    relative_to_file: bool,
    from: &str,
) -> std::result::Result<(String, String), String> {
    let base = if relative_to_file {
        root.join(from)
            .parent()
            .map_or(root.to_path_buf(), Path::to_path_buf)
    } else {
        root.to_path_buf()
    };
    let path = base.join(included);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("read {included}: {e}"))?;
    Ok((relative(root, &path), text))
}

/// The pgtap stage with its suite read.
struct Loaded(Suite);

impl crate::stage::Loaded for Loaded {
    fn run<'a>(
        &'a self,
        ctx: &'a StageContext<'a>,
        reporter: &'a mut dyn Reporter,
    ) -> futures_util::future::LocalBoxFuture<'a, Result<StageReport>> {
        Box::pin(stage(ctx, &self.0, reporter))
    }
}

inventory::submit!(crate::stage::Registration {
    id: StageId::Pgtap,
    load: |input| {
        // An unsupported psql meta-command is exit 2 naming its line.
        Ok(Box::new(Loaded(load(input.project)?)))
    },
});

pub async fn stage(
    ctx: &StageContext<'_>,
    suite: &Suite,
    reporter: &mut dyn Reporter,
) -> Result<StageReport> {
    let started = Instant::now();
    if suite.scripts.is_empty() {
        return Ok(StageReport::skipped(
            STAGE,
            format!(
                "no pgTAP test files (*.sql, *.pg) in {}",
                suite.paths.join(", ")
            ),
        ));
    }
    let runs = run_all(ctx, &suite.scripts).await?;
    let mut report = StageReport::new(STAGE, StageVerdict::Pass);
    let mut bailed_out: Option<String> = None;
    let mut assertions = 0;
    let mut passed = 0;
    for (script, run) in suite.scripts.iter().zip(&runs) {
        let first = script.first();
        if let Some(bailer) = &bailed_out {
            let case = Case {
                name: format!("{}: not run", script.rel),
                group: script.rel.clone(),
                verdict: CaseVerdict::Skipped,
                file: Some(script.rel.clone()),
                line: None,
                duration_ms: 0,
                message: Some(format!("{bailer} bailed out before this file")),
                cell: None,
            };
            reporter.event(&Event::CaseDone {
                stage: STAGE,
                case: &case,
            });
            report.cases.push(case);
            continue;
        }
        let judged = tap::judge(&first, &run.outputs, run.death.as_ref());
        assertions += judged.assertions.len();
        passed += judged.assertions.iter().filter(|a| !a.failed()).count();
        for case in cases(script, &judged, run) {
            reporter.event(&Event::CaseDone {
                stage: STAGE,
                case: &case,
            });
            report.cases.push(case);
        }
        report.failures.extend(failures(&judged));
        if judged.bailed_out {
            bailed_out = Some(script.rel.clone());
        }
    }
    report.checks = assertions;
    report.verdict = if !report.failures.is_empty() {
        StageVerdict::Fail
    } else if assertions == 0 {
        // Every file skipped itself (`1..0 # skip`): nothing was checked, so no pass.
        StageVerdict::Skipped
    } else {
        StageVerdict::Pass
    };
    report.reason = Some(if report.verdict == StageVerdict::Skipped {
        format!(
            "all {} test file(s) skipped themselves: no assertion ran",
            suite.scripts.len()
        )
    } else {
        format!(
            "{passed} of {assertions} assertion(s) passed in {} file(s)",
            suite.scripts.len()
        )
    });
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Runs every file: those that leave committed state behind first, one after the other on
/// the stage's clone (as pg_prove would, in file order); then the isolated ones spread over
/// parallel sessions on clones of it. Results come back in file order.
async fn run_all(ctx: &StageContext<'_>, scripts: &[Script]) -> Result<Vec<FileRun>> {
    let server = ctx.server;
    let timeout = ctx.project.config.replay.statement_timeout;
    let template = server.unique_name("pgtap");
    server
        .create_database(&template, Some(ctx.database))
        .await?;
    let mut databases = vec![template.clone()];
    let result = run_on(ctx, scripts, &template, &mut databases, timeout).await;
    for database in databases {
        let _ = server.drop_database(&database).await;
    }
    result
}

async fn run_on(
    ctx: &StageContext<'_>,
    scripts: &[Script],
    template: &str,
    databases: &mut Vec<String>,
    timeout: std::time::Duration,
) -> Result<Vec<FileRun>> {
    let server = ctx.server;
    {
        // pgTAP made for the run, in `extensions`, as `supabase test db` does. On Supabase the
        // platform creates extensions as supabase_admin, so a migration's
        // `ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC` (run as postgres)
        // does not take pgTAP's functions away from the roles tests switch to.
        let client = server.connect(template).await?;
        client
            .batch_execute(
                "set role supabase_admin; \
                 create extension if not exists pgtap with schema extensions; \
                 reset role",
            )
            .await
            .map_err(|e| {
                Error::environment(format!(
                    "install pgTAP for the pgtap stage: {} (the server needs the pgtap extension: \
                     Debian's postgresql-NN-pgtap)",
                    db_error_text(&e)
                ))
            })?;
    }
    let mut runs: Vec<Option<FileRun>> = vec![None; scripts.len()];
    for (i, script) in scripts.iter().enumerate() {
        if !script.isolated {
            let client = exec::connect(server, template, timeout).await?;
            runs[i] = Some(exec::run_script(&client, script, false).await);
        }
    }
    let isolated: VecDeque<usize> = (0..scripts.len())
        .filter(|&i| scripts[i].isolated)
        .collect();
    if !isolated.is_empty() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let jobs = ctx
            .project
            .config
            .section::<PgtapConfig>()
            .jobs
            .unwrap_or(cores.min(4))
            .clamp(1, isolated.len());
        // The clones need the template disconnected, so they are made before any session.
        let mut worker_dbs = vec![template.to_owned()];
        for worker in 1..jobs {
            let name = server.unique_name(&format!("pgtap{worker}"));
            server.create_database(&name, Some(template)).await?;
            databases.push(name.clone());
            worker_dbs.push(name);
        }
        let queue = Mutex::new(isolated);
        let results = Mutex::new(Vec::new());
        let workers = worker_dbs.iter().map(|database| {
            let (queue, results) = (&queue, &results);
            async move {
                let mut client = exec::connect(server, database, timeout).await?;
                loop {
                    let next = queue.lock().unwrap().pop_front();
                    let Some(i) = next else { return Ok(()) };
                    let run = exec::run_script(&client, &scripts[i], true).await;
                    results.lock().unwrap().push((i, run));
                    // A file may have ended its own session (pg_terminate_backend): start
                    // a new one rather than fail the run.
                    if exec::reset(&client, timeout).await.is_err() {
                        client = exec::connect(server, database, timeout).await?;
                    }
                }
            }
        });
        let outcomes: Vec<Result<()>> = futures_util::future::join_all(workers).await;
        outcomes.into_iter().collect::<Result<()>>()?;
        for (i, run) in results.into_inner().unwrap() {
            runs[i] = Some(run);
        }
    }
    Ok(runs
        .into_iter()
        .map(|r| r.expect("every file ran"))
        .collect())
}

fn assertion_name(script: &Script, a: &tap::Assertion) -> String {
    if a.description.is_empty() {
        format!("{}: {}", script.rel, a.number)
    } else {
        format!("{}: {} - {}", script.rel, a.number, a.description)
    }
}

fn cases(script: &Script, judged: &Judged, run: &FileRun) -> Vec<Case> {
    let mut cases = Vec::new();
    let share = run.duration.as_millis() as u64 / (judged.assertions.len().max(1) as u64);
    for a in &judged.assertions {
        let (verdict, message) = match (&a.directive, a.ok) {
            (Some(Directive::Skip(reason)), _) => {
                (CaseVerdict::Skipped, Some(format!("skip: {reason}")))
            }
            (Some(Directive::Todo(reason)), false) => {
                (CaseVerdict::Skipped, Some(format!("todo: {reason}")))
            }
            (_, true) => (CaseVerdict::Pass, None),
            (_, false) => (CaseVerdict::Fail, Some(failed_message(a))),
        };
        cases.push(Case {
            name: assertion_name(script, a),
            group: script.rel.clone(),
            verdict,
            file: Some(a.pos.file.clone()),
            line: Some(a.pos.line),
            duration_ms: share,
            message,
            cell: None,
        });
    }
    if let Some(reason) = &judged.skipped_all {
        cases.push(Case {
            name: format!("{}: skipped", script.rel),
            group: script.rel.clone(),
            verdict: CaseVerdict::Skipped,
            file: Some(script.rel.clone()),
            line: None,
            duration_ms: 0,
            message: Some(format!("the file skips itself: {reason}")),
            cell: None,
        });
    }
    for problem in &judged.problems {
        cases.push(Case {
            name: format!("{}: {}", script.rel, problem.message()),
            group: script.rel.clone(),
            verdict: if problem.broken() {
                CaseVerdict::Broken
            } else {
                CaseVerdict::Fail
            },
            file: Some(problem.pos.file.clone()),
            line: Some(problem.pos.line),
            duration_ms: 0,
            message: Some(problem.message()),
            cell: None,
        });
    }
    cases
}

fn failed_message(a: &tap::Assertion) -> String {
    if a.description.is_empty() {
        format!("not ok {}", a.number)
    } else {
        format!("not ok {} - {}", a.number, a.description)
    }
}

fn failures(judged: &Judged) -> Vec<Failure> {
    let mut failures = Vec::new();
    for a in judged.assertions.iter().filter(|a| a.failed()) {
        failures.push(Failure {
            file: a.pos.file.clone(),
            line: a.pos.line,
            column: Some(a.pos.column),
            message: failed_message(a),
            // pgTAP repeats the description as "Failed test N: …"; have/want are the news.
            // finish()'s "Looks like you failed…" summary follows the last assertion.
            notes: a
                .diagnostics
                .iter()
                .filter(|d| {
                    !d.starts_with("Failed test")
                        && !d.starts_with("Failed (TODO) test")
                        && !d.starts_with("Looks like you")
                })
                .cloned()
                .collect(),
            statement: Some(crate::sql::excerpt(&a.statement, 6)).filter(|s| !s.is_empty()),
        });
    }
    for problem in &judged.problems {
        let notes = match &problem.kind {
            tap::ProblemKind::Died { notes, .. } => notes.clone(),
            tap::ProblemKind::NoTests => vec![
                "a test file that runs no assertion proves nothing: give it select plan(N) and its assertions"
                    .to_owned(),
            ],
            _ => Vec::new(),
        };
        failures.push(Failure {
            file: problem.pos.file.clone(),
            line: problem.pos.line,
            column: Some(problem.pos.column),
            message: problem.message(),
            notes,
            statement: problem.statement.clone().filter(|s| !s.is_empty()),
        });
    }
    failures
}
