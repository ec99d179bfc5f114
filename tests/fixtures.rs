//! Walks every folder in `fixtures/`, runs `db-ci run` on it on every available backend, and
//! checks the exit code and JSON report against the folder's `expected.yaml`, and that the
//! JUnit report of every run is XML a strict parser accepts and that nothing it prints holds
//! a raw control character.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    /// The db-ci command: `run` (default), or a single stage (`rls`, `props`, …).
    #[serde(default = "run_command")]
    command: String,
    #[serde(default)]
    args: Vec<String>,
    exit_code: i32,
    verdict: Option<String>,
    #[serde(default)]
    stages: BTreeMap<String, String>,
    failures: Option<Vec<ExpectedFailure>>,
    error_contains: Option<String>,
    #[serde(default)]
    pending: Vec<Pending>,
    /// Lint findings at any level (also below the fail level), as `rule: object`: each must
    /// be a case of the lint stage.
    #[serde(default)]
    lint_findings: Vec<String>,
    /// Verdicts of single checks (e.g. a property that must pass beside one that fails).
    #[serde(default)]
    cases: Vec<ExpectedCase>,
    /// An input error (exit 2) that only the replayed catalog can show (an actor's role that
    /// no migration creates): the one kind allowed to need a server.
    #[serde(default)]
    input_error_needs_catalog: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedCase {
    stage: String,
    name: String,
    verdict: String,
    /// A substring the case's message must hold (case-insensitive).
    message_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFailure {
    stage: String,
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    message_contains: Option<String>,
    /// A substring of one of the failure's notes (case-insensitive).
    note_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by people: what later stages must catch
struct Pending {
    stage: String,
    defect: String,
}

fn run_command() -> String {
    "run".to_owned()
}

fn fixture_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures/ exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if let Ok(only) = std::env::var("DB_CI_FIXTURE") {
        dirs.retain(|d| d.file_name().unwrap().to_string_lossy().contains(&only));
    }
    dirs
}

fn check(dir: &Path, backend: &common::Backend) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let expected_text = std::fs::read_to_string(dir.join("expected.yaml"))
        .map_err(|e| format!("{name}: read expected.yaml: {e}"))?;
    let expected: Expected = serde_saphyr::from_str(&expected_text)
        .map_err(|e| format!("{name}: parse expected.yaml: {e}"))?;
    let json_dir = tempfile::tempdir().unwrap();
    let json_path = json_dir.path().join("report.json");
    let mut args: Vec<String> = vec![expected.command.clone(), dir.display().to_string()];
    args.extend(backend.args());
    args.extend(["--json".into(), json_path.display().to_string()]);
    let junit_path = json_dir.path().join("report.xml");
    args.extend(["--junit".into(), junit_path.display().to_string()]);
    args.extend(expected.args.iter().cloned());
    // CI=true: a missing snapshot fails instead of being written into the repository.
    let output = common::db_ci_with_env(&args, &[("CI", "true")]);
    let code = output.status.code().unwrap_or(-1);
    let raw_controls = |bytes: &[u8]| -> Vec<char> {
        String::from_utf8_lossy(bytes)
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect()
    };
    let mut problems = Vec::new();
    // Data (a seed value in an error's detail) must never reach the terminal raw.
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let raw = raw_controls(bytes);
        if !raw.is_empty() {
            problems.push(format!("{stream} holds raw control characters: {raw:?}"));
        }
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!(
        "{name} on {}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        backend.name
    );
    if code != expected.exit_code {
        problems.push(format!("exit code {code}, expected {}", expected.exit_code));
    }
    if let Some(needle) = &expected.error_contains {
        if !stderr.to_lowercase().contains(&needle.to_lowercase()) {
            problems.push(format!("stderr lacks {needle:?}"));
        }
    }
    if expected.exit_code == 0 || expected.exit_code == 1 {
        let report: serde_json::Value = std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| format!("no JSON report written\n{context}"))?;
        match std::fs::read_to_string(&junit_path) {
            Ok(xml) => problems.extend(junit_problems(&xml, &junit_path)),
            Err(e) => problems.push(format!("no JUnit report written: {e}")),
        }
        if let Some(verdict) = &expected.verdict {
            if report["verdict"] != verdict.as_str() {
                problems.push(format!("verdict {}, expected {verdict}", report["verdict"]));
            }
        }
        let stages = report["stages"].as_array().cloned().unwrap_or_default();
        // A fixture must say what it expects: no check passes by checking nothing.
        if expected.stages.is_empty() || expected.failures.is_none() {
            problems.push(
                "expected.yaml must list stage verdicts and failures (failures: [] when none)"
                    .into(),
            );
        }
        for (stage, verdict) in &expected.stages {
            let found = stages.iter().find(|s| s["name"] == stage.as_str());
            match found {
                Some(s) if s["verdict"] == verdict.as_str() => {}
                Some(s) => problems.push(format!(
                    "stage {stage} is {}, expected {verdict}",
                    s["verdict"]
                )),
                None => problems.push(format!("stage {stage} missing from the report")),
            }
        }
        let all_failures: usize = stages
            .iter()
            .map(|s| s["failures"].as_array().map_or(0, |f| f.len()))
            .sum();
        let wanted = expected.failures.as_deref().unwrap_or_default();
        if wanted.is_empty() && all_failures > 0 {
            problems.push(format!("{all_failures} unexpected failure(s)"));
        }
        for want in wanted {
            let stage = stages.iter().find(|s| s["name"] == want.stage.as_str());
            let failures = stage
                .and_then(|s| s["failures"].as_array().cloned())
                .unwrap_or_default();
            let hit = failures.iter().any(|f| {
                f["file"] == want.file.as_str()
                    && want.line.is_none_or(|l| f["line"] == l)
                    && want.column.is_none_or(|c| f["column"] == c)
                    && want.note_contains.as_ref().is_none_or(|n| {
                        f["notes"].as_array().is_some_and(|notes| {
                            notes.iter().any(|note| {
                                note.as_str()
                                    .unwrap_or_default()
                                    .to_lowercase()
                                    .contains(&n.to_lowercase())
                            })
                        })
                    })
                    && want.message_contains.as_ref().is_none_or(|m| {
                        f["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_lowercase()
                            .contains(&m.to_lowercase())
                    })
            });
            if !hit {
                problems.push(format!(
                    "no {} failure at {}:{} containing {:?}; got {}",
                    want.stage,
                    want.file,
                    want.line.map(|l| l.to_string()).unwrap_or("*".into()),
                    want.message_contains,
                    serde_json::to_string(&failures).unwrap()
                ));
            }
        }
        for want in &expected.cases {
            let stage = stages.iter().find(|s| s["name"] == want.stage.as_str());
            let cases = stage
                .and_then(|s| s["cases"].as_array().cloned())
                .unwrap_or_default();
            match cases.iter().find(|c| c["name"] == want.name.as_str()) {
                Some(c) if c["verdict"] == want.verdict.as_str() => {
                    let message = c["message"].as_str().unwrap_or_default().to_lowercase();
                    if let Some(needle) = &want.message_contains {
                        if !message.contains(&needle.to_lowercase()) {
                            problems.push(format!(
                                "{} case {:?}: message {message:?} lacks {needle:?}",
                                want.stage, want.name
                            ));
                        }
                    }
                }
                Some(c) => problems.push(format!(
                    "{} case {:?} is {}, expected {}",
                    want.stage, want.name, c["verdict"], want.verdict
                )),
                None => problems.push(format!("no {} case {:?}", want.stage, want.name)),
            }
        }
    }
    if !expected.lint_findings.is_empty() {
        let report: serde_json::Value = std::fs::read_to_string(&json_path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let cases: Vec<String> = report["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"] == "lint")
            .flat_map(|s| s["cases"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .collect();
        for want in &expected.lint_findings {
            if !cases.contains(want) {
                problems.push(format!("no lint finding {want:?}; got {cases:?}"));
            }
        }
    }
    let _ = expected.pending.len();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n{context}", problems.join("\n")))
    }
}

/// What is wrong with a JUnit file: a character XML 1.0 forbids (a control character from
/// data), markup a parser rejects, or what xmllint (where installed) rejects.
fn junit_problems(xml: &str, path: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let forbidden: Vec<char> = xml
        .chars()
        .filter(|c| {
            !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        })
        .collect();
    if !forbidden.is_empty() {
        problems.push(format!("JUnit holds characters XML forbids: {forbidden:?}"));
    }
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                problems.push(format!("JUnit is not well-formed: {e}"));
                break;
            }
        }
    }
    if let Ok(out) = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg(path)
        .output()
    {
        if !out.status.success() {
            problems.push(format!(
                "xmllint rejects the JUnit: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    problems
}

fn walk(backend: Option<common::Backend>) {
    let Some(backend) = backend else { return };
    let dirs = fixture_dirs();
    assert!(!dirs.is_empty(), "no fixtures found");
    let started = std::time::Instant::now();
    let results = common::parallel(dirs, 3, |dir: PathBuf| {
        let took = std::time::Instant::now();
        let result = check(&dir, &backend);
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        (result, name, took.elapsed())
    });
    // Where the walk's time went, in CI's log even when it passes: written to the stream
    // itself, which libtest does not capture (it captures the print macros).
    let mut slowest: Vec<(std::time::Duration, &str)> = results
        .iter()
        .map(|(_, name, took)| (*took, name.as_str()))
        .collect();
    slowest.sort_by(|a, b| b.cmp(a));
    let listed: Vec<String> = slowest
        .iter()
        .take(5)
        .map(|(took, name)| format!("{name} {:.1} s", took.as_secs_f64()))
        .collect();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "[fixtures] {} on {}: {:.1} s, three at a time; slowest: {}\n",
            results.len(),
            backend.name,
            started.elapsed().as_secs_f64(),
            listed.join(", ")
        )
        .as_bytes(),
    );
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|(result, _, _)| result.err())
        .collect();
    assert!(
        failed.is_empty(),
        "{} fixture(s) failed on {}:\n\n{}",
        failed.len(),
        backend.name,
        failed.join("\n\n")
    );
}

