//! The pgtap stage: the pgTAP suites Supabase teams already have (`supabase/tests/**`, what
//! `supabase test db` runs), executed by db-ci as one pg_prove run does: every file in
//! path order, each in a new psql session, on one database that keeps what every earlier
//! file left, and judged by TAP::Harness's rules.
//!
//! script (files → statements with file:line:col, psql meta-commands) → exec (psql's
//! behaviour, pipelined statements inside transaction blocks) → tap (TAP lines →
//! assertions and problems) → cases and failures.

pub mod config;
pub mod exec;
pub mod script;
pub mod tap;
pub mod vars;

use std::path::{Path, PathBuf};
use std::time::Instant;

use self::exec::FileRun;
use self::script::{ParseError, Script};
use self::tap::{Directive, Judged};
use crate::diag::Diagnostic;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::report::events::{Event, Reporter};
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::sql::db_error_text;
use crate::stage::StageContext;
use crate::stage_id::StageId;

pub use self::config::PgtapConfig;
use self::config::DEFAULT_PATH;

const STAGE: StageId = StageId::Pgtap;

/// The project's test files in pg_prove's order, parsed before boot.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    /// The files db-ci can run, in order, up to the first it cannot.
    pub scripts: Vec<Script>,
    /// The first file db-ci cannot run as psql would (an unsupported meta-command, an `\i`
    /// of a missing file): the stage fails there, and the files after it are not run,
    /// since their verdict would depend on what that file did.
    pub unreadable: Option<Unreadable>,
    /// Where we looked, for the skip reason.
    pub paths: Vec<String>,
}

/// A test file db-ci cannot run, and the files after it.
#[derive(Debug, Clone)]
pub struct Unreadable {
    pub rel: String,
    pub error: ParseError,
    pub after: Vec<String>,
}

/// Finds and parses the test files as `supabase test db` hands them to pg_prove
/// (`pg_prove --ext .pg --ext .sql -r <paths>`): per configured path, every file whose
/// name ends in `.sql` or `.pg` below it, sorted as strings (byte order: `a.sql` before
/// `a/b.sql`), paths in the order written, a file named twice run once. psql runs in the
/// first path (its folder when it names a file), so `\i` resolves from there and `\ir` from
/// the including file.
pub fn load(project: &Project) -> Result<Suite> {
    let config = project.config.section::<PgtapConfig>();
    let mut files: Vec<PathBuf> = Vec::new();
    let named = config.path_names() != [DEFAULT_PATH];
    let mut working_dir: Option<PathBuf> = None;
    for path in &config.paths {
        let full = project.root.join(&path.value);
        let mut found = Vec::new();
        // A configured path that is a broken link, a loop or a FIFO is no suite to skip.
        if let Some(what) = crate::files::not_a_file(&full).filter(|w| *w != "a directory") {
            return Err(unreadable(
                relative(&project.root, &full),
                format!("{what}, where pgTAP tests are expected"),
            ));
        }
        if full.is_file() {
            found.push(full.clone());
            working_dir.get_or_insert_with(|| full.parent().unwrap_or(&project.root).to_path_buf());
        } else if full.is_dir() {
            collect(&project.root, &full, &mut found)?;
            found.sort_by(|a, b| {
                a.as_os_str()
                    .as_encoded_bytes()
                    .cmp(b.as_os_str().as_encoded_bytes())
            });
            working_dir.get_or_insert_with(|| full.clone());
        } else if named {
            let pos = crate::yaml::Pos::of(path);
            return Err(Error::at(
                crate::config::FILE_NAME,
                pos.line,
                pos.column,
                format!("pgtap.paths: `{}` does not exist", path.value),
            ));
        }
        for file in found {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    let working_dir = working_dir.unwrap_or_else(|| project.root.clone());
    let mut suite = Suite {
        paths: config.path_names(),
        ..Suite::default()
    };
    for path in files {
        let rel = relative(&project.root, &path);
        if let Some(unreadable) = &mut suite.unreadable {
            unreadable.after.push(rel);
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| unreadable(rel.clone(), e))?;
        let read = |included: &str, relative_to_file: bool, from: &str| {
            read_include(
                &project.root,
                &working_dir,
                included,
                relative_to_file,
                from,
            )
        };
        match script::parse(&rel, &text, &read) {
            Ok(script) => suite.scripts.push(script),
            Err(error) => {
                suite.unreadable = Some(Unreadable {
                    rel,
                    error,
                    after: Vec::new(),
                })
            }
        }
    }
    Ok(suite)
}

/// Every test file below `dir`, as `pg_prove -r` finds them. What is named like a test file
/// must be one, and a link that does not resolve may be a folder of tests: either is an input
/// error at its path, never a file quietly skipped. A link back to a folder being walked is
/// a loop, refused, so no file runs twice through it.
fn collect(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut walking = Vec::new();
    walk(root, dir, &mut walking, files)
}

fn walk(
    root: &Path,
    dir: &Path,
    walking: &mut Vec<(u64, u64)>,
    files: &mut Vec<PathBuf>,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| unreadable(relative(root, dir), e))?;
    let id = (meta.dev(), meta.ino());
    if walking.contains(&id) {
        return Err(unreadable(
            relative(root, dir),
            "a symlink loop (it leads back to a folder above it); pgTAP files would run more \
             than once",
        ));
    }
    walking.push(id);
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(relative(root, dir), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| unreadable(relative(root, dir), e))?
            .path();
        let test_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".sql") || n.ends_with(".pg"));
        match crate::files::not_a_file(&path) {
            None if test_name => files.push(path),
            None => {}
            Some("a directory") if !test_name => walk(root, &path, walking, files)?,
            Some(what) if test_name || what.starts_with("a symlink") => {
                return Err(unreadable(
                    relative(root, &path),
                    format!("{what}, where a pgTAP test file or folder is expected"),
                ));
            }
            Some(_) => {}
        }
    }
    walking.pop();
    Ok(())
}

