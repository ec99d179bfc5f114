//! Running SQL under test as the platform runs it: as a `postgres` that is not a superuser,
//! with what the platform's supautils lets that `postgres` do that a plain non-superuser
//! cannot (privileged extensions, publications, event triggers, policies on platform
//! tables, reserved roles and memberships refused) done the platform's way.
//!
//! The one switch every stage that runs a user's SQL as `postgres` calls ([`become_postgres`]),
//! and the one place that routes a statement ([`Session::execute`]). db-ci's own sessions log
//! in as the bootstrap superuser (`supabase_admin`, as on the platform) and keep its rights for
//! the harness; a file under test runs after `SET SESSION AUTHORIZATION postgres`.

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::left_session::{checked, LeftSession, CHECK_QUERY};

/// The role migrations, seeds and `supabase test db` run as on the platform.
pub const PLATFORM_ROLE: &str = "postgres";

/// The platform's superuser, which supautils switches to for what it lets `postgres` do.
pub const SUPERUSER: &str = "supabase_admin";

/// supautils' `privileged_extensions` on the platform: created, updated and dropped as the
/// superuser when `postgres` asks.
pub const PRIVILEGED_EXTENSIONS: &[&str] = &[
    "address_standardizer",
    "address_standardizer_data_us",
    "autoinc",
    "bloom",
    "btree_gin",
    "btree_gist",
    "citext",
    "cube",
    "dblink",
    "dict_int",
    "dict_xsyn",
    "earthdistance",
    "fuzzystrmatch",
    "hstore",
    "http",
    "hypopg",
    "index_advisor",
    "insert_username",
    "intarray",
    "isn",
    "ltree",
    "moddatetime",
    "orioledb",
    "pg_cron",
    "pg_graphql",
    "pg_hashids",
    "pg_jsonschema",
    "pg_net",
    "pg_partman",
    "pg_prewarm",
    "pg_repack",
    "pg_stat_monitor",
    "pg_stat_statements",
    "pg_tle",
    "pg_trgm",
    "pg_walinspect",
    "pgaudit",
    "pgcrypto",
    "pgjwt",
    "pgmq",
    "pgroonga",
    "pgroonga_database",
    "pgrouting",
    "pgrowlocks",
    "pgsodium",
    "pgstattuple",
    "pgtap",
    "plcoffee",
    "pljava",
    "plls",
    "plpgsql",
    "plpgsql_check",
    "plv8",
    "postgis",
    "postgis_raster",
    "postgis_sfcgal",
    "postgis_tiger_geocoder",
    "postgis_topology",
    "postgres_fdw",
    "refint",
    "rum",
    "seg",
    "sslinfo",
    "supabase_vault",
    "supautils",
    "tablefunc",
    "tcn",
    "timescaledb",
    "tsm_system_rows",
    "tsm_system_time",
    "unaccent",
    "uuid-ossp",
    "vector",
    "wrappers",
];

/// supautils' `reserved_roles`: `postgres` may not create, alter, rename or drop them; a
/// `true` (the platform's trailing `*`) lets it change their settings (`ALTER ROLE … SET`).
pub const RESERVED_ROLES: &[(&str, bool)] = &[
    ("supabase_admin", false),
    ("supabase_auth_admin", false),
    ("supabase_storage_admin", false),
    ("supabase_read_only_user", false),
    ("supabase_replication_admin", false),
    ("dashboard_user", false),
    ("pgbouncer", false),
    ("service_role", true),
    ("authenticator", true),
    ("authenticated", true),
    ("anon", true),
];

/// supautils' `reserved_memberships`: roles `postgres` may not grant.
pub const RESERVED_MEMBERSHIPS: &[&str] = &[
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "authenticator",
];

