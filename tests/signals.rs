//! Signals and leftovers: SIGINT, SIGTERM and SIGHUP end a run like Ctrl-C (exit 128 + the
//! signal), and after SIGKILL at any point the next run removes what the dead run left, on
//! every backend, while never touching what a live run owns.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use nix::sys::signal::Signal;

/// These tests count processes, containers and databases: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SLEEPS: &str = "select pg_sleep(60);";
/// RLS on: the lint stage would rightly fail an exposed table without it.
const QUICK: &str =
    "create table if not exists t (id int primary key); alter table t enable row level security;";

fn project(migration: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(dir.path().join("migrations/0001_init.sql"), migration).unwrap();
    dir
}

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

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_clean(run_dir: &Path, context: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = entries(run_dir);
        let procs = processes_mentioning(&run_dir.display().to_string());
        if left.is_empty() && procs.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("{context}: left behind: dirs {left:?}, processes {procs:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn db_ci(args: &[String], env: &[(&str, &Path)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_db-ci"));
    command
        .args(args)
        .env_remove("DB_CI_BACKEND")
        .env_remove("DB_CI_DATABASE_URL")
        .env_remove("CI")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A run whose stdout is read as it comes: its progress, line by line, tells where it is
/// (rather than a guess of how long boot takes on this machine).
struct Watched {
    child: Child,
    stdout: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Watched {
    fn spawn(mut command: Command) -> Watched {
        let mut child = command.spawn().unwrap();
        let stdout = Arc::new(Mutex::new(String::new()));
        let reader = {
            let stdout = Arc::clone(&stdout);
            let pipe = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut text = stdout.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            })
        };
        Watched {
            child,
            stdout,
            reader,
        }
    }

    /// Waits until the run has printed `needle`.
    fn wait_for_output(&self, needle: &str, limit: Duration) {
        wait_for(needle, limit, || {
            self.stdout.lock().unwrap().contains(needle)
        });
    }

    /// Waits until pass 1 has begun (the shim is reported just before it) and a moment more,
    /// so that a migration that sleeps is sleeping.
    fn wait_for_replay(&self, limit: Duration) {
        self.wait_for_output("Shimmed", limit);
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Waits for the run's end: its exit and everything it wrote.
    fn output(self) -> Output {
        let mut output = self.child.wait_with_output().unwrap();
        self.reader.join().unwrap();
        output.stdout = self.stdout.lock().unwrap().clone().into_bytes();
        output
    }
}

