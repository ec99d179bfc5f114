//! Applying pending migrations on the rehearsal database statement by statement, inside each
//! file's transaction, and recording what each statement did: the relation locks the session
//! holds afterwards (from its own lock table rows), the relations rewritten (relfilenode
//! changed), created and dropped, and how long each lock is held until the file commits.

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
    /// The statement's first lines, for reports.
    pub text: String,
    /// The whole statement, for reading what it does.
    pub full: String,
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

/// Every user relation and every schema's name, as two scans in one round trip (simple
/// protocol; a join's planning costs more than the reads). `oid >= 16384` (the first object id
/// not PostgreSQL's own) lets the index skip the system catalogs.
const CATALOG: &str =
    "select oid, relnamespace, relname, relkind, relfilenode from pg_catalog.pg_class \
     where oid >= 16384 and relkind in ('r', 'p', 'i', 'm', 'I'); \
     select oid, nspname from pg_catalog.pg_namespace";

/// Each index's table: what [`CATALOG`] adds where a new index must be told apart (after a
/// statement outside a transaction; before one, an index's table is never asked).
const INDEX_TABLES: &str = "; select indexrelid, indrelid, 0 from pg_catalog.pg_index \
     where indexrelid >= 16384";

/// The schemas whose relations are PostgreSQL's own.
fn system_schema(schema: &str) -> bool {
    matches!(schema, "pg_catalog" | "information_schema" | "pg_toast")
}

/// The relation locks this session holds, each with its relation as the catalog has it now
/// (no row: dropped by this transaction). Inside a transaction every relation a statement
/// creates, rewrites, rebuilds or drops stays locked until commit, so these rows are all that
/// can have changed: a few rows instead of the whole catalog per statement. Written for a
/// cheap first parse and plan (no view, no cast, no schema join: schemas are named from the
/// full read's list); it is prepared once per connection.
const OBSERVE_LOCKED: &str = "select l.relation, l.mode, c.relnamespace, c.relname, c.relkind, \
     c.relfilenode, i.indrelid from pg_catalog.pg_lock_status() l \
     left join pg_catalog.pg_class c on c.oid = l.relation \
     left join pg_catalog.pg_index i on i.indexrelid = l.relation \
     where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'relation' and l.granted \
     and l.relation >= '16384'::oid";

/// Schema names by oid.
type Schemas = BTreeMap<i64, String>;

/// Why rehearsing could not go on: a query db-ci sent failed, which says nothing about the
/// migrations (a statement of theirs that fails is a finding, not this).
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    /// The server's error, as db-ci prints it.
    #[error("{0}")]
    Server(String),
    /// A query sent for a named purpose failed.
    #[error(transparent)]
    Query(#[from] crate::sql::error::QueryFailed),
    #[error("read the catalog: {0}")]
    Catalog(tokio::task::JoinError),
}

impl RehearsalError {
    /// For `map_err`: the server's error.
    pub fn server(error: &tokio_postgres::Error) -> RehearsalError {
        RehearsalError::Server(db_error_text(error))
    }
}

/// Reads [`CATALOG`] (with [`INDEX_TABLES`] when asked): the user relations there are now,
/// and the schemas' names.
async fn read_catalog(
    client: &Client,
    index_tables: bool,
) -> Result<(Relations, Schemas), RehearsalError> {
    let text = match index_tables {
        true => format!("{CATALOG}{INDEX_TABLES}"),
        false => CATALOG.to_owned(),
    };
    let messages = client
        .simple_query(&text)
        .await
        .map_err(|e| RehearsalError::server(&e))?;
    let mut relations = Vec::new();
    let mut schemas = BTreeMap::new();
    let mut tables = BTreeMap::new();
    for message in &messages {
        let tokio_postgres::SimpleQueryMessage::Row(row) = message else {
            continue;
        };
        let number = |i: usize| row.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        // The three reads are told apart by their width.
        match row.len() {
            2 => {
                schemas.insert(number(0), row.get(1).unwrap_or_default().to_owned());
            }
            3 => {
                tables.insert(number(0), number(1));
            }
            _ => relations.push((
                number(0),
                number(1),
                row.get(2).unwrap_or_default().to_owned(),
                row.get(3).and_then(|k| k.chars().next()).unwrap_or('r'),
                number(4),
            )),
        }
    }
    let relations = relations
        .into_iter()
        .filter_map(|(oid, schema, name, kind, filenode)| {
            let schema = schemas.get(&schema).filter(|s| !system_schema(s))?;
            Some((
                oid,
                Relation {
                    name: format!("{schema}.{name}"),
                    kind,
                    filenode,
                    table: tables.get(&oid).copied().unwrap_or(0),
                },
            ))
        })
        .collect();
    Ok((relations, schemas))
}