/// supautils' `privileged_role_allowed_configs`: superuser-only settings `postgres` may set
/// (granted with `GRANT SET ON PARAMETER` by the shim; a `prefix.*` entry is any setting of
/// that prefix, which PostgreSQL treats as a user setting until a library defines it).
pub const ALLOWED_CONFIGS: &[&str] = &[
    "auto_explain.log_min_duration",
    "auto_explain.log_nested_statements",
    "log_lock_waits",
    "log_min_messages",
    "pg_net.batch_size",
    "pg_net.ttl",
    "pgaudit.log",
    "pgaudit.log_catalog",
    "pgaudit.log_client",
    "pgaudit.log_level",
    "pgaudit.log_relation",
    "pgaudit.log_rows",
    "pgaudit.log_statement",
    "pgaudit.log_statement_once",
    "pgaudit.role",
    "pgrst.*",
    "plan_filter.*",
    "safeupdate.enabled",
    "session_replication_role",
    "track_io_timing",
];

/// supautils' `policy_grants` for `postgres`: tables it may manage policies on without
/// owning them.
pub const POLICY_TABLES: &[&str] = &[
    "auth.audit_log_entries",
    "auth.identities",
    "auth.refresh_tokens",
    "auth.sessions",
    "auth.users",
    "realtime.messages",
    "storage.buckets",
    "storage.migrations",
    "storage.objects",
    "storage.s3_multipart_uploads",
    "storage.s3_multipart_uploads_parts",
];

/// An extension control file's text marked `trusted = true` (PostgreSQL 13+: a role that
/// may CREATE in the database creates it, its script running as the bootstrap superuser).
/// Unchanged when it says already whether it is trusted.
pub fn trusted_control(text: &str) -> String {
    let trusted = text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("trusted") && !line.starts_with('#')
    });
    if trusted {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(
        "# db-ci: a privileged extension on the platform (see shim::platform)\ntrusted = true\n",
    );
    out
}

/// Who a session under test runs as, once [`become_postgres`] switched it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// `postgres` is not a superuser: the platform's rules apply.
    Demoted,
    /// `postgres` is the server's superuser (the url backend, whose `postgres` db-ci was
    /// given and cannot demote): statements run as they are.
    Superuser,
}

/// Switches `client` (logged in as the bootstrap superuser, or as `postgres` on the url
/// backend) to the platform's `postgres` for SQL under test. Undone by `DISCARD ALL` and
/// `SET SESSION AUTHORIZATION DEFAULT` (db-ci's session reset): call it again after either.
pub async fn become_postgres(client: &Client) -> Result<Session, tokio_postgres::Error> {
    let messages = client
        .simple_query(
            "set session authorization postgres; \
             select current_setting('is_superuser')",
        )
        .await?;
    let superuser = messages.iter().any(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0) == Some("on"),
        _ => false,
    });
    Ok(if superuser {
        Session::Superuser
    } else {
        Session::Demoted
    })
}

/// How a statement ended when it did not succeed.
#[derive(Debug)]
pub enum Refusal {
    /// The server raised it.
    Server(tokio_postgres::Error),
    /// The platform refuses it (supautils' rule), though this server would not: the message
    /// the platform gives.
    Platform(String),
}

impl Session {
    /// Runs one top-level statement of a file under test, as the platform would.
    /// `in_transaction`: the file's transaction is open (a statement the platform would have
    /// let through is then retried from a savepoint).
    pub async fn execute(
        self,
        client: &Client,
        statement: &str,
        in_transaction: bool,
    ) -> Result<(), Refusal> {
        if self == Session::Superuser {
            return client
                .batch_execute(statement)
                .await
                .map_err(Refusal::Server);
        }
        // A migration's own `COMMIT;` may have ended the file's transaction: then there is
        // none to guard, and a failed statement left nothing behind.
        let (guarded, autocommit) = if in_transaction {
            match client.batch_execute("savepoint db_ci_platform").await {
                Ok(()) => (true, false),
                Err(e) => (
                    false,
                    e.code() == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
                ),
            }
        } else {
            (false, true)
        };
        let result = self.routed(client, statement).await;
        let result = match result {
            // What supautils runs as the superuser from anywhere (a DO block, a function),
            // which this server refused to postgres: again, as the superuser.
            Err(Refusal::Server(error))
                if superuser_would_run(&error) && (guarded || autocommit) =>
            {
                if guarded {
                    client
                        .batch_execute("rollback to savepoint db_ci_platform")
                        .await
                        .map_err(Refusal::Server)?;
                }
                as_superuser(client, statement, &[]).await
            }
            other => other,
        };
        if guarded && result.is_ok() {
            // Fails only where the statement itself ended the transaction (`COMMIT;`).
            let _ = client
                .batch_execute("release savepoint db_ci_platform")
                .await;
        }
        result
    }