fn send(child: &Child, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit a signal must give: 128 + its number, or death by SIGKILL.
fn assert_exit(output: &Output, signal: Signal, context: &str) {
    let text = format!(
        "{context}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if signal == Signal::SIGKILL {
        assert_eq!(output.status.signal(), Some(9), "{text}");
    } else {
        assert_eq!(output.status.code(), Some(128 + signal as i32), "{text}");
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[derive(Clone, Copy, Debug)]
enum Point {
    /// As soon as the run's cluster directory (or container) exists.
    Boot,
    /// While a migration sleeps.
    Replay,
}

#[test]
fn local_backend_signals_at_boot_and_replay_leave_nothing_after_the_next_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let sleeping = project(SLEEPS);
    let quick = project(QUICK);
    let cases = [
        (Signal::SIGINT, Point::Boot),
        (Signal::SIGTERM, Point::Boot),
        (Signal::SIGTERM, Point::Replay),
        (Signal::SIGHUP, Point::Replay),
        (Signal::SIGKILL, Point::Boot),
        (Signal::SIGKILL, Point::Replay),
    ];
    for (signal, point) in cases {
        let context = format!("{signal:?} at {point:?}");
        let run_dir = common::run_dir();
        let env = [("DB_CI_RUN_DIR", run_dir.path())];
        let args = |p: &Path| {
            vec![
                "run".to_owned(),
                p.display().to_string(),
                "--backend".into(),
                "local".into(),
            ]
        };
        let run = Watched::spawn(db_ci(&args(sleeping.path()), &env));
        match point {
            Point::Boot => wait_for("the cluster dir", Duration::from_secs(60), || {
                !entries(run_dir.path()).is_empty()
            }),
            Point::Replay => run.wait_for_replay(Duration::from_secs(60)),
        }
        send(&run.child, signal);
        let output = run.output();
        assert_exit(&output, signal, &context);
        if signal != Signal::SIGKILL {
            assert_clean(run_dir.path(), &context);
            continue;
        }
        // SIGKILL gives no chance to clean up: the directory (and maybe a server) remains,
        // and the next run removes it.
        assert!(
            !entries(run_dir.path()).is_empty(),
            "{context}: nothing was left to sweep"
        );
        let next = db_ci(&args(quick.path()), &env).output().unwrap();
        assert_eq!(next.status.code(), Some(0), "{context}: {}", stderr(&next));
        assert!(
            stderr(&next).contains("removed local cluster"),
            "{context}: the sweep said nothing: {}",
            stderr(&next)
        );
        assert_clean(run_dir.path(), &context);
    }
}

#[test]
fn the_sweep_never_touches_what_a_live_run_owns() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let run_dir = common::run_dir();
    let root = run_dir.path();
    // Owned by this (live) test process.
    let me = db_ci::backend::owner::Owner::current().unwrap();
    let alive = root.join("db-ci-local-alive");
    std::fs::create_dir(&alive).unwrap();
    std::fs::write(alive.join("db-ci-owner"), me.render()).unwrap();
    // No owner file yet (a run between creating the dir and naming itself): kept.
    let young = root.join("db-ci-local-young");
    std::fs::create_dir(&young).unwrap();

    // A live run, sleeping in a migration, in the same run dir.
    let env = [("DB_CI_RUN_DIR", root)];
    let sleeping = project(SLEEPS);
    let live = Watched::spawn(db_ci(
        &[
            "run".into(),
            sleeping.path().display().to_string(),
            "--backend".into(),
            "local".into(),
        ],
        &env,
    ));
    live.wait_for_replay(Duration::from_secs(60));
    let live_dirs: Vec<String> = entries(root)
        .into_iter()
        .filter(|n| {
            ![
                "db-ci-local-alive",
                "db-ci-local-reused",
                "db-ci-local-young",
            ]
            .contains(&n.as_str())
        })
        .collect();
    assert_eq!(live_dirs.len(), 1, "{live_dirs:?}");
    let servers_before = processes_mentioning(&live_dirs[0]).len();
    assert!(servers_before > 0);
    // Our pid, another start time: the pid was reused, the owner is gone.
    let reused = root.join("db-ci-local-reused");
    std::fs::create_dir(&reused).unwrap();
    let other = db_ci::backend::owner::Owner {
        start: me.start + 1,
        ..me.clone()
    };
    std::fs::write(reused.join("db-ci-owner"), other.render()).unwrap();

    let quick = project(QUICK);
    let next = db_ci(
        &[
            "run".into(),
            quick.path().display().to_string(),
            "--backend".into(),
            "local".into(),
        ],
        &env,
    )
    .output()
    .unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let left = entries(root);
    assert!(left.contains(&"db-ci-local-alive".to_owned()), "{left:?}");
    assert!(left.contains(&"db-ci-local-young".to_owned()), "{left:?}");
    assert!(!left.contains(&"db-ci-local-reused".to_owned()), "{left:?}");
    assert!(
        left.contains(&live_dirs[0]),
        "the live run's cluster was removed"
    );
    assert_eq!(
        processes_mentioning(&live_dirs[0]).len(),
        servers_before,
        "the live run's server was touched"
    );
    assert!(
        stderr(&next).contains("db-ci-local-reused"),
        "{}",
        stderr(&next)
    );
    assert!(!stderr(&next).contains(&live_dirs[0]), "{}", stderr(&next));

    send(&live.child, Signal::SIGTERM);
    let output = live.output();
    assert_exit(&output, Signal::SIGTERM, "the live run");
    std::fs::remove_dir_all(&alive).unwrap();
    std::fs::remove_dir_all(&young).unwrap();
    assert_clean(root, "after the live run");
}

#[test]
fn a_run_killed_while_building_the_cache_leaves_nothing_after_the_next_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let cache = tempfile::tempdir_in("/var/tmp").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let run_dir = common::run_dir();
    let env = [
        ("DB_CI_RUN_DIR", run_dir.path()),
        ("DB_CI_CACHE_DIR", cache.path()),
    ];
    let quick = project(QUICK);
    let args = vec![
        "replay".to_owned(),
        quick.path().display().to_string(),
        "--backend".into(),
        "local".into(),
    ];
    let child = db_ci(&args, &env).spawn().unwrap();
    let staging = || {
        entries(cache.path())
            .into_iter()
            .find(|n| n.starts_with("staging-"))
    };
    // initdb is running into the staging entry.
    wait_for("initdb", Duration::from_secs(60), || {
        staging().is_some_and(|s| !processes_mentioning(&s).is_empty())
    });
    send(&child, Signal::SIGKILL);
    let output = child.wait_with_output().unwrap();
    assert_exit(&output, Signal::SIGKILL, "SIGKILL in initdb");
    let left = staging().expect("the half-built entry");

    let next = db_ci(&args, &env).output().unwrap();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert!(
        stderr(&next).contains("removed half-built cache entry"),
        "{}",
        stderr(&next)
    );
    assert!(!entries(cache.path()).contains(&left));
    assert!(processes_mentioning(&left).is_empty());
    assert_clean(run_dir.path(), "after the next run");
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
fn container_backend_sigterm_and_sigkill_leave_nothing_after_the_next_run() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(backend) = common::Backend::container() else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sleeping = project(SLEEPS);
    let quick = project(QUICK);
    for (signal, point) in [
        (Signal::SIGTERM, Point::Replay),
        (Signal::SIGHUP, Point::Boot),
        (Signal::SIGKILL, Point::Boot),
        (Signal::SIGKILL, Point::Replay),
    ] {
        let context = format!("{signal:?} at {point:?}");
        let mut args = vec!["run".to_owned(), sleeping.path().display().to_string()];
        args.extend(backend.args());
        let run = Watched::spawn(db_ci(&args, &[]));
        let pid = run.child.id();
        match point {
            Point::Boot => wait_for("the container", Duration::from_secs(120), || {
                runtime.block_on(containers_labelled(pid)) > 0
            }),
            Point::Replay => run.wait_for_replay(Duration::from_secs(120)),
        }
        send(&run.child, signal);
        let output = run.output();
        assert_exit(&output, signal, &context);
        if signal != Signal::SIGKILL {
            assert_eq!(
                runtime.block_on(containers_labelled(pid)),
                0,
                "{context}: container left"
            );
            continue;
        }
        assert!(runtime.block_on(containers_labelled(pid)) > 0, "{context}");
        let mut args = vec!["replay".to_owned(), quick.path().display().to_string()];
        args.extend(backend.args());
        let next = db_ci(&args, &[]).output().unwrap();
        assert_eq!(next.status.code(), Some(0), "{context}: {}", stderr(&next));
        assert!(
            stderr(&next).contains("removed container"),
            "{context}: {}",
            stderr(&next)
        );
        assert_eq!(
            runtime.block_on(containers_labelled(pid)),
            0,
            "{context}: container left after the next run"
        );
    }
}

