//! `--keep`: after the run, the replayed database is reachable at the printed URL (which holds
//! no password) until Ctrl-C, then everything is torn down.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn nothing_left(run_dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<_> = std::fs::read_dir(run_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads a `--keep` run's output until it waits for Ctrl-C: the first URL it printed, and
/// everything it printed.
fn until_kept(child: &mut std::process::Child) -> (Option<String>, String) {
    let mut url = None;
    let mut seen = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if let Some(at) = line.find("postgres://") {
            url.get_or_insert_with(|| line[at..].trim().to_owned());
        }
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    (url, seen)
}

#[test]
fn keep_serves_the_replayed_database_until_ctrl_c() {
    if common::Backend::local().is_none() {
        return;
    }
    let run_dir = common::run_dir();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-pgtap-supabase-suite");
    let mut child = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args([
            "pgtap",
            &fixture.display().to_string(),
            "--backend",
            "local",
            "--keep",
        ])
        .env("DB_CI_RUN_DIR", run_dir.path())
        .env_remove("DB_CI_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (url, seen) = until_kept(&mut child);
    let url = url.unwrap_or_else(|| panic!("no URL printed:\n{seen}"));
    assert!(seen.contains("PASS"), "{seen}");
    // db-ci's own cluster's superuser (postgres is the demoted role migrations run as).
    assert!(url.starts_with("postgres://supabase_admin@"), "{url}");
    assert!(
        seen.contains("set session authorization postgres"),
        "{seen}"
    );
    // The replayed database, as the migrations left it: the pgtap stage worked on a clone.
    let psql = |sql: &str| {
        let out = Command::new("psql")
            .args([url.as_str(), "-tAc", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    if Command::new("psql").arg("--version").output().is_ok() {
        assert_eq!(psql("select to_regclass('public.notes') is not null"), "t");
        assert_eq!(
            psql("select count(*) from pg_extension where extname in ('pgtap', 'basejump-supabase_test_helpers')"),
            "0"
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    // Ctrl-C is how a user ends --keep: the exit code is still the run's verdict (a pass).
    assert_eq!(status.code(), Some(0), "{status:?}");
    nothing_left(run_dir.path());
}

/// A `--keep` killed with SIGKILL cannot remove its pgpass file (the server's password): the
/// next run does, since its owner is gone. Container backend (the one with a password).
#[test]
fn a_killed_keeps_password_file_is_removed_by_the_next_run() {
    let Some(backend) = common::Backend::container() else {
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let mut child = kept_minimal(&backend)
        .env("TMPDIR", temp.path())
        .spawn()
        .unwrap();
    let (_, seen) = until_kept(&mut child);
    let keep_dirs = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(temp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("db-ci-keep-")
            })
            .collect()
    };
    let left = keep_dirs();
    assert_eq!(
        left.len(),
        1,
        "no pgpass directory while --keep waits:\n{seen}"
    );
    assert!(left[0].join("pgpass").is_file());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    assert_eq!(
        keep_dirs().len(),
        1,
        "SIGKILL gave it no chance to clean up"
    );
    // The next run (same backend: it also removes the killed run's container).
    let mut next = vec!["replay".to_owned(), fixture.display().to_string()];
    next.extend(backend.args());
    let output = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(&next)
        .env("TMPDIR", temp.path())
        .env_remove("DB_CI_BACKEND")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        keep_dirs().is_empty(),
        "pgpass left after the next run:\n{stderr}"
    );
    assert!(stderr.contains("--keep password file"), "{stderr}");
}

/// `db-ci replay fixtures/pass-minimal --keep` on `backend`, its output piped.
fn kept_minimal(backend: &common::Backend) -> Command {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let mut command = Command::new(env!("CARGO_BIN_EXE_db-ci"));
    command
        .args(["replay", &fixture.display().to_string(), "--keep"])
        .args(backend.args())
        .env_remove("DB_CI_BACKEND")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// The URL `--keep` prints for a container backend run, with what the run printed.
fn kept_container_url(backend: &common::Backend, route: Option<&str>) -> (String, String) {
    let mut command = kept_minimal(backend);
    command.env_remove(db_ci::backend::container::ROUTE_VAR);
    if let Some(route) = route {
        command.env(db_ci::backend::container::ROUTE_VAR, route);
    }
    let mut child = command.spawn().unwrap();
    let (url, seen) = until_kept(&mut child);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{seen}");
    assert!(seen.contains("PASS [") && !seen.contains("FAIL"), "{seen}");
    (
        url.unwrap_or_else(|| panic!("no URL printed:\n{seen}")),
        seen,
    )
}

/// Where the engine's bridge is on this machine, a container is reached at its own address
/// (no port published); told `published`, through a published port on this machine — the
/// route every engine that is not here (Docker Desktop, rootless, remote) takes, which CI
/// must still run.
#[test]
fn a_container_is_reached_on_its_bridge_or_through_its_published_port() {
    let Some(backend) = common::Backend::container() else {
        return;
    };
    let host_port = |url: &str| -> (String, String) {
        let rest = url.split_once('@').unwrap().1;
        let authority = rest.split_once('/').unwrap().0;
        let (host, port) = authority.rsplit_once(':').unwrap();
        (host.to_owned(), port.to_owned())
    };
    let (published, seen) = kept_container_url(&backend, Some("published"));
    let (host, port) = host_port(&published);
    assert_eq!(host, "127.0.0.1", "{seen}");
    assert_ne!(port, "5432", "{seen}");
    // The bridge is here when this machine holds its gateway (docker0's address).
    let bridge_here = std::net::UdpSocket::bind(("172.17.0.1", 0)).is_ok();
    let (auto, seen) = kept_container_url(&backend, None);
    let (host, port) = host_port(&auto);
    if bridge_here {
        assert!(host.starts_with("172.17."), "{seen}");
        assert_eq!(port, "5432", "{seen}");
    } else {
        // Not at docker0's default address: db-ci may still have found it elsewhere.
        eprintln!("no bridge at 172.17.0.1 here: the automatic route ran, unchecked ({host})");
    }
    // A value db-ci does not know is refused, not ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(["replay", "fixtures/pass-minimal"])
        .args(backend.args())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(db_ci::backend::container::ROUTE_VAR, "bridge")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("neither `auto` nor `published`"),
        "{stderr}"
    );
}
