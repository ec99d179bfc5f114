//! Every path db-ci reads in a project is read as what it is: a link to nothing, a symlink
//! loop, a folder or a FIFO where a file is expected is an input error (exit 2) naming the
//! path, before any backend is reached, never a file skipped or a suite run twice.

mod common;

use std::path::Path;

/// A Supabase CLI project with one migration and one pgTAP file.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::create_dir_all(root.join("supabase/tests/sub")).unwrap();
    std::fs::write(root.join("supabase/config.toml"), "").unwrap();
    std::fs::write(
        root.join("supabase/migrations/20240101000000_a.sql"),
        "create table t (id int);\n",
    )
    .unwrap();
    std::fs::write(
        root.join("supabase/tests/sub/a_test.sql"),
        "begin; select plan(1); select ok(true); select * from finish(); rollback;\n",
    )
    .unwrap();
    dir
}

/// Runs db-ci against a server that cannot exist: reaching the backend would be exit 3.
fn run(root: &Path) -> (Option<i32>, String) {
    common::db_ci_text(
        &[
            "run".into(),
            root.display().to_string(),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            "postgres://postgres@127.0.0.1:1/postgres".into(),
        ],
        &[("CI", "true")],
    )
}

fn fifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).unwrap();
}

#[test]
fn a_clean_project_reaches_the_backend() {
    let dir = project();
    let (code, text) = run(dir.path());
    assert_eq!(
        code,
        Some(3),
        "the clean twin must get as far as the server: {text}"
    );
}

#[test]
fn bad_paths_are_input_errors_at_the_path_before_boot() {
    type Make = fn(&Path);
    let cases: &[(&str, Make, &str)] = &[
        (
            "pgTAP symlink loop",
            |r| std::os::unix::fs::symlink("..", r.join("supabase/tests/sub/up")).unwrap(),
            "supabase/tests/sub/up: a symlink loop",
        ),
        (
            "pgTAP link to itself",
            |r| std::os::unix::fs::symlink("me", r.join("supabase/tests/me")).unwrap(),
            "supabase/tests/me: a symlink loop",
        ),
        (
            "pgTAP broken link",
            |r| std::os::unix::fs::symlink("gone", r.join("supabase/tests/b_test.sql")).unwrap(),
            "supabase/tests/b_test.sql: a symlink to nothing",
        ),
        (
            "pgTAP folder named like a test",
            |r| std::fs::create_dir(r.join("supabase/tests/c_test.sql")).unwrap(),
            "supabase/tests/c_test.sql: a directory",
        ),
        (
            "pgTAP FIFO",
            |r| fifo(&r.join("supabase/tests/d_test.sql")),
            "supabase/tests/d_test.sql: a FIFO",
        ),
        (
            "tests folder a broken link",
            |r| {
                std::fs::remove_dir_all(r.join("supabase/tests")).unwrap();
                std::os::unix::fs::symlink("elsewhere", r.join("supabase/tests")).unwrap()
            },
            "supabase/tests: a symlink to nothing",
        ),
        (
            "migration FIFO",
            |r| fifo(&r.join("supabase/migrations/20240102000000_b.sql")),
            "supabase/migrations/20240102000000_b.sql: a FIFO",
        ),
        (
            "migration folder",
            |r| std::fs::create_dir(r.join("supabase/migrations/20240102000000_b.sql")).unwrap(),
            "supabase/migrations/20240102000000_b.sql: a directory",
        ),
        (
            "seed glob through a symlink loop",
            |r| {
                std::fs::write(
                    r.join("supabase/config.toml"),
                    "[db.seed]\nsql_paths = [\"./seeds/**/*.sql\"]\n",
                )
                .unwrap();
                std::fs::create_dir_all(r.join("supabase/seeds/sub")).unwrap();
                std::fs::write(r.join("supabase/seeds/sub/a.sql"), "select 1;\n").unwrap();
                std::os::unix::fs::symlink("..", r.join("supabase/seeds/sub/up")).unwrap()
            },
            "supabase/seeds/sub/up: a symlink loop",
        ),
        (
            "db-ci.yaml broken link",
            |r| std::os::unix::fs::symlink("gone.yaml", r.join("db-ci.yaml")).unwrap(),
            "db-ci.yaml: a symlink to nothing",
        ),
        (
            "config.toml loop",
            |r| {
                std::fs::remove_file(r.join("supabase/config.toml")).unwrap();
                std::os::unix::fs::symlink("config.toml", r.join("supabase/config.toml")).unwrap()
            },
            "supabase/config.toml: a symlink loop",
        ),
        (
            "policy-tests folder broken link",
            |r| std::os::unix::fs::symlink("gone", r.join("policy-tests")).unwrap(),
            "policy-tests: a symlink to nothing",
        ),
        (
            "policy-tests setup FIFO",
            |r| {
                std::fs::create_dir(r.join("policy-tests")).unwrap();
                fifo(&r.join("policy-tests/setup.sql"))
            },
            "policy-tests/setup.sql: a FIFO",
        ),
        (
            "snapshot FIFO",
            |r| fifo(&r.join("db-ci.snapshot.yaml")),
            "db-ci.snapshot.yaml: a FIFO",
        ),
    ];
    for (what, make, expected) in cases {
        let dir = project();
        make(dir.path());
        let (code, text) = run(dir.path());
        assert_eq!(code, Some(2), "{what}: {text}");
        assert!(
            text.contains(expected),
            "{what}: wanted `{expected}` in\n{text}"
        );
        assert!(!text.contains("panicked"), "{what}: {text}");
    }
}
