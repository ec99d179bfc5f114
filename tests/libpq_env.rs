//! `PGPASSWORD` and the password file (`PGPASSFILE`, else `~/.pgpass`) serve a connection
//! string that names no password, as they do for psql: for the url backend and `--against`.
//! So do libpq's service files (`service=name`, `PGSERVICE`, `PGSERVICEFILE`, `PGSYSCONFDIR`).
//! What they hold is never printed. On a private local cluster that requires passwords.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const SECRET: &str = "Env pw 77x";

fn db_ci(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let mut all_env = vec![("CI", "true")];
    all_env.extend_from_slice(env);
    common::db_ci_text(&args, &all_env)
}

/// A lent server that from now on asks every new session for [`SECRET`].
async fn requiring_the_password() -> Option<common::Lent> {
    let lent = common::lent_server().await?;
    let admin = &lent.admin;
    let hba: String = admin.query_one("show hba_file", &[]).await.unwrap().get(0);
    admin
        .batch_execute(&format!(
            "alter role postgres password '{SECRET}'; set password_encryption = 'scram-sha-256'"
        ))
        .await
        .unwrap();
    std::fs::write(&hba, "local all all scram-sha-256\n").unwrap();
    admin
        .batch_execute("select pg_reload_conf()")
        .await
        .unwrap();
    Some(lent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environments_password_is_used_and_never_shown() {
    let Some(common::Lent { server, url, admin }) = requiring_the_password().await else {
        return;
    };
    let port = server.connection.port;

    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let fixture = fixture.to_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap().to_owned();
    let replay = |env: &[(&str, &str)]| {
        let mut env = env.to_vec();
        env.push(("HOME", &home));
        db_ci(
            &[
                "replay",
                fixture,
                "--backend",
                "url",
                "--database-url",
                &url,
            ],
            &env,
        )
    };

    // The clean twin: no password anywhere, refused by the server.
    let (code, text) = replay(&[]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("password"), "{text}");

    let (code, text) = replay(&[("PGPASSWORD", SECRET)]);
    assert_eq!(code, Some(0), "PGPASSWORD: {text}");
    assert!(!text.contains(SECRET), "{text}");

    let files = tempfile::tempdir().unwrap();
    let pgpass = files.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!("# db-ci test\nother:1:*:*:wrong\nlocalhost:{port}:*:postgres:{SECRET}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pgpass_name = pgpass.to_str().unwrap();
    let (code, text) = replay(&[("PGPASSFILE", pgpass_name)]);
    assert_eq!(code, Some(0), "PGPASSFILE: {text}");
    assert!(!text.contains(SECRET), "{text}");

    // As libpq: a file others may read is ignored, with a warning.
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, text) = replay(&[("PGPASSFILE", pgpass_name)]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("group or world access"), "{text}");
    assert!(!text.contains(SECRET), "{text}");

    // `--against`: drift reads production with the environment's password.
    let (code, text) = db_ci(
        &["drift", fixture, "--against", &url],
        &[("PGPASSWORD", SECRET), ("HOME", &home)],
    );
    assert!(matches!(code, Some(0) | Some(1)), "drift connects: {text}");
    assert!(!text.contains(SECRET), "{text}");
    // And the gate, with every report it writes.
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("r.json");
    let junit = reports.path().join("r.xml");
    let summary = reports.path().join("summary.md");
    let (code, text) = db_ci(
        &[
            "gate",
            fixture,
            "--against",
            &url,
            "--backend",
            "local",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[
            ("PGPASSWORD", SECRET),
            ("HOME", &home),
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert!(!text.contains("password authentication failed"), "{text}");
    assert!(matches!(code, Some(0) | Some(1)), "gate connects: {text}");
    assert!(!text.contains(SECRET), "{text}");
    for report in [&json, &junit, &summary] {
        let written = std::fs::read_to_string(report).unwrap();
        assert!(!written.contains(SECRET), "{}: {written}", report.display());
    }
    drop(admin);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_files_settings_and_password_are_used_and_never_shown() {
    let Some(common::Lent { server, admin, .. }) = requiring_the_password().await else {
        return;
    };
    let db_ci::backend::Host::Socket(socket) = &server.connection.host else {
        panic!("local backend uses a socket")
    };
    let section = |name: &str, password: &str| {
        format!(
            "[{name}]\nhost={}\nport={}\nuser=postgres\ndbname=postgres\npassword={password}\n",
            socket.display(),
            server.connection.port
        )
    };
    let files = tempfile::tempdir().unwrap();
    let user_file = files.path().join("services.conf");
    std::fs::write(
        &user_file,
        format!(
            "# the user's\n{}{}",
            section("lent", SECRET),
            section("wrong", "Wrong svc 9x")
        ),
    )
    .unwrap();
    let sysconf = files.path().join("etc");
    std::fs::create_dir(&sysconf).unwrap();
    std::fs::write(sysconf.join("pg_service.conf"), section("shared", SECRET)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let (user_file, sysconf, home) = (
        user_file.to_str().unwrap(),
        sysconf.to_str().unwrap(),
        home.path().to_str().unwrap(),
    );
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let fixture = fixture.to_str().unwrap();
    let files_env = [
        ("HOME", home),
        ("PGSERVICEFILE", user_file),
        ("PGSYSCONFDIR", sysconf),
    ];
    let replay = |url: &str, extra: &[(&str, &str)]| {
        let mut env = files_env.to_vec();
        env.extend_from_slice(extra);
        db_ci(
            &["replay", fixture, "--backend", "url", "--database-url", url],
            &env,
        )
    };

    // `service=` in a key=value string and in a URL's query, and `PGSERVICE` from the
    // system file: each reaches the server with the service's password.
    for (url, extra) in [
        ("service=lent", vec![]),
        ("postgresql:///?service=lent", vec![]),
        ("connect_timeout=10", vec![("PGSERVICE", "shared")]),
    ] {
        let (code, text) = replay(url, &extra);
        assert_eq!(code, Some(0), "{url} {extra:?}: {text}");
        assert!(!text.contains(SECRET), "{text}");
    }
    // The clean twin: the service's wrong password is refused by the server, and not shown.
    let (code, text) = replay("service=wrong", &[]);
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("password"), "{text}");
    assert!(!text.contains("Wrong svc 9x"), "{text}");
    // A service nowhere defined is bad input, before anything boots.
    let (code, text) = replay("service=nowhere", &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("service \"nowhere\""), "{text}");

    // `--against`: drift, and the gate with every report it writes.
    let (code, text) = db_ci(&["drift", fixture, "--against", "service=lent"], &files_env);
    assert!(matches!(code, Some(0) | Some(1)), "drift connects: {text}");
    assert!(!text.contains(SECRET), "{text}");
    let reports = tempfile::tempdir().unwrap();
    let json = reports.path().join("r.json");
    let junit = reports.path().join("r.xml");
    let summary = reports.path().join("summary.md");
    let mut env = files_env.to_vec();
    env.extend([
        ("PGSERVICE", "lent"),
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ]);
    let (code, text) = db_ci(
        &[
            "gate",
            fixture,
            "--against",
            "postgresql://",
            "--backend",
            "local",
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
        &env,
    );
    assert!(!text.contains("password authentication failed"), "{text}");
    assert!(matches!(code, Some(0) | Some(1)), "gate connects: {text}");
    assert!(!text.contains(SECRET), "{text}");
    for report in [&json, &junit, &summary] {
        let written = std::fs::read_to_string(report).unwrap();
        assert!(!written.contains(SECRET), "{}: {written}", report.display());
    }
    drop(admin);
    server.shutdown().await;
}
