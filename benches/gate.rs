//! Prints the figures the release gate promises, on the local backend: on a generated
//! 125-table project with 5 pending migrations, (1) the gate's cost beyond a normal run of the
//! same project (replay of every migration), target ≤ 1 s; (2) statement-by-statement tracing
//! of the 5 pending migrations against their plain apply, target ≤ 1.5×.
//!
//! `cargo bench --bench gate`

use std::path::Path;
use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use db_ci::gate::{gate, trace, GateOptions};
use db_ci::project::Project;
use db_ci::run::{run, run_keeping};
use db_ci::stage::RunOptions;

mod common;
use common::{median, secs};

const TABLES: usize = 125;
const ROUNDS: usize = 5;
/// The apply is milliseconds long: more samples steady its median.
const APPLY_ROUNDS: usize = 25;

fn migration(i: usize) -> String {
    let parent = if i == 0 {
        String::new()
    } else {
        format!(", parent_id bigint references public.t{} (id)", i - 1)
    };
    format!(
        "create table public.t{i} (id bigint generated always as identity primary key, \
           owner_id uuid not null default gen_random_uuid(), title text not null, \
           body text, score numeric(10,2) default 0, updated_at timestamptz default now(){parent});\n\
         create index t{i}_owner_idx on public.t{i} (owner_id, updated_at desc);\n\
         alter table public.t{i} enable row level security;\n\
         create policy \"own rows\" on public.t{i} for all to authenticated \
           using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);\n\
         create function public.f{i}(p_id bigint) returns setof public.t{i} language sql stable \
           set search_path = '' as $$ select * from public.t{i} where id = p_id $$;\n"
    )
}

/// Five pending migrations of the kinds a release carries.
const PENDING: &[&str] = &[
    "set lock_timeout = '5s';\nalter table public.t10 add column archived_at timestamptz;\n",
    "alter table public.t20 add constraint t20_title_len check (length(title) < 500) not valid;\n\
     alter table public.t20 validate constraint t20_title_len;\n",
    "create table public.audit (id bigint primary key, t1_id bigint references public.t1 (id), at timestamptz not null default now());\n\
     alter table public.audit enable row level security;\n\
     create index audit_t1_idx on public.audit (t1_id);\n",
    "alter table public.t30 alter column body set default '';\n\
     create or replace function public.f30(p_id bigint) returns setof public.t30 language sql stable \
       set search_path = '' as $$ select * from public.t30 where id = p_id and score >= 0 $$;\n",
    "alter table public.t40 add column flagged boolean not null default false;\n",
];

