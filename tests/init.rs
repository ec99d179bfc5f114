//! `db-ci init` on a Supabase CLI project whose seed is not re-runnable: the exemption is
//! written with a reason to confirm and flagged, and the run afterwards fails in CI only on
//! the unreviewed recordings, green once the project takes them as its baseline; an existing
//! db-ci.yaml is kept unless --force. On a multi-tenant schema: the recorded matrix shows the
//! tenancy boundary, every recording is marked unreviewed, and the run afterwards counts
//! them and, in CI, fails on them until they are reviewed. On every available backend.

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

    // Afterwards, as CI runs it: the matrices init recorded are unreviewed, so the run
    // fails on them (and on nothing else) until reviewed.
    let json = temp.path().join("report.json");
    let run = with_backend(vec![
        "run".into(),
        root.display().to_string(),
        "--json".into(),
        json.display().to_string(),
    ]);
    let output = common::db_ci_with_env(&run, &[("CI", "true")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for stage in report["stages"].as_array().unwrap() {
        let failures = stage["failures"].as_array().map_or(0, Vec::len);
        if stage["name"] == "rls" {
            assert!(failures > 0, "{stage}");
            for failure in stage["failures"].as_array().unwrap() {
                let message = failure["message"].as_str().unwrap();
                assert!(message.contains("nobody reviewed"), "{message}");
            }
        } else {
            assert_eq!(failures, 0, "{stage}");
        }
    }
    // Green once the project takes its recordings as the baseline (`rls.unreviewed: allow`).
    let with_baseline = config.replacen("rls:\n", "rls:\n  unreviewed: allow\n", 1);
    assert_ne!(with_baseline, config, "{config}");
    std::fs::write(root.join("db-ci.yaml"), &with_baseline).unwrap();
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
        with_baseline
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

/// The `allow`/`deny`/`unreviewed` lists of `operation` in the case named `case`.
fn recorded(matrix: &serde_json::Value, case: &str, operation: &str) -> [Vec<String>; 3] {
    let case = matrix["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == case)
        .unwrap_or_else(|| panic!("no case {case}"));
    let list = |key: &str| -> Vec<String> {
        case[operation][key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    [list("allow"), list("deny"), list("unreviewed")]
}

fn init_multi_tenant(backend: common::Backend) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-init-multi-tenant-teams");
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    common::copy_dir(&fixture, &root);
    let mut args = vec![
        "init".to_owned(),
        root.display().to_string(),
        "--any-server-version".to_owned(),
    ];
    args.extend(backend.args());
    let output = common::db_ci_with_env(&args, &[("CI", "true")]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("policy-tests/public.yaml: 6 case(s)"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(root.join("policy-tests/public.yaml")).unwrap();
    assert!(
        text.contains("RECORDED from what the database did"),
        "{text}"
    );
    let matrix: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    // The support role the policies read from app_metadata became an actor.
    assert!(
        matrix["actors"]["admin"].to_string().contains("support"),
        "{text}"
    );

    // The tenancy boundary: alice is a member of the team the rows belong to, bob is not.
    for (case, operation) in [
        ("public.teams", "select"),
        ("public.projects", "select"),
        ("public.projects", "insert"),
        ("public.tasks", "select"),
        ("public.tasks", "update"),
        ("public.team_members", "select"),
        ("public.my_open_tasks", "select"),
    ] {
        let [allow, deny, unreviewed] = recorded(&matrix, case, operation);
        assert!(
            allow.contains(&"alice".to_owned()),
            "{case} {operation}: {allow:?}"
        );
        assert!(
            deny.contains(&"bob".to_owned()),
            "{case} {operation}: {deny:?}"
        );
        assert!(
            deny.contains(&"anon".to_owned()),
            "{case} {operation}: {deny:?}"
        );
        assert_eq!(unreviewed.len(), 5, "{case} {operation}: {unreviewed:?}");
    }
    // Only owners may rename a team or add members: alice, a plain member, may not.
    let [allow, deny, _] = recorded(&matrix, "public.teams", "update");
    assert_eq!(allow, vec!["service"]);
    assert!(deny.contains(&"alice".to_owned()));
    // Support staff see every team, and nothing else.
    let [allow, _, _] = recorded(&matrix, "public.teams", "select");
    assert!(allow.contains(&"admin".to_owned()), "{allow:?}");
    let [_, deny, _] = recorded(&matrix, "public.projects", "select");
    assert!(deny.contains(&"admin".to_owned()), "{deny:?}");
    // Profiles come from the sign-up trigger: alice's is the target, not a generated row;
    // bob's is removed so that the insert can show who may create one (nobody but service).
    assert!(text.contains("where: id = '{{alice.id}}'"), "{text}");
    assert!(
        text.contains("delete from public.profiles where id = '{{bob.id}}';"),
        "{text}"
    );
    let [allow, _, _] = recorded(&matrix, "public.profiles", "insert");
    assert_eq!(allow, vec!["service"]);
    // Nothing was left out: every table command has its cells.
    assert!(!text.contains("not generated"), "{text}");
    assert!(!text.contains("NOT GENERATED"), "{text}");

    // The run afterwards holds every recording and says how many are unreviewed; in CI
    // (CI=true) those unreviewed cells fail it: a recording is not a verdict on the policies.
    let json = temp.path().join("report.json");
    let mut run = vec![
        "run".to_owned(),
        root.display().to_string(),
        "--json".to_owned(),
        json.display().to_string(),
        "--any-server-version".to_owned(),
    ];
    run.extend(backend.args());
    let output = common::db_ci_with_env(&run, &[("CI", "true")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("unreviewed: 105 RLS cell(s)"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rls = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rls")
        .unwrap();
    assert_eq!(rls["verdict"], "fail");
    assert_eq!(rls["unreviewed"], 105);
    assert_eq!(rls["coverage"]["percent"], 100.0, "{rls}");
    // Every failure is an unreviewed recording, and every cell observed what was recorded.
    let failures = rls["failures"].as_array().unwrap();
    assert!(!failures.is_empty());
    for failure in failures {
        let message = failure["message"].as_str().unwrap();
        assert!(message.contains("nobody reviewed"), "{message}");
    }
    let cases = rls["cases"].as_array().unwrap();
    assert_eq!(
        cases
            .iter()
            .filter(|c| c["cell"]["observed"] == c["cell"]["expected"])
            .count(),
        cases.len()
    );
}

#[test]
fn init_multi_tenant_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        init_multi_tenant(backend);
    }
}

#[test]
fn init_multi_tenant_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        init_multi_tenant(backend);
    }
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
