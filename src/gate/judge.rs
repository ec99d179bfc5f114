//! Turning the rehearsal's trace and production's sizes into findings: which statement takes
//! which lock on which of production's tables for how much work, whether that blocks the
//! release, and the safe rewrite. Pure logic.

use std::collections::BTreeMap;

use super::shape::{self, ConstraintKind, Operation};
use super::trace::StatementTrace;

/// A relation's size in production, from its statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Rows: counted when the gate copied the table, else [`estimate_rows`]; negative when
    /// unknown.
    pub rows: f64,
    pub bytes: i64,
}

/// The rows a table holds now, from its statistics scaled to its size now, as the planner
/// does: `reltuples` rows in `relpages` pages then, `bytes` now. Negative (unknown, its
/// bytes decide) when it was never analysed, or was analysed empty and holds pages now.
pub fn estimate_rows(reltuples: f64, relpages: i64, bytes: i64, block_size: i64) -> f64 {
    let pages = bytes / block_size.max(1);
    if reltuples < 0.0 {
        -1.0
    } else if pages == 0 {
        0.0
    } else if relpages > 0 && reltuples > 0.0 {
        (reltuples / relpages as f64 * pages as f64).round()
    } else {
        -1.0
    }
}

/// Production's relation sizes by `schema.name`.
pub type Sizes = BTreeMap<String, Size>;

/// A table is large enough for a blocking lock to hurt from this many rows (or, when never
/// analysed, this many bytes).
pub const LARGE_ROWS: f64 = 10_000.0;
pub const LARGE_BYTES: i64 = 8 * 1024 * 1024;

impl Size {
    pub fn is_large(&self) -> bool {
        self.rows >= LARGE_ROWS || (self.rows < 0.0 && self.bytes >= LARGE_BYTES)
    }

    pub fn holds_rows(&self) -> bool {
        self.rows > 0.0 || (self.rows < 0.0 && self.bytes > 0)
    }

    /// `41 M rows, 12 GB`
    pub fn describe(&self) -> String {
        let rows = if self.rows < 0.0 {
            "rows unknown (no statistics for its size)".to_owned()
        } else {
            format!("{} rows", human_count(self.rows))
        };
        format!("{rows}, {}", human_bytes(self.bytes))
    }
}

pub fn human_count(n: f64) -> String {
    let n = n.max(0.0);
    if n >= 1e9 {
        format!("{:.1} G", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.0} k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

pub fn human_bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    let k = 1024.0;
    if n >= k * k * k {
        format!("{:.1} GB", n / (k * k * k))
    } else if n >= k * k {
        format!("{:.0} MB", n / (k * k))
    } else if n >= k {
        format!("{:.0} kB", n / k)
    } else {
        format!("{n:.0} B")
    }
}

/// What kind of finding, for reports and `gate.allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    Ledger,
    Drift,
    RehearsalFailed,
    Rewrite,
    Scan,
    IndexBuild,
    LockWithoutTimeout,
    DataViolation,
    NotChecked,
    Destructive,
    OpensToAnon,
    FunctionBody,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Ledger => "ledger",
            FindingKind::Drift => "drift",
            FindingKind::RehearsalFailed => "rehearsal-failed",
            FindingKind::Rewrite => "rewrite",
            FindingKind::Scan => "scan",
            FindingKind::IndexBuild => "index-build",
            FindingKind::LockWithoutTimeout => "lock-without-timeout",
            FindingKind::DataViolation => "data-violation",
            FindingKind::NotChecked => "not-checked",
            FindingKind::Destructive => "destructive",
            FindingKind::OpensToAnon => "opens-to-anon",
            FindingKind::FunctionBody => "function-body",
        }
    }
}

/// One reason (not) to ship, pointing at the statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    /// Whether it blocks the release (before `gate.allow`).
    pub blocks: bool,
    pub file: String,
    pub line: usize,
    /// The production relation it is about, when there is one.
    pub relation: Option<String>,
    pub message: String,
    /// The safe rewrite, or what to do.
    pub advice: Vec<String>,
    pub statement: Option<String>,
    /// Set when a `gate.allow` entry accepted it: the entry's reason.
    pub allowed: Option<String>,
}

