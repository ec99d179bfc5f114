//! Prints the figures issue 3 asks for: RLS cells per second on a generated matrix of 2,048
//! cells over 64 tables, and the same checks written as pgTAP run by `pg_prove` on the same
//! server in the same run.
//!
//! `cargo bench --bench rls` (local backend; pg_prove from libtap-parser-sourcehandler-pgtap-perl).

use db_ci::StageId;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::events::Silent;
use db_ci::project::Project;
use db_ci::run::{run_keeping, RunOptions};

const TABLES: usize = 64;
const USERS: usize = 6;

fn table(i: usize) -> String {
    format!("t{i:02}")
}

/// The text an update writes into a table's `body`: plain YAML scalars as users write them,
/// words YAML 1.1 would have read as booleans (db-ci reads YAML 1.2: they stay text).
fn word(i: usize) -> &'static str {
    ["no", "off", "n", "yes", "on", "y", "edited"][i % 7]
}

fn migration() -> String {
    let mut sql = String::new();
    for i in 1..=TABLES {
        let t = table(i);
        write!(
            sql,
            "create table public.{t} (id uuid primary key default gen_random_uuid(), \
               owner_id uuid not null references auth.users (id), slug text not null unique, body text not null default '');\n\
             alter table public.{t} enable row level security;\n\
             create policy {t}_select on public.{t} for select to authenticated using (owner_id = (select auth.uid()));\n\
             create policy {t}_insert on public.{t} for insert to authenticated with check (owner_id = (select auth.uid()));\n\
             create policy {t}_update on public.{t} for update to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));\n\
             create policy {t}_delete on public.{t} for delete to authenticated using (owner_id = (select auth.uid()));\n"
        )
        .unwrap();
    }
    sql
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
            t = table(i)
        )
        .unwrap();
    }
    yaml.push_str("cases:\n");
    for i in 1..=TABLES {
        let t = table(i);
        write!(
            yaml,
            "  - name: {t} rows are their owner's\n    table: {t}\n    where: owner_id = '{{{{u1.id}}}}'\n\
             \x20   select: {{ allow: [u1, service], deny: others }}\n\
             \x20   update: {{ set: {{ body: {word} }}, allow: [u1, service], deny: others }}\n\
             \x20   delete: {{ allow: [u1, service], deny: others }}\n\
             \x20 - name: {t} rows are created by their owner\n    table: {t}\n\
             \x20   insert: {{ values: {{ owner_id: '{{{{u1.id}}}}', slug: '{{{{me.name}}}}-new', body: {word} }}, allow: [u1, service], deny: others }}\n",
            word = word(i)
        )
        .unwrap();
    }
    yaml
}

/// The same checks as pgTAP, one file per table; each check in a savepoint rolled back.
fn pgtap_files(dir: &Path, ids: &[(String, String)]) {
    let claims = |name: &str| -> String {
        match name {
            "anon" | "service" => {
                let role = if name == "anon" {
                    "anon"
                } else {
                    "service_role"
                };
                format!("set local role {role};\nselect set_config('request.jwt.claims', '{{\"role\":\"{role}\"}}', true);\n")
            }
            _ => {
                let id = &ids.iter().find(|(n, _)| n == name).unwrap().1;
                format!(
                    "set local role authenticated;\nselect set_config('request.jwt.claims', '{{\"role\":\"authenticated\",\"sub\":\"{id}\"}}', true);\n"
                )
            }
        }
    };
    let u1 = &ids.iter().find(|(n, _)| n == "u1").unwrap().1;
    let actors: Vec<&str> = ids.iter().map(|(n, _)| n.as_str()).collect();
    for i in 1..=TABLES {
        let t = table(i);
        let mut body = String::new();
        let mut tests = 0;
        for actor in &actors {
            let owner = *actor == "u1" || *actor == "service";
            let expected = if owner { 1 } else { 0 };
            // select
            write!(body, "savepoint c;\n{}select is((select count(*)::int from public.{t} where owner_id = '{u1}'), {expected}, 'select as {actor}');\nrollback to savepoint c;\n", claims(actor)).unwrap();
            // update: the actor's statement, then the rows as admin
            write!(body, "savepoint c;\n{}select lives_ok($$update public.{t} set body = '{w}' where owner_id = '{u1}'$$, 'update as {actor} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where owner_id = '{u1}' and body = '{w}'), {expected}, 'update as {actor}');\nrollback to savepoint c;\n", claims(actor), w = word(i)).unwrap();
            // delete
            write!(body, "savepoint c;\n{}select lives_ok($$delete from public.{t} where owner_id = '{u1}'$$, 'delete as {actor} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where owner_id = '{u1}'), {}, 'delete as {actor}');\nrollback to savepoint c;\n", claims(actor), 1 - expected).unwrap();
            // insert
            let insert =
                format!("insert into public.{t} (owner_id, slug, body) values ('{u1}', '{actor}-new', '{}')", word(i));
            if !owner {
                write!(body, "savepoint c;\n{}select throws_ok($${insert}$$, '42501', null, 'insert as {actor} denied');\nrollback to savepoint c;\n", claims(actor)).unwrap();
                tests += 1;
            } else {
                write!(body, "savepoint c;\n{}select lives_ok($${insert}$$, 'insert as {actor} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where slug = '{actor}-new'), 1, 'insert as {actor}');\nrollback to savepoint c;\n", claims(actor)).unwrap();
                tests += 2;
            }
            tests += 5;
        }
        // No finish(): pgTAP records results in a temp table the savepoints roll back; the
        // plan line is what pg_prove checks the count against.
        let file = format!("begin;\nselect plan({tests});\n{body}rollback;\n");
        std::fs::write(dir.join(format!("{t}.sql")), file).unwrap();
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
    let started = Instant::now();
    let output = command
        .output()
        .expect("run pg_prove (apt install libtap-parser-sourcehandler-pgtap-perl)");
    let pgtap = started.elapsed();
    assert!(
        output.status.success(),
        "pg_prove failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
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
