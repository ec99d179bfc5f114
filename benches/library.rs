//! Prints the figures issue 30 asks of the library: 200 tests, each on its own runtime (as
//! `#[tokio::test]` gives every test), each taking a fresh copy of a replayed 125-table
//! project through `db_ci::testing::Shared`: the total, the first test (boot and replay) and
//! the median of the others (target: at most 50 ms).
//!
//! `cargo bench --bench library` (local backend).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use db_ci::backend::BackendKind;
use db_ci::testing::{Gate, Shared};

const TABLES: usize = 125;
const TESTS: usize = 200;

fn migration() -> String {
    let mut sql = String::new();
    for i in 1..=TABLES {
        write!(
            sql,
            "create table public.t{i:03} (id bigint generated always as identity primary key, \
               owner_id uuid not null default auth.uid() references auth.users (id), \
               body text not null default '');\n\
             create index t{i:03}_owner on public.t{i:03} (owner_id);\n\
             alter table public.t{i:03} enable row level security;\n\
             create policy t{i:03}_own on public.t{i:03} for all to authenticated \
               using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));\n"
        )
        .unwrap();
    }
    sql
}

fn project() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("migrations")).unwrap();
        std::fs::write(dir.join("migrations/0001_tables.sql"), migration()).unwrap();
        dir
    })
}

// Replay only: the copies are what is measured, not the other stages.
static PROJECT: Shared = Shared::new(|| Gate::new(project()).backend(BackendKind::Local).only(&[]));

/// One test as `#[tokio::test]` runs it: a runtime of its own, a copy, a query, the drop.
fn one_test() -> Duration {
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let db = PROJECT.database().await;
        let row = db
            .client()
            .query_one("select count(*) from public.t125", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 0);
    });
    started.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo test --all-targets` runs this too: only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        println!("library benchmark: run it with `cargo bench --bench library`");
        return;
    }
    let started = Instant::now();
    let mut samples: Vec<Duration> = (0..TESTS).map(|_| one_test()).collect();
    let total = started.elapsed();
    let first = samples.remove(0);
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    println!(
        "library, one test after another: {TESTS} tests on a {TABLES}-table project: total {:.2} s; \
         first (boot + replay) {}; the others: median {}, p90 {}, max {} (target: median <= 50 ms)",
        total.as_secs_f64(),
        ms(first),
        ms(median),
        ms(p90),
        ms(*samples.last().unwrap())
    );

    // Two at a time, as `cargo test` runs tests on a 2-core machine.
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| (0..TESTS / 2).map(|_| one_test()).collect::<Vec<_>>()))
        .collect();
    let mut samples: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let total = started.elapsed();
    samples.sort();
    println!(
        "library, two at a time (server already up): {TESTS} tests: total {:.2} s; median {}, \
         p90 {}",
        total.as_secs_f64(),
        ms(samples[samples.len() / 2]),
        ms(samples[samples.len() * 9 / 10])
    );
    let _ = std::fs::remove_dir_all(project());
}
