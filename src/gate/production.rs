//! What the gate reads of production, once and read-only: its server version, its migration
//! ledger, its relations' sizes and its catalog; and the repository's migrations to match
//! against the ledger.

use crate::error::{Error, Result};
use crate::live::ReadOnly;
use crate::project::{FileKind, Project};
use crate::snapshot::model::Catalog;

use super::judge::{self, Size, Sizes};
use super::ledger;

/// What production holds, read once, read-only.
pub(super) struct Production {
    pub(super) version: String,
    pub(super) major: u32,
    pub(super) ledger: Vec<ledger::AppliedRow>,
    pub(super) has_ledger: bool,
    pub(super) sizes: Sizes,
    pub(super) catalog: Catalog,
}

pub(super) fn repo_migrations(project: &Project) -> Vec<ledger::RepoMigration> {
    project
        .migrations
        .iter()
        .filter(|f| f.kind == FileKind::Migration)
        .filter_map(|f| {
            Some(ledger::RepoMigration {
                version: f.version.clone()?,
                file: f.rel.clone(),
                text: f.text.clone(),
            })
        })
        .collect()
}

pub(super) async fn read_production(session: &ReadOnly) -> Result<Production> {
    let fail = |what: &str, e: String| {
        Error::environment(format!("read {what} from {}: {e}", session.shown))
    };
    let client = session.client();
    let row = client
        .query_one(
            "select current_setting('server_version'), current_setting('server_version_num')::int",
            &[],
        )
        .await
        .map_err(|e| fail("the server version", crate::sql::db_error_text(&e)))?;
    let version: String = row.get(0);
    let major = (row.get::<_, i32>(1) / 10000) as u32;
    let has_ledger: bool = client
        .query_one(
            "select to_regclass('supabase_migrations.schema_migrations') is not null",
            &[],
        )
        .await
        .map_err(|e| fail("the ledger", crate::sql::db_error_text(&e)))?
        .get(0);
    let mut ledger = Vec::new();
    if has_ledger {
        let full = "select version::text, name::text, statements::text[] \
                    from supabase_migrations.schema_migrations order by version";
        let bare = "select version::text, null::text, null::text[] \
                    from supabase_migrations.schema_migrations order by version";
        let rows = match session.bounded_query(full).await {
            Ok(Some(rows)) => rows,
            // Older ledgers have no name/statements columns.
            _ => session
                .bounded_query(bare)
                .await
                .map_err(|e| {
                    fail(
                        "the ledger",
                        format!(
                            "{e} (the role needs USAGE on schema supabase_migrations and SELECT \
                             on its schema_migrations)"
                        ),
                    )
                })?
                .ok_or_else(|| fail("the ledger", "statement timeout".to_owned()))?,
        };
        ledger = rows
            .iter()
            .map(|row| ledger::AppliedRow {
                version: row.get(0),
                name: row.get(1),
                statements: row.get(2),
            })
            .collect();
    }
    let rows = client
        .query(
            "select n.nspname || '.' || c.relname, c.reltuples::float8, c.relpages::int8, \
             pg_relation_size(c.oid)::int8, current_setting('block_size')::int8 \
             from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where c.relkind in ('r', 'p', 'm') \
             and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast')",
            &[],
        )
        .await
        .map_err(|e| fail("relation sizes", crate::sql::db_error_text(&e)))?;
    let sizes = rows
        .iter()
        .map(|row| {
            (
                row.get::<_, String>(0),
                Size {
                    rows: judge::estimate_rows(row.get(1), row.get(2), row.get(3), row.get(4)),
                    bytes: row.get(3),
                },
            )
        })
        .collect();
    let catalog = Catalog::read(client).await?;
    Ok(Production {
        version,
        major,
        ledger,
        has_ledger,
        sizes,
        catalog,
    })
}