fn write_project(dir: &Path, with_pending: bool) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    for i in 0..TABLES {
        std::fs::write(
            dir.join(format!("migrations/{:04}_t{i}.sql", i + 1)),
            migration(i),
        )
        .unwrap();
    }
    if with_pending {
        for (j, sql) in PENDING.iter().enumerate() {
            std::fs::write(
                dir.join(format!("migrations/{:04}_pending{j}.sql", TABLES + j + 1)),
                sql,
            )
            .unwrap();
        }
    }
    std::fs::write(dir.join("db-ci.yaml"), "migrations: migrations\n").unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("gate benchmark: run it with `cargo bench --bench gate`");
        return;
    }
    let local = BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    };
    // Production: the first 125 migrations applied through the ledger.
    let prod_dir = tempfile::tempdir().unwrap();
    write_project(prod_dir.path(), false);
    let prod_project = Project::discover(prod_dir.path()).unwrap();
    let replay_only = RunOptions {
        backend: local.clone(),
        only: Some(vec![]),
        ..Default::default()
    };
    let (report, prod) = run_keeping(
        &prod_project,
        &replay_only,
        &mut db_ci::report::events::Silent,
    )
    .await;
    assert_eq!(report.exit_code(), 0, "production replays");
    let prod = prod.unwrap();
    let Host::Socket(socket) = &prod.server.connection.host else {
        panic!("local backend uses a socket")
    };
    let url = format!(
        "postgres://postgres@{}:{}/{}",
        socket.display().to_string().replace('/', "%2F"),
        prod.server.connection.port,
        prod.database
    );

    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), true);
    let project = Project::discover(dir.path()).unwrap();
    let options = GateOptions {
        backend: local.clone(),
        against: url,
        image_given: false,
    };
    let mut gates = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let report = run(&project, &replay_only, &mut db_ci::report::events::Silent).await;
        runs.push(started.elapsed());
        assert_eq!(report.exit_code(), 0, "the project replays");
        let started = Instant::now();
        let report = gate(&project, &options, &mut db_ci::report::events::Silent).await;
        gates.push(started.elapsed());
        assert_eq!(
            report.exit_code(),
            0,
            "the gate passes: {:?}",
            report.stages.first().and_then(|s| s.reason.clone())
        );
    }
    let (gate_time, run_time) = (median(gates), median(runs));
    let extra = gate_time.saturating_sub(run_time);

    // Tracing against the plain apply of the same 5 migrations, each on a fresh copy of the
    // 125-table state.
    let server = Server::start(&local).await.unwrap();
    let template = server.unique_name("template");
    server.create_database(&template, None).await.unwrap();
    {
        let client = server.connect(&template).await.unwrap();
        db_ci::shim::apply(&client, db_ci::shim::GrantMode::Classic)
            .await
            .unwrap();
        for file in &prod_project.migrations {
            client.batch_execute(&file.text).await.unwrap();
        }
    }
    let pending: Vec<_> = project.migrations[TABLES..].to_vec();
    let mut plain = Vec::new();
    let mut traced = Vec::new();
    for round in 0..APPLY_ROUNDS * 2 {
        let with_trace = round % 2 == 1;
        let db = server.unique_name("apply");
        server.create_database(&db, Some(&template)).await.unwrap();
        let client = server.connect(&db).await.unwrap();
        // As in the gate: the observer connection (opened while the applied migrations
        // replay) starts the tracing's catalog read as soon as the rehearsal is built, and the
        // traced connection, which built it, reads the catalog for the comparison with
        // production. Both applies start from that state.
        let observer = server.connect(&db).await.unwrap();
        let mut carried = match with_trace {
            true => trace::Carried::observed_by(observer),
            false => trace::Carried::default(),
        };
        client.batch_execute("begin read only").await.unwrap();
        db_ci::snapshot::model::Catalog::read(&client)
            .await
            .unwrap();
        client.batch_execute("rollback").await.unwrap();
        let started = Instant::now();
        for file in &pending {
            let t = trace::apply(
                &client,
                file,
                Duration::from_secs(60),
                with_trace,
                &mut carried,
            )
            .await
            .unwrap();
            assert!(t.failed.is_none(), "{:?}", t.failed);
        }
        let took = started.elapsed();
        drop((client, carried));
        server.drop_database(&db).await.unwrap();
        if with_trace {
            traced.push(took)
        } else {
            plain.push(took)
        }
    }
    let (plain, traced) = (median(plain), median(traced));
    server.shutdown().await;
    prod.server.shutdown().await;

    println!("gate on a {TABLES}-table project with {} pending migrations (local backend, median of {ROUNDS}):", PENDING.len());
    println!(
        "  normal run (replay of all {} migrations): {}",
        TABLES + PENDING.len(),
        secs(run_time)
    );
    println!(
        "  gate (production read, rehearsal, catalog comparison, traced apply, body check, rls + lint): {}",
        secs(gate_time)
    );
    println!(
        "  gate's cost beyond the normal run: {} (target ≤ 1 s)",
        secs(extra)
    );
    println!(
        "  5 pending migrations (median of {APPLY_ROUNDS}): plain apply {:.1} ms | traced {:.1} ms = {:.2}× (target ≤ 1.5×)",
        plain.as_secs_f64() * 1e3,
        traced.as_secs_f64() * 1e3,
        traced.as_secs_f64() / plain.as_secs_f64().max(1e-9)
    );
}
