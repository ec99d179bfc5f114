//! pgtap stage speed: a generated Supabase project (40 tables under RLS) with a generated
//! pgTAP suite in `supabase/tests` written against the supabase-test-helpers API (60 files,
//! 2,400 assertions: schema facts, RLS as two users, anon and the service role), run by
//! db-ci's pgtap stage and by pg_prove as `supabase test db` runs it (one run over the folder,
//! one file after the other, on one database) on the same server in the same run. The stage
//! must stay at least 2× faster (the bench fails otherwise).
//!
//! `cargo bench --bench pgtap` (local backend). pg_prove comes from Debian's
//! `libtap-parser-sourcehandler-pgtap-perl` (`apt-get install
//! libtap-parser-sourcehandler-pgtap-perl`; `scripts/install-local-postgres.sh` adds it);
//! without it the comparison is skipped, loudly.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::report::StageVerdict;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;
use db_ci::stage_id::StageId;

mod common;

const FILES: usize = 60;
const TABLES: usize = 40;
const ROWS: usize = 8;

fn table(i: usize) -> String {
    format!("t{:02}", i % TABLES + 1)
}

fn migration() -> String {
    let mut sql = String::new();
    for i in 0..TABLES {
        let t = table(i);
        write!(
            sql,
            "create table public.{t} (id bigint generated always as identity primary key, \
               owner_id uuid not null default auth.uid() references auth.users (id), \
               slug text not null, body text not null default '', created_at timestamptz not null default now());\n\
             create index on public.{t} (owner_id);\n\
             alter table public.{t} enable row level security;\n\
             create policy {t}_select on public.{t} for select to authenticated using (owner_id = (select auth.uid()));\n\
             create policy {t}_insert on public.{t} for insert to authenticated with check (owner_id = (select auth.uid()));\n\
             create policy {t}_delete on public.{t} for delete to authenticated using (owner_id = (select auth.uid()));\n"
        )
        .unwrap();
    }
    sql
}

