//! The relations of a database as the stages list them: by name, kind, the commands each
//! supports and its primary key, read by one query whichever stage asks.

use tokio_postgres::Client;

use super::QualifiedName;
use crate::error::{Error, Result};
use crate::sql::catalog::not_extension_member;
use crate::sql::db_error_text;
use crate::sql::kinds::RelationKind;

/// One relation as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub name: QualifiedName,
    pub kind: RelationKind,
    /// Insert, update, delete supported (select always is), as `pg_relation_is_updatable`
    /// says with triggers counted.
    pub writable: [bool; 3],
    /// Primary key columns in key order (empty for views and tables without one).
    pub primary_key: Vec<String>,
}

impl Relation {
    /// A table whose rows carry `xmin` (a view's do not).
    pub fn has_xmin(&self) -> bool {
        matches!(
            self.kind,
            RelationKind::Table | RelationKind::PartitionedTable
        )
    }
}

/// Which relations to list.
#[derive(Debug, Clone, Copy)]
pub enum Which<'a> {
    /// The tables, views, materialized views and foreign tables the project made in these
    /// schemas (extension members left out), ordered by `schema.name` as the database
    /// collates it.
    MadeIn(&'a [String]),
    /// These relations, of any kind, where they exist.
    Named(&'a [QualifiedName]),
}

/// Lists `which` relations; `what` names them in the error ("the exposed tables").
pub async fn relations(client: &Client, which: Which<'_>, what: &str) -> Result<Vec<Relation>> {
    const COLUMNS: &str = "select n.nspname::text, c.relname::text, c.relkind::text, \
         pg_catalog.pg_relation_is_updatable(c.oid, true), \
         coalesce((select array_agg(a.attname::text order by array_position(i.indkey::int2[], a.attnum)) \
                   from pg_catalog.pg_index i join pg_catalog.pg_attribute a \
                     on a.attrelid = i.indrelid and a.attnum = any(i.indkey) \
                   where i.indrelid = c.oid and i.indisprimary), '{}') \
         from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace";
    let rows = match which {
        Which::MadeIn(schemas) => {
            let sql = format!(
                "{COLUMNS} where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname = any($1) \
                 and {} order by n.nspname::text || '.' || c.relname::text",
                not_extension_member("pg_class", "c.oid")
            );
            client.query(&sql, &[&schemas]).await
        }
        Which::Named(names) => {
            let schemas: Vec<&str> = names.iter().map(|n| n.schema.as_str()).collect();
            let relations: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
            let sql = format!(
                "{COLUMNS} where (n.nspname::text, c.relname::text) in \
                 (select * from unnest($1::text[], $2::text[]))"
            );
            client.query(&sql, &[&schemas, &relations]).await
        }
    }
    .map_err(|e| Error::environment(format!("list {what}: {}", db_error_text(&e))))?;
    // pg_relation_is_updatable's bits: 1 << CMD_UPDATE(2), 1 << CMD_INSERT(3), 1 << CMD_DELETE(4).
    Ok(rows
        .iter()
        .map(|r| {
            let bits: i32 = r.get(3);
            Relation {
                name: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                kind: RelationKind::from_code(r.get(2)),
                writable: [bits & 8 != 0, bits & 4 != 0, bits & 16 != 0],
                primary_key: r.get(4),
            }
        })
        .collect())
}
