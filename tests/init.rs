//! `db-ci init` on a Supabase CLI project whose seed is not re-runnable: under ledger replay
//! the seed ledger never re-runs it, so nothing is exempted, and the run afterwards fails in CI
//! only on the unreviewed recordings, green once the project takes them as its baseline, with
//! the seed's re-run noted; an existing db-ci.yaml is kept unless --force. On a multi-tenant
//! schema: the recorded matrix shows the tenancy boundary, every recording is marked
//! unreviewed, and the run afterwards counts them and, in CI, fails on them until they are
//! reviewed. On every available backend.

mod common;

use std::path::Path;

fn init_then_run(backend: common::Backend) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/pass-supabase-cli-seed-not-rerunnable-noted");
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
    // The CLI's seed ledger never re-runs the unchanged seed: nothing to exempt.
    assert!(!stdout.contains("FLAGGED: supabase/seed.sql"), "{stdout}");
    let config = std::fs::read_to_string(root.join("db-ci.yaml")).unwrap();
    assert!(!config.contains("- file: supabase/seed.sql"), "{config}");
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
    assert!(!stdout.contains("flagged: supabase/seed.sql"), "{stdout}");
    let idempotence = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "idempotence")
        .unwrap();
    assert!(
        idempotence["reason"]
            .as_str()
            .unwrap()
            .contains("not re-runnable by hand"),
        "{idempotence}"
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
    // What the next CI run does with the recordings, said by init; what looks like a leak
    // comes first, with its policy (support staff reach every team's rows by a policy).
    assert!(
        stdout.contains(
            "under CI=true the next run fails on every cell whose actor is under `unreviewed:`"
        ) && stdout.contains("rls.unreviewed: allow"),
        "{stdout}"
    );
    let first_leak = stdout
        .find("LOOKS LIKE A LEAK")
        .expect("a recording that looks like a leak");
    assert!(first_leak < stdout.find("UNREVIEWED:").unwrap(), "{stdout}");
    assert!(
        stdout
            .contains("policy \"support staff see every team\" for select to authenticated: using"),
        "{stdout}"
    );
    assert!(!stdout.contains("LOOKS LIKE A LEAK (service"), "{stdout}");
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

/// A copy of `fixtures/NAME` in a temporary folder, and the path of the copy.
fn copy_fixture(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    common::copy_dir(&fixture, &root);
    (temp, root)
}

/// `db-ci COMMAND ROOT ARGS… --any-server-version <backend>` with CI=true.
fn db_ci_on(
    backend: &common::Backend,
    command: &str,
    root: &Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut all = vec![command.to_owned(), root.display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all.push("--any-server-version".into());
    all.extend(backend.args());
    let output = common::db_ci_with_env(&all, &[("CI", "true")]);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The stage named `name` of a JSON report.
fn stage<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name} in {report}"))
}

fn init_sign_up_metadata_and_checks(backend: common::Backend) {
    let (temp, root) = copy_fixture("pass-init-sign-up-metadata-checks");
    let json = temp.path().join("init.json");
    // The flags every command takes, `--color never` and `--json` among them.
    let (code, stdout, stderr) = db_ci_on(
        &backend,
        "init",
        &root,
        &["--color", "never", "--json", json.to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains('\u{1b}'), "--color never: {stdout}");
    assert!(!stdout.contains("no matrix written"), "{stdout}");
    let text = std::fs::read_to_string(root.join("policy-tests/public.yaml")).unwrap();
    // The users carry the metadata the sign-up trigger reads, each its own handle.
    assert!(
        text.contains("alice: { user: alice@example.test, user_metadata: { handle: alice, username: alice } }"),
        "{text}"
    );
    assert!(text.contains("user_metadata: { handle: bob"), "{text}");
    // Every table and command has its case: no generated value broke a CHECK or char(8).
    assert!(!text.contains("not generated"), "{text}");
    assert!(!text.contains("NOT GENERATED"), "{text}");
    let matrix: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let rooms = matrix["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "public.rooms")
        .unwrap_or_else(|| panic!("no rooms case: {text}"));
    let values = &rooms["insert"]["values"];
    let code_value = values["code"].as_str().unwrap();
    assert!(code_value.chars().count() <= 8, "{code_value}");
    let capacity: i64 = values["capacity"].as_str().unwrap().parse().unwrap();
    assert!((2..=10).contains(&capacity), "{capacity}");
    let score: f64 = values["score"].as_str().unwrap().parse().unwrap();
    assert!((0.5..1.0).contains(&score), "{score}");
    assert!(["free", "pro"].contains(&values["plan"].as_str().unwrap()));
    let title = values["title"].as_str().unwrap();
    assert!(
        regex::Regex::new("^[A-Z][a-z]+$").unwrap().is_match(title),
        "{title}"
    );
    for operation in ["select", "insert", "update", "delete"] {
        let [allow, deny, _] = recorded(&matrix, "public.rooms", operation);
        assert!(
            allow.contains(&"alice".to_owned()),
            "{operation}: {allow:?}"
        );
        assert!(deny.contains(&"bob".to_owned()), "{operation}: {deny:?}");
    }
    // The run init ends with wrote its report where `--json` said.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass", "{report}");

    // The run afterwards reaches every stage; in CI its fresh recordings count only once a
    // person reviewed them, or the project takes them as its baseline (as here).
    take_recordings_as_baseline(&root);
    let json = temp.path().join("run.json");
    let (code, stdout, _) = db_ci_on(&backend, "run", &root, &["--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for name in ["replay", "idempotence", "rls", "snapshot", "lint"] {
        assert_eq!(stage(&report, name)["verdict"], "pass", "{name}: {report}");
    }
    assert_eq!(
        stage(&report, "rls")["coverage"]["percent"],
        100.0,
        "{report}"
    );
}

/// `rls.unreviewed: allow` in the db-ci.yaml init wrote: the recordings are the baseline.
fn take_recordings_as_baseline(root: &Path) {
    let path = root.join("db-ci.yaml");
    let config = std::fs::read_to_string(&path).unwrap();
    let with_baseline = if config.contains("\nrls:\n") {
        config.replacen("\nrls:\n", "\nrls:\n  unreviewed: allow\n", 1)
    } else {
        format!("{config}\nrls:\n  unreviewed: allow\n")
    };
    std::fs::write(&path, with_baseline).unwrap();
}

fn init_strict_seeds(backend: common::Backend) {
    let (temp, root) = copy_fixture("fail-strict-seeds-not-rerunnable");
    let (code, stdout, stderr) = db_ci_on(&backend, "init", &root, &[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let config = std::fs::read_to_string(root.join("db-ci.yaml")).unwrap();
    for (seed, why) in [
        ("seeds/0001_tags.sql", "duplicate key"),
        ("seeds/0002_events.sql", "data differs"),
    ] {
        assert!(
            stdout.contains(&format!("FLAGGED: {seed} is not re-runnable ({why}")),
            "{stdout}"
        );
        assert!(config.contains(&format!("- file: {seed}")), "{config}");
    }
    assert!(config.contains("mode: auto"), "{config}");
    take_recordings_as_baseline(&root);
    let json = temp.path().join("run.json");
    let (code, stdout, _) = db_ci_on(&backend, "run", &root, &["--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(stage(&report, "idempotence")["verdict"], "pass", "{report}");

    // A failing init (--force on a project whose replay now fails) puts back what was there.
    let matrix = root.join("policy-tests/public.yaml");
    let before = (
        std::fs::read(root.join("db-ci.yaml")).unwrap(),
        std::fs::read(&matrix).unwrap(),
    );
    let migration = root.join("migrations/0001_init.sql");
    let mut sql = std::fs::read_to_string(&migration).unwrap();
    sql.push_str("\ncreate tabel broken (id int);\n");
    std::fs::write(&migration, sql).unwrap();
    let (code, stdout, stderr) = db_ci_on(&backend, "init", &root, &["--force"]);
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("the first replay fails"), "{stderr}");
    let after = (
        std::fs::read(root.join("db-ci.yaml")).unwrap(),
        std::fs::read(&matrix).unwrap(),
    );
    assert!(
        before == after,
        "init --force that failed changed the files"
    );

    // A migration that is not re-runnable switches the project to ledger, and the switch is
    // not undone by later rounds; in ledger mode the seed ledger never re-runs an unchanged
    // seed, so the seeds need no exemption.
    let root = temp.path().join("switching");
    std::fs::create_dir_all(root.join("migrations")).unwrap();
    std::fs::create_dir_all(root.join("seeds")).unwrap();
    std::fs::write(
        root.join("migrations/0001_init.sql"),
        "create table public.tags (id int primary key, name text not null);\n\
         alter table public.tags enable row level security;\n",
    )
    .unwrap();
    std::fs::write(
        root.join("seeds/0001_a.sql"),
        "insert into public.tags values (1, 'a');\n",
    )
    .unwrap();
    std::fs::write(
        root.join("seeds/0002_b.sql"),
        "insert into public.tags values (2, 'b');\n",
    )
    .unwrap();
    let (code, stdout, stderr) = db_ci_on(&backend, "init", &root, &["--update-snapshot"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let config = std::fs::read_to_string(root.join("db-ci.yaml")).unwrap();
    assert!(config.contains("mode: ledger"), "{config}");
    assert!(!config.contains("- file: seeds/0001_a.sql"), "{config}");
    assert!(!config.contains("- file: seeds/0002_b.sql"), "{config}");
}

/// Bad input stops init before anything boots (a URL nothing answers on), at file:line:col,
/// and nothing is written. Needs no PostgreSQL.
#[test]
fn init_with_bad_input_writes_nothing_and_boots_nothing() {
    let (_temp, root) = copy_fixture("fail-strict-seeds-not-rerunnable");
    std::fs::create_dir_all(root.join("policy-tests")).unwrap();
    std::fs::write(
        root.join("policy-tests/extra.yaml"),
        "actors:\n  anon: anon\ncases:\n  - name: x\n    table: public.tags\n    selec: {}\n",
    )
    .unwrap();
    let args: Vec<String> = [
        "init",
        root.to_str().unwrap(),
        "--color",
        "never",
        "--database-url",
        "postgres://db-ci@127.0.0.1:1/postgres",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let output = common::db_ci_with_env(&args, &[("CI", "true")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("policy-tests/extra.yaml:6:5"), "{stderr}");
    assert!(!root.join("db-ci.yaml").exists());
    assert!(!root.join("policy-tests/public.yaml").exists());
}

#[test]
fn init_sign_up_metadata_and_checks_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        init_sign_up_metadata_and_checks(backend);
    }
}

#[test]
fn init_sign_up_metadata_and_checks_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        init_sign_up_metadata_and_checks(backend);
    }
}

#[test]
fn init_strict_seeds_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        init_strict_seeds(backend);
    }
}

#[test]
fn init_strict_seeds_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        init_strict_seeds(backend);
    }
}

/// A Supabase CLI project whose sign-up trigger hands the whole metadata to a helper that
/// reads `key` into a NOT NULL `handle`: init cannot read the key from the trigger.
fn project_with_helper_reading(key: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::write(
        root.join("supabase/config.toml"),
        "[db]\nmajor_version = 15\n",
    )
    .unwrap();
    std::fs::write(
        root.join("supabase/migrations/20240101000000_profiles.sql"),
        format!(
            "create table public.profiles (\n\
             \x20 id uuid primary key references auth.users (id) on delete cascade,\n\
             \x20 handle text not null unique\n);\n\
             create function public.make_profile(uid uuid, meta jsonb) returns void\n\
             \x20 language sql security definer set search_path = ''\n\
             \x20 as $$ insert into public.profiles (id, handle) values (uid, meta ->> '{key}') $$;\n\
             create function public.handle_new_user() returns trigger\n\
             \x20 language plpgsql security definer set search_path = ''\n\
             \x20 as $$ begin perform public.make_profile(new.id, new.raw_user_meta_data); return new; end $$;\n\
             create trigger on_auth_user_created after insert on auth.users\n\
             \x20 for each row execute function public.handle_new_user();\n\
             alter table public.profiles enable row level security;\n\
             create policy \"profiles are public\" on public.profiles for select using (true);\n"
        ),
    )
    .unwrap();
    (temp, root)
}

fn init_sign_up_metadata_out_of_sight(backend: common::Backend) {
    // The key is the column's name: tried, accepted by the database, flagged as a guess.
    let (_temp, root) = project_with_helper_reading("handle");
    let (code, stdout, stderr) = db_ci_on(&backend, "init", &root, &["--update-snapshot"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("`user_metadata: { handle: … }`, a guess from the column's name"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(root.join("policy-tests/public.yaml")).unwrap();
    assert!(text.contains("user_metadata: { handle: alice }"), "{text}");

    // Another key: no matrix, the column to fill named, exit 0 and a green run.
    let (temp, root) = project_with_helper_reading("nick");
    let (code, stdout, stderr) = db_ci_on(&backend, "init", &root, &["--update-snapshot"]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("FLAGGED: no matrix written: the sign-up trigger public.handle_new_user on auth.users fails"), "{stdout}");
    assert!(
        stdout.contains("it fills `handle` from something db-ci could not read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tried keys named after the columns: `handle`"),
        "{stdout}"
    );
    assert!(root.join("db-ci.yaml").is_file());
    assert!(!root.join("policy-tests/public.yaml").exists());
    let json = temp.path().join("run.json");
    let (code, stdout, _) = db_ci_on(&backend, "run", &root, &["--json", json.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(stage(&report, "rls")["verdict"], "skipped", "{report}");
}

#[test]
fn init_sign_up_metadata_out_of_sight_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        init_sign_up_metadata_out_of_sight(backend);
    }
}

#[test]
fn init_sign_up_metadata_out_of_sight_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        init_sign_up_metadata_out_of_sight(backend);
    }
}