    async fn routed(self, client: &Client, statement: &str) -> Result<(), Refusal> {
        match route(statement) {
            Route::AsPostgres => client
                .batch_execute(statement)
                .await
                .map_err(Refusal::Server),
            Route::Refused(message) => Err(Refusal::Platform(message)),
            Route::ThenPostgresAgain => {
                let result = client.batch_execute(statement).await;
                again_postgres(client).await;
                result.map_err(Refusal::Server)
            }
            Route::AsSuperuser { after } => as_superuser(client, statement, &after).await,
            Route::EventTrigger { name, function } => {
                if function_owned_by_superuser(client, &function).await {
                    return Err(Refusal::Platform(format!(
                        "Non-superuser owned event trigger must execute a non-superuser owned \
                         function (the function {function} is owned by a superuser)"
                    )));
                }
                // Owned by postgres afterwards, as supautils leaves it (PostgreSQL's own
                // ALTER … OWNER refuses a non-superuser owner for an event trigger).
                let after = [format!(
                    "update pg_catalog.pg_event_trigger set evtowner = 'postgres'::regrole \
                     where evtname = {}",
                    crate::sql::quote_literal(&name)
                )];
                as_superuser(client, statement, &after).await
            }
        }
    }

    /// Checks, after a file, that it left the session as the platform's `postgres`; the
    /// message says what it did otherwise.
    pub async fn check(self, client: &Client) -> Result<(), LeftSession> {
        if self == Session::Superuser {
            return Ok(());
        }
        let messages = client
            .simple_query(CHECK_QUERY)
            .await
            .map_err(LeftSession::Unread)?;
        checked(&messages)
    }

    /// The note for a statement the demoted `postgres` was refused: the platform refuses it
    /// too. `None` where the refusal is not about superuser rights.
    pub fn refusal_note(self, sqlstate: &str, message: &str, hint: &str) -> Option<String> {
        if self != Session::Demoted || sqlstate != "42501" {
            return None;
        }
        let text = format!("{message} {hint}").to_ascii_lowercase();
        let superuser_only = text.contains("superuser")
            || text.starts_with("permission denied to ")
            // writes to the system catalogs
            || text.starts_with("permission denied for table pg_")
            || text.contains("must be owner of event trigger");
        superuser_only.then(|| PLATFORM_NOTE.to_owned())
    }
}

/// What a statement the platform's `postgres` may not run is told.
pub const PLATFORM_NOTE: &str = "db-ci runs migrations, seeds and tests as the platform's \
     `postgres`, which is not a superuser: `supabase db push` would be refused the same way \
     (the platform lets postgres create privileged extensions, publications and event \
     triggers, nothing else that needs a superuser)";

/// What the url backend cannot do, said once per run.
pub const URL_NOTE: &str = "the url backend runs everything as the server's superuser \
     `postgres` (db-ci cannot demote a role of a server it was given): a migration that needs \
     a superuser passes here and fails on the platform. Use --backend local or container to \
     run as the platform does";

