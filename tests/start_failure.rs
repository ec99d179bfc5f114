//! A server that exits while starting is reported at once, quoting the end of its log, never
//! after the wait for connections: a local server, and a container (whose entrypoint fails,
//! whose setup server refuses a setting, or whose final server fails after the setup one was
//! ready), which is then gone.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Well under the wait for a local server's connections (30 s) that a start failure must not
/// sit through, with room for initdb on a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(15);

fn run(env: &[(&str, &str)]) -> (Option<i32>, String, Duration) {
    run_on(&["--backend", "local"], env)
}

fn run_on(backend: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, Duration) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let mut all_env = vec![("CI", "true")];
    all_env.extend_from_slice(env);
    let mut args = vec!["run".to_owned(), fixture.display().to_string()];
    args.extend(backend.iter().map(|a| a.to_string()));
    let started = Instant::now();
    let (code, text) = common::db_ci_text(&args, &all_env);
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
    // The cache entry is never completed here (the server that makes its shimmed templates
    // refuses the setting too), so each run pays for initdb: "at once" is measured against
    // the 30 s wait for connections, with room for initdb on a loaded machine.
    let (code, text, took) = run(&env);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("exited at start"), "{text}");
    assert!(
        text.contains("unrecognized configuration parameter \"no_such_setting\""),
        "the log line is quoted: {text}"
    );
    assert!(took < AT_ONCE, "took {took:?}: {text}");

    // A run dir the server's OS user cannot enter (as root the server runs as `postgres`).
    if nix::unistd::geteuid().is_root() {
        let closed = tempfile::tempdir().unwrap();
        std::fs::set_permissions(closed.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (code, text, took) = run(&[("DB_CI_RUN_DIR", closed.path().to_str().unwrap())]);
        assert_eq!(code, Some(3), "{text}");
        assert!(text.contains("exited at start"), "{text}");
        assert!(text.contains("Permission denied"), "{text}");
        assert!(took < AT_ONCE, "took {took:?}: {text}");
    }
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The test image with another entrypoint and/or an init script, committed as `tag`.
fn derived_image(base: &str, tag: &str, entrypoint: Option<&str>, init_script: Option<&str>) {
    let id = docker(&["create", base]);
    if let Some(script) = init_script {
        let dir = open_tempdir();
        let file = dir.path().join("zz-db-ci-test.sh");
        std::fs::write(&file, script).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        docker(&[
            "cp",
            file.to_str().unwrap(),
            &format!("{id}:/docker-entrypoint-initdb.d/"),
        ]);
    }
    let mut commit = vec!["commit".to_owned()];
    if let Some(entrypoint) = entrypoint {
        commit.extend(["--change".to_owned(), format!("ENTRYPOINT {entrypoint}")]);
    }
    commit.extend([id.clone(), tag.to_owned()]);
    docker(&commit.iter().map(String::as_str).collect::<Vec<_>>());
    docker(&["rm", &id]);
}

/// Containers this test's runs left, found by the label db-ci puts on every container.
fn containers_of(image: &str) -> String {
    docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("ancestor={image}"),
        "--format",
        "{{.ID}}",
    ])
}

#[test]
fn a_container_that_exits_at_start_is_reported_at_once_with_its_log() {
    if common::Backend::container().is_none() {
        return;
    }
    let base = common::container_image();
    let pid = std::process::id();
    let cases = [
        (
            "an entrypoint that fails",
            Some(r#"["sh", "-c", "echo 'entrypoint: no way to start here' >&2; exit 7"]"#),
            None,
            "entrypoint: no way to start here",
        ),
        (
            "a setting the server does not know",
            Some(r#"["sh", "-c", "exec docker-entrypoint.sh \"$@\" -c no_such_setting=1", "--"]"#),
            None,
            "unrecognized configuration parameter \"no_such_setting\"",
        ),
        (
            // The setup server says "ready", then the final one cannot load a library: the
            // wait that follows the first "ready" must see the container go.
            "a final server that fails after the setup server was ready",
            None,
            Some("#!/bin/sh\necho \"shared_preload_libraries = 'no_such_library'\" >> \"$PGDATA/postgresql.conf\"\n"),
            "no_such_library",
        ),
    ];
    // Side by side: each case waits for a container to start and go (no seed: a derived
    // image's first start initialises its cluster).
    let cases: Vec<_> = cases.into_iter().enumerate().collect();
    common::parallel(cases, 3, |(i, (what, entrypoint, init_script, quoted))| {
        let tag = format!("db-ci-test-start-failure:{pid}-{i}");
        derived_image(&base, &tag, entrypoint, init_script);
        let (code, text, took) = run_on(&["--backend", "container", "--image", &tag], &[]);
        let left = containers_of(&tag);
        let _ = docker(&["rmi", "-f", &tag]);
        assert_eq!(code, Some(3), "{what}: {text}");
        assert!(text.contains("exited at start"), "{what}: {text}");
        assert!(
            text.contains(quoted),
            "{what}: the log line is quoted: {text}"
        );
        assert!(
            !text.contains("\\n\", \""),
            "{what}: the log is quoted as lines, not as a list: {text}"
        );
        assert!(
            took < Duration::from_secs(20),
            "{what}: took {took:?}: {text}"
        );
        assert!(left.is_empty(), "{what}: containers left: {left}");
    });
}
