//! A Supabase CLI project met where it is: a run from inside `supabase/` checks the whole
//! project (and writes nothing into `supabase/`), on every available backend.

mod common;

use std::path::Path;

fn run_from_supabase_folder(backend: common::Backend) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-supabase-cli-layout");
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    common::copy_dir(&fixture, &root);
    // No committed snapshot: a local run (no CI) writes one, and it must land at the root.
    std::fs::remove_file(root.join("db-ci.snapshot.yaml")).unwrap();
    let json = temp.path().join("report.json");
    let mut args = vec![
        "run".to_owned(),
        root.join("supabase").display().to_string(),
        "--any-server-version".to_owned(),
        "--json".to_owned(),
        json.display().to_string(),
    ];
    args.extend(backend.args());
    let output = common::db_ci_with_env(&args, &[("CI", "false")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}:\n{stdout}\n{stderr}",
        backend.name
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["project"], root.display().to_string(), "{stdout}");
    assert_eq!(report["replay_mode"], "ledger");
    assert!(stdout.contains("(supabase/config.toml)"), "{stdout}");
    assert!(root.join("db-ci.snapshot.yaml").is_file(), "{stdout}");
    assert!(
        !root.join("supabase/db-ci.snapshot.yaml").exists(),
        "a second snapshot was written into supabase/"
    );
}

#[test]
fn run_from_supabase_folder_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        run_from_supabase_folder(backend);
    }
}

#[test]
fn run_from_supabase_folder_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        run_from_supabase_folder(backend);
    }
}
