//! Prints the figures issue 30 asks for: on generated Supabase CLI projects of 125 and 1,250
//! tables (one migration per table, a seed, strict mode so every file runs twice, 16 RLS
//! cells per table), in the same run on the local backend: db-ci's whole run, the pipeline
//! a team would write by hand (psql per file, twice, then pg_prove over the same checks as
//! pgTAP) and the floor (one bare psql session running every file twice, then the cells'
//! bare statements). Prints the ratios, a per-stage breakdown, and whether every verdict of
//! the run is the one the sequential run (stages one after another) gives.
//!
//! `cargo bench --bench floor` (`DB_CI_FLOOR_TABLES=125` for one size; `DB_CI_FLOOR_WRITE=dir`
//! writes the projects there instead of measuring; `DB_CI_FLOOR_NO_PEER=1` leaves the
//! hand-written pipeline out, the slowest part by far, while working on db-ci's own figures;
//! `DB_CI_FLOOR_ROUNDS=n` measures db-ci then the floor n times and prints the median ratio).

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{secs, timed, Actor};
use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::report::Report;
use db_ci::run::run;
use db_ci::stage::RunOptions;

const USER_IDS: [(&str, &str); 2] = [
    ("u1", "00000000-0000-4000-8000-0000000000a1"),
    ("u2", "00000000-0000-4000-8000-0000000000a2"),
];

fn write_project(root: &Path, tables: usize) {
    let migrations = root.join("supabase/migrations");
    std::fs::create_dir_all(&migrations).unwrap();
    std::fs::create_dir_all(root.join("policy-tests")).unwrap();
    std::fs::write(
        root.join("supabase/config.toml"),
        "[db]\nmajor_version = 15\n[db.seed]\nenabled = true\nsql_paths = ['./seed.sql']\n",
    )
    .unwrap();
    std::fs::write(root.join("db-ci.yaml"), "replay:\n  mode: strict\n").unwrap();
    let mut seed = String::from("insert into auth.users (id, email) values ");
    let users: Vec<String> = USER_IDS
        .iter()
        .map(|(name, id)| format!("('{id}', '{name}@example.com')"))
        .collect();
    seed.push_str(&users.join(", "));
    seed.push_str(" on conflict do nothing;\n");
    for i in 1..=tables {
        std::fs::write(
            migrations.join(format!("2024010100{i:04}_{}.sql", common::table(i))),
            common::table_sql(i),
        )
        .unwrap();
        let t = common::table(i);
        let rows: Vec<String> = USER_IDS
            .iter()
            .map(|(name, id)| format!("('{id}', '{t}-{name}')"))
            .collect();
        writeln!(
            seed,
            "insert into public.{t} (owner_id, slug) values {} on conflict do nothing;",
            rows.join(", ")
        )
        .unwrap();
    }
    std::fs::write(root.join("supabase/seed.sql"), seed).unwrap();
    let mut matrix = String::from("actors:\n  anon: anon\n  service: service_role\n");
    for (name, _) in USER_IDS {
        writeln!(matrix, "  {name}: {{ existing: {name}@example.com }}").unwrap();
    }
    matrix.push_str(&common::cases_yaml(1..=tables));
    std::fs::write(root.join("policy-tests/matrix.yaml"), matrix).unwrap();
}

fn actors() -> Vec<Actor> {
    let mut actors = vec![
        Actor {
            name: "anon".to_owned(),
            id: None,
        },
        Actor {
            name: "service".to_owned(),
            id: None,
        },
    ];
    actors.extend(USER_IDS.iter().map(|(name, id)| Actor {
        name: (*name).to_owned(),
        id: Some((*id).to_owned()),
    }));
    actors
}

/// A fresh shimmed database on `server`, for the pipelines db-ci is compared with.
async fn shimmed(server: &Server, name: &str) -> String {
    let db = server.unique_name(name);
    server.create_database(&db, None).await.unwrap();
    let client = server.connect(&db).await.unwrap();
    db_ci::shim::apply(&client, db_ci::shim::GrantMode::Classic)
        .await
        .unwrap();
    db
}

/// A client command (`psql`, `pg_prove`) bound to `db` on `server`, as `postgres`.
fn client(program: &Path, server: &Server, db: &str) -> Command {
    let Host::Socket(socket) = &server.connection.host else {
        unreachable!("the local backend listens on a socket")
    };
    let mut command = Command::new(program);
    command.arg("-h").arg(socket).args([
        "-p",
        &server.connection.port.to_string(),
        "-U",
        "postgres",
        "-d",
        db,
    ]);
    command
}

