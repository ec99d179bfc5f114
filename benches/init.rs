//! Prints the figure issue 17 asks for: `db-ci init` (replay twice, tune, write db-ci.yaml,
//! generate the matrix and record its expectations, then run every stage with what it wrote)
//! on a generated 40-table Supabase CLI project with a seed that is not re-runnable, on the
//! local backend. Target: at most 3 s.
//!
//! `cargo bench --bench init`

use std::process::Command;
use std::time::{Duration, Instant};

const TABLES: usize = 40;
const ROUNDS: usize = 5;

fn write_project(root: &std::path::Path) {
    let migrations = root.join("supabase/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::write(
        root.join("supabase/config.toml"),
        "[db]\nmajor_version = 15\n[db.seed]\nenabled = true\nsql_paths = ['./seed.sql']\n",
    )
    .unwrap();
    let mut seed = String::new();
    for i in 0..TABLES {
        let parent = if i == 0 {
            String::new()
        } else {
            format!(", parent_id bigint references public.t{} (id)", i - 1)
        };
        std::fs::write(
            migrations.join(format!("2024010100{i:04}_t{i}.sql")),
            format!(
                "create table public.t{i} (id bigint primary key, \
                 owner_id uuid not null default gen_random_uuid(), title text not null{parent});\n\
                 create index on public.t{i} (owner_id);\n\
                 alter table public.t{i} enable row level security;\n\
                 create policy \"own rows\" on public.t{i} for all \
                 using ((select auth.uid()) = owner_id);\n"
            ),
        )
        .unwrap();
        let parent_value = if i == 0 {
            String::new()
        } else {
            ", 1".to_owned()
        };
        let parent_column = if i == 0 { "" } else { ", parent_id" };
        seed.push_str(&format!(
            "insert into public.t{i} (id, title{parent_column}) values (1, 'row'{parent_value});\n"
        ));
    }
    std::fs::write(root.join("supabase/seed.sql"), seed).unwrap();
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("init benchmark: run it with `cargo bench --bench init`");
        return;
    }
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let temp = tempfile::tempdir().unwrap();
        write_project(temp.path());
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_db-ci"))
            .args(["init", "--backend", "local", "--any-server-version"])
            .arg(temp.path())
            .env_remove("DB_CI_BACKEND")
            .output()
            .unwrap();
        times.push(started.elapsed());
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        let config = std::fs::read_to_string(temp.path().join("db-ci.yaml")).unwrap();
        assert!(config.contains("- file: supabase/seed.sql"), "{config}");
        // Every table got its case, every cell a recorded expectation.
        let matrix = std::fs::read_to_string(temp.path().join("policy-tests/public.yaml")).unwrap();
        assert_eq!(
            matrix.matches("  - name: public.t").count(),
            TABLES,
            "{matrix}"
        );
        assert_eq!(
            matrix
                .matches("unreviewed: [anon, alice, bob, service]")
                .count(),
            TABLES * 4,
            "{matrix}"
        );
    }
    times.sort();
    let median: Duration = times[times.len() / 2];
    println!(
        "db-ci init on a generated {TABLES}-table project, matrices recorded ({} cells) \
         (local backend): median {:.2}s, min {:.2}s, max {:.2}s over {ROUNDS} runs (target <= 3 s)",
        TABLES * 4 * 4,
        median.as_secs_f64(),
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64()
    );
}
