//! The pgtap stage against pg_prove itself: for every pgTAP fixture suite, db-ci's verdict
//! per file and per assertion equals what `pg_prove --ext .pg --ext .sql -r supabase/tests`
//! (as `supabase test db` runs it, from the tests folder) gives on a clone of the same
//! replayed database. pg_prove is Debian's `libtap-parser-sourcehandler-pgtap-perl`
//! (`.ci/run` installs it): missing, the test fails under CI=true and skips loudly elsewhere.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::report::CaseVerdict;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;
use db_ci::stage_id::StageId;

/// Per file: whether it failed, and per assertion number whether it failed.
type Verdicts = BTreeMap<String, (bool, Vec<(usize, bool)>)>;

fn pg_prove_installed() -> bool {
    let found = Command::new("pg_prove").arg("--version").output().is_ok();
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("pg_prove is required in CI (apt-get install libtap-parser-sourcehandler-pgtap-perl)");
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPING the pg_prove differential test: pg_prove is not installed \
             (apt-get install libtap-parser-sourcehandler-pgtap-perl)\n"
        );
    }
    found
}

fn suites() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            // The suites `db-ci pgtap` runs (not its input errors, not `db-ci run` fixtures).
            name.contains("pgtap")
                && p.join("supabase/tests").is_dir()
                && std::fs::read_to_string(p.join("expected.yaml"))
                    .is_ok_and(|e| e.lines().any(|l| l.trim() == "command: pgtap"))
                && !name.starts_with("input-")
        })
        .collect();
    dirs.sort();
    if let Ok(only) = std::env::var("DB_CI_FIXTURE") {
        dirs.retain(|d| d.to_string_lossy().contains(&only));
    }
    // Other projects to hold against pg_prove the same way (public suites checked out
    // elsewhere): `DB_CI_PGTAP_SUITES=/path/a:/path/b`.
    if let Ok(extra) = std::env::var("DB_CI_PGTAP_SUITES") {
        dirs.extend(
            extra
                .split(':')
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
        );
    }
    dirs
}

/// Reads `pg_prove -v` output: each file's TAP test lines, and the files its summary
/// report lists as failed.
fn read_pg_prove(output: &str, tests_dir: &Path, root: &Path) -> Verdicts {
    let prefix = format!("{}/", tests_dir.display());
    let rel = |abs: &str| {
        Path::new(abs)
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (body, summary) = output
        .split_once("\nTest Summary Report\n")
        .unwrap_or((output, ""));
    // The harness's closing lines are not any file's.
    let body = body.split("\nAll tests successful.\n").next().unwrap();
    let body = body.split("\nFiles=").next().unwrap();
    let failed: Vec<String> = summary
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| rel(l.split_whitespace().next().unwrap()))
        .collect();
    // The summary's counts per failed file: (tests, failed test numbers).
    let mut summarised: BTreeMap<String, (usize, Vec<usize>)> = BTreeMap::new();
    let mut current = None;
    for line in summary.lines() {
        if line.starts_with(&prefix) {
            let file = rel(line.split_whitespace().next().unwrap());
            let tests = line
                .split("Tests: ")
                .nth(1)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            summarised.insert(file.clone(), (tests, Vec::new()));
            current = Some(file);
        } else if let (Some(file), Some(list)) = (
            &current,
            line.trim_start()
                .strip_prefix("Failed tests:")
                .or_else(|| line.trim_start().strip_prefix("Failed test:")),
        ) {
            let numbers = &mut summarised.get_mut(file).unwrap().1;
            for part in list.split(',').map(str::trim) {
                match part.split_once('-') {
                    Some((a, b)) => {
                        numbers.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap())
                    }
                    None => numbers.push(part.parse().unwrap()),
                }
            }
        }
    }
    // (file, TAP lines, whether the harness printed them: not for a skip-all file)
    let mut files: Vec<(String, Vec<String>, bool)> = Vec::new();
    for line in body.lines() {
        if line.starts_with(&prefix) && line.contains(" ..") {
            let (path, after) = line.split_once(" ..").unwrap();
            let verbose = after.trim_start_matches('.').trim().is_empty();
            files.push((rel(path), Vec::new(), verbose));
        } else if let Some((_, lines, _)) = files.last_mut() {
            lines.push(line.to_owned());
        }
    }
    let mut verdicts = Verdicts::new();
    for (file, mut lines, verbose) in files {
        let file_failed = failed.contains(&file);
        if !verbose {
            // A skip-all file: its tests (run anyway) are only in the summary.
            let (tests, failed_numbers) = summarised.get(&file).cloned().unwrap_or_default();
            let assertions = (1..=tests)
                .map(|n| (n, failed_numbers.contains(&n)))
                .collect();
            verdicts.insert(file, (file_failed, assertions));
            continue;
        }
        // A passing file's verbose trailer is a bare `ok` line.
        if !file_failed && lines.last().is_some_and(|l| l == "ok") {
            lines.pop();
        }
        let mut planned: Option<usize> = None;
        let mut assertions = Vec::new();
        for line in &lines {
            match db_ci::pgtap::tap::parse_line(line) {
                db_ci::pgtap::tap::Line::Plan { count, .. } if planned.is_none() => {
                    planned = Some(count)
                }
                db_ci::pgtap::tap::Line::Test {
                    ok,
                    number,
                    directive,
                    ..
                } => {
                    let run = assertions.len() + 1;
                    let todo = matches!(directive, Some(db_ci::pgtap::tap::Directive::Todo(_)));
                    let unplanned = planned.is_some_and(|p| run > p);
                    assertions.push((number.unwrap_or(run), unplanned || (!ok && !todo)));
                }
                _ => {}
            }
        }
        verdicts.insert(file, (file_failed, assertions));
    }
    verdicts
}