/// Whether `error` is one supautils would have avoided by running the statement as the
/// superuser wherever it came from: PostgreSQL 15 refusing a CREATEROLE role the BYPASSRLS
/// or REPLICATION attribute (supautils switches to the superuser for the privileged role;
/// PostgreSQL 16+ allows it to a role that has the attribute itself), and a privileged
/// extension whose control file this server does not mark trusted.
pub fn superuser_would_run(error: &tokio_postgres::Error) -> bool {
    let Some(db) = error.as_db_error() else {
        return false;
    };
    if db.code().code() != "42501" {
        return false;
    }
    let message = db.message();
    let attribute = [
        "must be superuser to create bypassrls users",
        "must be superuser to create replication users",
        "must be superuser to change bypassrls attribute",
        "must be superuser to alter replication roles or change replication attribute",
    ]
    .contains(&message);
    let extension = message
        .strip_prefix("permission denied to create extension \"")
        .and_then(|rest| rest.strip_suffix('"'))
        .is_some_and(|name| PRIVILEGED_EXTENSIONS.contains(&name));
    attribute || extension
}

async fn again_postgres(client: &Client) {
    // In an aborted transaction this fails; the rollback that follows restores the
    // authorization set before the transaction began.
    let _ = client
        .batch_execute("set session authorization postgres")
        .await;
}

async fn as_superuser(client: &Client, statement: &str, after: &[String]) -> Result<(), Refusal> {
    client
        .batch_execute("reset session authorization")
        .await
        .map_err(Refusal::Server)?;
    let mut result = client.batch_execute(statement).await;
    if result.is_ok() {
        for sql in after {
            result = client.batch_execute(sql).await;
            if result.is_err() {
                break;
            }
        }
    }
    again_postgres(client).await;
    result.map_err(Refusal::Server)
}

async fn function_owned_by_superuser(client: &Client, function: &str) -> bool {
    client
        .query_opt(
            "select r.rolsuper from pg_catalog.pg_proc p \
             join pg_catalog.pg_roles r on r.oid = p.proowner \
             where p.oid = to_regprocedure($1 || '()')",
            &[&function],
        )
        .await
        .ok()
        .flatten()
        .is_some_and(|row| row.get::<_, bool>(0))
}

/// How one statement runs on the platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// As `postgres`, like any other: PostgreSQL decides.
    AsPostgres,
    /// As the superuser, then the statements in `after` (ownership back to postgres).
    AsSuperuser { after: Vec<String> },
    /// An event trigger: allowed when its function is not a superuser's, then owned by
    /// postgres.
    EventTrigger { name: String, function: String },
    /// Run, then `postgres` again (it would fall back to the bootstrap superuser here).
    ThenPostgresAgain,
    /// The platform refuses it with this message.
    Refused(String),
}

