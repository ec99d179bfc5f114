//! Prints the figure issue 5 asks for: the time to read and render the catalog snapshot of a
//! generated 150-table schema (foreign keys, indexes, RLS policies, triggers, functions) on
//! the local backend. Target: at most 300 ms.
//!
//! `cargo bench --bench snapshot`

use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Server};
use db_ci::project::Project;

const TABLES: usize = 150;
const ROUNDS: usize = 7;

/// One table per step: a foreign key to the previous table, an index on it, RLS with two
/// policies, an updated_at trigger, and an RPC function.
fn generated_schema() -> String {
    let mut sql = String::from(
        "create function public.touch() returns trigger language plpgsql set search_path = '' \
         as $$ begin new.updated_at := now(); return new; end $$;\n",
    );
    for i in 0..TABLES {
        let parent = if i == 0 {
            String::new()
        } else {
            format!(", parent_id bigint references public.t{} (id)", i - 1)
        };
        sql.push_str(&format!(
            "create table public.t{i} (id bigint generated always as identity primary key, \
               owner_id uuid not null default gen_random_uuid(), title text not null, \
               body text, score numeric(10,2) default 0, updated_at timestamptz default now(){parent});\n\
             comment on table public.t{i} is 'generated table {i}';\n\
             create index t{i}_owner_idx on public.t{i} (owner_id, updated_at desc);\n\
             alter table public.t{i} enable row level security;\n\
             create policy \"own rows\" on public.t{i} for all to authenticated \
               using ((select auth.uid()) = owner_id) with check ((select auth.uid()) = owner_id);\n\
             create policy \"public read\" on public.t{i} for select to anon using (score > 0);\n\
             create trigger t{i}_touch before update on public.t{i} \
               for each row execute function public.touch();\n\
             create function public.f{i}(p_id bigint) returns setof public.t{i} language sql stable \
               set search_path = '' as $$ select * from public.t{i} where id = p_id $$;\n"
        ));
    }
    sql
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("snapshot benchmark: run it with `cargo bench --bench snapshot`");
        return;
    }
    let server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .expect("the local backend starts (PostgreSQL server binaries)");
    let db = server.unique_name("bench");
    server.create_database(&db, None).await.unwrap();
    let client = server.connect(&db).await.unwrap();
    db_ci::shim::apply(&client, db_ci::shim::GrantMode::Classic)
        .await
        .unwrap();
    client.batch_execute(&generated_schema()).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    let project = Project::discover(dir.path()).unwrap();
    let mut samples: Vec<Duration> = Vec::new();
    let mut size = 0;
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let yaml = db_ci::snapshot::catalog_yaml(&client, &project)
            .await
            .unwrap();
        samples.push(started.elapsed());
        size = yaml.len();
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!(
        "snapshot of a {TABLES}-table schema ({} policies, {TABLES} triggers, {} functions, {} KiB of YAML): \
         median {:.1} ms over {ROUNDS} rounds (target <= 300 ms)",
        TABLES * 2,
        TABLES + 1,
        size / 1024,
        median.as_secs_f64() * 1000.0
    );
    drop(client);
    server.shutdown().await;
}
