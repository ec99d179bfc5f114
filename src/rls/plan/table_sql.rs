//! The SQL of a table cell: the admin count before, the actor's statement, and the admin
//! read-back after that shows what the statement really did to the target rows.

use std::collections::BTreeMap;

use serde_json::Value;

use super::render::{literal, render_for, TemplateError};
use super::OpKind;
use crate::actors::{Actor, ActorKind};
use crate::policy_tests::cases::RowAction;
use crate::policy_tests::PolicyFile;
use crate::sql::{quote_ident, quote_literal};

/// A row version written inside the cell: its `xmin` is newer than the batch's transaction
/// id (which the first write of a cell assigns before its subtransaction's, and which rows
/// committed by the setup predate). Compared on the 32-bit xid, as `xmin` holds it.
const WRITTEN_IN_CELL: &str =
    "t.xmin::text::bigint > pg_catalog.pg_current_xact_id()::text::bigint % 4294967296";

/// The SQL of one table cell (see [`super::Cell`] for what each part is).
pub(super) struct CellSql {
    pub(super) before: Option<String>,
    pub(super) op: String,
    pub(super) op_kind: OpKind,
    pub(super) after: Option<String>,
    pub(super) filter: String,
    pub(super) broken: Option<String>,
}

/// The rows a table or bucket case targets: a bucket (and object), and `where:`.
pub(super) struct RowsTarget<'a> {
    pub(super) bucket: Option<(&'a str, Option<&'a str>)>,
    pub(super) filter: Option<&'a str>,
}