/// An input error about the file or folder at `rel` as a whole: it cannot be read, and why.
fn unreadable(rel: String, why: impl std::fmt::Display) -> Error {
    let message = format!("read {rel}: {why}");
    Diagnostic::in_file(rel, message).into()
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// `\i` reads relative to psql's working directory (where `supabase test db` starts
/// pg_prove: the tests folder); `\ir` relative to the including file.
fn read_include(
    root: &Path,
    working_dir: &Path,
    included: &str,
    relative_to_file: bool,
    from: &str,
) -> std::result::Result<(String, String), script::IncludeError> {
    let base = if relative_to_file {
        root.join(from)
            .parent()
            .map_or(root.to_path_buf(), Path::to_path_buf)
    } else {
        working_dir.to_path_buf()
    };
    let path = base.join(included);
    if let Some(what) = crate::files::not_a_file(&path) {
        return Err(script::IncludeError::NotAFile {
            path: included.to_owned(),
            what,
        });
    }
    let text =
        std::fs::read_to_string(&path).map_err(|source| script::IncludeError::Unreadable {
            path: included.to_owned(),
            base: relative(root, &base).trim_end_matches('/').to_owned() + "/",
            source,
        })?;
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
        let suite = load(input.project)?;
        // A file db-ci cannot run fails the stage at its line, and the other stages run;
        // when the tests are all the run was asked for, it is exit 2 before anything boots.
        if let (true, Some(unreadable)) = (input.alone, &suite.unreadable) {
            let ParseError { pos, message } = &unreadable.error;
            let mut diagnostic = Diagnostic::at(&pos.file, pos.line, Some(pos.column), message);
            // The file was read a moment ago; read again only to draw the line.
            if let Ok(text) = std::fs::read_to_string(input.project.root.join(&pos.file)) {
                diagnostic = diagnostic.with_source(&text);
            }
            return Err(diagnostic.into());
        }
        Ok(Box::new(Loaded(suite)))
    },
    on_rehearsal: false,
    cli: crate::stage::StageCli {
        command: Some(crate::stage::StageCommand::plain(
            "pgtap",
            "Replay once, then run the pgTAP test files (supabase/tests)",
        )),
        ..crate::stage::StageCli::NONE
    },
});

