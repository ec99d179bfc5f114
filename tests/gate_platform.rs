//! `db-ci gate` against a production db-ci's shim did not build: a database assembled the way
//! the platform assembles a hosted project's (the image's init scripts and migrations, then
//! the auth and storage services' own migrations, each as its own role; see
//! tests/platform_production/README.md), the project's migrations applied and recorded as
//! `supabase db push` does (as the demoted `postgres`, statements split by the CLI's
//! splitter), with rows. An unchanged release passes against it, a release that breaks on its
//! rows blocks, and nothing in it changes.

mod common;

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use db_ci::idempotence::catalog::Fingerprint;
use db_ci::idempotence::data::DataFingerprint;

/// The platform's pieces, in the order it builds a database, each with the role it runs as.
const PLATFORM: &[(&str, &str)] = &[
    ("postgres", include_str!("platform_production/00_image.sql")),
    (
        "supabase_admin",
        include_str!("platform_production/10_image_migrations.sql"),
    ),
    (
        "supabase_auth_admin",
        include_str!("platform_production/20_auth.sql"),
    ),
    (
        "supabase_storage_admin",
        include_str!("platform_production/30_storage.sql"),
    ),
];

/// The project's applied migrations, written as Supabase projects write them: leading
/// comments, a trigger on auth.users, a policy on storage.objects, a bucket row.
const APPLIED: &[(&str, &str)] = &[
    (
        "20240101000000_profiles.sql",
        "-- profiles, one per user\n\
         create table public.profiles (\n  id uuid primary key references auth.users (id) on delete cascade,\n  \
           username text unique,\n  ref uuid not null default uuid_generate_v4()\n);\n\
         alter table public.profiles enable row level security;\n\
         create policy \"own profile\" on public.profiles for select to authenticated\n  \
           using ((select auth.uid()) = id);\n\
         create function public.handle_new_user() returns trigger language plpgsql\n  \
           security definer set search_path = '' as $$\nbegin\n  \
           insert into public.profiles (id) values (new.id);\n  return new;\nend;\n$$;\n\
         create trigger on_auth_user_created after insert on auth.users\n  \
           for each row execute function public.handle_new_user();\n",
    ),
    (
        "20240102000000_posts.sql",
        "/* posts and their pictures */\n\
         create table public.posts (\n  id bigint generated always as identity primary key,\n  \
           author uuid not null references public.profiles (id),\n  body text\n);\n\
         alter table public.posts enable row level security;\n\
         create policy \"posts for members\" on public.posts for select to authenticated using (true);\n\
         create policy \"own pictures\" on storage.objects for insert to authenticated\n  \
           with check (bucket_id = 'pictures' and (select auth.uid())::text = (storage.foldername(name))[1]);\n",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_against_a_production_the_platform_built() {
    let Some(backend) = common::Backend::local() else {
        return;
    };
    let server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .unwrap();
    // As the image's build script: `postgres` made a superuser owning the database, then
    // each piece run as its role.
    let admin = server.connect("postgres").await.unwrap();
    for statement in [
        "create role postgres superuser login",
        "create database platform_prod owner postgres",
    ] {
        admin.batch_execute(statement).await.unwrap();
    }
    drop(admin);
    let prod = server.connect("platform_prod").await.unwrap();
    for (role, sql) in PLATFORM {
        prod.batch_execute(&format!(
            "set session authorization {role};\n{sql}\n;reset session authorization"
        ))
        .await
        .unwrap_or_else(|e| panic!("platform piece as {role}: {e:?}"));
    }
    // `supabase db push`: logged in as the demoted postgres (its role settings apply: the
    // search path with `extensions`), the ledger as the CLI creates it, each file's
    // statements in one transaction with its row.
    let mut config = server.connection.config("platform_prod");
    config.user("postgres");
    let (push, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    push.batch_execute(
        "create schema if not exists supabase_migrations; \
         create table if not exists supabase_migrations.schema_migrations (version text not null primary key); \
         alter table supabase_migrations.schema_migrations add column if not exists statements text[]; \
         alter table supabase_migrations.schema_migrations add column if not exists name text",
    )
    .await
    .unwrap();
    for (file, text) in APPLIED {
        let (version, name) = file.trim_end_matches(".sql").split_once('_').unwrap();
        let statements = db_ci::gate::cli_split::statements(text);
        push.batch_execute("begin").await.unwrap();
        for statement in &statements {
            // supautils lets postgres write policies on the platform's tables: it runs them
            // as the superuser.
            let client = match statement.contains("on storage.objects") {
                true => &prod,
                false => &push,
            };
            client
                .batch_execute(statement)
                .await
                .unwrap_or_else(|e| panic!("{file}: {statement}: {e:?}"));
        }
        push.execute(
            "insert into supabase_migrations.schema_migrations (version, name, statements) \
             values ($1, $2, $3)",
            &[&version, &name, &statements],
        )
        .await
        .unwrap();
        push.batch_execute("commit").await.unwrap();
    }
    // Rows, as the app writes them: signing up creates the profile through the trigger.
    push.batch_execute(
        "insert into auth.users (id, email) \
           select gen_random_uuid(), 'user' || g || '@example.com' from generate_series(1, 200) g; \
         insert into storage.buckets (id, name, public) values ('pictures', 'pictures', false); \
         insert into public.posts (author, body) \
           select p.id, case when g % 50 = 0 then null else 'post ' || g end \
           from generate_series(1, 20000) g \
           join lateral (select id from public.profiles order by id offset g % 200 limit 1) p on true; \
         analyze public.posts, public.profiles",
    )
    .await
    .unwrap();
    drop(push);
    let catalog_before = Fingerprint::read(&prod).await.unwrap();
    let data_before = DataFingerprint::read(&prod).await.unwrap();

    let Host::Socket(socket) = &server.connection.host else {
        panic!("the local backend listens on a socket")
    };
    // The gate reads production as the platform's postgres: not a superuser, BYPASSRLS.
    let url = format!(
        "postgres://postgres@{}:{}/platform_prod",
        socket.display().to_string().replace('/', "%2F"),
        server.connection.port
    );
    let base = tempfile::tempdir().unwrap();
    let gate = |name: &str, pending: &str| {
        let dir = base.path().join(name);
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(dir.join("db-ci.yaml"), "migrations: migrations\n").unwrap();
        for (file, text) in APPLIED {
            std::fs::write(dir.join("migrations").join(file), text).unwrap();
        }
        std::fs::write(dir.join("migrations/20240103000000_release.sql"), pending).unwrap();
        let mut args = vec![
            "gate".to_owned(),
            dir.display().to_string(),
            "--against".into(),
            url.clone(),
        ];
        args.extend(backend.args());
        let out = common::db_ci(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let cases = [
        (
            "pass-unchanged-release-on-the-platform-built-production",
            "-- titles for posts\nset lock_timeout = '5s';\nalter table public.posts add column title text;\n",
            0,
            vec!["safe to apply", "2 applied, 1 pending"],
        ),
        (
            "fail-release-breaks-on-the-platform-built-production-rows",
            "alter table public.posts alter column body set not null;\n",
            1,
            vec![
                "would fail in production",
                "column \"body\" of relation \"posts\" contains null values",
            ],
        ),
    ];
    let results = common::parallel(cases.iter().collect(), 2, |(name, pending, _, _)| {
        gate(name, pending)
    });
    let mut problems = Vec::new();
    for ((name, _, exit, expect), (code, text)) in cases.iter().zip(&results) {
        if *code != Some(*exit) {
            problems.push(format!("{name}: exit {code:?}, expected {exit}\n{text}"));
            continue;
        }
        for needle in expect {
            if !text.contains(needle) {
                problems.push(format!("{name}: output lacks `{needle}`\n{text}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert_eq!(catalog_before, Fingerprint::read(&prod).await.unwrap());
    assert!(data_before
        .diff(&DataFingerprint::read(&prod).await.unwrap(), 0.0)
        .is_empty());
    if std::env::var_os("DB_CI_SHOW").is_some() {
        eprintln!("{}", results[0].1);
    }

    // The comparison is live on this production: a hand-made change is still drift.
    prod.batch_execute("alter table public.posts add column hand_made text")
        .await
        .unwrap();
    let (code, text) = gate(
        "fail-hand-made-change-on-the-platform-built-production",
        cases[0].1,
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("production's schema has drifted") && text.contains("hand_made"),
        "{text}"
    );
    drop(prod);
    server.shutdown().await;
}
