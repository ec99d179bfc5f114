//! The library API as a user's `cargo test` uses it (`db_ci::testing`): a passing project
//! with the replayed database queried through tokio-postgres and (with the `sqlx` feature) a
//! `PgPool`, its catalog through insta, and a failing project whose assertion panics with the console's failure text.

mod common;

use std::path::PathBuf;

use db_ci::backend::BackendKind;
use db_ci::report::StageVerdict;
use db_ci::testing::{Gate, Shared, StageId};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// The local backend (fast to boot), or a loud skip where this machine has none.
fn gate(name: &str) -> Option<Gate> {
    common::Backend::local()?;
    Some(Gate::new(fixture(name)).backend(BackendKind::Local).seed(7))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_project_and_its_replayed_database() {
    let Some(gate) = gate("pass-minimal") else {
        return;
    };
    let checked = gate.run().await.expect("read the project");
    checked.assert_pass();
    checked.assert_stage(StageId::Replay, StageVerdict::Pass);
    checked.assert_stage(StageId::Idempotence, StageVerdict::Pass);
    assert_eq!(checked.report().seed, Some(7));

    let client = checked
        .client()
        .await
        .expect("connect to the replayed database");
    let row = client
        .query_one("select text from greetings where id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "hello");
    // The Supabase shim is there too: a user's test can impersonate as db-ci does.
    let row = client
        .query_one(
            "select count(*) from pg_roles where rolname = 'authenticated'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);

    #[cfg(feature = "sqlx")]
    {
        let pool = checked.pg_pool().await.expect("a sqlx pool");
        let text: String = sqlx::query_scalar("select text from greetings where id = $1")
            .bind(1_i32)
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(text, "hello");
        // The same pool again: made once, shared.
        assert!(std::ptr::eq(pool, checked.pg_pool().await.unwrap()));
    }
    // The catalog through insta, exactly the text of the committed db-ci.snapshot.yaml.
    let catalog = checked.catalog_yaml().await.expect("render the catalog");
    insta::assert_snapshot!("pass_minimal_catalog", catalog);
    assert_eq!(
        catalog,
        std::fs::read_to_string(fixture("pass-minimal").join("db-ci.snapshot.yaml")).unwrap()
    );
    drop(client);
    checked.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_project_panics_with_the_console_failure_text() {
    let Some(gate) = gate("fail-syntax-error") else {
        return;
    };
    let checked = gate.run().await.expect("read the project");
    checked.assert_fail();
    checked.assert_stage(StageId::Replay, StageVerdict::Fail);
    checked.assert_stage(StageId::Idempotence, StageVerdict::Skipped);
    checked.assert_failure_at(StageId::Replay, "migrations/0002_add_title.sql", 7);

    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checked.assert_pass()))
        .expect_err("assert_pass panics on a failing project");
    let message = panic
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains(&checked.failure_text()),
        "panic message:\n{message}"
    );
    assert!(
        message.contains("migrations/0002_add_title.sql:7:"),
        "panic message:\n{message}"
    );
    assert!(message.contains("syntax error at or near \"tabel\""));
    assert!(message.contains("Summary ["));
    checked.shutdown().await;
}

#[tokio::test]
async fn an_unreadable_project_is_an_error_not_a_report() {
    let error = match Gate::new(fixture("input-duplicate-version")).run().await {
        Ok(_) => panic!("a duplicate version must not give a report"),
        Err(error) => error,
    };
    assert_eq!(error.exit_code(), db_ci::error::exit::INPUT);
}

/// `only` selects stages by type: the selected one runs (and here fails, as the project is
/// wrong), replay runs because every stage needs it, the rest are reported skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_runs_the_selected_stage_and_reports_the_rest_skipped() {
    let Some(gate) = gate("fail-rls-using-true-leak") else {
        return;
    };
    let checked = gate
        .only(&[StageId::Rls])
        .run()
        .await
        .expect("read the project");
    checked.assert_stage(StageId::Replay, StageVerdict::Pass);
    checked.assert_stage(StageId::Rls, StageVerdict::Fail);
    for skipped in [
        StageId::Idempotence,
        StageId::Properties,
        StageId::Pgtap,
        StageId::Snapshot,
        StageId::Lint,
    ] {
        checked.assert_stage(skipped, StageVerdict::Skipped);
        let reason = checked.report().stage(skipped).unwrap().reason.clone();
        assert_eq!(reason.as_deref(), Some("not selected"), "{skipped}");
    }
    checked.assert_failure_at(StageId::Rls, "policy-tests/notes.yaml", 11);
}