fn lock_name(mode: &str) -> String {
    // AccessExclusiveLock → ACCESS EXCLUSIVE
    let bare = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut out = String::new();
    for (i, c) in bare.char_indices() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What a lock mode blocks, in words.
fn blocks_what(mode: &str) -> &'static str {
    match mode {
        "AccessExclusiveLock" => "every read and write waits",
        "ExclusiveLock" | "ShareRowExclusiveLock" | "ShareLock" => {
            "every write (INSERT, UPDATE, DELETE) waits"
        }
        _ => "schema changes wait",
    }
}

fn strongest<'a>(statement: &'a StatementTrace, relation: &str) -> Option<&'a str> {
    const ORDER: &[&str] = &[
        "AccessExclusiveLock",
        "ExclusiveLock",
        "ShareRowExclusiveLock",
        "ShareLock",
        "ShareUpdateExclusiveLock",
    ];
    ORDER.iter().copied().find(|mode| {
        statement
            .locks
            .iter()
            .any(|(m, name, _)| m == mode && name == relation)
    })
}

/// The findings for one traced statement, weighted with production's sizes.
pub fn judge_statement(statement: &StatementTrace, sizes: &Sizes) -> Vec<Finding> {
    let mut findings = Vec::new();
    let ops = shape::operations_within(&statement.full);
    let finding = |kind, blocks, relation: &str, message: String, advice: Vec<String>| Finding {
        kind,
        blocks,
        file: statement.file.clone(),
        line: statement.line,
        relation: Some(relation.to_owned()),
        message,
        advice,
        statement: Some(statement.text.clone()),
        allowed: None,
    };
    let held = format!(
        "{:.0} ms on the rehearsal",
        statement.held.as_secs_f64() * 1000.0
    );
    // Rewrites of production tables (indexes rewritten with them are part of the same work).
    for relation in &statement.rewritten {
        let Some(size) = sizes.get(relation) else {
            continue;
        };
        // A TRUNCATE's new storage is empty: data loss (found apart), not a rewrite.
        if statement
            .indexes_built
            .iter()
            .any(|(index, _)| index == relation)
            || ops
                .iter()
                .any(|op| matches!(op, Operation::Truncate { .. }))
        {
            continue;
        }
        let mode = strongest(statement, relation).unwrap_or("AccessExclusiveLock");
        let mut advice = Vec::new();
        for op in &ops {
            match op {
                Operation::AlterType { column, .. } => advice.push(format!(
                    "add a new column, backfill it in batches, then swap names, instead of \
                     changing the type of {column} in place"
                )),
                Operation::AddColumn {
                    volatile_default: true,
                    column,
                    ..
                } => advice.push(format!(
                    "add {column} without the volatile default (or with a constant one), then \
                     backfill in batches and set the default afterwards"
                )),
                _ => {}
            }
        }
        if advice.is_empty() {
            advice.push("find a form of the change that does not rewrite the table".to_owned());
        }
        findings.push(finding(
            FindingKind::Rewrite,
            size.is_large(),
            relation,
            format!(
                "{} on {relation} ({}) for a full rewrite: {} until this migration commits \
                 (held {held})",
                lock_name(mode),
                size.describe(),
                blocks_what(mode)
            ),
            advice,
        ));
    }
    // Index builds on production tables.
    for (index, table) in &statement.indexes_built {
        let Some(size) = sizes.get(table) else {
            continue;
        };
        // Outside a transaction (CONCURRENTLY) the lock is gone when the statement returns:
        // the statement's own words say which it took.
        let concurrently = ops.iter().any(|op| {
            matches!(
                op,
                Operation::CreateIndex {
                    concurrently: true,
                    ..
                }
            )
        });
        let mode = strongest(statement, table).unwrap_or(if concurrently {
            "ShareUpdateExclusiveLock"
        } else {
            "ShareLock"
        });
        if mode == "ShareUpdateExclusiveLock" {
            continue;
        }
        findings.push(finding(
            FindingKind::IndexBuild,
            size.is_large(),
            table,
            format!(
                "{} on {table} ({}) while index {index} is built by scanning it: {} until this \
                 migration commits (held {held})",
                lock_name(mode),
                size.describe(),
                blocks_what(mode)
            ),
            vec![
                "use CREATE INDEX CONCURRENTLY in a migration file of its own, outside a \
                 transaction (db-ci.yaml `replay.no_transaction`)"
                    .to_owned(),
            ],
        ));
    }
    // Constraint validations and NOT NULL checks that scan a production table under a lock.
    for op in &ops {
        let (table, what, advice) = match op {
            Operation::AddConstraint {
                table,
                kind,
                not_valid: false,
            } => match kind {
                ConstraintKind::Check(_) | ConstraintKind::ForeignKey { .. } => (
                    table,
                    format!("validating the new {} constraint scans it", kind.describe()),
                    vec![format!(
                        "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later \
                         statement (it takes only SHARE UPDATE EXCLUSIVE){}",
                        if matches!(kind, ConstraintKind::ForeignKey { .. }) {
                            "; the referenced table is locked too"
                        } else {
                            ""
                        }
                    )],
                ),
                ConstraintKind::Unique(_) | ConstraintKind::PrimaryKey(_) => (
                    table,
                    format!(
                        "the new {} constraint builds its index by scanning it",
                        kind.describe()
                    ),
                    vec![
                        "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … USING \
                         INDEX"
                            .to_owned(),
                    ],
                ),
            },
            Operation::SetNotNull { table, column } => (
                table,
                format!("SET NOT NULL on {column} scans it"),
                vec![format!(
                    "add CHECK ({column} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL \
                     (PostgreSQL 12+ skips the scan) and drop the check"
                )],
            ),
            _ => continue,
        };
        let Some(size) = sizes.get(table) else {
            continue;
        };
        if findings
            .iter()
            .any(|f| f.relation.as_deref() == Some(table.as_str()))
        {
            continue;
        }
        let mode = strongest(statement, table).unwrap_or("AccessExclusiveLock");
        findings.push(finding(
            FindingKind::Scan,
            size.is_large(),
            table,
            format!(
                "{} on {table} ({}) while {what}: {} until this migration commits (held {held})",
                lock_name(mode),
                size.describe(),
                blocks_what(mode)
            ),
            advice,
        ));
    }
    // A brief ACCESS EXCLUSIVE still queues behind every running query, and everything
    // queues behind it: without lock_timeout it can stall production.
    if findings.is_empty() && !statement.lock_timeout_set {
        if let Some((_, relation, _)) = statement.locks.iter().find(|(mode, name, kind)| {
            mode == "AccessExclusiveLock"
                && matches!(kind, 'r' | 'p')
                && sizes.get(name).is_some_and(Size::is_large)
        }) {
            let size = sizes[relation];
            findings.push(finding(
                FindingKind::LockWithoutTimeout,
                false,
                relation,
                format!(
                    "ACCESS EXCLUSIVE on {relation} ({}), brief, but without lock_timeout it \
                     waits behind running queries while every new query waits behind it",
                    size.describe()
                ),
                vec!["SET lock_timeout = '5s' at the top of the migration (and retry)".to_owned()],
            ));
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn statement(text: &str, locks: &[(&str, &str)]) -> StatementTrace {
        StatementTrace {
            file: "migrations/0002_x.sql".into(),
            line: 3,
            text: text.into(),
            full: text.into(),
            locks: locks
                .iter()
                .map(|(m, r)| (m.to_string(), r.to_string(), 'r'))
                .collect(),
            rewritten: Vec::new(),
            indexes_built: Vec::new(),
            dropped: Vec::new(),
            duration: Duration::from_millis(5),
            held: Duration::from_millis(5),
            lock_timeout_set: false,
        }
    }

    fn sizes(rows: f64) -> Sizes {
        [(
            "public.messages".to_owned(),
            Size {
                rows,
                bytes: 12 * 1024 * 1024 * 1024,
            },
        )]
        .into()
    }

    #[test]
    fn a_rewrite_of_a_big_table_blocks_with_its_size() {
        let mut s = statement(
            "alter table messages alter column id type bigint",
            &[("AccessExclusiveLock", "public.messages")],
        );
        s.rewritten = vec!["public.messages".into()];
        let findings = judge_statement(&s, &sizes(41e6));
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert!(f.blocks);
        assert_eq!(f.kind, FindingKind::Rewrite);
        assert!(
            f.message.starts_with(
                "ACCESS EXCLUSIVE on public.messages (41.0 M rows, 12.0 GB) for a full rewrite: \
                 every read and write waits"
            ),
            "{}",
            f.message
        );
        assert!(f.advice[0].contains("new column"));
        // The same on a small table is reported, not blocking.
        assert!(!judge_statement(&s, &sizes(10.0))[0].blocks);
        // A table production does not have (created by this release) is nobody's problem.
        assert!(judge_statement(&s, &Sizes::new()).is_empty());
    }

    #[test]
    fn index_build_without_concurrently_blocks_and_concurrently_passes() {
        let mut s = statement(
            "create index m_idx on messages (room_id)",
            &[("ShareLock", "public.messages")],
        );
        s.indexes_built = vec![("public.m_idx".into(), "public.messages".into())];
        let f = judge_statement(&s, &sizes(2e6));
        assert_eq!(f[0].kind, FindingKind::IndexBuild);
        assert!(f[0].blocks && f[0].advice[0].contains("CONCURRENTLY"));
        let mut c = s.clone();
        c.full = "create index concurrently m_idx on messages (room_id)".into();
        c.locks = vec![(
            "ShareUpdateExclusiveLock".into(),
            "public.messages".into(),
            'r',
        )];
        assert!(judge_statement(&c, &sizes(2e6)).is_empty());
    }

    #[test]
    fn validation_scan_blocks_and_not_valid_passes() {
        let s = statement(
            "alter table messages add constraint c check (length(body) < 500)",
            &[("AccessExclusiveLock", "public.messages")],
        );
        let f = judge_statement(&s, &sizes(2e6));
        assert_eq!(f[0].kind, FindingKind::Scan);
        assert!(f[0].blocks && f[0].advice[0].contains("NOT VALID"));
        let mut safe = s.clone();
        safe.full =
            "alter table messages add constraint c check (length(body) < 500) not valid".into();
        safe.lock_timeout_set = true;
        assert!(judge_statement(&safe, &sizes(2e6)).is_empty());
        // Without lock_timeout, the brief lock is a warning, not a block.
        safe.lock_timeout_set = false;
        let f = judge_statement(&safe, &sizes(2e6));
        assert_eq!(f[0].kind, FindingKind::LockWithoutTimeout);
        assert!(!f[0].blocks);
    }

    #[test]
    fn stale_statistics_are_scaled_to_the_size_now() {
        // Analysed at 100 rows in one page; 13 MB now.
        let rows = estimate_rows(100.0, 1, 13 * 1024 * 1024, 8192);
        assert_eq!(rows, 166_400.0);
        assert!(Size {
            rows,
            bytes: 13 * 1024 * 1024
        }
        .is_large());
        assert_eq!(estimate_rows(-1.0, 0, 8192, 8192), -1.0, "never analysed");
        assert_eq!(
            estimate_rows(0.0, 0, 81920, 8192),
            -1.0,
            "analysed empty, grew since"
        );
        assert_eq!(estimate_rows(0.0, 0, 0, 8192), 0.0, "empty");
        assert_eq!(estimate_rows(50.0, 2, 16384, 8192), 50.0, "fresh");
    }

    #[test]
    fn set_not_null_inside_a_do_block_is_a_scan_under_lock() {
        let s = statement(
            "do $$ begin\n  alter table public.messages alter column note set not null;\nend $$",
            &[("AccessExclusiveLock", "public.messages")],
        );
        let f = judge_statement(&s, &sizes(2e6));
        assert_eq!(f[0].kind, FindingKind::Scan);
        assert!(f[0].blocks && f[0].message.contains("SET NOT NULL on note scans it"));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_count(41_200_000.0), "41.2 M");
        assert_eq!(human_bytes(12 * 1024 * 1024 * 1024), "12.0 GB");
        assert_eq!(lock_name("ShareRowExclusiveLock"), "SHARE ROW EXCLUSIVE");
    }
}