#[test]
fn fixtures_on_local_backend() {
    walk(common::Backend::local());
}

#[test]
fn fixtures_on_container_backend() {
    walk(common::Backend::container());
}

/// Every input error that does not depend on the catalog is found before a backend is
/// touched: with a database URL nothing answers on, such a project still exits 2 with its
/// error, never 3 (environment). Needs no PostgreSQL, so it runs everywhere.
#[test]
fn input_errors_are_found_before_any_backend_is_touched() {
    // Port 1 on loopback: refused at once, so a run that tries to boot fails fast with 3.
    let unreachable = "postgres://db-ci@127.0.0.1:1/postgres";
    let mut checked = 0;
    let mut problems = Vec::new();
    for dir in fixture_dirs() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let expected: Expected =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join("expected.yaml")).unwrap())
                .unwrap();
        if expected.exit_code != 2 || expected.input_error_needs_catalog {
            continue;
        }
        let mut args: Vec<String> = vec![expected.command.clone(), dir.display().to_string()];
        args.extend(["--database-url".into(), unreachable.into()]);
        args.extend(expected.args.iter().cloned());
        let output = common::db_ci_with_env(&args, &[("CI", "true")]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let needle = expected.error_contains.unwrap_or_default().to_lowercase();
        if output.status.code() != Some(2) || !stderr.to_lowercase().contains(&needle) {
            problems.push(format!(
                "{name}: exit {:?}, expected 2 with {needle:?}:\n{stderr}",
                output.status.code()
            ));
        }
        checked += 1;
    }
    if std::env::var_os("DB_CI_FIXTURE").is_none() {
        assert!(checked >= 15, "only {checked} input fixtures were checked");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// An input error reaches every report at its real position, as data: the JSON's `error`
/// has `file`, `line` and `column`, the JUnit run case `file` and `line`, the GitHub
/// annotation `file=`, `line=` and `col=`. A YAML error (a policy-test key the parser
/// refuses) and a SQL one (a test file psql would run differently).
#[test]
fn input_errors_reach_every_report_at_their_position() {
    let unreachable = "postgres://db-ci@127.0.0.1:1/postgres";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (fixture, command, file, line, column) in [
        (
            "input-rls-unknown-key",
            "run",
            "policy-tests/notes.yaml",
            14,
            5,
        ),
        (
            "input-pgtap-unsupported-meta-command",
            "pgtap",
            "supabase/tests/01-notes.sql",
            3,
            1,
        ),
    ] {
        let dir = root.join("fixtures").join(fixture);
        let out = tempfile::tempdir().unwrap();
        let (json, junit) = (out.path().join("r.json"), out.path().join("r.xml"));
        let args: Vec<String> = vec![
            command.into(),
            dir.display().to_string(),
            "--database-url".into(),
            unreachable.into(),
            "--json".into(),
            json.display().to_string(),
            "--junit".into(),
            junit.display().to_string(),
        ];
        let output = common::db_ci_with_env(
            &args,
            &[
                ("CI", "true"),
                ("GITHUB_ACTIONS", "true"),
                ("GITHUB_WORKSPACE", root.to_str().unwrap()),
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{fixture}: {output:?}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let error = &report["error"];
        assert_eq!(error["kind"], "input", "{fixture}: {error}");
        assert_eq!(error["file"], file, "{fixture}: {error}");
        assert_eq!(error["line"], line, "{fixture}: {error}");
        assert_eq!(error["column"], column, "{fixture}: {error}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        let at = format!(r#"file="fixtures/{fixture}/{file}" line="{line}""#);
        assert!(xml.contains(&at), "{fixture}: {at} not in\n{xml}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let annotation =
            format!("::error file=fixtures/{fixture}/{file},line={line},col={column},title=");
        assert!(
            stdout.contains(&annotation),
            "{fixture}: {annotation} not in\n{stdout}"
        );
    }
}
