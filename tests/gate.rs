//! `db-ci gate --against PROD`: the test builds its own "production" (a database on a local
//! server this test starts, the project's earlier migrations applied through the ledger,
//! 200,000 rows in `public.messages`: twenty times the gate's "large table"), reached as a
//! role that has no write rights, so any write the gate attempted would fail loudly; and
//! proves, by fingerprint, that nothing changed. Each dangerous pending migration is caught
//! and its safe twin passes; diverged, edited and out-of-order ledgers block; data that
//! violates a new constraint blocks; a drifted production blocks with the diff.

mod common;

use std::path::Path;

use db_ci::backend::{BackendKind, BackendOptions, Host};
use db_ci::idempotence::catalog::Fingerprint;
use db_ci::idempotence::data::DataFingerprint;
use db_ci::project::Project;
use db_ci::run::run_keeping;
use db_ci::stage::RunOptions;

const EARLIER: &[(&str, &str)] = &[
    (
        "0010_rooms.sql",
        // `uuid_generate_v4()` unqualified, as Supabase projects write it: found through the
        // search path the platform sets (`extensions`), which the rehearsal must have too.
        "create table public.rooms (id int primary key, name text not null, \
           ref uuid not null default uuid_generate_v4());\n\
         alter table public.rooms enable row level security;\n\
         create function public.on_signup() returns trigger language plpgsql set search_path = '' \
           as $$ begin return new; end $$;\n\
         create trigger on_signup after insert on auth.users for each row execute function public.on_signup();\n\
         create schema private;\n\
         create function private.touch() returns boolean language sql security definer \
           set search_path = '' as $$ select pg_catalog.pg_reload_conf() $$;\n",
    ),
    (
        "0020_messages.sql",
        "-- messages, per room\ncreate table public.messages (\n  id int primary key,\n  room_id int references public.rooms (id),\n  \
         body text,\n  note text\n);\n\
         alter table public.messages enable row level security;\n\
         create policy \"read\" on public.messages for select to authenticated using (true);\n\
         comment on table public.messages is 'pro plan';\n\
         create table public.events (id int primary key, kind text);\n\
         alter table public.events enable row level security;\n\
         create table public.tags (id int primary key, label text);\n\
         alter table public.tags enable row level security;\n\
         create function public.tag_labels() returns setof text language sql stable \
           set search_path = '' as $$ select label from public.tags $$;\n\
         create function public.tag_count() returns bigint language plpgsql stable \
           set search_path = '' as $$ begin return (select count(label) from public.tags); end $$;\n",
    ),
];

/// A function and a PL/pgSQL caller of it (a call PostgreSQL does not track).
const FUNCTIONS: &str = "create function public.is_admin() returns boolean language sql stable as $$ select false $$;\n\
create function public.can_read() returns boolean language plpgsql stable as $$ begin return public.is_admin(); end $$;\n";

/// Who may read messages, before and after the release.
const MATRIX: &str = "actors:\n  alice: { user: alice@example.com }\n  anon: anon\n\
setup: |\n  insert into public.rooms values (1, 'lobby');\n  insert into public.messages values (1, 1, 'hi', 'n');\n\
cases:\n  - name: messages are for signed-in users\n    table: public.messages\n    where: id = 1\n    select: { allow: [alice], deny: [anon] }\n";

fn write_project(dir: &Path, earlier: &[(&str, &str)], pending: &[(&str, &str)], config: &str) {
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    for (name, sql) in earlier.iter().chain(pending) {
        std::fs::write(dir.join("migrations").join(name), sql).unwrap();
    }
    std::fs::write(
        dir.join("db-ci.yaml"),
        format!("migrations: migrations\n{config}"),
    )
    .unwrap();
}

