//! Applying pending migrations on the rehearsal database statement by statement, inside each
//! file's transaction, and recording what each statement did: the relation locks the session
//! holds afterwards (from its own `pg_locks`), the relations rewritten (relfilenode changed),
//! created and dropped, and how long each lock is held until the file commits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::project::SqlFile;
use crate::sql;
use crate::sql::{db_error_text, quote_literal};

/// A user relation as the catalog had it at one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// `schema.name`
    pub name: String,
    /// `r` table, `p` partitioned, `i` index, `m` materialized view…
    pub kind: char,
    pub filenode: i64,
    /// For an index: the table's oid.
    pub table: i64,
}

pub type Relations = BTreeMap<i64, Relation>;

/// What one statement did.
#[derive(Debug, Clone)]
pub struct StatementTrace {
    pub file: String,
    pub line: usize,
    pub text: String,
    /// Locks first taken by this statement: (mode, relation name, relation kind), e.g.
    /// `AccessExclusiveLock` on `public.messages`.
    pub locks: Vec<(String, String, char)>,
    /// Relations whose storage was rewritten.
    pub rewritten: Vec<String>,
    /// Indexes created: (index, its table).
    pub indexes_built: Vec<(String, String)>,
    /// Relations that no longer exist: (name, kind).
    pub dropped: Vec<(String, char)>,
    pub duration: Duration,
    /// How long its locks stay held, until the file commits.
    pub held: Duration,
    /// Whether the file set a `lock_timeout` before this statement.
    pub lock_timeout_set: bool,
}

/// One pending file's outcome on the rehearsal.
#[derive(Debug, Clone)]
pub struct FileTrace {
    pub file: String,
    pub statements: Vec<StatementTrace>,
    /// The error and line when a statement failed (the file rolled back).
    pub failed: Option<(usize, String)>,
    pub duration: Duration,
}

/// The relations a statement can lock, rewrite, build or drop (`r` rows), and the relation
/// locks this session holds (`l` rows), in one round trip. `oid >= 16384` (the first object id
/// not PostgreSQL's own) lets the index skip the system catalogs.
const OBSERVE: &str = "select 'r', c.oid::int8, n.nspname || '.' || c.relname, c.relkind::text, \
     c.relfilenode::int8, coalesce(i.indrelid, 0)::int8 \
     from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
     left join pg_catalog.pg_index i on i.indexrelid = c.oid \
     where c.oid >= 16384 and c.relkind in ('r', 'p', 'i', 'm', 'I') \
     and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast') \
     union all \
     select 'l', l.relation::int8, l.mode, '', 0, 0 from pg_catalog.pg_locks l \
     where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted";

/// The relation locks this session holds, each with its relation as the catalog has it now
/// (no row: dropped by this transaction). Inside a transaction every relation a statement
/// creates, rewrites, rebuilds or drops stays locked until commit, so these rows are all that
/// can have changed: a few rows instead of the whole catalog per statement.
const OBSERVE_LOCKED: &str = "select l.relation::int8, l.mode, n.nspname::text, c.relname::text, \
     c.relkind::text, c.relfilenode::int8, coalesce(i.indrelid, 0)::int8 \
     from pg_catalog.pg_locks l \
     left join pg_catalog.pg_class c on c.oid = l.relation \
     left join pg_catalog.pg_namespace n on n.oid = c.relnamespace \
     left join pg_catalog.pg_index i on i.indexrelid = c.oid \
     where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted \
     and l.relation >= 16384";

/// Like [`observe`] inside a transaction, from the locked relations only: `before` with what
/// changed applied, and the locks held.
async fn observe_locked(
    client: &Client,
    observation: &tokio_postgres::Statement,
    before: &Relations,
) -> Result<(Relations, BTreeSet<(i64, String)>), String> {
    let rows = client
        .query(observation, &[])
        .await
        .map_err(|e| db_error_text(&e))?;
    let mut after = before.clone();
    let mut locks = BTreeSet::new();
    for row in &rows {
        let Some(oid) = row.get::<_, Option<i64>>(0) else {
            continue;
        };
        locks.insert((oid, row.get::<_, String>(1)));
        let (schema, name, kind): (Option<String>, Option<String>, Option<String>) =
            (row.get(2), row.get(3), row.get(4));
        let (Some(schema), Some(name), Some(kind)) = (schema, name, kind) else {
            after.remove(&oid);
            continue;
        };
        let kind = kind.chars().next().unwrap_or('r');
        // The same relations the full observation reads.
        if !matches!(kind, 'r' | 'p' | 'i' | 'm' | 'I')
            || matches!(
                schema.as_str(),
                "pg_catalog" | "information_schema" | "pg_toast"
            )
        {
            continue;
        }
        after.insert(
            oid,
            Relation {
                name: format!("{schema}.{name}"),
                kind,
                filenode: row.get(5),
                table: row.get(6),
            },
        );
    }
    Ok((after, locks))
}

/// The relations there are now and the relation locks this session holds.
async fn observe(
    client: &Client,
    observation: &tokio_postgres::Statement,
) -> Result<(Relations, BTreeSet<(i64, String)>), String> {
    let rows = client
        .query(observation, &[])
        .await
        .map_err(|e| db_error_text(&e))?;
    let mut relations = Relations::new();
    let mut locks = BTreeSet::new();
    for row in &rows {
        let what: &str = row.get(0);
        let Some(oid) = row.get::<_, Option<i64>>(1) else {
            continue;
        };
        if what == "l" {
            locks.insert((oid, row.get::<_, String>(2)));
            continue;
        }
        let kind: String = row.get(3);
        relations.insert(
            oid,
            Relation {
                name: row.get(2),
                kind: kind.chars().next().unwrap_or('r'),
                filenode: row.get(4),
                table: row.get(5),
            },
        );
    }
    Ok((relations, locks))
}