/// The hand-written pipeline: psql per file (as a script looping over the folder runs it),
/// twice, then pg_prove over the checks as pgTAP files. Returns (both passes, pg_prove).
async fn peer(server: &Server, project: &Project, tables: usize) -> (Duration, Duration) {
    let db = shimmed(server, "peer").await;
    server
        .connect(&db)
        .await
        .unwrap()
        .batch_execute("create extension if not exists pgtap with schema extensions")
        .await
        .unwrap();
    let psql = common::psql();
    let mut passes = Duration::ZERO;
    for _pass in 0..2 {
        for file in project.files() {
            let mut command = client(&psql, server, &db);
            command
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(&file.path);
            passes += timed(command, "psql").0;
        }
    }
    let tap = tempfile::tempdir().unwrap();
    let actors = actors();
    let mut command = client(Path::new("pg_prove"), server, &db);
    command.args(["-j", "2"]);
    for i in 1..=tables {
        let path = tap.path().join(format!("{}.sql", common::table(i)));
        std::fs::write(&path, common::pgtap_file(i, &actors, USER_IDS[0].1)).unwrap();
        command.arg(path);
    }
    let (prove, _) = timed(command, "pg_prove");
    (passes, prove)
}

/// The floor: one bare psql session, every file twice, then every cell's bare statements.
/// Returns (pass 1, pass 2, cells): the passes are one session (the time between them read
/// from the clock it prints there), the cells another on the same database.
async fn floor(
    server: &Server,
    project: &Project,
    tables: usize,
) -> (Duration, Duration, Duration) {
    let db = shimmed(server, "floor").await;
    let psql = common::psql();
    let mut command = client(&psql, server, &db);
    command.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"]);
    for pass in 0..2 {
        if pass == 1 {
            command.args(["-c", "\\! date +%s.%N"]);
        }
        for file in project.files() {
            command.arg("-f").arg(&file.path);
        }
    }
    let started = std::time::SystemTime::now();
    let output = command.output().expect("run psql (files twice)");
    let passes = started.elapsed().unwrap();
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let between: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("the clock psql printed between the passes");
    let pass1 = Duration::from_secs_f64(
        between
            - started
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64(),
    );
    let actors = actors();
    let cells = tempfile::NamedTempFile::new().unwrap();
    let script: String = (1..=tables)
        .map(|i| common::bare_cells(i, &actors, USER_IDS[0].1))
        .collect();
    std::fs::write(cells.path(), script).unwrap();
    let mut command = client(&psql, server, &db);
    command
        .args(["-X", "-q", "-o", "/dev/null", "-f"])
        .arg(cells.path());
    let (cells, errors) = timed(command, "psql (cells)");
    // The denied inserts (anon's and u2's) are the only errors, each ending its own cell
    // (what follows in that cell is refused, the transaction being aborted).
    let denied = errors
        .matches("new row violates row-level security policy")
        .count();
    assert_eq!(denied, 2 * tables, "{errors}");
    (pass1, passes.saturating_sub(pass1), cells)
}

/// Every verdict of a report: the run's and each stage's in report order, each stage's cases
/// by name (parallel workers judge RLS cells in the order their batches come back).
fn verdicts(report: &Report) -> Vec<String> {
    let mut all = vec![format!("run {:?}", report.verdict)];
    for stage in &report.stages {
        all.push(format!("{} {:?}", stage.name, stage.verdict));
        let mut cases: Vec<String> = stage
            .cases
            .iter()
            .map(|case| {
                format!(
                    "{} / {} / {} {:?}",
                    stage.name, case.group, case.name, case.verdict
                )
            })
            .collect();
        cases.sort();
        all.extend(cases);
    }
    all
}