struct Case {
    name: &'static str,
    earlier: Vec<(&'static str, String)>,
    pending: Vec<(&'static str, &'static str)>,
    config: &'static str,
    /// `policy-tests/messages.yaml`, run on the rehearsal after the pending migrations.
    policy: Option<&'static str>,
    /// Production read as a role without BYPASSRLS.
    under_rls: bool,
    exit: i32,
    expect: Vec<&'static str>,
}

fn case(
    name: &'static str,
    pending: Vec<(&'static str, &'static str)>,
    exit: i32,
    expect: Vec<&'static str>,
) -> Case {
    Case {
        name,
        earlier: EARLIER.iter().map(|(n, s)| (*n, s.to_string())).collect(),
        pending,
        config: "",
        policy: None,
        under_rls: false,
        exit,
        expect,
    }
}

/// The cases the container scenario runs (see `scenario`).
const ON_THE_CONTAINER: &[&str] = &[
    "pass-add-nullable-column-with-lock-timeout",
    "fail-index-without-concurrently",
    "fail-data-violates-not-null",
    "pass-backfill-then-set-not-null",
    "fail-check-with-a-side-effect-is-evaluated-on-the-rehearsal",
    "fail-rows-over-the-copy-budget",
    "fail-release-opens-messages-to-anon",
    "fail-drop-column-function-bodies-still-read",
    "fail-pending-migration-fails",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_on_the_local_backend() {
    if let Some(backend) = common::Backend::local() {
        scenario(BackendKind::Local, backend).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_on_the_container_backend() {
    if let Some(backend) = common::Backend::container() {
        scenario(BackendKind::Container, backend).await;
    }
}

/// The rehearsal must run production's major version: a PostgreSQL 15 production gated with a
/// PostgreSQL 17 container is exit 3, naming both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_of_another_major_version_is_refused() {
    let (Some(_), Some(container)) = (common::Backend::local(), common::Backend::container())
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), EARLIER, &[], "");
    let project = Project::discover(dir.path()).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind: BackendKind::Local,
            ..Default::default()
        },
        only: Some(vec![]),
        ..Default::default()
    };
    let (_, replayed) = run_keeping(&project, &options, &mut db_ci::report::events::Silent).await;
    let prod = replayed.expect("production replayed");
    std::fs::write(
        dir.path().join("migrations/0030_x.sql"),
        "create table public.x (id int);\n",
    )
    .unwrap();
    let mut args = vec![
        "gate".to_owned(),
        dir.path().display().to_string(),
        "--against".into(),
        prod.server.connection.url(&prod.database),
    ];
    args.extend(container.args());
    let out = common::db_ci(&args);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("(major 15)") && text.contains("(major 17)"),
        "{text}"
    );
    prod.server.shutdown().await;
}