/// Applies `file` with tracing (or without, `traced = false`, for the plain apply the
/// benchmark compares with). A file that cannot run in a transaction runs statement by
/// statement, each on its own. `relations` carries the catalog from one file to the next
/// (read in full once, before the first): only what a statement locks is read after it.
pub async fn apply(
    client: &Client,
    file: &SqlFile,
    statement_timeout: Duration,
    traced: bool,
    relations: &mut Option<Relations>,
) -> Result<FileTrace, String> {
    let started = Instant::now();
    // DISCARD ALL cannot share an implicit transaction with anything else.
    let timeout = format!(
        "set statement_timeout = {}",
        quote_literal(&format!("{}ms", statement_timeout.as_millis()))
    );
    for setup in ["discard all", timeout.as_str()] {
        client
            .batch_execute(setup)
            .await
            .map_err(|e| db_error_text(&e))?;
    }
    let statements = sql::split(&file.text);
    let mut trace = FileTrace {
        file: file.rel.clone(),
        statements: Vec::new(),
        failed: None,
        duration: Duration::ZERO,
    };
    let in_transaction = !file.no_transaction;
    if in_transaction {
        client
            .batch_execute("begin")
            .await
            .map_err(|e| db_error_text(&e))?;
    }
    // Prepared once per file: each observation is then a single message behind its statement.
    let observation = if traced {
        Some(
            client
                .prepare(OBSERVE)
                .await
                .map_err(|e| db_error_text(&e))?,
        )
    } else {
        None
    };
    let locked = if traced && in_transaction {
        Some(
            client
                .prepare(OBSERVE_LOCKED)
                .await
                .map_err(|e| db_error_text(&e))?,
        )
    } else {
        None
    };
    let mut before = match (&observation, relations.take()) {
        (Some(_), Some(known)) => known,
        (Some(observation), None) => observe(client, observation).await?.0,
        (None, _) => Relations::new(),
    };
    let mut held: BTreeSet<(i64, String)> = BTreeSet::new();
    let mut taken_at: Vec<Instant> = Vec::new();
    let mut lock_timeout_set = false;
    for statement in &statements {
        let text = statement.text(&file.text);
        let (line, _) = sql::line_col(&file.text, statement.start);
        let step = Instant::now();
        // The observation is sent behind the statement without waiting for it (the
        // connection pipelines them): tracing costs no extra round trip.
        let statement = async {
            let result = client.batch_execute(text).await;
            (result, step.elapsed())
        };
        let ((result, duration), observed) = match (&locked, &observation) {
            (Some(locked), _) => {
                let (ran, observed) =
                    tokio::join!(statement, observe_locked(client, locked, &before));
                (ran, Some(observed))
            }
            (None, Some(observation)) => {
                let (ran, observed) = tokio::join!(statement, observe(client, observation));
                (ran, Some(observed))
            }
            (None, None) => (statement.await, None),
        };
        if let Err(e) = result {
            if in_transaction {
                let _ = client.batch_execute("rollback").await;
            }
            trace.failed = Some((line, db_error_text(&e)));
            trace.duration = started.elapsed();
            return Ok(trace);
        }
        let Some(observed) = observed else {
            continue;
        };
        let (after, now_held) = observed?;
        // Outside a transaction every lock ended with its statement.
        let now_held = if in_transaction {
            now_held
        } else {
            BTreeSet::new()
        };
        let name_of = |oid: i64| {
            after
                .get(&oid)
                .or_else(|| before.get(&oid))
                .map(|r| (r.name.clone(), r.kind))
        };
        let locks: Vec<(String, String, char)> = now_held
            .difference(&held)
            .filter_map(|(oid, mode)| {
                let (name, kind) = name_of(*oid)?;
                Some((mode.clone(), name, kind))
            })
            .collect();
        let rewritten = after
            .iter()
            .filter(|(oid, rel)| {
                before
                    .get(oid)
                    .is_some_and(|old| old.filenode != rel.filenode && rel.filenode != 0)
            })
            .map(|(_, rel)| rel.name.clone())
            .collect();
        let indexes_built = after
            .iter()
            .filter(|(oid, rel)| rel.kind == 'i' && !before.contains_key(oid))
            .filter_map(|(_, rel)| {
                let table = before.get(&rel.table)?;
                Some((rel.name.clone(), table.name.clone()))
            })
            .collect();
        let dropped = before
            .iter()
            .filter(|(oid, _)| !after.contains_key(oid))
            .map(|(_, rel)| (rel.name.clone(), rel.kind))
            .collect();
        lock_timeout_set |= super::shape::sets_lock_timeout(text);
        trace.statements.push(StatementTrace {
            file: file.rel.clone(),
            line,
            text: sql::excerpt(text, 3),
            locks,
            rewritten,
            indexes_built,
            dropped,
            duration,
            held: Duration::ZERO,
            lock_timeout_set,
        });
        taken_at.push(step);
        held = now_held;
        before = after;
    }
    if in_transaction {
        client
            .batch_execute("commit")
            .await
            .map_err(|e| db_error_text(&e))?;
    }
    if traced {
        *relations = Some(before);
    }
    let committed = Instant::now();
    for (statement, taken) in trace.statements.iter_mut().zip(taken_at) {
        statement.held = if in_transaction {
            committed - taken
        } else {
            statement.duration
        };
    }
    trace.duration = started.elapsed();
    Ok(trace)
}