/// One test file: 40 assertions on one table, in a transaction rolled back at the end, the
/// shape `supabase test db` suites have.
fn test_file(i: usize) -> String {
    let t = table(i);
    let mut sql = String::from("begin;\nselect plan(40);\n\n");
    let schema = [
        format!("select has_table('public', '{t}', '{t} exists');"),
        format!("select has_pk('public', '{t}', '{t} has a primary key');"),
        format!("select has_column('public', '{t}', 'owner_id', '{t} has owner_id');"),
        format!(
            "select col_type_is('public', '{t}', 'owner_id', 'uuid', '{t}.owner_id is a uuid');"
        ),
        format!("select col_not_null('public', '{t}', 'slug', '{t}.slug is required');"),
        format!("select tests.rls_enabled('public', '{t}');"),
    ];
    for line in schema {
        writeln!(sql, "{line}").unwrap();
    }
    writeln!(
        sql,
        "\nselect tests.create_supabase_user('owner{i}');\nselect tests.create_supabase_user('other{i}');\nselect tests.authenticate_as('owner{i}');"
    )
    .unwrap();
    writeln!(
        sql,
        "select lives_ok($$ insert into public.{t} (slug) select 's' || n from generate_series(1, {ROWS}) n $$, 'the owner writes {ROWS} rows');"
    )
    .unwrap();
    for n in 1..=ROWS {
        writeln!(
            sql,
            "select is((select count(*)::int from public.{t} where slug = 's{n}'), 1, 'the owner sees s{n}');"
        )
        .unwrap();
    }
    writeln!(sql, "\nselect tests.authenticate_as('other{i}');").unwrap();
    for n in 1..=ROWS {
        writeln!(
            sql,
            "select is_empty($$ select * from public.{t} where slug = 's{n}' $$, 'another user does not see s{n}');"
        )
        .unwrap();
    }
    writeln!(
        sql,
        "select throws_ok(format('insert into public.{t} (owner_id, slug) values (%L, %L)', tests.get_supabase_uid('owner{i}'), 'forged'), '42501', null, 'nobody writes as the owner');"
    )
    .unwrap();
    writeln!(sql, "\nselect tests.clear_authentication();").unwrap();
    for n in 1..=ROWS {
        writeln!(
            sql,
            "select is_empty($$ select * from public.{t} where slug = 's{n}' $$, 'anon does not see s{n}');"
        )
        .unwrap();
    }
    writeln!(sql, "\nselect tests.authenticate_as_service_role();").unwrap();
    for n in 1..=ROWS {
        writeln!(
            sql,
            "select is((select count(*)::int from public.{t} where slug = 's{n}'), 1, 'the service role sees s{n}');"
        )
        .unwrap();
    }
    sql.push_str("\nselect * from finish();\nrollback;\n");
    sql
}

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("supabase/migrations")).unwrap();
    std::fs::create_dir_all(dir.join("supabase/tests")).unwrap();
    std::fs::write(
        dir.join("supabase/config.toml"),
        "[db]\nmajor_version = 15\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("supabase/migrations/20240101000000_tables.sql"),
        migration(),
    )
    .unwrap();
    // The first file installs the helpers and commits them, as projects using dbdev do.
    std::fs::write(
        dir.join("supabase/tests/000-setup.sql"),
        "create extension if not exists \"basejump-supabase_test_helpers\" version '0.0.6';\n\
         begin;\nselect plan(1);\nselect ok(true, 'helpers installed');\nselect * from finish();\nrollback;\n",
    )
    .unwrap();
    for i in 0..FILES {
        std::fs::write(
            dir.join(format!("supabase/tests/{:03}-{}.sql", i + 1, table(i))),
            test_file(i),
        )
        .unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("pgtap benchmark: run it with `cargo bench --bench pgtap`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path());
    let project = Project::discover(dir.path()).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        only: Some(vec![StageId::Pgtap]),
        ..Default::default()
    };

    let mut samples = Vec::new();
    let mut assertions = 0;
    let mut kept = None;
    for round in 0..3 {
        let (report, replayed) = run_keeping(&project, &options, &mut Silent).await;
        let stage = report.stage(StageId::Pgtap).unwrap();
        assert_eq!(
            stage.verdict,
            StageVerdict::Pass,
            "{:#?}",
            stage.failures.first()
        );
        assertions = stage.checks;
        samples.push(Duration::from_millis(stage.duration_ms));
        if round == 2 {
            kept = replayed;
        } else if let Some(replayed) = replayed {
            replayed.server.shutdown().await;
        }
    }
    samples.sort();
    let median = samples[1];
    let files = FILES + 1;
    println!("pgtap benchmark: {files} files, {assertions} assertions over {TABLES} tables");
    println!(
        "  db-ci pgtap stage (median of 3; clone, pgTAP install, files in order on one database): {:.3} s = {:.0} assertions/s",
        median.as_secs_f64(),
        assertions as f64 / median.as_secs_f64()
    );

    let replayed = kept.unwrap();
    if Command::new("pg_prove").arg("--version").output().is_err() {
        eprintln!(
            "\n!!! SKIPPING the pg_prove comparison: pg_prove is not installed \
             (apt-get install libtap-parser-sourcehandler-pgtap-perl)\n"
        );
        replayed.server.shutdown().await;
        return;
    }
    // pg_prove on the same server: a clone of the same replayed database with pgTAP, as
    // `supabase test db` prepares it (not timed: db-ci's figure includes its own).
    let server = &replayed.server;
    let database = server.unique_name("pg_prove");
    server
        .create_database(&database, Some(&replayed.database))
        .await
        .unwrap();
    server
        .connect(&database)
        .await
        .unwrap()
        .batch_execute("create extension pgtap with schema extensions")
        .await
        .unwrap();
    let Host::Socket(socket) = &server.connection.host else {
        unreachable!("the local backend listens on a socket")
    };
    // As `supabase test db` runs it: one pg_prove over the folder, from the folder.
    let tests_dir = dir.path().join("supabase/tests");
    let mut command = Command::new("pg_prove");
    command
        .current_dir(&tests_dir)
        .arg("-h")
        .arg(socket)
        .args([
            "-p",
            &server.connection.port.to_string(),
            "-U",
            "postgres",
            "-d",
            &database,
            "--ext",
            ".pg",
            "--ext",
            ".sql",
            "-r",
        ])
        .arg(&tests_dir);
    let (pg_prove, _) = common::timed(command, "pg_prove");
    println!(
        "  pg_prove --ext .pg --ext .sql -r supabase/tests, same files, same server (pgTAP already installed): {:.3} s = {:.0} assertions/s",
        pg_prove.as_secs_f64(),
        assertions as f64 / pg_prove.as_secs_f64()
    );
    let ratio = pg_prove.as_secs_f64() / median.as_secs_f64();
    println!("  db-ci is {ratio:.1}x faster");
    assert!(
        ratio >= 2.0,
        "the pgtap stage must stay at least 2x faster than pg_prove on the same suite: {ratio:.2}x"
    );
    let _ = server.drop_database(&database).await;
    replayed.server.shutdown().await;
}
