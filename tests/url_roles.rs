//! The url backend on a server that is the user's: roles an administrator restricted are not
//! silently changed (and, when adopted, put back after the run), what db-ci creates is
//! NOLOGIN, listed, and gone after the run, and a
//! user other than the `postgres` superuser is refused with the reason.

mod common;

use std::path::Path;

use db_ci::backend::roles::SHIM_ROLES;
use db_ci::backend::{BackendKind, BackendOptions, Server};

fn run(url: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-minimal");
    let mut all_env = vec![("CI", "true")];
    all_env.extend_from_slice(env);
    common::db_ci_text(
        &[
            "run".into(),
            fixture.display().to_string(),
            "--backend".into(),
            "url".into(),
            "--database-url".into(),
            url.to_owned(),
        ],
        &all_env,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_backend_role_hygiene_on_a_server_with_restricted_roles() {
    let Some(common::Lent {
        server,
        url: postgres_url,
        admin,
    }) = common::lent_server().await
    else {
        return;
    };
    let url = |user: &str| postgres_url.replacen("postgres@", &format!("{user}@"), 1);
    let roles = || async {
        admin
            .query(
                "select rolname::text, rolcanlogin, rolbypassrls from pg_roles \
                 where rolname = any($1) order by 1",
                &[&SHIM_ROLES],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, bool>(1),
                    r.get::<_, bool>(2),
                )
            })
            .collect::<Vec<_>>()
    };

    // An administrator restricted service_role: no BYPASSRLS.
    admin
        .batch_execute("create role service_role nologin inherit nobypassrls")
        .await
        .unwrap();
    let (code, text) = tokio::task::spawn_blocking({
        let url = url("postgres");
        move || run(&url, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("service_role: BYPASSRLS"), "{text}");
    assert!(text.contains("DB_CI_URL_ADOPT_ROLES=1"), "{text}");
    assert_eq!(
        roles().await,
        vec![("service_role".to_owned(), false, false)],
        "a refused run changed roles"
    );

    // Opted in: the change is made and said; the roles db-ci created are NOLOGIN, listed,
    // and dropped at the end; the administrator's role stays, put back as it was.
    let (code, text) = tokio::task::spawn_blocking({
        let url = url("postgres");
        move || run(&url, &[("DB_CI_URL_ADOPT_ROLES", "1")])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("changed role service_role: BYPASSRLS"),
        "{text}"
    );
    assert!(text.contains("created roles anon, authenticated"), "{text}");
    assert!(text.contains("removed roles"), "{text}");
    assert_eq!(
        roles().await,
        vec![("service_role".to_owned(), false, false)],
        "db-ci's roles were left behind, or service_role kept what db-ci changed"
    );

    // No restricted roles: everything db-ci creates is NOLOGIN while it runs, and gone after.
    admin.batch_execute("drop role service_role").await.unwrap();
    let (code, text) = tokio::task::spawn_blocking({
        let url = url("postgres");
        move || run(&url, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(roles().await, vec![], "{text}");

    // Another user, superuser or not: refused with the reason, nothing created.
    admin
        .batch_execute("create role app_owner login superuser; create role app_user login createdb")
        .await
        .unwrap();
    for user in ["app_owner", "app_user"] {
        let (code, text) = tokio::task::spawn_blocking({
            let url = url(user);
            move || run(&url, &[])
        })
        .await
        .unwrap();
        assert_eq!(code, Some(3), "{user}: {text}");
        assert!(text.contains("superuser `postgres`"), "{user}: {text}");
        assert_eq!(roles().await, vec![], "{user}: {text}");
    }
    let dbs: i64 = admin
        .query_one(
            "select count(*) from pg_database where datname like 'db\\_ci\\_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(dbs, 0);
    drop(admin);
    server.shutdown().await;
}

/// While a db-ci run uses the roles, another run that ends does not drop them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_stay_while_another_run_uses_them() {
    let Some(common::Lent { server, url, admin }) = common::lent_server().await else {
        return;
    };
    // A live run: a url Server held by this test.
    let live = Server::start(&BackendOptions {
        kind: BackendKind::Url,
        database_url: Some(url.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let (code, text) = tokio::task::spawn_blocking(move || run(&url, &[]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("removed roles"), "{text}");
    let client = live.connect("postgres").await.unwrap();
    let n: i64 = client
        .query_one(
            "select count(*) from pg_roles where rolname = any($1)",
            &[&SHIM_ROLES],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, SHIM_ROLES.len());
    drop(client);
    live.shutdown().await;
    let n: i64 = admin
        .query_one(
            "select count(*) from pg_roles where rolname = any($1)",
            &[&SHIM_ROLES],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the last run did not drop db-ci's roles");
    drop(admin);
    server.shutdown().await;
}