/// Adds to `schemas` the names of schemas the rows name that it lacks (created by the file
/// just applied, committed by now).
async fn name_new_schemas(
    client: &Client,
    rows: &[tokio_postgres::Row],
    schemas: &mut Schemas,
) -> Result<(), RehearsalError> {
    let missing: Vec<u32> = rows
        .iter()
        .filter_map(|row| row.get::<_, Option<u32>>(2))
        .filter(|oid| !schemas.contains_key(&i64::from(*oid)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let found = client
        .query(
            "select oid, nspname::text from pg_catalog.pg_namespace where oid = any($1)",
            &[&missing],
        )
        .await
        .map_err(|e| RehearsalError::server(&e))?;
    for row in found {
        schemas.insert(i64::from(row.get::<_, u32>(0)), row.get(1));
    }
    Ok(())
}

/// What one statement changed, from the locks the session holds after it.
struct Change {
    locks: Vec<(String, String, char)>,
    rewritten: Vec<String>,
    indexes_built: Vec<(String, String)>,
    dropped: Vec<(String, char)>,
}

/// Folds the [`OBSERVE_LOCKED`] rows read after a statement into `current` (the relations
/// as they were before it) and `held` (the locks held before it), and says what changed.
fn fold_locked(
    rows: &[tokio_postgres::Row],
    schemas: &Schemas,
    current: &mut Relations,
    held: &mut BTreeSet<(i64, String)>,
) -> Change {
    let rows: Vec<LockedRow> = rows
        .iter()
        .map(|row| {
            let (schema, name, kind): (Option<u32>, Option<String>, Option<i8>) =
                (row.get(2), row.get(3), row.get(4));
            LockedRow {
                oid: i64::from(row.get::<_, u32>(0)),
                mode: row.get(1),
                relation: match (schema, name, kind) {
                    (Some(schema), Some(name), Some(kind)) => Some((
                        i64::from(schema),
                        name,
                        char::from(kind as u8),
                        row.get::<_, Option<u32>>(5).map_or(0, i64::from),
                        row.get::<_, Option<u32>>(6).map_or(0, i64::from),
                    )),
                    _ => None,
                },
            }
        })
        .collect();
    fold(&rows, schemas, current, held)
}

/// One row of [`OBSERVE_LOCKED`]: a lock, and its relation now as (schema oid, name, kind,
/// filenode, an index's table), `None` when this transaction dropped it.
struct LockedRow {
    oid: i64,
    mode: String,
    relation: Option<(i64, String, char, i64, i64)>,
}

/// [`fold_locked`] on parsed rows.
fn fold(
    rows: &[LockedRow],
    schemas: &Schemas,
    current: &mut Relations,
    held: &mut BTreeSet<(i64, String)>,
) -> Change {
    let mut now_held = BTreeSet::new();
    // Per locked relation: its row now (`None`: dropped), in oid order for a stable report.
    let mut locked: BTreeMap<i64, Option<Relation>> = BTreeMap::new();
    for row in rows {
        now_held.insert((row.oid, row.mode.clone()));
        let Some((schema, name, kind, filenode, table)) = &row.relation else {
            locked.insert(row.oid, None);
            continue;
        };
        let schema = schemas
            .get(schema)
            .map_or("(a dropped schema)", String::as_str);
        // The same relations the full read keeps.
        if !matches!(kind, 'r' | 'p' | 'i' | 'm' | 'I') || system_schema(schema) {
            continue;
        }
        locked.insert(
            row.oid,
            Some(Relation {
                name: format!("{schema}.{name}"),
                kind: *kind,
                filenode: *filenode,
                table: *table,
            }),
        );
    }
    let name_of = |oid: i64| {
        locked
            .get(&oid)
            .and_then(Option::as_ref)
            .or_else(|| current.get(&oid))
            .map(|r| (r.name.clone(), r.kind))
    };
    let locks = now_held
        .difference(held)
        .filter_map(|(oid, mode)| {
            let (name, kind) = name_of(*oid)?;
            Some((mode.clone(), name, kind))
        })
        .collect();
    let mut change = Change {
        locks,
        rewritten: Vec::new(),
        indexes_built: Vec::new(),
        dropped: Vec::new(),
    };
    for (oid, now) in &locked {
        match (current.get(oid), now) {
            (Some(old), Some(now)) if old.filenode != now.filenode && now.filenode != 0 => {
                change.rewritten.push(now.name.clone())
            }
            (None, Some(now)) if now.kind == 'i' => {
                if let Some(table) = current.get(&now.table) {
                    change
                        .indexes_built
                        .push((now.name.clone(), table.name.clone()));
                }
            }
            (Some(old), None) => change.dropped.push((old.name.clone(), old.kind)),
            _ => {}
        }
    }
    for (oid, now) in locked {
        match now {
            Some(now) => current.insert(oid, now),
            None => current.remove(&oid),
        };
    }
    *held = now_held;
    change
}

/// What a full read before and after a statement says changed (outside a transaction, where
/// locks end with their statement and say nothing).
fn diff_catalog(before: &Relations, after: &Relations) -> Change {
    Change {
        locks: Vec::new(),
        rewritten: after
            .iter()
            .filter(|(oid, rel)| {
                before
                    .get(oid)
                    .is_some_and(|old| old.filenode != rel.filenode && rel.filenode != 0)
            })
            .map(|(_, rel)| rel.name.clone())
            .collect(),
        indexes_built: after
            .iter()
            .filter(|(oid, rel)| rel.kind == 'i' && !before.contains_key(oid))
            .filter_map(|(_, rel)| Some((rel.name.clone(), before.get(&rel.table)?.name.clone())))
            .collect(),
        dropped: before
            .iter()
            .filter(|(oid, _)| !after.contains_key(oid))
            .map(|(_, rel)| (rel.name.clone(), rel.kind))
            .collect(),
    }
}

/// One reply in a file's pipeline, with when it arrived.
enum Reply {
    Done(Result<(), tokio_postgres::Error>),
    Rows(Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>),
}

type Pending<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Reply, Instant)> + Send + 'a>>;

fn execute<'a>(client: &'a Client, text: &'a str) -> Pending<'a> {
    Box::pin(async move {
        (
            Reply::Done(client.batch_execute(text).await),
            Instant::now(),
        )
    })
}

fn query<'a>(client: &'a Client, statement: &'a tokio_postgres::Statement) -> Pending<'a> {
    Box::pin(async move {
        (
            Reply::Rows(client.query(statement, &[]).await),
            Instant::now(),
        )
    })
}

/// What tracing carries from one file to the next on one connection: the catalog as the last
/// file left it, the prepared lock observation (with its plan), the observer connection.
#[derive(Default)]
pub struct Carried {
    relations: Option<Relations>,
    schemas: Schemas,
    observation: Option<tokio_postgres::Statement>,
    /// The first full read, under way on the observer connection.
    reading: Option<tokio::task::JoinHandle<Result<(Relations, Schemas), RehearsalError>>>,
}

impl Carried {
    /// Tracing whose first full read of the catalog starts now on `observer`, a second
    /// connection to the same database, instead of before the first file on the traced one:
    /// the database must not change until the first file is applied (the gate starts it when
    /// the rehearsal is built, and it runs beside the comparison with production).
    pub fn observed_by(observer: Client) -> Carried {
        Carried {
            relations: None,
            schemas: Schemas::new(),
            observation: None,
            reading: Some(tokio::spawn(
                async move { read_catalog(&observer, false).await },
            )),
        }
    }
}

impl Drop for Carried {
    fn drop(&mut self) {
        if let Some(reading) = self.reading.take() {
            reading.abort();
        }
    }
}

/// Applies `file` with tracing (or without, `traced = false`, for the plain apply the
/// benchmark compares with). `carried` holds the catalog from one file to the next: it is
/// read in full once, before the first file; inside a transaction only what a statement
/// locks is read after it.
///
/// A file in a transaction goes to the server as one pipeline (BEGIN, each statement with
/// its observation behind it, COMMIT), as the Supabase CLI sends a migration: the server never
/// waits for db-ci between statements. The first statement that fails is the file's failure;
/// the server refuses what follows it (the transaction is aborted) and COMMIT rolls back. A
/// statement's duration is the time between its reply and the one before it. A file that
/// cannot run in a transaction runs statement by statement, each on its own, with a full
/// read after each.
pub async fn apply(
    client: &Client,
    file: &SqlFile,
    statement_timeout: Duration,
    traced: bool,
    carried: &mut Carried,
) -> Result<FileTrace, RehearsalError> {
    let started = Instant::now();
    let statements = sql::split(&file.text);
    let in_transaction = !file.no_transaction;
    // Prepared statements are kept: the observation prepared for the first file is not
    // prepared and planned again for every file.
    let setup = format!(
        "{}; set statement_timeout = {}",
        sql::RESET_SESSION,
        quote_literal(&format!("{}ms", statement_timeout.as_millis()))
    );
    let known = match (carried.relations.take(), carried.reading.take()) {
        (Some(known), _) => Some(known),
        (None, Some(reading)) => {
            let (relations, schemas) = reading.await.map_err(RehearsalError::Catalog)??;
            carried.schemas = schemas;
            Some(relations)
        }
        (None, None) => None,
    };
    let prepared = carried.observation.clone();
    let read_here = traced && known.is_none();
    let (reset, begun, locked, catalog) = tokio::join!(
        client.batch_execute(&setup),
        async {
            match in_transaction {
                true => client.batch_execute("begin").await,
                false => Ok(()),
            }
        },
        async {
            match (traced && in_transaction, prepared) {
                (true, Some(prepared)) => Ok(Some(prepared)),
                (true, None) => client.prepare(OBSERVE_LOCKED).await.map(Some),
                (false, _) => Ok(None),
            }
        },
        async {
            match read_here {
                true => read_catalog(client, false).await.map(Some),
                false => Ok(None),
            }
        },
    );
    for result in [reset, begun] {
        result.map_err(|e| RehearsalError::server(&e))?;
    }
    let locked = locked.map_err(|e| RehearsalError::server(&e))?;
    if locked.is_some() {
        carried.observation = locked.clone();
    }
    let mut current = match catalog? {
        Some((relations, schemas)) => {
            carried.schemas = schemas;
            relations
        }
        None => known.unwrap_or_default(),
    };
    let mut trace = FileTrace {
        file: file.rel.clone(),
        statements: Vec::new(),
        failed: None,
        duration: Duration::ZERO,
    };
    let mut lock_timeout_set = false;
    let mut record = |trace: &mut FileTrace, at: usize, change: Change, duration: Duration| {
        let text = statements[at].text(&file.text);
        lock_timeout_set |= super::shape::sets_lock_timeout(text);
        trace.statements.push(StatementTrace {
            file: file.rel.clone(),
            line: sql::line_col(&file.text, statements[at].start).0,
            text: sql::excerpt(text, 3),
            full: text.to_owned(),
            locks: change.locks,
            rewritten: change.rewritten,
            indexes_built: change.indexes_built,
            dropped: change.dropped,
            duration,
            held: duration,
            lock_timeout_set,
        });
    };

    if !in_transaction {
        for (at, statement) in statements.iter().enumerate() {
            let step = Instant::now();
            if let Err(e) = client.batch_execute(statement.text(&file.text)).await {
                let line = sql::line_col(&file.text, statement.start).0;
                trace.failed = Some((line, db_error_text(&e)));
                break;
            }
            let duration = step.elapsed();
            if traced {
                let (after, schemas) = read_catalog(client, true).await?;
                record(&mut trace, at, diff_catalog(&current, &after), duration);
                current = after;
                carried.schemas = schemas;
            }
        }
        if traced {
            carried.relations = Some(current);
        }
        trace.duration = started.elapsed();
        return Ok(trace);
    }

    // A setting takes no lock and changes no relation: nothing to observe behind it.
    let observed: Vec<bool> = statements
        .iter()
        .map(|s| locked.is_some() && !takes_no_lock(s.text(&file.text)))
        .collect();
    let mut pipeline: Vec<Pending> = Vec::new();
    for (statement, observed) in statements.iter().zip(&observed) {
        pipeline.push(execute(client, statement.text(&file.text)));
        if let (Some(locked), true) = (&locked, observed) {
            pipeline.push(query(client, locked));
        }
    }
    pipeline.push(execute(client, "commit"));
    let sent = Instant::now();
    let replies = futures_util::future::join_all(pipeline).await;
    let (commit, committed) = replies.last().expect("the pipeline ends with COMMIT");
    let mut held = BTreeSet::new();
    let mut previous = sent;
    let mut taken_at = Vec::new();
    let mut next = 0;
    for (at, observed) in observed.iter().enumerate() {
        let (Reply::Done(ran), done) = &replies[next] else {
            unreachable!("a statement's reply")
        };
        let observation = observed.then(|| &replies[next + 1]);
        next += 1 + usize::from(*observed);
        let step = previous;
        previous = observation.map_or(*done, |(_, at)| *at);
        if let Err(e) = ran {
            let line = sql::line_col(&file.text, statements[at].start).0;
            trace.failed = Some((line, db_error_text(e)));
            break;
        }
        if locked.is_none() {
            continue;
        }
        let change = match observation {
            Some((Reply::Rows(rows), _)) => {
                let rows = rows.as_ref().map_err(RehearsalError::server)?;
                name_new_schemas(client, rows, &mut carried.schemas).await?;
                fold_locked(rows, &carried.schemas, &mut current, &mut held)
            }
            _ => Change {
                locks: Vec::new(),
                rewritten: Vec::new(),
                indexes_built: Vec::new(),
                dropped: Vec::new(),
            },
        };
        record(&mut trace, at, change, done.saturating_duration_since(step));
        taken_at.push(step);
    }
    if let (None, Reply::Done(Err(e))) = (&trace.failed, commit) {
        // A deferred constraint or trigger raised at the end of the file.
        let line = statements
            .last()
            .map_or(1, |last| sql::line_col(&file.text, last.start).0);
        trace.failed = Some((line, format!("{} (raised at COMMIT)", db_error_text(e))));
    }
    if trace.failed.is_some() {
        // The file rolled back: what its statements did is undone, and the catalog
        // carried to the next file is read again.
        trace.statements.clear();
    } else if traced {
        carried.relations = Some(current);
    }
    for (statement, taken) in trace.statements.iter_mut().zip(taken_at) {
        statement.held = committed.saturating_duration_since(taken);
    }
    trace.duration = started.elapsed();
    Ok(trace)
}

/// Whether `statement` is a `SET`, `RESET` or `SHOW`: it takes no lock and changes no
/// relation.
fn takes_no_lock(statement: &str) -> bool {
    let code = crate::sql::without_comments(statement);
    let word = code
        .split(|c: char| !c.is_ascii_alphabetic())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    ["set", "reset", "show"]
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w))
        // `SET CONSTRAINTS … IMMEDIATE` checks deferred constraints now: it may fail.
        && !code.to_ascii_lowercase().contains("constraints")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: i64 = 2200;

    fn schemas() -> Schemas {
        Schemas::from([(PUBLIC, "public".to_owned()), (99, "pg_toast".to_owned())])
    }

    fn relation(name: &str, kind: char, filenode: i64, table: i64) -> Relation {
        Relation {
            name: format!("public.{name}"),
            kind,
            filenode,
            table,
        }
    }

    fn row(oid: i64, mode: &str, relation: Option<(&str, char, i64, i64)>) -> LockedRow {
        LockedRow {
            oid,
            mode: mode.to_owned(),
            relation: relation.map(|(name, kind, filenode, table)| {
                (PUBLIC, name.to_owned(), kind, filenode, table)
            }),
        }
    }

    /// `messages` (oid 20000) with its primary key (20001), as the full read had them.
    fn before() -> Relations {
        Relations::from([
            (20000, relation("messages", 'r', 20000, 0)),
            (20001, relation("messages_pkey", 'i', 20001, 20000)),
        ])
    }

    #[test]
    fn a_rewrite_is_a_new_filenode_under_a_new_lock() {
        let (mut current, mut held) = (before(), BTreeSet::new());
        let rows = [
            row(
                20000,
                "AccessExclusiveLock",
                Some(("messages", 'r', 30000, 0)),
            ),
            row(
                20001,
                "AccessExclusiveLock",
                Some(("messages_pkey", 'i', 30001, 20000)),
            ),
        ];
        let change = fold(&rows, &schemas(), &mut current, &mut held);
        assert_eq!(
            change.rewritten,
            ["public.messages", "public.messages_pkey"]
        );
        assert_eq!(
            change.locks[0],
            (
                "AccessExclusiveLock".to_owned(),
                "public.messages".to_owned(),
                'r'
            )
        );
        assert!(change.dropped.is_empty() && change.indexes_built.is_empty());
        assert_eq!(current[&20000].filenode, 30000);

        // The next statement holds the same locks and changes nothing: no new finding.
        let again = fold(&rows, &schemas(), &mut current, &mut held);
        assert!(again.locks.is_empty() && again.rewritten.is_empty());
    }

    #[test]
    fn an_index_on_an_existing_table_is_a_build_and_a_dropped_one_is_named_from_before() {
        let (mut current, mut held) = (before(), BTreeSet::new());
        let built = fold(
            &[
                row(20000, "ShareLock", Some(("messages", 'r', 20000, 0))),
                row(
                    40000,
                    "AccessExclusiveLock",
                    Some(("messages_room_idx", 'i', 40000, 20000)),
                ),
            ],
            &schemas(),
            &mut current,
            &mut held,
        );
        assert_eq!(
            built.indexes_built,
            [(
                "public.messages_room_idx".to_owned(),
                "public.messages".to_owned()
            )]
        );
        assert!(
            built.rewritten.is_empty(),
            "a new relation is not a rewrite"
        );

        let dropped = fold(
            &[
                row(20000, "AccessExclusiveLock", None),
                row(20001, "AccessExclusiveLock", None),
            ],
            &schemas(),
            &mut current,
            &mut held,
        );
        assert_eq!(
            dropped.dropped,
            [
                ("public.messages".to_owned(), 'r'),
                ("public.messages_pkey".to_owned(), 'i')
            ]
        );
        assert!(!current.contains_key(&20000));
        // The lock on the dropped table is still named.
        assert!(dropped
            .locks
            .iter()
            .any(|(mode, name, _)| mode == "AccessExclusiveLock" && name == "public.messages"));
    }

    #[test]
    fn locks_on_relations_the_trace_does_not_follow_are_left_out() {
        let (mut current, mut held) = (before(), BTreeSet::new());
        let toast = LockedRow {
            oid: 20002,
            mode: "AccessExclusiveLock".to_owned(),
            relation: Some((99, "pg_toast_20000".to_owned(), 't', 20002, 0)),
        };
        let sequence = row(
            20003,
            "RowExclusiveLock",
            Some(("messages_id_seq", 'S', 20003, 0)),
        );
        let change = fold(&[toast, sequence], &schemas(), &mut current, &mut held);
        assert!(change.locks.is_empty() && change.rewritten.is_empty());
    }

    #[test]
    fn outside_a_transaction_two_full_reads_are_compared() {
        let mut after = before();
        after.get_mut(&20000).unwrap().filenode = 30000;
        after.remove(&20001);
        after.insert(40000, relation("messages_room_idx", 'i', 40000, 20000));
        let change = diff_catalog(&before(), &after);
        assert_eq!(change.rewritten, ["public.messages"]);
        assert_eq!(change.dropped, [("public.messages_pkey".to_owned(), 'i')]);
        assert_eq!(
            change.indexes_built,
            [(
                "public.messages_room_idx".to_owned(),
                "public.messages".to_owned()
            )]
        );
    }

    #[test]
    fn settings_are_not_observed() {
        assert!(takes_no_lock(
            "-- keep waits short\nset lock_timeout = '5s'"
        ));
        assert!(takes_no_lock("RESET statement_timeout"));
        assert!(!takes_no_lock("set constraints all immediate"));
        assert!(!takes_no_lock("select set_config('x.y', '1', true)"));
        assert!(!takes_no_lock("alter table settings add column x int"));
    }
}
