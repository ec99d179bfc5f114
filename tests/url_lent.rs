//! A lent server (the url backend) left as found: the roles a project's migrations create go
//! after the run, so the next run does not fail on them; roles that existed are refused
//! unless adopted, and what a run changed on them (the shim's settings and memberships, the
//! project's own ALTER ROLE) is put back; a role that can log in never reaches service_role.
//! On a private local cluster dressed as a user's server.

mod common;

use std::path::Path;

use tokio_postgres::Client;

/// A Supabase CLI project whose migration creates a role, changes a role it did not create,
/// and fails if a role that can log in is able to become service_role while it runs.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::write(root.join("supabase/config.toml"), "").unwrap();
    std::fs::write(
        root.join("supabase/migrations/20240101000000_roles.sql"),
        "create role app_reader nologin;\n\
         alter role anon set work_mem = '8MB';\n\
         do $$ begin\n\
           if pg_has_role('authenticator', 'service_role', 'member')\n\
              or pg_has_role('authenticator', 'anon', 'member') then\n\
             raise exception 'a role that can log in reaches an API role';\n\
           end if;\n\
         end $$;\n",
    )
    .unwrap();
    dir
}

fn replay(root: &Path, url: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut all_env = vec![("CI", "true")];
    all_env.extend_from_slice(env);
    common::db_ci_text(
        &[
            "replay".into(),
            root.display().to_string(),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            url.to_owned(),
        ],
        &all_env,
    )
}

const ADOPT: &[(&str, &str)] = &[("DB_CI_URL_ADOPT_ROLES", "1")];

/// [`replay`] off the async runtime's threads (the test's own sessions keep running).
async fn replay_off_thread(
    root: &Path,
    url: &str,
    env: &'static [(&'static str, &'static str)],
) -> (Option<i32>, String) {
    let (root, url) = (root.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || replay(&root, &url, env))
        .await
        .unwrap()
}

/// Every role with what db-ci may change on it: attributes, memberships, settings.
async fn roles(admin: &Client) -> Vec<String> {
    let rows = admin
        .query(
            "select format('%s login=%s inherit=%s bypassrls=%s super=%s', rolname, rolcanlogin, \
             rolinherit, rolbypassrls, rolsuper) from pg_roles where rolname !~ '^pg_' \
             union all select format('%s in %s', m.member::regrole, m.roleid::regrole) \
             from pg_auth_members m where m.roleid::regrole::text !~ '^pg_' \
             union all select format('%s set %s', s.setrole::regrole, s.setconfig) \
             from pg_db_role_setting s order by 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lent_server_is_left_as_found_run_after_run() {
    let Some(common::Lent { server, url, admin }) = common::lent_server().await else {
        return;
    };
    // The server as its administrator set it up: PostgREST's login role with a password, an
    // `anon` with a setting of its own and a membership.
    admin
        .batch_execute(
            "create role authenticator login noinherit password 'Lent-pw 9'; \
             create role anon nologin inherit; \
             alter role anon set statement_timeout = '1min'; \
             create role staff nologin; grant staff to anon",
        )
        .await
        .unwrap();
    let found = roles(&admin).await;
    let project = project();

    // Not adopted: refused with every change, nothing touched.
    let (code, text) = replay_off_thread(project.path(), &url, &[]).await;
    assert_eq!(code, Some(3), "{text}");
    for change in [
        "anon: SET statement_timeout = 3s",
        "postgres: GRANT anon",
        "DB_CI_URL_ADOPT_ROLES=1",
    ] {
        assert!(text.contains(change), "`{change}` missing: {text}");
    }
    assert!(!text.contains("authenticator: GRANT"), "{text}");
    assert_eq!(roles(&admin).await, found, "a refused run changed roles");

    // Adopted, twice: each run passes (the project's role did not outlive the first), the
    // login role stays out of the API roles, and the roles are as found after each.
    for round in 1..=2 {
        let (code, text) = replay_off_thread(project.path(), &url, ADOPT).await;
        assert_eq!(code, Some(0), "round {round}: {text}");
        assert!(
            text.contains("left authenticator out of anon, authenticated, service_role"),
            "round {round}: {text}"
        );
        assert!(text.contains("removed roles"), "round {round}: {text}");
        assert!(!text.contains("Lent-pw 9"), "round {round}: {text}");
        assert_eq!(roles(&admin).await, found, "round {round}: {text}");
    }
    drop(admin);
    server.shutdown().await;
}

/// A run killed before it could put the roles back: the next run finds its ledger and no
/// db-ci run alive, undoes what it left, and leaves the server as first found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_killed_run_left_is_undone_by_the_next() {
    let Some(common::Lent { server, url, admin }) = common::lent_server().await else {
        return;
    };
    admin
        .batch_execute("create role anon nologin inherit")
        .await
        .unwrap();
    let found = roles(&admin).await;
    // A run's start, then SIGKILL: its session ends without a word.
    let killed = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_db-ci"))
                .args(["run", fixture.to_str().unwrap(), "--backend", "url"])
                .args(["--database-url", &url])
                .env("CI", "true")
                .env("DB_CI_URL_ADOPT_ROLES", "1")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            child
        }
    })
    .await
    .unwrap();
    let mut killed = killed;
    // Until the shim's roles exist: the run has changed the server.
    let started = std::time::Instant::now();
    loop {
        let n: i64 = admin
            .query_one(
                "select count(*) from pg_roles where rolname = 'service_role'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 1 || started.elapsed() > std::time::Duration::from_secs(60) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert_ne!(
        roles(&admin).await,
        found,
        "the killed run changed nothing to undo"
    );
    // Its sessions end with it; then the next run cleans up.
    let project = project();
    std::fs::write(
        project
            .path()
            .join("supabase/migrations/20240101000000_roles.sql"),
        "select 1;\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let mut said = String::new();
    loop {
        let (code, text) = replay_off_thread(project.path(), &url, ADOPT).await;
        assert_eq!(code, Some(0), "{text}");
        said.push_str(&text);
        if roles(&admin).await == found {
            break;
        }
        // The killed run's sessions may outlive it for a moment: it then counts as alive.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "never put back: {:?}\n{said}",
            roles(&admin).await
        );
    }
    assert!(
        said.contains("undid what an interrupted db-ci run left"),
        "{said}"
    );
    drop(admin);
    server.shutdown().await;
}

