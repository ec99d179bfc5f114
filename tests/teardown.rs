//! Nothing is left behind: no postgres process, temp dir or container after a run that
//! passes, fails, panics, or is interrupted with Ctrl-C.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Server};

/// The tests here change DB_CI_RUN_DIR and count processes: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn project(dir: &Path, migration: &str) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    std::fs::write(dir.join("migrations/0001_init.sql"), migration).unwrap();
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(text);
            }
        }
    }
    found
}

fn assert_clean(run_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<_> = std::fs::read_dir(run_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        let procs = processes_mentioning(&run_dir.display().to_string());
        if left.is_empty() && procs.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("left behind: dirs {left:?}, processes {procs:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn containers_labelled(pid: u32) -> usize {
    let docker = bollard::Docker::connect_with_defaults().unwrap();
    let filters = std::collections::HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={pid}", db_ci::backend::container::LABEL)],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker.list_containers(Some(options)).await.unwrap().len()
}

#[test]
fn local_backend_cleans_up_after_pass_and_fail() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    for (migration, code) in [
        (
            // RLS on: the lint stage would rightly fail an exposed table without it.
            "create table if not exists t (id int primary key); alter table t enable row level security;",
            0,
        ),
        ("create tabel t ();", 1),
    ] {
        let run_dir = common::run_dir();
        let proj = tempfile::tempdir().unwrap();
        project(proj.path(), migration);
        let output = Command::new(env!("CARGO_BIN_EXE_db-ci"))
            .args([
                "run",
                &proj.path().display().to_string(),
                "--backend",
                "local",
            ])
            .env("DB_CI_RUN_DIR", run_dir.path())
            // A local run, as a developer's: the missing snapshot is written (into the temp
            // project), not failed as it would be under CI=true.
            .env_remove("CI")
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert_clean(run_dir.path());
    }
}

#[test]
fn local_backend_cleans_up_after_ctrl_c() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let run_dir = common::run_dir();
    let proj = tempfile::tempdir().unwrap();
    project(proj.path(), "select pg_sleep(60);");
    let child = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args([
            "run",
            &proj.path().display().to_string(),
            "--backend",
            "local",
        ])
        .env("DB_CI_RUN_DIR", run_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the server is up and the migration is sleeping.
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_mentioning(&run_dir.path().display().to_string()).is_empty() {
        assert!(Instant::now() < deadline, "the server never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_clean(run_dir.path());
}

#[test]
fn local_backend_cleans_up_after_panic() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let run_dir = common::run_dir();
    // SAFETY: tests in this binary run one at a time (SERIAL) and nothing else reads it now.
    unsafe { std::env::set_var("DB_CI_RUN_DIR", run_dir.path()) };
    let result = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let server = Server::start(&BackendOptions {
                kind: BackendKind::Local,
                ..Default::default()
            })
            .await
            .unwrap();
            let _db = server.unique_name("x");
            panic!("a test panics while the server runs");
        })
    });
    unsafe { std::env::remove_var("DB_CI_RUN_DIR") };
    assert!(result.is_err());
    assert_clean(run_dir.path());
}

#[test]
fn container_backend_cleans_up_after_fail_panic_and_ctrl_c() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(backend) = common::Backend::container() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // A failing run.
    let proj = tempfile::tempdir().unwrap();
    project(proj.path(), "create tabel t ();");
    let mut args = vec!["run".to_owned(), proj.path().display().to_string()];
    args.extend(backend.args());
    let child = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(&args)
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        runtime.block_on(containers_labelled(pid)),
        0,
        "container left after a failing run"
    );

    // Ctrl-C while a migration sleeps.
    let proj = tempfile::tempdir().unwrap();
    project(proj.path(), "select pg_sleep(60);");
    let mut args = vec!["run".to_owned(), proj.path().display().to_string()];
    args.extend(backend.args());
    let mut child = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while runtime.block_on(containers_labelled(pid)) == 0 {
        assert!(Instant::now() < deadline, "the container never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        runtime.block_on(containers_labelled(pid)),
        0,
        "container left after Ctrl-C"
    );

    // A panic in library code while the container runs.
    let image = common::container_image();
    let result = std::panic::catch_unwind(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let _server = Server::start(&BackendOptions {
                kind: BackendKind::Container,
                image,
                ..Default::default()
            })
            .await
            .unwrap();
            panic!("a test panics while the container runs");
        })
    });
    assert!(result.is_err());
    assert_eq!(
        runtime.block_on(containers_labelled(std::process::id())),
        0,
        "container left after a panic"
    );
}
