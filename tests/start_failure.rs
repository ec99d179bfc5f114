//! A local server that exits while starting is reported at once, quoting the end of its log,
//! never after the 30 s wait for connections.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn run(env: &[(&str, &str)]) -> (Option<i32>, String, Duration) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let mut all_env = vec![("CI", "true")];
    all_env.extend_from_slice(env);
    let started = Instant::now();
    let (code, text) = common::db_ci_text(
        &[
            "run".into(),
            fixture.display().to_string(),
            "--backend".into(),
            "local".into(),
        ],
        &all_env,
    );
    (code, text, started.elapsed())
}

/// A folder the server may use: tempdirs are 0700, and as root the server runs as `postgres`.
fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn a_server_that_exits_at_start_is_reported_at_once_with_its_log() {
    let Ok(install) = db_ci::backend::local::find_install() else {
        common::Backend::local();
        return;
    };
    // A bad setting: binaries whose `postgres` adds one the server does not know.
    let bin = open_tempdir();
    for tool in ["initdb", "pg_config"] {
        let real = install.bindir.join(tool);
        if real.exists() {
            std::os::unix::fs::symlink(&real, bin.path().join(tool)).unwrap();
        }
    }
    let wrapper = bin.path().join("postgres");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\ncase \"$1\" in -V|--version) exec {0} \"$@\";; esac\n\
             exec {0} \"$@\" -c no_such_setting=1\n",
            install.bindir.join("postgres").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = open_tempdir();
    let env = [
        ("PG_BIN", bin.path().to_str().unwrap()),
        ("DB_CI_CACHE_DIR", cache.path().to_str().unwrap()),
    ];
    // The first run builds the cache entry (initdb); the second is timed from a warm cache.
    let _ = run(&env);
    let (code, text, took) = run(&env);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("exited at start"), "{text}");
    assert!(
        text.contains("unrecognized configuration parameter \"no_such_setting\""),
        "the log line is quoted: {text}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}: {text}");

    // A run dir the server's OS user cannot enter (as root the server runs as `postgres`).
    if nix::unistd::geteuid().is_root() {
        let closed = tempfile::tempdir().unwrap();
        std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (code, text, took) = run(&[("DB_CI_RUN_DIR", closed.path().to_str().unwrap())]);
        assert_eq!(code, Some(3), "{text}");
        assert!(text.contains("exited at start"), "{text}");
        assert!(text.contains("Permission denied"), "{text}");
        assert!(took < Duration::from_secs(5), "took {took:?}: {text}");
    }
}