/// A project that changes found roles' passwords (set, changed, removed) and `VALID UNTIL`:
/// after the run each role's stored password (its hash) and limit are as found, and nothing
/// of db-ci's (the ledger, the password keepers) is left; no hash is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn found_passwords_and_validity_are_restored_after_the_run() {
    let Some(common::Lent { server, url, admin }) = common::lent_server().await else {
        return;
    };
    admin
        .batch_execute(
            "create role reporting login password 'Found pw 1' valid until '2100-01-01'; \
             create role batch login password 'Found pw 2'; \
             create role no_pw login",
        )
        .await
        .unwrap();
    let stored = || async {
        let rows = admin
            .query(
                "select rolname::text, coalesce(rolpassword, '(none)'), \
                 coalesce(rolvaliduntil::text, '(none)') from pg_authid \
                 where rolname in ('reporting', 'batch', 'no_pw') or rolname like 'db_ci%' \
                 order by 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2)
                )
            })
            .collect::<Vec<_>>()
    };
    let found = stored().await;
    let hash = found[0].split(' ').nth(1).unwrap().to_owned();
    assert!(hash.starts_with("SCRAM-SHA-256$"), "{found:?}");

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::write(root.join("supabase/config.toml"), "").unwrap();
    std::fs::write(
        root.join("supabase/migrations/20240101000000_passwords.sql"),
        "alter role reporting password 'Changed pw 1' valid until '2200-01-01';\n\
         alter role batch password null valid until '2300-01-01';\n\
         alter role no_pw password 'Added pw 3';\n",
    )
    .unwrap();
    for round in 1..=2 {
        let (code, text) = replay_off_thread(root, &url, &[]).await;
        assert_eq!(code, Some(0), "round {round}: {text}");
        for said in [
            "reporting: password as found",
            "batch: password as found",
            "no_pw: password removed",
            "VALID UNTIL",
        ] {
            assert!(
                text.contains(said),
                "round {round}: `{said}` missing: {text}"
            );
        }
        assert!(
            !text.contains("SCRAM-SHA-256$"),
            "round {round}: a hash is printed: {text}"
        );
        assert_eq!(stored().await, found, "round {round}: {text}");
    }
    drop(admin);
    server.shutdown().await;
}

/// A project whose migration creates a tablespace and writes `ALTER SYSTEM` settings (one
/// new, one that was there): after the run the tablespace and the new setting are gone, and
/// the changed one is named in a warning (its value as found is not written down).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projects_tablespace_and_system_settings_are_removed_or_named() {
    let Some(common::Lent { server, url, admin }) = common::lent_server().await else {
        return;
    };
    admin
        .batch_execute("alter system set work_mem = '5MB'")
        .await
        .unwrap();
    let data: String = admin
        .query_one("show data_directory", &[])
        .await
        .unwrap()
        .get(0);
    let owner = std::fs::metadata(&data).unwrap();
    let place = tempfile::tempdir().unwrap();
    let location = place.path().join("ts");
    std::fs::create_dir(&location).unwrap();
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(&location, Some(owner.uid()), Some(owner.gid())).unwrap();
    std::os::unix::fs::chown(place.path(), Some(owner.uid()), Some(owner.gid())).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::write(root.join("supabase/config.toml"), "").unwrap();
    std::fs::write(
        root.join("supabase/migrations/20240101000000_cluster.sql"),
        format!(
            "-- db-ci: no-transaction\n\
             create tablespace made_here location '{}';\n\
             alter system set log_min_duration_statement = 1234;\n\
             alter system set work_mem = '7MB';\n",
            location.display()
        ),
    )
    .unwrap();
    let state = || async {
        let rows = admin
            .query(
                "select 'tablespace ' || spcname from pg_tablespace union all \
                 select 'system ' || name from pg_file_settings \
                 where sourcefile like '%postgresql.auto.conf' order by 1",
                &[],
            )
            .await
            .unwrap();
        rows.iter().map(|r| r.get(0)).collect::<Vec<String>>()
    };
    let found = state().await;
    for round in 1..=2 {
        let (code, text) = replay_off_thread(root, &url, &[]).await;
        assert_eq!(code, Some(0), "round {round}: {text}");
        for said in [
            "removed tablespace made_here",
            "removed ALTER SYSTEM setting log_min_duration_statement",
        ] {
            assert!(
                text.contains(said),
                "round {round}: `{said}` missing: {text}"
            );
        }
        // The second run finds work_mem as the first left it: nothing to name then.
        let changed = "ALTER SYSTEM setting work_mem was changed";
        assert_eq!(text.contains(changed), round == 1, "round {round}: {text}");
        assert_eq!(state().await, found, "round {round}: {text}");
    }
    drop(admin);
    server.shutdown().await;
}