fn db_ci_verdicts(report: &db_ci::report::StageReport) -> Verdicts {
    let mut verdicts = Verdicts::new();
    for case in &report.cases {
        let entry = verdicts.entry(case.group.clone()).or_default();
        let failed = matches!(case.verdict, CaseVerdict::Fail | CaseVerdict::Broken);
        entry.0 |= failed;
        let rest = case
            .name
            .strip_prefix(&format!("{}: ", case.group))
            .unwrap_or("");
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(number) = digits.parse::<usize>() {
            if rest[digits.len()..].is_empty() || rest[digits.len()..].starts_with(" - ") {
                entry.1.push((number, failed));
            }
        }
    }
    verdicts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgtap_verdicts_equal_pg_prove_on_every_fixture_suite() {
    if !pg_prove_installed() || common::Backend::local().is_none() {
        return;
    }
    let suites = suites();
    if std::env::var_os("DB_CI_FIXTURE").is_none() {
        assert!(
            suites.len() >= 6,
            "the pgTAP fixture suites are found: {suites:?}"
        );
    }
    let mut mismatches = Vec::new();
    for dir in &suites {
        let project = Project::discover(dir).unwrap();
        let options = RunOptions {
            backend: BackendOptions {
                kind: BackendKind::Local,
                ..Default::default()
            },
            only: Some(vec![StageId::Pgtap]),
            any_server_version: true,
            ..Default::default()
        };
        let (report, replayed) = run_keeping(&project, &options, &mut Silent).await;
        let stage = report
            .stage(StageId::Pgtap)
            .expect("the pgtap stage ran")
            .clone();
        let replay_failed = report
            .stage(StageId::Replay)
            .is_some_and(|r| r.verdict == db_ci::report::StageVerdict::Fail);
        if replay_failed && !dir.starts_with(env!("CARGO_MANIFEST_DIR")) {
            // Nothing to compare: db-ci could not build the database the suite runs on.
            eprintln!(
                "\n!!! {}: db-ci's replay failed, no comparison: {:?}\n",
                dir.display(),
                report
                    .stage(StageId::Replay)
                    .unwrap()
                    .failures
                    .first()
                    .map(|f| &f.message)
            );
            if let Some(replayed) = replayed {
                replayed.server.shutdown().await;
            }
            continue;
        }
        let Some(replayed) = replayed else {
            panic!(
                "{}: the replayed database is kept: {report:?}",
                dir.display()
            )
        };
        let server = &replayed.server;
        let database = server.unique_name("pg_prove");
        server
            .create_database(&database, Some(&replayed.database))
            .await
            .unwrap();
        server
            .connect(&database)
            .await
            .unwrap()
            .batch_execute(
                "set role supabase_admin; create extension if not exists pgtap with schema extensions; reset role",
            )
            .await
            .unwrap();
        let Host::Socket(socket) = &server.connection.host else {
            unreachable!("the local backend listens on a socket")
        };
        let tests_dir = dir.join("supabase/tests");
        eprintln!(
            "{}: db-ci pgtap: {}",
            dir.display(),
            stage.reason.clone().unwrap_or_default()
        );
        let output = Command::new("pg_prove")
            .current_dir(&tests_dir)
            .arg("-h")
            .arg(socket)
            .args([
                "-p",
                &server.connection.port.to_string(),
                "-U",
                "postgres",
                "-d",
                &database,
            ])
            .args(["-v", "--ext", ".pg", "--ext", ".sql", "-r"])
            .arg(&tests_dir)
            .output()
            .expect("run pg_prove");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let theirs = read_pg_prove(&stdout, &tests_dir, dir);
        let ours = db_ci_verdicts(&stage);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !theirs.is_empty(),
            "{name}: pg_prove ran no file:\n{stdout}"
        );
        if theirs != ours {
            mismatches.push(format!(
                "{name}:\n  pg_prove: {theirs:?}\n  db-ci:    {ours:?}\n--- pg_prove output\n{stdout}"
            ));
        }
        let _ = server.drop_database(&database).await;
        replayed.server.shutdown().await;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

/// Issue: a test file db-ci cannot read stopped `db-ci replay` and `db-ci lint` with exit 2,
/// though neither runs tests. They do not read the tests now; `db-ci pgtap` alone still
/// refuses it before boot.
#[test]
fn an_unrunnable_test_file_blocks_only_the_pgtap_stage() {
    let Some(backend) = common::Backend::local() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fail-pgtap-unrunnable-file-other-stages-run");
    for (command, code) in [("replay", 0), ("lint", 0), ("pgtap", 2)] {
        let work = tempfile::tempdir().unwrap();
        common::copy_dir(&dir, work.path());
        let mut args = vec![command.to_owned(), work.path().display().to_string()];
        args.extend(backend.args());
        args.push("--any-server-version".to_owned());
        let output = common::db_ci(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "db-ci {command}:\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        );
        if code == 2 {
            assert!(
                stderr.contains("supabase/tests/01-0-load.sql:3:1: psql meta-command `\\copy`"),
                "{stderr}"
            );
        }
    }
}