/// The README's library example is the example crate's test file word for word (CI runs that
/// file), and its dependencies are the crate's (a path there, a version in the README).
#[test]
fn the_readme_example_is_the_file_ci_runs() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    let readme = read("README.md");
    let section = &readme[readme
        .find("## Library: `cargo test`")
        .expect("the section")..];
    let block = |lang: &str| {
        let fence = format!("```{lang}\n");
        let start = section.find(&fence).expect("a code block") + fence.len();
        let end = section[start..].find("```\n").expect("the block's end");
        section[start..start + end].to_owned()
    };
    assert_eq!(
        block("rust"),
        read("examples/supabase-app/tests/database.rs")
    );
    let manifest = read("examples/supabase-app/Cargo.toml");
    let dependencies = manifest
        .split_once("[dev-dependencies]\n")
        .expect("the example's dev-dependencies")
        .1;
    assert_eq!(
        block("toml"),
        format!(
            "[dev-dependencies]\n{}",
            dependencies.replace(r#"path = "../..""#, r#"version = "0.1""#)
        )
    );
}

/// One replay of pass-minimal for this test binary, on the local backend.
static MINIMAL: Shared = Shared::new(|| {
    Gate::new(fixture("pass-minimal"))
        .backend(BackendKind::Local)
        .seed(7)
        .only(&[])
});