/// The before/op/after SQL of a table cell; the error is a template naming no actor.
pub(super) fn table_cell(
    file: &PolicyFile,
    target: &RowsTarget<'_>,
    actor: &Actor,
    action: &RowAction,
    qualified: &str,
    key: &[String],
    has_xmin: bool,
) -> Result<CellSql, TemplateError> {
    let mut conditions = Vec::new();
    match target.bucket {
        Some((bucket, Some(object))) => conditions.push(format!(
            "bucket_id = {} and name = {}",
            quote_literal(&render_for(file, actor, bucket)?),
            quote_literal(&render_for(file, actor, object)?)
        )),
        Some((bucket, None)) => conditions.push(format!(
            "bucket_id = {}",
            quote_literal(&render_for(file, actor, bucket)?)
        )),
        None => {}
    }
    if let Some(filter) = target.filter {
        conditions.push(format!("({})", render_for(file, actor, filter)?));
    }
    let filter = if conditions.is_empty() {
        "true".to_owned()
    } else {
        conditions.join(" and ")
    };
    let fingerprint = "md5(coalesce(string_agg(t::text, ',' order by t::text), ''))";
    let key_expr = |set: &[(String, String)]| -> Option<String> {
        if key.is_empty() {
            return None;
        }
        let parts: Vec<String> = key
            .iter()
            .map(|column| {
                let column_sql = format!("t.{}", quote_ident(column));
                match set.iter().find(|(c, _)| c == column) {
                    // CASE gives the literal the column's type, so the key reads the same
                    // as the updated row's.
                    Some((_, value)) => {
                        format!("case when true then {value} else {column_sql} end")
                    }
                    None => column_sql,
                }
            })
            .collect();
        Some(format!("jsonb_build_array({})::text", parts.join(", ")))
    };
    let render_values =
        |values: &BTreeMap<String, Value>| -> Result<Vec<(String, String)>, TemplateError> {
            values
                .iter()
                .map(|(column, value)| {
                    let value = match value {
                        Value::String(s) => Value::String(render_for(file, actor, s)?),
                        other => other.clone(),
                    };
                    Ok((column.clone(), literal(&value)))
                })
                .collect()
        };
    match action {
        RowAction::Select { .. } => Ok(CellSql {
            before: Some(format!("select count(*), 0::bigint, null::text[], null::text[], ''::text from {qualified} t where {filter}")),
            op: format!("select count(*) from {qualified} t where {filter}"),
            op_kind: OpKind::Count,
            after: None,
            filter,
            broken: None,
        }),
        RowAction::Insert { values: own } => {
            let mut values: BTreeMap<String, Value> = BTreeMap::new();
            if let Some((bucket, object)) = target.bucket {
                values.insert("bucket_id".to_owned(), Value::String(bucket.to_owned()));
                if let Some(object) = object {
                    values.insert("name".to_owned(), Value::String(object.to_owned()));
                }
                // What the storage API records for an upload by a signed-in user.
                let owner = actor.id.clone().map_or(Value::Null, Value::String);
                if actor.kind == ActorKind::User {
                    values.insert("owner".to_owned(), owner.clone());
                    values.insert("owner_id".to_owned(), owner);
                }
            }
            values.extend(own.clone());
            let values = render_values(&values)?;
            // The new row is found by the values it was given, never by `where:` (which
            // describes the rows select/update/delete target).
            let identifies = values
                .iter()
                .map(|(c, v)| format!("t.{} is not distinct from {v}", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" and ");
            let columns = values.iter().map(|(c, _)| quote_ident(c)).collect::<Vec<_>>().join(", ");
            let literals = values.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>().join(", ");
            // A table's new row is the one the statement wrote, found by `xmin` as admin
            // sees it: a BEFORE trigger may rewrite the values sent (a slug, an email).
            let (before, after) = if has_xmin {
                (
                    "select 0::bigint, 0::bigint, null::text[], null::text[], ''::text".to_owned(),
                    format!("select count(*) filter (where {WRITTEN_IN_CELL}), 0::bigint, ''::text from {qualified} t"),
                )
            } else {
                (
                    format!("select count(*), 0::bigint, null::text[], null::text[], ''::text from {qualified} t where {identifies}"),
                    format!("select count(*), 0::bigint, ''::text from {qualified} t where {identifies}"),
                )
            };
            Ok(CellSql {
                before: Some(before),
                op: format!("insert into {qualified} ({columns}) values ({literals})"),
                op_kind: OpKind::Rows,
                after: Some(after),
                filter: identifies,
                broken: None,
            })
        }
        RowAction::Update { .. } | RowAction::Delete => {
            let update = matches!(action, RowAction::Update { .. });
            let set = match action {
                RowAction::Update { set } => render_values(set)?,
                _ => Vec::new(),
            };
            let (Some(old_key), Some(new_key)) = (key_expr(&[]), key_expr(&set)) else {
                let message = format!(
                    "broken test: {qualified} has no primary key, so db-ci cannot tell which target rows changed; add `key: [column, …]` to the case"
                );
                return Ok(CellSql {
                    before: None,
                    op: String::new(),
                    op_kind: OpKind::Rows,
                    after: None,
                    filter,
                    broken: Some(message),
                });
            };
            let (set_sql, matches) = if update {
                (
                    set.iter().map(|(c, v)| format!("{} = {v}", quote_ident(c))).collect::<Vec<_>>().join(", "),
                    set.iter()
                        .map(|(c, v)| format!("t.{} is not distinct from {v}", quote_ident(c)))
                        .collect::<Vec<_>>()
                        .join(" and "),
                )
            } else {
                (String::new(), "false".to_owned())
            };
            // Rows are found again by key: `$1` the keys before, `$2` the keys an allowed
            // update gives them (they differ when `set` changes a key column).
            let before = format!(
                "select count(*), count(*) filter (where {matches}), coalesce(array_agg({old_key}), '{{}}'), \
                 coalesce(array_agg({new_key}), '{{}}'), {fingerprint} from {qualified} t where {filter}"
            );
            // An updated row is found by its key (the new key when `set` changes it) and
            // counts as changed when the statement wrote it, never by the values sent.
            let changed = if has_xmin && update {
                WRITTEN_IN_CELL
            } else {
                matches.as_str()
            };
            let after = format!(
                "select count(*) filter (where {old_key} = any($1)), count(*) filter (where {old_key} = any($2) and {changed}), \
                 md5(coalesce(string_agg(t::text, ',' order by t::text) filter (where {old_key} = any($1)), '')) \
                 from {qualified} t where {old_key} = any($1) or {old_key} = any($2)"
            );
            let op = if update {
                format!("update {qualified} t set {set_sql} where {filter}")
            } else {
                format!("delete from {qualified} t where {filter}")
            };
            Ok(CellSql {
                before: Some(before),
                op,
                op_kind: OpKind::Rows,
                after: Some(after),
                filter,
                broken: None,
            })
        }
    }
}
