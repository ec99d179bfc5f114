//! `db-ci init` on a Supabase CLI project whose seed is not re-runnable: the exemption is
//! written with a reason to confirm and flagged, and the run afterwards is green; an existing
//! db-ci.yaml is kept unless --force. On every available backend.

mod common;

use std::path::Path;

fn init_then_run(backend: common::Backend) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/fail-supabase-cli-seed-not-rerunnable");
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    common::copy_dir(&fixture, &root);
    let with_backend = |mut args: Vec<String>| {
        args.push("--any-server-version".into());
        args.extend(backend.args());
        args
    };
    // From inside supabase/, like a user would.
    let init = with_backend(vec![
        "init".into(),
        root.join("supabase").display().to_string(),
    ]);
    let output = common::db_ci_with_env(&init, &[("CI", "true")]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FLAGGED: supabase/seed.sql is not re-runnable"),
        "{stdout}"
    );
    let config = std::fs::read_to_string(root.join("db-ci.yaml")).unwrap();
    assert!(config.contains("- file: supabase/seed.sql"), "{config}");
    assert!(
        config.contains("CONFIRM (written by db-ci init)"),
        "{config}"
    );
    assert!(config.contains("duplicate key"), "{config}");
    assert!(config.contains("mode: auto"), "{config}");
    assert!(
        config.contains("exposed_schemas: [\"public\", \"graphql_public\"]"),
        "{config}"
    );
    assert!(!root.join("supabase/db-ci.yaml").exists());

    // Green afterwards, as CI runs it.
    let json = temp.path().join("report.json");
    let run = with_backend(vec![
        "run".into(),
        root.display().to_string(),
        "--json".into(),
        json.display().to_string(),
    ]);
    let output = common::db_ci_with_env(&run, &[("CI", "true")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert!(!stdout.contains("next: no db-ci.yaml"), "{stdout}");
    assert!(
        stdout.contains("flagged: supabase/seed.sql is exempt from pass 2"),
        "{stdout}"
    );

    // An existing db-ci.yaml is kept unless --force.
    let output = common::db_ci_with_env(&init, &[("CI", "true")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--force"));
    assert_eq!(
        std::fs::read_to_string(root.join("db-ci.yaml")).unwrap(),
        config
    );
    let mut forced = init.clone();
    forced.push("--force".into());
    let output = common::db_ci_with_env(&forced, &[("CI", "true")]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn init_then_run_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        init_then_run(backend);
    }
}

#[test]
fn init_then_run_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        init_then_run(backend);
    }
}
