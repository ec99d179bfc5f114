//! The JSON report's exact bytes on a few fixtures, as insta snapshots: a refactor that
//! changes a field's name, order, spelling or presence shows up here as a diff. Only what
//! differs between runs and machines is normalised (durations, backend, server version, the
//! project's path, db-ci's own version); the rest was checked identical on PostgreSQL 15
//! (local) and 17 (container), so the snapshots hold on whichever server the machine has.

mod common;

use std::path::Path;

use common::Backend;
use regex::Regex;

/// One of each shape of report: a pass with RLS cells, an RLS failure, a lint failure.
const FIXTURES: &[&str] = &[
    "pass-rls-owner-only-notes",
    "fail-rls-using-true-leak",
    "lint-no-primary-key",
];

/// The report text with run- and machine-dependent values replaced by placeholders. Done on
/// the text (not on parsed JSON) so that key order and layout stay part of what is compared.
fn normalise(report: &str, project: &Path) -> String {
    let project = project.display().to_string();
    let text = report.replace(&project, "<project>");
    let fixed = [
        (r#""duration_ms": \d+"#, r#""duration_ms": 0"#),
        (r#""backend": "[^"]*""#, r#""backend": "<backend>""#),
        (
            r#""server_version": "[^"]*""#,
            r#""server_version": "<server-version>""#,
        ),
        (
            r#""db_ci_version": "[^"]*""#,
            r#""db_ci_version": "<version>""#,
        ),
    ];
    fixed.iter().fold(text, |text, (pattern, replacement)| {
        Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *replacement)
            .into_owned()
    })
}

fn report_of(backend: &Backend, fixture: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("report.json");
    let mut args: Vec<String> = vec!["run".into(), dir.display().to_string()];
    args.extend(backend.args());
    // A fixed seed: the report prints it, and the random one would differ every run.
    args.extend([
        "--seed".into(),
        "7".into(),
        "--any-server-version".into(),
        "--json".into(),
        json.display().to_string(),
    ]);
    // CI=true: a fixture run must never write a snapshot into the repository.
    let output = common::db_ci_with_env(&args, &[("CI", "true")]);
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "{fixture}: no JSON report ({e}); exit {:?}\nstderr:\n{}",
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    normalise(&text, &dir)
}

#[test]
fn json_reports_are_byte_identical_apart_from_run_values() {
    let Some(backend) = Backend::local() else {
        return;
    };
    for fixture in FIXTURES {
        let report = report_of(&backend, fixture);
        insta::assert_snapshot!(format!("json_report_{fixture}"), report);
    }
}

#[test]
fn normalising_keeps_everything_but_run_values() {
    let raw = "{\n  \"verdict\": \"pass\",\n  \"db_ci_version\": \"0.1.0\",\n  \"project\": \"/x/fixtures/a\",\n  \"backend\": \"local\",\n  \"server_version\": \"15.8\",\n  \"duration_ms\": 1234,\n  \"stages\": [{\"file\": \"/x/fixtures/a/migrations/1.sql\", \"duration_ms\": 7, \"checks\": 3}]\n}\n";
    let normal = normalise(raw, Path::new("/x/fixtures/a"));
    assert_eq!(
        normal,
        "{\n  \"verdict\": \"pass\",\n  \"db_ci_version\": \"<version>\",\n  \"project\": \"<project>\",\n  \"backend\": \"<backend>\",\n  \"server_version\": \"<server-version>\",\n  \"duration_ms\": 0,\n  \"stages\": [{\"file\": \"<project>/migrations/1.sql\", \"duration_ms\": 0, \"checks\": 3}]\n}\n"
    );
}