async fn greetings(client: &db_ci::tokio_postgres::Client) -> i64 {
    client
        .query_one("select count(*) from greetings", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until database `name` is gone (a test's copy is dropped in the background).
async fn until_dropped(client: &db_ci::tokio_postgres::Client, name: &str, what: &str) {
    let gone = async {
        loop {
            let exists: bool = client
                .query_one(
                    "select exists (select from pg_database where datname = $1)",
                    &[&name],
                )
                .await
                .unwrap()
                .get(0);
            if !exists {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), gone)
        .await
        .unwrap_or_else(|_| panic!("{what} is dropped"));
}

#[tokio::test]
async fn each_test_gets_its_own_copy_and_a_panicking_test_still_drops_it() {
    if common::Backend::local().is_none() {
        return;
    }
    let mine = MINIMAL.database().await;
    mine.client()
        .execute("insert into greetings values (2, 'mine')", &[])
        .await
        .unwrap();
    let other = MINIMAL.database().await;
    assert_ne!(mine.name(), other.name());
    assert_eq!(greetings(mine.client()).await, 2);
    assert_eq!(
        greetings(other.client()).await,
        1,
        "a copy of the replayed state"
    );

    // A test that panics holding its database: the copy goes all the same.
    let (name_sender, name) = tokio::sync::oneshot::channel();
    let panicked = tokio::spawn(async move {
        let db = MINIMAL.database().await;
        name_sender.send(db.name().to_owned()).unwrap();
        panic!("a failing test");
    })
    .await;
    assert!(panicked.unwrap_err().is_panic());
    let name = name.await.unwrap();
    until_dropped(mine.client(), &name, "the panicking test's database").await;
    let other_name = other.name().to_owned();
    drop(other);
    until_dropped(mine.client(), &other_name, "a finished test's database").await;
}

/// Each `#[tokio::test]` has its own runtime, ended with the test: a database taken after
/// the first taker's runtime is gone still works (the server is not the first test's), and
/// so do its client and pool.
#[test]
fn copies_work_from_runtimes_that_come_and_go() {
    if common::Backend::local().is_none() {
        return;
    }
    for _ in 0..3 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let db = MINIMAL.database().await;
            assert_eq!(greetings(db.client()).await, 1);
            #[cfg(feature = "sqlx")]
            {
                let text: String =
                    db_ci::sqlx::query_scalar("select text from greetings where id = 1")
                        .fetch_one(db.pg_pool())
                        .await
                        .unwrap();
                assert_eq!(text, "hello");
            }
        });
        drop(runtime);
    }
}

#[tokio::test]
async fn fixtures_apply_to_the_copy_and_a_broken_one_is_named_at_its_line() {
    if common::Backend::local().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("two.sql");
    std::fs::write(&good, "insert into greetings values (2, 'two');\n").unwrap();
    let broken = dir.path().join("broken.sql");
    std::fs::write(
        &broken,
        "insert into greetings values (3, 'three');\n  insert into greetngs values (4, 'x');\n",
    )
    .unwrap();
    let db = MINIMAL.database_with(&[good.to_str().unwrap()]).await;
    assert_eq!(greetings(db.client()).await, 2);
    let error = match MINIMAL
        .try_database_with(&[good.to_str().unwrap(), broken.to_str().unwrap()])
        .await
    {
        Ok(_) => panic!("a broken fixture must fail"),
        Err(e) => e.to_string(),
    };
    assert!(
        error.contains(&format!("{}:2:15:", broken.display())) && error.contains("greetngs"),
        "{error}"
    );
}

/// The server of a `Shared` project stops when the test binary exits: this binary run again
/// for the ignored test below, which takes a database and reports where its server lives.
#[test]
fn the_shared_server_is_gone_when_the_test_binary_exits() {
    if common::Backend::local().is_none() {
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_test_binary_that_takes_a_database",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let data = stdout
        .lines()
        .find_map(|l| l.strip_prefix("data directory: "))
        .unwrap_or_else(|| panic!("the child names its server:\n{stdout}"));
    let pid: u32 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("postmaster: "))
        .unwrap()
        .parse()
        .unwrap();
    // /proc, not kill(pid, 0): the server may run as another OS user (`postgres`, as root).
    let alive = std::path::Path::new("/proc").join(pid.to_string()).exists();
    assert!(!alive, "postmaster {pid} outlived the test binary");
    assert!(
        !std::path::Path::new(data).exists(),
        "{data} outlived the test binary"
    );
}

#[tokio::test]
#[ignore = "run by the_shared_server_is_gone_when_the_test_binary_exits and a_killed_test_binarys_server_is_swept_by_the_next_run"]
async fn a_test_binary_that_takes_a_database() {
    let db = MINIMAL.database().await;
    let data: String = db
        .client()
        .query_one("select current_setting('data_directory')", &[])
        .await
        .unwrap()
        .get(0);
    let pid = std::fs::read_to_string(std::path::Path::new(&data).join("postmaster.pid")).unwrap();
    println!("data directory: {data}");
    println!("postmaster: {}", pid.lines().next().unwrap());
    if std::env::var_os("DB_CI_LIBRARY_HOLD").is_some() {
        // Killed here by a_killed_test_binarys_server_is_swept_by_the_next_run.
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    }
}

/// Advice in a message names the `Gate` method a test can call, not only the CLI flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_differing_snapshot_names_the_gate_method_that_accepts_it() {
    let Some(gate) = gate("fail-snapshot-differs") else {
        return;
    };
    let checked = gate
        .only(&[StageId::Snapshot])
        .run()
        .await
        .expect("read the project");
    checked.assert_stage(StageId::Snapshot, StageVerdict::Fail);
    let text = checked.failure_text();
    assert!(text.contains("`Gate::update_snapshot(true)`"), "{text}");
    checked.shutdown().await;
}

/// A test binary killed outright (no exit hook runs) leaves its shared server behind; the
/// next run removes it, also on the path a Supabase CLI project with `[db] major_version`
/// takes (`backend::version::start`), which boots past `Server::start`.
#[test]
fn a_killed_test_binarys_server_is_swept_by_the_next_run() {
    use std::io::BufRead;
    if common::Backend::local().is_none() {
        return;
    }
    let run_dir = common::run_dir();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_test_binary_that_takes_a_database",
            "--ignored",
            "--nocapture",
        ])
        .env("DB_CI_RUN_DIR", run_dir.path())
        .env("DB_CI_LIBRARY_HOLD", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let pid: u32 = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("postmaster: ").map(str::to_owned))
        .expect("the child names its server")
        .parse()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let proc_dir = std::path::Path::new("/proc").join(pid.to_string());
    assert!(
        proc_dir.exists(),
        "the killed binary's server is left running"
    );

    let project = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/supabase-app");
    let next = std::process::Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(["run", project.to_str().unwrap(), "--backend", "local"])
        .env("DB_CI_RUN_DIR", run_dir.path())
        .env("CI", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("removed local cluster"), "{stderr}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while proc_dir.exists() || std::fs::read_dir(run_dir.path()).unwrap().next().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep left postmaster {pid} or its directory behind"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