async fn scenario(kind: BackendKind, backend: common::Backend) {
    // Production: the earlier migrations through db-ci's ledger, then real data.
    let prod_dir = tempfile::tempdir().unwrap();
    write_project(prod_dir.path(), EARLIER, &[], "");
    let project = Project::discover(prod_dir.path()).unwrap();
    let options = RunOptions {
        backend: BackendOptions {
            kind,
            image: common::container_image(),
            ..Default::default()
        },
        only: Some(vec![]),
        ..Default::default()
    };
    let setup_started = std::time::Instant::now();
    let (report, replayed) =
        run_keeping(&project, &options, &mut db_ci::report::events::Silent).await;
    assert_eq!(report.exit_code(), 0, "{report:?}");
    let prod = replayed.expect("production replayed");
    let admin = prod.server.connect(&prod.database).await.unwrap();
    admin
        .batch_execute(
            "insert into public.rooms select g, 'room ' || g from generate_series(1, 100) g;
             -- Every room exists: the foreign key checks would only slow the set-up. Twenty times
             -- what the gate calls large: the verdicts are those of a million rows (the test
             -- had them), at a fifth of the copy every container case makes of them.
             set session_replication_role = replica;
             insert into public.messages select g, 1 + g % 100, 'hello ' || g,
               case when g % 1000 = 0 then null else 'n' end
             from generate_series(1, 200000) g;
             reset session_replication_role;
             insert into public.events select g, 'k' from generate_series(1, 100) g;
             analyze;
             -- Grown since its statistics were taken: analysed at 100 rows.
             insert into public.events select g, 'k' from generate_series(101, 300000) g;
             create role gate_reader login bypassrls password 'Reader-Secret';
             grant pg_read_all_data to gate_reader;
             create role gate_rls login password 'Reader-Secret';
             grant pg_read_all_data to gate_rls;",
        )
        .await
        .unwrap();
    let host = match &prod.server.connection.host {
        Host::Socket(socket) => socket.display().to_string().replace('/', "%2F"),
        Host::Tcp(host) => host.clone(),
    };
    let url_of = |role: &str| {
        format!(
            "postgres://{role}:Reader-Secret@{host}:{}/{}?sslmode=prefer",
            prod.server.connection.port, prod.database
        )
    };
    let (url, url_under_rls) = (url_of("gate_reader"), url_of("gate_rls"));
    // Production's configuration load time: a reload the project's code would cause moves it.
    let loaded_before: std::time::SystemTime = admin
        .query_one("select pg_conf_load_time()", &[])
        .await
        .unwrap()
        .get(0);
    eprintln!(
        "[gate-timing] production set up: {:.1} s",
        setup_started.elapsed().as_secs_f64()
    );
    let catalog_before = Fingerprint::read(&admin).await.unwrap();
    let data_before = DataFingerprint::read(&admin).await.unwrap();

    let edited = EARLIER[1].1.replace("body text", "body varchar(200)");
    let mut cases = vec![
        case(
            "nothing-pending",
            vec![],
            0,
            vec!["safe to apply", "nothing to apply"],
        ),
        case(
            "pass-add-nullable-column-with-lock-timeout",
            vec![(
                "0030_add_column.sql",
                "set lock_timeout = '5s';\nalter table public.messages add column edited_at timestamptz;\n",
            )],
            0,
            vec!["safe to apply", "rehearsed migrations/0030_add_column.sql"],
        ),
        case(
            "fail-rewrite-type-change",
            vec![(
                "0030_bigint.sql",
                "alter table public.messages alter column id type bigint;\n",
            )],
            1,
            vec![
                "ACCESS EXCLUSIVE on public.messages (200 k rows",
                "for a full rewrite: every read and write waits until this migration commits",
                "new column, backfill",
            ],
        ),
        case(
            "fail-rewrite-volatile-default",
            vec![(
                "0030_uuid.sql",
                "alter table public.messages add column ref uuid default gen_random_uuid();\n",
            )],
            1,
            vec!["full rewrite", "without the volatile default"],
        ),
        case(
            "pass-constant-default",
            vec![(
                "0030_flag.sql",
                "set lock_timeout = '5s';\nalter table public.messages add column flagged boolean not null default false;\n",
            )],
            0,
            vec!["safe to apply"],
        ),
        case(
            "fail-index-without-concurrently",
            vec![(
                "0030_index.sql",
                "create index messages_room_idx on public.messages (room_id);\n",
            )],
            1,
            vec!["SHARE on public.messages (200 k rows", "CONCURRENTLY"],
        ),
        case(
            "pass-index-concurrently",
            vec![(
                "0030_index.sql",
                "create index concurrently messages_room_idx on public.messages (room_id);\n",
            )],
            0,
            vec!["safe to apply"],
        ),
        case(
            "fail-check-validates-under-lock",
            vec![(
                "0030_check.sql",
                "alter table public.messages add constraint body_len check (length(body) < 100);\n",
            )],
            1,
            vec!["while validating the new CHECK constraint scans it", "NOT VALID"],
        ),
        case(
            "pass-check-not-valid-then-validate",
            vec![(
                "0030_check.sql",
                "set lock_timeout = '5s';\n\
                 alter table public.messages add constraint body_len check (length(body) < 100) not valid;\n\
                 alter table public.messages validate constraint body_len;\n",
            )],
            0,
            vec!["safe to apply"],
        ),
        case(
            "fail-data-violates-not-null",
            vec![(
                "0030_not_null.sql",
                "alter table public.messages alter column note set not null;\n",
            )],
            1,
            vec![
                "column \"note\" of relation \"messages\" contains null values",
                "would fail in production",
                "public.messages (200 k)",
            ],
        ),
        // The NOT VALID → VALIDATE pattern the gate recommends: VALIDATE is checked on the rows.
        case(
            "fail-validate-on-rows-that-violate",
            vec![(
                "0030_check.sql",
                "set lock_timeout = '5s';\n\
                 alter table public.messages add constraint note_set check (note is not null) not valid;\n\
                 alter table public.messages validate constraint note_set;\n",
            )],
            1,
            vec![
                "migrations/0030_check.sql:3",
                "would fail in production",
                "is violated by some row",
            ],
        ),
        case(
            "pass-backfill-then-validate",
            vec![(
                "0030_check.sql",
                "set lock_timeout = '5s';\n\
                 update public.messages set note = 'n' where note is null;\n\
                 alter table public.messages add constraint note_set check (note is not null) not valid;\n\
                 alter table public.messages validate constraint note_set;\n",
            )],
            0,
            vec!["safe to apply", "ran the pending migrations on a copy of production's rows"],
        ),
        case(
            "fail-set-not-null-inside-a-do-block",
            vec![(
                "0030_not_null.sql",
                "do $$ begin\n  alter table public.messages alter column note set not null;\nend $$;\n",
            )],
            1,
            vec![
                "migrations/0030_not_null.sql:1",
                "would fail in production",
                "contains null values",
                "while SET NOT NULL on note scans it",
            ],
        ),
        Case {
            config: "gate:\n  allow:\n    - file: migrations/0030_not_null.sql\n      kind: scan\n      reason: in the maintenance window\n",
            ..case(
                "pass-backfill-then-set-not-null",
                vec![(
                    "0030_not_null.sql",
                    "set lock_timeout = '5s';\n\
                     update public.messages set note = 'n' where note is null;\n\
                     alter table public.messages alter column note set not null;\n",
                )],
                0,
                vec!["safe to apply", "allowed (in the maintenance window)"],
            )
        },
        // The project's code never runs on production: this CHECK would reload production's
        // configuration (see the load time compared at the end).
        case(
            "fail-check-with-a-side-effect-is-evaluated-on-the-rehearsal",
            vec![(
                "0030_touch.sql",
                "set lock_timeout = '5s';\n\
                 alter table public.messages add constraint touched check (private.touch());\n",
            )],
            1,
            vec!["while validating the new CHECK constraint scans it"],
        ),
        Case {
            config: "gate:\n  copy_budget_mb: 1\n",
            ..case(
                "fail-rows-over-the-copy-budget",
                vec![(
                    "0030_check.sql",
                    "set lock_timeout = '5s';\n\
                     alter table public.messages validate constraint messages_room_id_fkey;\n",
                )],
                1,
                vec!["not checked: whether production's rows of public.messages", "over gate.copy_budget_mb"],
            )
        },
        // Statements no row can make fail need no copy: over the budget, nothing is unchecked.
        Case {
            config: "gate:\n  copy_budget_mb: 1\n",
            ..case(
                "pass-rowless-statements-need-no-copy-over-the-budget",
                vec![(
                    "0030_add_column.sql",
                    "set lock_timeout = '5s';\n\
                     alter table public.messages add column edited_at timestamptz;\n\
                     comment on column public.messages.edited_at is 'last edit';\n",
                )],
                0,
                vec!["safe to apply", "no data check needed"],
            )
        },
        Case {
            config: "gate:\n  copy_budget_mb: 1\n  allow:\n    - file: migrations/0030_check.sql\n      kind: not-checked\n      relation: public.messages\n      reason: validated by hand\n    - file: migrations/0030_check.sql\n      kind: not-checked\n      relation: public.rooms\n      reason: validated by hand\n",
            ..case(
                "pass-rows-over-the-copy-budget-allowed-by-name",
                vec![(
                    "0030_check.sql",
                    "set lock_timeout = '5s';\n\
                     alter table public.messages validate constraint messages_room_id_fkey;\n",
                )],
                0,
                vec!["allowed (validated by hand)"],
            )
        },
        Case {
            under_rls: true,
            ..case(
                "fail-role-under-row-level-security",
                vec![(
                    "0030_check.sql",
                    "set lock_timeout = '5s';\n\
                     alter table public.messages add constraint note_set check (note is not null) not valid;\n\
                     alter table public.messages validate constraint note_set;\n",
                )],
                1,
                vec!["not checked", "alter role gate_rls bypassrls"],
            )
        },
        // A policy that opens a table to the anon key blocks without any matrix.
        case(
            "fail-anon-policy-without-matrices",
            vec![(
                "0030_anon.sql",
                "-- public reading\ncreate policy \"anon read\" on public.messages for select to anon using (true);\n",
            )],
            1,
            vec![
                "migrations/0030_anon.sql:2",
                "policy \"anon read\" lets anyone with the anon key read every row of public.messages",
            ],
        ),
        case(
            "pass-anon-policy-with-a-condition",
            vec![(
                "0030_anon.sql",
                "create policy \"anon read\" on public.messages for select to anon using (note = 'public');\n",
            )],
            0,
            vec!["safe to apply"],
        ),
        // Statements that change every row are data loss, with the row count.
        case(
            "fail-truncate-is-data-loss",
            vec![("0030_reset.sql", "truncate public.events;\n")],
            1,
            vec!["truncates public.events: data loss, its 300 k rows in production are deleted"],
        ),
        case(
            "fail-delete-without-where",
            vec![("0030_reset.sql", "delete from public.events;\n")],
            1,
            vec!["deletes every row of public.events (no WHERE): data loss, its 300 k rows"],
        ),
        case(
            "pass-delete-with-where",
            vec![("0030_reset.sql", "delete from public.events where id > 299990;\n")],
            0,
            vec!["safe to apply"],
        ),
        // A DELETE inside a WITH deletes as one outside it does.
        case(
            "fail-delete-in-a-cte-without-where",
            vec![(
                "0030_reset.sql",
                "with gone as (delete from public.events returning id) select count(*) from gone;\n",
            )],
            1,
            vec!["deletes every row of public.events (no WHERE): data loss, its 300 k rows"],
        ),
        case(
            "pass-delete-in-a-cte-with-where",
            vec![(
                "0030_reset.sql",
                "with gone as (delete from public.events where id > 299990 returning id) select count(*) from gone;\n",
            )],
            0,
            vec!["safe to apply"],
        ),
        // Statistics taken at 100 rows; the table holds 300,000 now.
        case(
            "fail-rewrite-of-a-table-grown-since-analysed",
            vec![(
                "0030_bigint.sql",
                "alter table public.events alter column id type bigint;\n",
            )],
            1,
            vec!["ACCESS EXCLUSIVE on public.events (300 k rows"],
        ),
        case(
            "fail-drop-table-with-rows",
            vec![("0030_drop.sql", "drop table public.messages;\n")],
            1,
            vec!["drops public.messages, which holds 200 k rows"],
        ),
        case(
            "fail-drop-column-with-rows",
            vec![("0030_drop.sql", "alter table public.messages drop column note;\n")],
            1,
            vec!["drops column public.messages.note"],
        ),
        case(
            "fail-pending-migration-fails",
            vec![("0030_bad.sql", "alter table public.nope add column x int;\n")],
            1,
            vec!["fails on a database shaped like production", "public.nope"],
        ),
        Case {
            name: "fail-diverged",
            earlier: vec![(EARLIER[0].0, EARLIER[0].1.to_string())],
            pending: vec![],
            config: "",
            policy: None,
            under_rls: false,
            exit: 1,
            expect: vec!["production has applied 1 migration the repository does not have: 0020 (messages)"],
        },
        Case {
            name: "fail-edited-after-apply",
            earlier: vec![
                (EARLIER[0].0, EARLIER[0].1.to_string()),
                (EARLIER[1].0, edited),
            ],
            pending: vec![],
            config: "",
            policy: None,
            under_rls: false,
            exit: 1,
            expect: vec!["migration 0020 (migrations/0020_messages.sql) was edited after production applied it"],
        },
        case(
            "fail-out-of-order",
            vec![("0015_late.sql", "create table public.late (id int);\n")],
            1,
            vec!["pending migration 0015 is older than 0020"],
        ),
        Case {
            name: "pass-allowed-with-reason",
            earlier: EARLIER.iter().map(|(n, s)| (*n, s.to_string())).collect(),
            pending: vec![("0030_drop.sql", "alter table public.messages drop column note;\n")],
            config: "gate:\n  allow:\n    - file: migrations/0030_drop.sql\n      kind: destructive\n      reason: the note column was never read\n",
            policy: None,
            under_rls: false,
            exit: 0,
            expect: vec!["allowed (the note column was never read)"],
        },
        // The release's effect on who reads what: the matrix and the lints run on the
        // rehearsal after the pending migrations.
        Case {
            policy: Some(MATRIX),
            ..case(
                "fail-release-opens-messages-to-anon",
                vec![(
                    "0030_anon.sql",
                    "create policy \"anon read\" on public.messages for select to anon using (true);\n",
                )],
                1,
                vec!["select as anon: expected deny, observed allow"],
            )
        },
        Case {
            policy: Some(MATRIX),
            ..case(
                "pass-release-keeps-messages-private",
                vec![(
                    "0030_add_column.sql",
                    "set lock_timeout = '5s';\nalter table public.messages add column edited_at timestamptz;\n",
                )],
                0,
                vec!["safe to apply", "2 of 2 cells as expected"],
            )
        },
        case(
            "fail-drops-a-function-a-body-still-calls",
            vec![
                ("0030_functions.sql", FUNCTIONS),
                ("0040_drop.sql", "-- is_admin is replaced by roles\ndrop function public.is_admin();\n"),
            ],
            1,
            vec![
                "drops function public.is_admin(), which public.can_read() still calls",
                "migrations/0040_drop.sql:2",
            ],
        ),
        case(
            "fail-renames-a-function-a-body-still-calls",
            vec![
                ("0030_functions.sql", FUNCTIONS),
                ("0040_rename.sql", "alter function public.is_admin() rename to is_staff;\n"),
            ],
            1,
            vec!["renames function public.is_admin() to public.is_staff, which public.can_read() still calls"],
        ),
        case(
            "pass-drops-a-function-with-its-callers",
            vec![
                ("0030_functions.sql", FUNCTIONS),
                ("0040_drop.sql", "drop function public.can_read();\ndrop function public.is_admin();\n"),
            ],
            0,
            vec!["safe to apply"],
        ),
        case(
            "fail-release-disables-rls",
            vec![(
                "0030_no_rls.sql",
                "alter table public.messages disable row level security;\n",
            )],
            1,
            vec!["rls_disabled_in_public", "migrations/0030_no_rls.sql:1"],
        ),
        // A lint finding on the rehearsal points at the pending file that changed the object
        // (not the one that created it); one no pending file changes, at where it was made.
        case(
            "fail-lint-points-at-the-pending-file-that-changed-it",
            vec![
                (
                    "0030_notes.sql",
                    "create table public.notes (id int primary key);\n\
                     alter table public.notes enable row level security;\n",
                ),
                (
                    "0040_open.sql",
                    "-- readable by the API again\nalter table public.notes disable row level security;\n",
                ),
            ],
            1,
            vec!["rls_disabled_in_public", "migrations/0040_open.sql:2"],
        ),
        case(
            "fail-lint-points-at-the-pending-file-that-created-it",
            vec![
                ("0030_notes.sql", "create table public.notes (id int primary key);\n"),
                ("0040_tags.sql", "comment on table public.tags is 'labels';\n"),
            ],
            1,
            vec!["rls_disabled_in_public", "migrations/0030_notes.sql:1"],
        ),
        Case {
            name: "input-allow-without-reason",
            earlier: EARLIER.iter().map(|(n, s)| (*n, s.to_string())).collect(),
            pending: vec![],
            config: "gate:\n  allow:\n    - file: migrations/0030_drop.sql\n      reason: ''\n",
            policy: None,
            under_rls: false,
            exit: 2,
            expect: vec!["needs a non-empty `reason`"],
        },
    ];
    // Function bodies against the new schema: `tags` is empty in production, so nothing
    // else stops the drop of a column two functions still read.
    let mut broken = vec![
        "function public.tag_labels() no longer works after this migration",
        "migrations/0030_tags.sql:2",
    ];
    if kind == BackendKind::Local {
        // plpgsql_check is installed beside the local server.
        broken.push("function public.tag_count() no longer works after this migration");
    }
    cases.push(case(
        "fail-drop-column-function-bodies-still-read",
        vec![(
            "0030_tags.sql",
            "set lock_timeout = '5s';\nalter table public.tags drop column label;\n",
        )],
        1,
        broken,
    ));
    cases.push(case(
        "pass-drop-column-with-the-functions-that-read-it",
        vec![(
            "0030_tags.sql",
            "set lock_timeout = '5s';\ndrop function public.tag_labels();\ndrop function public.tag_count();\n\
             alter table public.tags drop column label;\n",
        )],
        0,
        vec!["safe to apply"],
    ));
    let base = tempfile::tempdir().unwrap();
    let run = |c: &Case| {
        let case_started = std::time::Instant::now();
        let dir = base.path().join(c.name);
        let earlier: Vec<(&str, &str)> = c.earlier.iter().map(|(n, s)| (*n, s.as_str())).collect();
        write_project(&dir, &earlier, &c.pending, c.config);
        if let Some(policy) = c.policy {
            std::fs::create_dir_all(dir.join("policy-tests")).unwrap();
            std::fs::write(dir.join("policy-tests/messages.yaml"), policy).unwrap();
        }
        let json = dir.join("report.json");
        let mut args = vec![
            "gate".into(),
            dir.display().to_string(),
            "--against".into(),
            if c.under_rls {
                url_under_rls.clone()
            } else {
                url.clone()
            },
            "--json".into(),
            json.display().to_string(),
        ];
        args.extend(backend.args());
        let out = common::db_ci(&args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr)
            + &std::fs::read_to_string(&json).unwrap_or_default();
        eprintln!(
            "[gate-timing] {}: {:.1} s",
            c.name,
            case_started.elapsed().as_secs_f64()
        );
        (out.status.code(), text)
    };
    // The container backend changes where production and the rehearsal run, not how the gate
    // judges: it takes the cases whose path differs by backend (rows copied into the
    // rehearsal, the image's extensions for function bodies, rls and lint on the rehearsal, a
    // failing pending file, a lock on the big table). The local scenario takes every case; a
    // container case costs a container's start and stop each, and CI waits on them.
    if kind == BackendKind::Container {
        cases.retain(|c| ON_THE_CONTAINER.contains(&c.name));
        assert_eq!(
            cases.len(),
            ON_THE_CONTAINER.len(),
            "a container case was renamed"
        );
    }
    // A container case mostly waits for its rehearsal container to start and stop: more of
    // them overlap than local clusters, which keep the cores busy.
    let workers = match kind {
        BackendKind::Container => 4,
        _ => 2,
    };
    let results = common::parallel(cases.iter().collect(), workers, run);
    let mut problems = Vec::new();
    for (c, (code, text)) in cases.iter().zip(&results) {
        if text.contains("Reader-Secret") {
            problems.push(format!("{}: the password was printed\n{text}", c.name));
        }
        if *code != Some(c.exit) {
            problems.push(format!(
                "{}: exit {code:?}, expected {}\n{text}",
                c.name, c.exit
            ));
            continue;
        }
        for needle in &c.expect {
            if !text.contains(needle) {
                problems.push(format!("{}: output lacks `{needle}`\n{text}", c.name));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));

    // Nothing was written to production.
    assert_eq!(catalog_before, Fingerprint::read(&admin).await.unwrap());
    assert!(data_before
        .diff(&DataFingerprint::read(&admin).await.unwrap(), 0.0)
        .is_empty());

    // Production's configuration was never reloaded: the CHECK ran on the rehearsal only.
    let loaded_after: std::time::SystemTime = admin
        .query_one("select pg_conf_load_time()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        loaded_before, loaded_after,
        "the project's code ran on production"
    );

    // The ledger as `supabase db push` writes it: the CLI's statements, comments kept. The
    // untouched files match it; an edit inside a literal does not. (Compared in db-ci, not on
    // the server: the local scenario is enough.)
    let ledger_cases = kind == BackendKind::Local;
    for (name, text) in EARLIER.iter().filter(|_| ledger_cases) {
        admin
            .execute(
                "update supabase_migrations.schema_migrations set statements = $1 \
                 where version = $2",
                &[
                    &db_ci::gate::cli_split::statements(text),
                    &name.split('_').next().unwrap(),
                ],
            )
            .await
            .unwrap();
    }
    for c in [
        case(
            "pass-ledger-written-by-the-cli",
            vec![],
            0,
            vec!["safe to apply"],
        ),
        Case {
            earlier: vec![
                (EARLIER[0].0, EARLIER[0].1.to_string()),
                (
                    EARLIER[1].0,
                    EARLIER[1].1.replace("'pro plan'", "'proplan'"),
                ),
            ],
            ..case(
                "fail-ledger-literal-edited",
                vec![],
                1,
                vec!["was edited after production applied it", "'proplan'"],
            )
        },
    ]
    .into_iter()
    .filter(|_| ledger_cases)
    {
        let (code, text) = run(&c);
        assert_eq!(code, Some(c.exit), "{}: {text}", c.name);
        for needle in &c.expect {
            assert!(
                text.contains(needle),
                "{}: lacks `{needle}`: {text}",
                c.name
            );
        }
    }

    // Production's platform built another way than db-ci's shim: another extension, other
    // grants on an auth table, the other RLS flag on it (it carries the project's trigger),
    // a default privilege of a platform role. None is the project's: not drift.
    admin
        .batch_execute(
            "create extension if not exists pg_trgm with schema extensions;
             grant select on auth.users to authenticated;
             do $$ begin
               if (select relrowsecurity from pg_class where oid = 'auth.users'::regclass) then
                 alter table auth.users disable row level security;
               else
                 alter table auth.users enable row level security;
               end if;
             end $$;
             alter default privileges in schema public grant select on tables to gate_reader;",
        )
        .await
        .unwrap();
    let platform = case(
        "pass-platform-differs-from-the-shim",
        vec![("0030_add_column.sql", "set lock_timeout = '5s';\nalter table public.messages add column edited_at timestamptz;\n")],
        0,
        vec!["safe to apply"],
    );
    let (code, text) = run(&platform);
    assert_eq!(code, Some(0), "{text}");

    // A hand-made change in production: the rehearsal cannot be trusted. (The catalog
    // comparison is db-ci's, whatever the backend: the local scenario is enough.)
    if kind == BackendKind::Container {
        drop(admin);
        prod.server.shutdown().await;
        return;
    }
    admin
        .batch_execute("alter table public.messages add column hand_made text")
        .await
        .unwrap();
    cases.truncate(0);
    let drifted = case(
        "fail-drifted-production",
        vec![("0030_add_column.sql", "set lock_timeout = '5s';\nalter table public.messages add column edited_at timestamptz;\n")],
        1,
        vec!["production's schema has drifted", "hand_made", "cannot be trusted"],
    );
    let (code, text) = run(&drifted);
    assert_eq!(code, Some(1), "{text}");
    for needle in &drifted.expect {
        assert!(text.contains(needle), "lacks `{needle}`: {text}");
    }
    drop(admin);
    prod.server.shutdown().await;
}