fn breakdown(report: &Report) -> String {
    report
        .stages
        .iter()
        .map(|s| format!("{} {:.1}", s.name, s.duration_ms as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("floor benchmark: run it with `cargo bench --bench floor`");
        return;
    }
    let sizes: Vec<usize> = match std::env::var("DB_CI_FLOOR_TABLES") {
        Ok(sizes) => sizes
            .split(',')
            .map(|s| s.trim().parse().unwrap())
            .collect(),
        Err(_) => vec![125, 1250],
    };
    if let Ok(out) = std::env::var("DB_CI_FLOOR_WRITE") {
        // The projects as measured, written out to look at or run by hand.
        for tables in sizes {
            write_project(&Path::new(&out).join(format!("t{tables}")), tables);
        }
        return;
    }
    let local = BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    };
    let mut rows = Vec::new();
    let mut all_identical = true;
    for tables in sizes {
        let dir = tempfile::tempdir().unwrap();
        write_project(dir.path(), tables);
        let project = Project::discover(dir.path()).unwrap();
        let files = project.files().count();
        let options = RunOptions {
            backend: local.clone(),
            any_server_version: true,
            ..Default::default()
        };
        let started = Instant::now();
        let report = run(&project, &options, &mut Silent).await;
        let db_ci = started.elapsed();
        assert_eq!(
            report.exit_code(),
            0,
            "the project passes: {:#?}",
            report.stages.iter().find(|s| !s.failures.is_empty())
        );
        let sequential_options = RunOptions {
            sequential: true,
            ..options.clone()
        };
        let started = Instant::now();
        let sequential = run(&project, &sequential_options, &mut Silent).await;
        let sequential_time = started.elapsed();
        let identical = verdicts(&report) == verdicts(&sequential);

        let server = Server::start(&local).await.unwrap();
        let (peer_passes, peer_prove) = match std::env::var_os("DB_CI_FLOOR_NO_PEER") {
            Some(_) => (Duration::ZERO, Duration::ZERO),
            None => peer(&server, &project, tables).await,
        };
        let (floor_pass1, floor_pass2, floor_cells) = floor(&server, &project, tables).await;
        let floor_passes = floor_pass1 + floor_pass2;
        server.shutdown().await;
        let peer = peer_passes + peer_prove;
        let floor = floor_passes + floor_cells;
        let cells = report
            .stage(db_ci::stage_id::StageId::Rls)
            .map_or(0, |s| s.cases.len());
        println!("{tables} tables ({files} files, {cells} RLS cells), strict mode, local backend:");
        println!(
            "  db-ci run: {} ({}); sequential stages: {} ({}); verdicts identical: {}",
            secs(db_ci),
            breakdown(&report),
            secs(sequential_time),
            breakdown(&sequential),
            if identical { "yes" } else { "NO" }
        );
        println!(
            "  psql per file ×2 + pg_prove -j 2: {} (files ×2 {}, pg_prove {})",
            secs(peer),
            secs(peer_passes),
            secs(peer_prove)
        );
        println!(
            "  floor, one psql session: {} (files ×2 {}: pass 1 {}, pass 2 {}; cells {})",
            secs(floor),
            secs(floor_passes),
            secs(floor_pass1),
            secs(floor_pass2),
            secs(floor_cells)
        );
        let ratio = db_ci.as_secs_f64() / floor.as_secs_f64();
        println!(
            "  db-ci / floor = {ratio:.2}× (target ≤ 0.5×); db-ci / peer = {:.2}×",
            db_ci.as_secs_f64() / peer.as_secs_f64()
        );
        // On a machine shared with other work the load shifts within a run: more rounds of
        // db-ci then the floor, back to back, and the median of their ratios.
        let rounds: usize = std::env::var("DB_CI_FLOOR_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1);
        let mut ratios = vec![ratio];
        for round in 2..=rounds {
            let started = Instant::now();
            let again = run(&project, &options, &mut Silent).await;
            let db_ci = started.elapsed();
            all_identical &= verdicts(&again) == verdicts(&sequential);
            let server = Server::start(&local).await.unwrap();
            let (pass1, pass2, cells) = crate::floor(&server, &project, tables).await;
            server.shutdown().await;
            let floor = pass1 + pass2 + cells;
            ratios.push(db_ci.as_secs_f64() / floor.as_secs_f64());
            println!(
                "  round {round}: db-ci {} ({}), floor {} = {:.2}×",
                secs(db_ci),
                breakdown(&again),
                secs(floor),
                ratios.last().unwrap()
            );
        }
        if rounds > 1 {
            let mut sorted = ratios.clone();
            sorted.sort_by(f64::total_cmp);
            println!(
                "  median of {rounds} rounds: db-ci / floor = {:.2}×",
                sorted[sorted.len() / 2]
            );
        }
        rows.push(format!(
            "| {tables} | {} ({}) | {} | {} | {ratio:.2}× | {} |",
            secs(db_ci),
            breakdown(&report),
            secs(peer),
            secs(floor),
            if identical { "yes" } else { "no" }
        ));
        all_identical &= identical;
    }
    println!("\n| tables | db-ci | psql per file ×2 + pg_prove | floor | db-ci / floor | verdicts as sequential |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
    assert!(all_identical, "a verdict differs from the sequential run's");
}