/// Routes a top-level statement by its leading words (pure; statements inside functions
/// and DO blocks run as postgres and PostgreSQL decides).
pub fn route(statement: &str) -> Route {
    let words = words(statement, 64);
    let w: Vec<&str> = words.iter().map(|t| t.text.as_str()).collect();
    let at = |i: usize| w.get(i).copied().unwrap_or("");
    match w.as_slice() {
        ["create", "extension", ..] => {
            let name = if at(2) == "if" { at(5) } else { at(2) };
            privileged_or_postgres(&[name])
        }
        ["alter", "extension", name, ..] | ["comment", "on", "extension", name, ..] => {
            privileged_or_postgres(&[name])
        }
        ["drop", "extension", ..] => {
            let start = if at(2) == "if" { 4 } else { 2 };
            let names: Vec<&str> = w[start.min(w.len())..]
                .iter()
                .copied()
                .take_while(|t| !matches!(*t, "cascade" | "restrict" | ";"))
                .filter(|t| *t != ",")
                .collect();
            privileged_or_postgres(&names)
        }
        ["create", "publication", name, ..] => Route::AsSuperuser {
            after: vec![format!(
                "alter publication {} owner to postgres",
                crate::sql::quote_ident(name)
            )],
        },
        ["alter", "publication", ..] => Route::AsSuperuser { after: Vec::new() },
        ["create", "event", "trigger", name, ..] => {
            let function = w
                .iter()
                .position(|t| *t == "execute")
                .map(|i| qualified(&words, i + 2))
                .unwrap_or_default();
            Route::EventTrigger {
                name: (*name).to_owned(),
                function,
            }
        }
        ["create" | "alter" | "drop", "policy", ..] | ["comment", "on", "policy", ..] => {
            // The table follows the first `on` after the policy's name (`comment on policy p
            // on t` has one before it).
            let from = if at(0) == "comment" { 4 } else { 3 };
            let table = w
                .iter()
                .skip(from)
                .position(|t| *t == "on")
                .map(|i| qualified(&words, from + i + 1));
            match table {
                Some(table) if POLICY_TABLES.contains(&table.as_str()) => {
                    Route::AsSuperuser { after: Vec::new() }
                }
                _ => Route::AsPostgres,
            }
        }
        ["create", "role" | "user" | "group", name, ..] if reserved(name).is_some() => {
            Route::Refused(reserved_message(name))
        }
        ["alter", "role" | "user" | "group", name, ..] => match reserved(name) {
            None => Route::AsPostgres,
            Some(settings) => {
                let clause = if at(3) == "in" && at(4) == "database" {
                    6
                } else {
                    3
                };
                let sets = matches!(at(clause), "set" | "reset");
                if !(sets && settings) {
                    Route::Refused(reserved_message(name))
                } else if allowed_config(&qualified(&words, clause + 1)) {
                    Route::AsSuperuser { after: Vec::new() }
                } else {
                    Route::AsPostgres
                }
            }
        },
        ["drop", "role" | "user" | "group", ..] => {
            let start = if at(2) == "if" { 4 } else { 2 };
            match w[start.min(w.len())..]
                .iter()
                .find(|t| reserved(t).is_some())
            {
                Some(name) => Route::Refused(reserved_message(name)),
                None => Route::AsPostgres,
            }
        }
        ["grant", rest @ ..] => {
            // A role grant names no object (`GRANT r TO x`), an object grant has `ON`.
            let granted: Vec<&str> = rest.iter().copied().take_while(|t| *t != "to").collect();
            if granted.contains(&"on") {
                return Route::AsPostgres;
            }
            match granted.iter().find(|t| RESERVED_MEMBERSHIPS.contains(t)) {
                Some(name) => Route::Refused(format!(
                    "\"{name}\" role memberships are reserved, only superusers can grant them"
                )),
                None => Route::AsPostgres,
            }
        }
        ["set", "session", "authorization", target, ..]
        | ["set", "session" | "local", "session", "authorization", target, ..]
        | ["set", "session_authorization", "to" | "=", target, ..]
        | ["set", "session_authorization", target, ..] => {
            if *target == PLATFORM_ROLE {
                Route::AsPostgres
            } else if *target == "default" {
                Route::ThenPostgresAgain
            } else {
                Route::Refused("permission denied to set session authorization".to_owned())
            }
        }
        ["reset", "session", "authorization", ..]
        | ["reset", "session_authorization", ..]
        | ["discard", "all", ..] => Route::ThenPostgresAgain,
        _ => Route::AsPostgres,
    }
}

fn privileged_or_postgres(names: &[&str]) -> Route {
    let all = !names.is_empty() && names.iter().all(|n| PRIVILEGED_EXTENSIONS.contains(n));
    if all {
        Route::AsSuperuser { after: Vec::new() }
    } else {
        Route::AsPostgres
    }
}

/// `Some(settings may change)` for a reserved role.
fn reserved(name: &str) -> Option<bool> {
    RESERVED_ROLES
        .iter()
        .find(|(role, _)| *role == name)
        .map(|(_, settings)| *settings)
}

fn reserved_message(name: &str) -> String {
    format!("\"{name}\" is a reserved role, only superusers can modify it")
}

