//! The url backend: db-ci creates and drops its own databases on an existing server, never
//! writes into the URL's database, and never prints the password. Also: exit 3 and advice
//! when no backend is usable.

mod common;

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use db_ci::idempotence::catalog::Fingerprint;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_backend_uses_only_its_own_databases() {
    if common::Backend::local().is_none() {
        return;
    }
    // The "existing server" is a private local cluster.
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
    let secret = "s3cret-Passw0rd";
    let encoded_socket = socket.display().to_string().replace('/', "%2F");
    let url = format!(
        "postgres://postgres:{secret}@{encoded_socket}:{}/postgres",
        server.connection.port
    );
    let admin = server.connect("postgres").await.unwrap();
    admin
        .batch_execute("create table precious (id int); insert into precious values (1)")
        .await
        .unwrap();
    let before = Fingerprint::read(&admin).await.unwrap();
    let databases = || async {
        let rows = admin
            .query(
                "select datname from pg_database where datname like 'db\\_ci\\_%' order by 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
    };

    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for (fixture, code) in [("pass-minimal", 0), ("fail-nonidempotent-policy", 1)] {
        let output = common::db_ci(&[
            "run".into(),
            fixtures.join(fixture).display().to_string(),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            url.clone(),
        ]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{fixture}: {stdout}{stderr}"
        );
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "password printed: {stdout}{stderr}"
        );
        assert!(stdout.contains("url postgres://postgres:***@/"), "{stdout}");
        // It cannot demote the server's postgres: said once, and in the header.
        assert_eq!(
            stderr.matches("cannot demote").count(),
            1,
            "{fixture}: {stderr}"
        );
        assert!(
            stdout.contains("not demoted as on the platform"),
            "{fixture}: {stdout}"
        );
        assert_eq!(
            databases().await,
            Vec::<String>::new(),
            "{fixture}: throwaway databases left"
        );
    }
    let after = Fingerprint::read(&admin).await.unwrap();
    assert_eq!(
        before.diff(&after),
        vec![],
        "db-ci changed the URL's own database"
    );
    let count: i64 = admin
        .query_one("select count(*) from precious", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);

    // A bad password in a URL that fails to connect is not printed either.
    let output = common::db_ci(&[
        "run".into(),
        fixtures.join("pass-minimal").display().to_string(),
        "--database-url".into(),
        format!("postgres://postgres:{secret}@127.0.0.1:1/postgres"),
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(3), "{all}");
    assert!(!all.contains(secret), "{all}");
    drop(admin);
    server.shutdown().await;
}

#[test]
fn no_usable_backend_exits_3_with_advice() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let json = tempfile::tempdir().unwrap();
    let report = json.path().join("r.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args([
            "run",
            &fixtures.join("pass-minimal").display().to_string(),
            "--backend",
            "local",
        ])
        .args(["--json", &report.display().to_string()])
        .env("PG_BIN", "/nonexistent/bin")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("PG_BIN"), "{stderr}");
    // The JSON report is written even so, every stage skipped with a reason.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["error"]["kind"], "environment");
    for stage in report["stages"].as_array().unwrap() {
        assert_eq!(stage["verdict"], "skipped");
        assert!(stage["reason"].as_str().is_some());
    }
}

#[test]
fn bad_config_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::write(dir.path().join("migrations/0001_a.sql"), "select 1;").unwrap();
    std::fs::write(
        dir.path().join("db-ci.yaml"),
        "replay:\n  mode: strict\n  statment_timeout: 5s\n",
    )
    .unwrap();
    let output = common::db_ci(&["run".into(), dir.path().display().to_string()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("db-ci.yaml:3:"), "{stderr}");
    assert!(stderr.contains("statment_timeout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