/// The url backend on a private local cluster: every signal at boot (while `CREATE DATABASE`
/// waits on a lock) and in replay; the next run leaves no `db_ci_*` database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard serialises the tests of this binary (they count databases and processes); the
// other tests are synchronous, so holding it across awaits cannot deadlock.
#[allow(clippy::await_holding_lock)]
async fn url_backend_signals_mid_create_and_replay_leave_no_database() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let mut server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .unwrap();
    // A server as users hand one over: its superuser is `postgres`.
    common::as_plain_postgres_server(&mut server).await;
    let Host::Socket(socket) = &server.connection.host else {
        panic!("local backend uses a socket")
    };
    let url = format!(
        "postgres://postgres@{}:{}/postgres",
        socket.display().to_string().replace('/', "%2F"),
        server.connection.port
    );
    let admin = server.connect("postgres").await.unwrap();
    let locker = server.connect("postgres").await.unwrap();
    let databases = || async {
        admin
            .query(
                "select datname from pg_database where datname like 'db\\_ci\\_%'",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };
    let ours = server.application_name();
    let sessions = || async {
        admin
            .query_one(
                "select count(*) from pg_stat_activity where application_name like 'db-ci %' \
                 and application_name <> $1",
                &[&ours],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };
    let sleeping = project(SLEEPS);
    let quick = project(QUICK);
    let args = |p: &Path| {
        vec![
            "run".to_owned(),
            p.display().to_string(),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            url.clone(),
        ]
    };
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGKILL] {
        for point in [Point::Boot, Point::Replay] {
            let context = format!("{signal:?} at {point:?}");
            if let Point::Boot = point {
                // CREATE DATABASE needs pg_database in ROW EXCLUSIVE mode: it waits here.
                locker
                    .batch_execute("begin; lock table pg_catalog.pg_database in share mode")
                    .await
                    .unwrap();
            }
            let child = db_ci(&args(sleeping.path()), &[]).spawn().unwrap();
            let query = match point {
                Point::Boot => "create database%",
                Point::Replay => "%pg_sleep%",
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let n: i64 = admin
                    .query_one(
                        "select count(*) from pg_stat_activity where application_name like \
                         'db-ci %' and state = 'active' and query ilike $1",
                        &[&query],
                    )
                    .await
                    .unwrap()
                    .get(0);
                if n > 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{context}: never reached");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            send(&child, signal);
            if let Point::Boot = point {
                // The run's own cleanup needs the lock too: let go after the signal.
                tokio::time::sleep(Duration::from_millis(500)).await;
                locker.batch_execute("rollback").await.unwrap();
            }
            let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
                .await
                .unwrap();
            assert_exit(&output, signal, &context);
            if signal != Signal::SIGKILL {
                assert_eq!(databases().await, Vec::<String>::new(), "{context}");
                continue;
            }
            // The dead run's sessions end once the server notices the client is gone.
            let deadline = Instant::now() + Duration::from_secs(15);
            while sessions().await > 0 {
                assert!(Instant::now() < deadline, "{context}: sessions linger");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let left = databases().await;
            let args = args(quick.path());
            let next = tokio::task::spawn_blocking(move || db_ci(&args, &[]).output().unwrap())
                .await
                .unwrap();
            assert_eq!(next.status.code(), Some(0), "{context}: {}", stderr(&next));
            for name in &left {
                assert!(
                    stderr(&next).contains(&format!("removed database {name}")),
                    "{context}: {}",
                    stderr(&next)
                );
            }
            assert_eq!(databases().await, Vec::<String>::new(), "{context}");
        }
    }
    drop(admin);
    drop(locker);
    server.shutdown().await;
}

/// The largest property allowed runs in bounded memory and stops at Ctrl-C like anything
/// else.
#[test]
fn ctrl_c_during_properties_ends_the_run_promptly() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if common::Backend::local().is_none() {
        return;
    }
    let proj = project(
        "create table if not exists c (id int primary key, n int not null default 0);\n\
         alter table c enable row level security;\n\
         insert into c values (1, 0) on conflict do nothing;",
    );
    std::fs::create_dir_all(proj.path().join("policy-tests")).unwrap();
    std::fs::write(
        proj.path().join("policy-tests/c.yaml"),
        "properties:\n  - name: as long as allowed\n    cases: 10000\n    max_steps: 1000\n    \
         operations: [update c set n = n + 1]\n    invariant: select 1 where false\n",
    )
    .unwrap();
    let run_dir = common::run_dir();
    let env = [("DB_CI_RUN_DIR", run_dir.path())];
    let run = Watched::spawn(db_ci(
        &[
            "props".into(),
            proj.path().display().to_string(),
            "--backend".into(),
            "local".into(),
        ],
        &env,
    ));
    // The property runs once the console has reported the stages before it (idempotence, not
    // selected).
    run.wait_for_output("idempotence", Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(1));
    let status = std::fs::read_to_string(format!("/proc/{}/status", run.child.id())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        rss_kb < 300_000,
        "db-ci uses {rss_kb} kB running a property"
    );
    let sent = Instant::now();
    send(&run.child, Signal::SIGINT);
    let output = run.output();
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "Ctrl-C took {:?}",
        sent.elapsed()
    );
    assert_exit(&output, Signal::SIGINT, "Ctrl-C during properties");
    assert_clean(run_dir.path(), "Ctrl-C during properties");
}