fn allowed_config(name: &str) -> bool {
    ALLOWED_CONFIGS
        .iter()
        .any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => *allowed == name,
        })
}

/// `a . b` from the word at `i` on, joined (`auth.users`), unquoted.
fn qualified(words: &[Word], i: usize) -> String {
    let mut name = String::new();
    let mut j = i;
    while let Some(word) = words.get(j) {
        name.push_str(&word.text);
        if words.get(j + 1).is_some_and(|w| w.text == ".") {
            name.push('.');
            j += 2;
        } else {
            break;
        }
    }
    name
}

/// One token of a statement: a word lowercased (a quoted identifier as written), or one
/// punctuation character.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
}

/// The first `limit` tokens of `sql`, comments skipped, strings left out.
fn words(sql: &str, limit: usize) -> Vec<Word> {
    let bytes: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < limit {
        let c = bytes[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && bytes.get(i + 1) == Some(&'-') {
            while i < bytes.len() && bytes[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && bytes.get(i + 1) == Some(&'*') {
            i = crate::sql::block_comment_end(|at| bytes.get(at).copied(), i);
        } else if c == '"' || c == '\'' {
            // A quoted identifier, or a string literal (`set session authorization 'x'`):
            // its contents as one token.
            out.push(Word {
                text: quoted(&bytes, &mut i),
            });
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut text = String::new();
            while i < bytes.len()
                && (bytes[i].is_alphanumeric() || bytes[i] == '_' || bytes[i] == '$')
            {
                text.push(bytes[i].to_ascii_lowercase());
                i += 1;
            }
            out.push(Word { text });
        } else {
            out.push(Word {
                text: c.to_string(),
            });
            i += 1;
        }
    }
    out
}

/// The contents of the quoted token starting at `bytes[*i]` (its quote character, doubled
/// inside to stand for itself); `*i` ends past the closing quote.
fn quoted(bytes: &[char], i: &mut usize) -> String {
    let quote = bytes[*i];
    let mut text = String::new();
    *i += 1;
    while *i < bytes.len() {
        if bytes[*i] == quote {
            if bytes.get(*i + 1) == Some(&quote) {
                text.push(quote);
                *i += 2;
                continue;
            }
            *i += 1;
            break;
        }
        text.push(bytes[*i]);
        *i += 1;
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn superuser() -> Route {
        Route::AsSuperuser { after: Vec::new() }
    }

    #[test]
    fn privileged_extensions_run_as_the_superuser() {
        assert_eq!(route("create extension pg_net"), superuser());
        assert_eq!(
            route("-- why\nCREATE EXTENSION IF NOT EXISTS \"uuid-ossp\" WITH SCHEMA extensions;"),
            superuser()
        );
        assert_eq!(route("create extension plpython3u"), Route::AsPostgres);
        assert_eq!(route("alter extension vector update"), superuser());
        assert_eq!(
            route("drop extension if exists pg_net, http cascade"),
            superuser()
        );
        assert_eq!(
            route("drop extension pg_net, plpython3u"),
            Route::AsPostgres
        );
        assert_eq!(route("comment on extension pg_net is 'x'"), superuser());
    }

    #[test]
    fn publications_end_owned_by_postgres() {
        assert_eq!(
            route("create publication p for all tables"),
            Route::AsSuperuser {
                after: vec!["alter publication \"p\" owner to postgres".to_owned()]
            }
        );
        assert_eq!(
            route("alter publication supabase_realtime add table public.notes"),
            superuser()
        );
    }

    #[test]
    fn event_triggers_name_their_function() {
        assert_eq!(
            route(
                "create event trigger ensure_rls on ddl_command_end \
                 execute function public.rls_auto_enable()"
            ),
            Route::EventTrigger {
                name: "ensure_rls".to_owned(),
                function: "public.rls_auto_enable".to_owned()
            }
        );
    }

    #[test]
    fn policies_on_platform_tables_run_as_the_superuser() {
        assert_eq!(
            route("create policy p on realtime.messages for select using (true)"),
            superuser()
        );
        assert_eq!(
            route("drop policy if exists p on \"storage\".objects"),
            superuser()
        );
        assert_eq!(
            route("comment on policy p on auth.users is 'x'"),
            superuser()
        );
        assert_eq!(
            route("create policy p on public.notes using (true)"),
            Route::AsPostgres
        );
    }

    #[test]
    fn reserved_roles_are_refused() {
        assert!(matches!(
            route("alter role supabase_admin nologin"),
            Route::Refused(_)
        ));
        assert!(matches!(
            route("alter role anon bypassrls"),
            Route::Refused(_)
        ));
        assert!(matches!(
            route("drop role if exists app, pgbouncer"),
            Route::Refused(_)
        ));
        assert!(matches!(
            route("create role supabase_read_only_user"),
            Route::Refused(_)
        ));
        assert!(matches!(
            route("grant pg_read_server_files to app"),
            Route::Refused(m) if m.contains("memberships are reserved")
        ));
        assert_eq!(
            route("grant select on auth.users to pg_read_server_files"),
            Route::AsPostgres
        );
        assert_eq!(route("grant anon to app"), Route::AsPostgres);
        assert_eq!(route("alter role app nologin"), Route::AsPostgres);
        // Settings of the starred roles: the allowed ones through the superuser.
        assert_eq!(
            route("alter role authenticated set statement_timeout = '10s'"),
            Route::AsPostgres
        );
        assert_eq!(
            route("alter role authenticator set pgrst.db_schemas = 'api'"),
            superuser()
        );
        assert!(matches!(
            route("alter role pgbouncer set search_path = x"),
            Route::Refused(_)
        ));
    }

    #[test]
    fn session_authorization_stays_postgres() {
        assert!(matches!(
            route("set session authorization supabase_admin"),
            Route::Refused(_)
        ));
        assert_eq!(
            route("set session authorization 'postgres'"),
            Route::AsPostgres
        );
        assert_eq!(
            route("reset session authorization"),
            Route::ThenPostgresAgain
        );
        assert_eq!(
            route("set session authorization default"),
            Route::ThenPostgresAgain
        );
        assert_eq!(route("discard all"), Route::ThenPostgresAgain);
        assert_eq!(
            route("select 'set session authorization x'"),
            Route::AsPostgres
        );
    }

    #[test]
    fn control_files_become_trusted_once() {
        let text = "comment = 'x'\ndefault_version = '1.0'";
        let trusted = trusted_control(text);
        assert!(trusted.ends_with("trusted = true\n"), "{trusted}");
        assert!(trusted.starts_with(text));
        assert_eq!(trusted_control(&trusted), trusted);
        let explicit = "trusted = false\n";
        assert_eq!(trusted_control(explicit), explicit);
    }

    #[test]
    fn allowed_configs_match_prefixes() {
        assert!(allowed_config("session_replication_role"));
        assert!(allowed_config("pgrst.db_schemas"));
        assert!(!allowed_config("shared_preload_libraries"));
    }

    #[test]
    fn the_note_is_for_superuser_refusals_only() {
        let d = Session::Demoted;
        assert!(d
            .refusal_note("42501", "permission denied to set parameter \"x\"", "")
            .is_some());
        assert!(d
            .refusal_note(
                "42501",
                "permission denied to create extension \"plpython3u\"",
                "Must be superuser to create this extension."
            )
            .is_some());
        assert!(d
            .refusal_note("42501", "permission denied for table notes", "")
            .is_none());
        assert!(d
            .refusal_note("42501", "permission denied for table pg_authid", "")
            .is_some());
        assert!(d
            .refusal_note("42P01", "relation does not exist", "")
            .is_none());
        assert!(Session::Superuser
            .refusal_note("42501", "permission denied to set parameter \"x\"", "")
            .is_none());
    }
}
