//! Prints the figures issue 3 asks for: RLS cells per second on a generated matrix of 2,048
//! cells over 64 tables, and the same checks written as pgTAP run by `pg_prove` on the same
//! server in the same run.
//!
//! `cargo bench --bench rls` (local backend; pg_prove from libtap-parser-sourcehandler-pgtap-perl).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::project::Project;
use db_ci::report::events::Silent;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;
use db_ci::stage_id::StageId;

mod common;

const TABLES: usize = 64;
const USERS: usize = 6;

fn migration() -> String {
    (1..=TABLES).map(common::table_sql).collect()
}

fn matrix() -> String {
    let mut yaml = String::from("actors:\n  anon: anon\n  service: service_role\n");
    for u in 1..=USERS {
        writeln!(yaml, "  u{u}: {{ user: u{u}@example.com }}").unwrap();
    }
    yaml.push_str("setup: |\n");
    for i in 1..=TABLES {
        writeln!(
            yaml,
            "  insert into public.{t} (owner_id, slug) values ('{{{{u1.id}}}}', '{t}-u1'), ('{{{{u2.id}}}}', '{t}-u2');",
            t = common::table(i)
        )
        .unwrap();
    }
    yaml.push_str(&common::cases_yaml(1..=TABLES));
    yaml
}

/// The same checks as pgTAP, one file per table.
fn pgtap_files(dir: &Path, ids: &[(String, String)]) {
    let u1 = &ids.iter().find(|(n, _)| n == "u1").unwrap().1;
    let actors: Vec<common::Actor> = ids
        .iter()
        .map(|(name, id)| common::Actor {
            name: name.clone(),
            id: Some(id.clone()).filter(|_| name != "anon" && name != "service"),
        })
        .collect();
    for i in 1..=TABLES {
        std::fs::write(
            dir.join(format!("{}.sql", common::table(i))),
            common::pgtap_file(i, &actors, u1),
        )
        .unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("rls benchmark: run it with `cargo bench --bench rls`");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("migrations")).unwrap();
    std::fs::create_dir_all(dir.path().join("policy-tests")).unwrap();
    std::fs::write(dir.path().join("migrations/0001_tables.sql"), migration()).unwrap();
    std::fs::write(dir.path().join("policy-tests/matrix.yaml"), matrix()).unwrap();
    let project = Project::discover(dir.path()).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        only: Some(vec![StageId::Rls]),
        ..Default::default()
    };

    let mut samples = Vec::new();
    let mut cells = 0;
    let mut kept = None;
    for round in 0..3 {
        let (report, replayed) = run_keeping(&project, &options, &mut Silent).await;
        let stage = report.stage(StageId::Rls).unwrap();
        assert_eq!(
            stage.verdict,
            db_ci::report::StageVerdict::Pass,
            "{:#?}",
            stage.failures.first()
        );
        cells = stage.cases.len();
        samples.push(Duration::from_millis(stage.duration_ms));
        if round == 2 {
            kept = replayed;
        } else if let Some(replayed) = replayed {
            replayed.server.shutdown().await;
        }
    }
    samples.sort();
    let median = samples[1];
    let per_second = cells as f64 / median.as_secs_f64();

    // pgTAP on the same server: a database prepared exactly as the rls stage prepares one.
    let replayed = kept.unwrap();
    let files = db_ci::stage::Stages::load(&project).unwrap().policy_files;
    let prepared =
        db_ci::policy_tests::prepare(&replayed.server, &replayed.database, &files[0], "pgtap")
            .await
            .unwrap()
            .unwrap_or_else(|_| panic!("setup applies"));
    prepared
        .client
        .batch_execute("create extension if not exists pgtap")
        .await
        .unwrap();
    let ids: Vec<(String, String)> = files[0]
        .actors
        .by_name
        .values()
        .map(|a| {
            (
                a.name.clone(),
                a.id.clone()
                    .unwrap_or_else(|| db_ci::actors::deterministic_id(&a.name)),
            )
        })
        .collect();
    let tap_dir = tempfile::tempdir().unwrap();
    pgtap_files(tap_dir.path(), &ids);
    if let Ok(keep) = std::env::var("DB_CI_BENCH_KEEP_PGTAP") {
        std::fs::copy(tap_dir.path().join("t01.sql"), keep).unwrap();
    }
    let Host::Socket(socket) = &replayed.server.connection.host else {
        unreachable!("the local backend listens on a socket")
    };
    let mut command = Command::new("pg_prove");
    command.args(["-j", "2", "-h"]).arg(socket).args([
        "-p",
        &replayed.server.connection.port.to_string(),
        "-U",
        "postgres",
        "-d",
        &prepared.database,
    ]);
    let mut paths: Vec<_> = std::fs::read_dir(tap_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    command.args(&paths);
    let (pgtap, _) = common::timed(
        command,
        "pg_prove (apt install libtap-parser-sourcehandler-pgtap-perl)",
    );
    let pgtap_per_second = cells as f64 / pgtap.as_secs_f64();

    println!(
        "rls benchmark: {cells} cells over {TABLES} tables, {} actors",
        USERS + 2
    );
    println!(
        "  db-ci rls stage (median of 3, incl. clone + setup): {:.3} s = {per_second:.0} cells/s",
        median.as_secs_f64()
    );
    println!(
        "  pgTAP via pg_prove -j 2, same checks:             {:.3} s = {pgtap_per_second:.0} cells/s",
        pgtap.as_secs_f64()
    );
    println!(
        "  db-ci is {:.1}x faster",
        pgtap.as_secs_f64() / median.as_secs_f64()
    );
    prepared.drop_all(&replayed.server).await;
    replayed.server.shutdown().await;
}
