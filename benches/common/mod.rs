//! What the benchmarks share: RLS-protected tables as rerunnable SQL, their allow/deny
//! matrix, the same checks as pgTAP files and as bare statements, and the figures' format.
//!
//! Each bench is its own crate: a bench uses part of this, so the rest is dead code there.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// Runs `command` (a client: psql, pg_prove), which must succeed: how long it took, and what
/// it wrote on stderr.
pub fn timed(mut command: Command, what: &str) -> (Duration, String) {
    let started = Instant::now();
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (took, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// The psql of the local backend's binaries, else the one on PATH.
pub fn psql() -> PathBuf {
    db_ci::backend::local::find_install()
        .map(|i| i.bindir.join("psql"))
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| "psql".into())
}

pub fn table(i: usize) -> String {
    format!("t{i:02}")
}

/// The text an update writes into a table's `body`: plain YAML scalars as users write them,
/// words YAML 1.1 would have read as booleans (db-ci reads YAML 1.2: they stay text).
pub fn word(i: usize) -> &'static str {
    ["no", "off", "n", "yes", "on", "y", "edited"][i % 7]
}

/// Table `i` under RLS, its rows their owner's: rerunnable (strict mode runs every file
/// twice), as a project written for `db-ci`'s idempotence stage is.
pub fn table_sql(i: usize) -> String {
    let t = table(i);
    let mut sql = format!(
        "create table if not exists public.{t} (id uuid primary key default gen_random_uuid(), \
           owner_id uuid not null references auth.users (id), slug text not null unique, body text not null default '');\n\
         alter table public.{t} enable row level security;\n"
    );
    for (operation, clause) in [
        ("select", "using (owner_id = (select auth.uid()))"),
        ("insert", "with check (owner_id = (select auth.uid()))"),
        (
            "update",
            "using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()))",
        ),
        ("delete", "using (owner_id = (select auth.uid()))"),
    ] {
        writeln!(
            sql,
            "drop policy if exists {t}_{operation} on public.{t};\n\
             create policy {t}_{operation} on public.{t} for {operation} to authenticated {clause};"
        )
        .unwrap();
    }
    sql
}

/// The matrix's cases for `tables`: each table's rows are read, updated and deleted only by
/// their owner `u1` and the service role, and inserted by them only (4 cells per actor).
pub fn cases_yaml(tables: impl IntoIterator<Item = usize>) -> String {
    let mut yaml = String::from("cases:\n");
    for i in tables {
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

/// An actor of the hand-written checks: its name in the matrix and its user id (`None` for
/// `anon` and `service`).
pub struct Actor {
    pub name: String,
    pub id: Option<String>,
}

impl Actor {
    /// The statements that make the transaction act as this actor.
    fn claims(&self) -> String {
        match &self.id {
            None => {
                let role = if self.name == "anon" {
                    "anon"
                } else {
                    "service_role"
                };
                format!("set local role {role};\nselect set_config('request.jwt.claims', '{{\"role\":\"{role}\"}}', true);\n")
            }
            Some(id) => format!(
                "set local role authenticated;\nselect set_config('request.jwt.claims', '{{\"role\":\"authenticated\",\"sub\":\"{id}\"}}', true);\n"
            ),
        }
    }

    /// Whether the matrix allows it table `owner`'s rows (`u1` owns them).
    fn owner(&self) -> bool {
        self.name == "u1" || self.name == "service"
    }
}

/// The checks of table `i` for `actors` as one pgTAP file (`is`, `lives_ok`, `throws_ok`
/// under `set local role` + claims, each check in a savepoint rolled back), `u1_id` owning
/// the rows.
pub fn pgtap_file(i: usize, actors: &[Actor], u1_id: &str) -> String {
    let t = table(i);
    let w = word(i);
    let mut body = String::new();
    let mut tests = 0;
    for actor in actors {
        let claims = actor.claims();
        let name = &actor.name;
        let expected = usize::from(actor.owner());
        write!(body, "savepoint c;\n{claims}select is((select count(*)::int from public.{t} where owner_id = '{u1_id}'), {expected}, 'select as {name}');\nrollback to savepoint c;\n").unwrap();
        write!(body, "savepoint c;\n{claims}select lives_ok($$update public.{t} set body = '{w}' where owner_id = '{u1_id}'$$, 'update as {name} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where owner_id = '{u1_id}' and body = '{w}'), {expected}, 'update as {name}');\nrollback to savepoint c;\n").unwrap();
        write!(body, "savepoint c;\n{claims}select lives_ok($$delete from public.{t} where owner_id = '{u1_id}'$$, 'delete as {name} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where owner_id = '{u1_id}'), {}, 'delete as {name}');\nrollback to savepoint c;\n", 1 - expected).unwrap();
        let insert = format!(
            "insert into public.{t} (owner_id, slug, body) values ('{u1_id}', '{name}-new', '{w}')"
        );
        if actor.owner() {
            write!(body, "savepoint c;\n{claims}select lives_ok($${insert}$$, 'insert as {name} runs');\nreset role;\nselect is((select count(*)::int from public.{t} where slug = '{name}-new'), 1, 'insert as {name}');\nrollback to savepoint c;\n").unwrap();
            tests += 2;
        } else {
            write!(body, "savepoint c;\n{claims}select throws_ok($${insert}$$, '42501', null, 'insert as {name} denied');\nrollback to savepoint c;\n").unwrap();
            tests += 1;
        }
        tests += 5;
    }
    // No finish(): pgTAP records results in a temp table the savepoints roll back; the plan
    // line is what pg_prove checks the count against.
    format!("begin;\nselect plan({tests});\n{body}rollback;\n")
}

/// The same cells as [`pgtap_file`], bare: each statement as the actor, then what it left
/// read back, in a transaction rolled back, nothing judged (what psql alone would run). A
/// denied insert's error ends only its own cell's transaction.
pub fn bare_cells(i: usize, actors: &[Actor], u1_id: &str) -> String {
    let t = table(i);
    let w = word(i);
    let mut sql = String::new();
    for actor in actors {
        let claims = actor.claims();
        let name = &actor.name;
        for statement in [
            format!("select count(*) from public.{t} where owner_id = '{u1_id}';\n"),
            format!("update public.{t} set body = '{w}' where owner_id = '{u1_id}';\nreset role;\nselect count(*) from public.{t} where owner_id = '{u1_id}' and body = '{w}';\n"),
            format!("delete from public.{t} where owner_id = '{u1_id}';\nreset role;\nselect count(*) from public.{t} where owner_id = '{u1_id}';\n"),
            format!("insert into public.{t} (owner_id, slug, body) values ('{u1_id}', '{name}-new', '{w}');\nreset role;\nselect count(*) from public.{t} where slug = '{name}-new';\n"),
        ] {
            write!(sql, "begin;\n{claims}{statement}rollback;\n").unwrap();
        }
    }
    sql
}