pub async fn stage(
    ctx: &StageContext<'_>,
    suite: &Suite,
    reporter: &mut dyn Reporter,
) -> Result<StageReport> {
    let started = Instant::now();
    if suite.scripts.is_empty() && suite.unreadable.is_none() {
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
    let mut counts = Counts::default();
    let mut not_run = Vec::new();
    for (script, run) in suite.scripts.iter().zip(&runs) {
        let Some(run) = run else {
            not_run.push(script.rel.clone());
            continue;
        };
        let judged = tap::judge(&script.first(), &run.outputs, run.death.as_ref());
        counts.add(&judged);
        for case in cases(script, &judged, run) {
            push_case(&mut report, reporter, case);
        }
        report.failures.extend(failures(&judged));
        if judged.bailed_out {
            bailed_out = Some(script.rel.clone());
        }
    }
    if let Some(unreadable) = &suite.unreadable {
        counts.files += 1;
        counts.unreadable += 1;
        let e = &unreadable.error;
        push_case(
            &mut report,
            reporter,
            Case {
                name: format!("{}: cannot be run as psql runs it", unreadable.rel),
                group: unreadable.rel.clone(),
                verdict: CaseVerdict::Broken,
                file: Some(e.pos.file.clone()),
                line: Some(e.pos.line),
                duration_ms: 0,
                message: Some(e.message.clone()),
                cell: None,
            },
        );
        report.failures.push(Failure {
            file: e.pos.file.clone(),
            line: e.pos.line,
            column: Some(e.pos.column),
            message: format!("db-ci cannot run this test file: {}", e.message),
            notes: vec![
                "the files after it are not run: their verdict would depend on what this file did"
                    .to_owned(),
            ],
            statement: None,
        });
        not_run.extend(unreadable.after.iter().cloned());
    }
    for rel in not_run {
        counts.files += 1;
        counts.not_run += 1;
        let why = match (&bailed_out, &suite.unreadable) {
            (Some(bailer), _) => format!("{bailer} bailed out before this file"),
            (None, Some(unreadable)) => {
                format!("{} could not be run before this file", unreadable.rel)
            }
            (None, None) => "not run".to_owned(),
        };
        push_case(
            &mut report,
            reporter,
            Case {
                name: format!("{rel}: not run"),
                group: rel.clone(),
                verdict: CaseVerdict::Skipped,
                file: Some(rel.clone()),
                line: None,
                duration_ms: 0,
                message: Some(why),
                cell: None,
            },
        );
    }
    report.checks = counts.assertions;
    report.verdict = if !report.failures.is_empty() {
        StageVerdict::Fail
    } else if counts.assertions == 0 {
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
        counts.reason()
    });
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn push_case(report: &mut StageReport, reporter: &mut dyn Reporter, case: Case) {
    reporter.event(&Event::CaseDone {
        stage: STAGE,
        case: &case,
    });
    report.cases.push(case);
}

/// What the stage's reason counts.
#[derive(Debug, Default)]
struct Counts {
    files: usize,
    failed_files: usize,
    died: usize,
    unreadable: usize,
    not_run: usize,
    assertions: usize,
    passed: usize,
    never_ran: usize,
}

impl Counts {
    fn add(&mut self, judged: &Judged) {
        self.files += 1;
        self.assertions += judged.assertions.len();
        self.passed += judged.assertions.iter().filter(|a| !a.failed()).count();
        self.never_ran += judged.never_ran();
        if !judged.passed() {
            self.failed_files += 1;
        }
        if judged.died {
            self.died += 1;
        }
    }

    /// "88 of 93 assertion(s) passed in 12 file(s); 3 file(s) failed, 2 of them died (7
    /// planned assertion(s) never ran)".
    fn reason(&self) -> String {
        let mut reason = format!(
            "{} of {} assertion(s) passed in {} file(s)",
            self.passed, self.assertions, self.files
        );
        let failed = self.failed_files + self.unreadable;
        if failed > 0 {
            reason.push_str(&format!("; {failed} file(s) failed"));
            if self.died > 0 {
                reason.push_str(&format!(", {} of them died", self.died));
            }
            if self.unreadable > 0 {
                reason.push_str(&format!(
                    ", {} of them cannot be run as psql runs it",
                    self.unreadable
                ));
            }
        }
        if self.never_ran > 0 {
            reason.push_str(&format!(
                "; {} planned assertion(s) never ran",
                self.never_ran
            ));
        }
        if self.not_run > 0 {
            reason.push_str(&format!("; {} file(s) not run", self.not_run));
        }
        reason
    }
}

/// Runs every file in order on one clone of the replayed database, each on a session put
/// back as new, as one pg_prove run does on one database: a file sees everything the files
/// before it left (committed rows, sequence values, anything outside a transaction).
/// Nothing runs apart, so no file can miss another's leftovers. `None` for a file not run
/// (after a bail out).
async fn run_all(ctx: &StageContext<'_>, scripts: &[Script]) -> Result<Vec<Option<FileRun>>> {
    let server = ctx.server;
    let timeout = ctx.project.config.replay.statement_timeout;
    let database = server.unique_name("pgtap");
    server
        .create_database(&database, Some(ctx.database))
        .await?;
    let result = run_on(ctx, scripts, &database, timeout).await;
    let _ = server.drop_database(&database).await;
    result
}

async fn run_on(
    ctx: &StageContext<'_>,
    scripts: &[Script],
    database: &str,
    timeout: std::time::Duration,
) -> Result<Vec<Option<FileRun>>> {
    let server = ctx.server;
    {
        // pgTAP made for the run, in `extensions`, as `supabase test db` does. On Supabase the
        // platform creates extensions as supabase_admin, so a migration's
        // `ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC` (run as postgres)
        // does not take pgTAP's functions away from the roles tests switch to.
        let client = server.connect(database).await?;
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
    let mut runs = Vec::with_capacity(scripts.len());
    let mut client = exec::connect(server, database, timeout).await?;
    let mut bailed_out = false;
    for script in scripts {
        if bailed_out {
            runs.push(None);
            continue;
        }
        let run = exec::run_script(&client, script).await;
        // TAP::Harness stops at a bail out: later files never run.
        bailed_out = run
            .outputs
            .iter()
            .flat_map(|o| &o.lines)
            .any(|line| matches!(tap::parse_line(line), tap::Line::BailOut(_)));
        runs.push(Some(run));
        // A file may have ended its own session (pg_terminate_backend): start a new one.
        if exec::reset(&client, timeout).await.is_err() {
            client = exec::connect(server, database, timeout).await?;
        }
    }
    Ok(runs)
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
        let (verdict, message) = match (&a.directive, a.failed()) {
            (_, true) => (CaseVerdict::Fail, Some(failed_message(a))),
            (Some(Directive::Skip(reason)), false) => {
                (CaseVerdict::Skipped, Some(format!("skip: {reason}")))
            }
            (Some(Directive::Todo(reason)), false) if !a.ok => {
                (CaseVerdict::Skipped, Some(format!("todo: {reason}")))
            }
            (_, false) => (CaseVerdict::Pass, None),
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
    let line = match (a.ok, a.description.is_empty()) {
        (true, true) => format!("ok {}", a.number),
        (true, false) => format!("ok {} - {}", a.number, a.description),
        (false, true) => format!("not ok {}", a.number),
        (false, false) => format!("not ok {} - {}", a.number, a.description),
    };
    if a.unplanned {
        format!("{line}: ran beyond the plan (TAP::Harness counts it failed)")
    } else {
        line
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tests_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let tests = dir.path().join("supabase/tests");
        std::fs::create_dir_all(tests.join("sub")).unwrap();
        std::fs::write(tests.join("a_test.sql"), "select 1;").unwrap();
        std::fs::write(tests.join("sub/b_test.sql"), "select 1;").unwrap();
        (dir, tests)
    }

    fn walked(root: &Path, tests: &Path) -> Result<Vec<String>> {
        let mut files = Vec::new();
        collect(root, tests, &mut files)?;
        files.sort();
        Ok(files.iter().map(|f| relative(root, f)).collect())
    }

    #[test]
    fn a_plain_tree_and_a_link_to_a_folder_elsewhere_are_walked_once() {
        let (dir, tests) = tests_dir();
        std::fs::create_dir(dir.path().join("shared")).unwrap();
        std::fs::write(dir.path().join("shared/c_test.sql"), "select 1;").unwrap();
        std::os::unix::fs::symlink("../../shared", tests.join("shared")).unwrap();
        assert_eq!(
            walked(dir.path(), &tests).unwrap(),
            [
                "supabase/tests/a_test.sql",
                "supabase/tests/shared/c_test.sql",
                "supabase/tests/sub/b_test.sql"
            ]
        );
    }

    #[test]
    fn a_symlink_loop_is_refused_at_its_path() {
        let (dir, tests) = tests_dir();
        std::os::unix::fs::symlink("..", tests.join("sub/back")).unwrap();
        let err = walked(dir.path(), &tests).unwrap_err().to_string();
        assert!(
            err.contains("supabase/tests/sub/back: a symlink loop"),
            "{err}"
        );
        // A link to itself: the kernel's ELOOP.
        std::fs::remove_file(tests.join("sub/back")).unwrap();
        std::os::unix::fs::symlink("self", tests.join("sub/self")).unwrap();
        let err = walked(dir.path(), &tests).unwrap_err().to_string();
        assert!(
            err.contains("supabase/tests/sub/self: a symlink loop"),
            "{err}"
        );
    }

    #[test]
    fn what_is_named_like_a_test_file_must_be_one() {
        for (name, make) in [
            ("gone_test.sql", "broken"),
            ("folder_test.sql", "dir"),
            ("pipe_test.sql", "fifo"),
            ("folder", "broken"),
        ] {
            let (dir, tests) = tests_dir();
            let path = tests.join("sub").join(name);
            match make {
                "broken" => std::os::unix::fs::symlink("nowhere", &path).unwrap(),
                "dir" => std::fs::create_dir(&path).unwrap(),
                _ => nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRWXU).unwrap(),
            }
            let err = walked(dir.path(), &tests).unwrap_err().to_string();
            assert!(
                err.contains(&format!("supabase/tests/sub/{name}: a")),
                "{err}"
            );
        }
    }
}
