//! The statements the trial runs as admin: inserting a generated row in a savepoint, resolving
//! lookups to a referenced table's first value, a spare parent row, and reading back the row
//! a trigger made or a view shows.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::super::model::Relation;
use super::rows::{row, Generated, NoRow, Value, ALICE};
use crate::actors::Actors;
use crate::sql::quote::quote_ident_if_needed as quote_ident;
use crate::sql::{db_error_text, quote_literal};

/// The `where:` picking a generated row: its primary key, else every value written.
pub(super) fn target_of(relation: &Relation, values: &[(String, String)]) -> String {
    let equal = |(n, v): &(String, String)| format!("{} = {}", quote_ident(n), quote_literal(v));
    let key: Vec<String> = relation
        .primary_key
        .iter()
        .filter_map(|k| values.iter().find(|(n, _)| n == k))
        .map(equal)
        .collect();
    if !key.is_empty() && key.len() == relation.primary_key.len() {
        key.join(" and ")
    } else {
        values.iter().map(equal).collect::<Vec<_>>().join(" and ")
    }
}

/// A second row of `table` (alice's too), added to the setup for a link row to point at;
/// made once. `None` when the table has no generated row or the spare fails as admin.
#[allow(clippy::too_many_arguments)]
pub(super) async fn spare(
    client: &Client,
    actors: &Actors,
    relations: &[&Relation],
    table: &str,
    generated: &BTreeMap<String, Generated>,
    spares: &mut BTreeMap<String, Option<BTreeMap<String, String>>>,
    setup: &mut Vec<String>,
    templated: &impl Fn(String) -> String,
) -> Option<BTreeMap<String, String>> {
    if let Some(made) = spares.get(table) {
        return made.clone();
    }
    let made = async {
        let index = relations.iter().position(|r| r.qualified() == table)?;
        let relation = relations[index];
        if !generated.contains_key(table) {
            return None;
        }
        let values = row(relation, index, 2, generated).ok()?;
        let values = resolve(client, relation, values, templated).await.ok()?;
        let sql = insert_sql(relation, &values);
        attempt(client, actors, &sql, true).await.ok()?;
        setup.push(format!("{sql};"));
        Some(values.into_iter().collect::<BTreeMap<_, _>>())
    }
    .await;
    spares.insert(table.to_owned(), made.clone());
    made
}

/// The insert of `values`; writing a `GENERATED ALWAYS` identity needs the override.
pub(super) fn insert_sql(relation: &Relation, values: &[(String, String)]) -> String {
    let identity = relation
        .columns
        .iter()
        .any(|c| c.always_generated && values.iter().any(|(n, _)| *n == c.name));
    format!(
        "insert into {} ({}){} values ({})",
        relation.quoted(),
        values
            .iter()
            .map(|(n, _)| quote_ident(n))
            .collect::<Vec<_>>()
            .join(", "),
        if identity {
            " overriding system value"
        } else {
            ""
        },
        values
            .iter()
            .map(|(_, v)| quote_literal(v))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Turns lookups into the referenced table's first value; `Err` when it has none for a
/// column that cannot be null.
pub(super) async fn resolve(
    client: &Client,
    relation: &Relation,
    values: Vec<(String, Value)>,
    templated: &impl Fn(String) -> String,
) -> Result<Vec<(String, String)>, NoRow> {
    let mut resolved = Vec::new();
    for (name, value) in values {
        match value {
            Value::Text(text) => resolved.push((name, text)),
            Value::Lookup { table, column } => {
                let sql = format!(
                    "select {col}::text from {}.{} where {col} is not null order by 1 limit 1",
                    quote_ident(&table.schema),
                    quote_ident(&table.name),
                    col = quote_ident(&column)
                );
                match client.query_opt(&sql, &[]).await {
                    Ok(Some(row)) => resolved.push((name, templated(row.get(0)))),
                    _ if !relation.column(&name).is_some_and(|c| c.not_null) => {}
                    _ => {
                        return Err(NoRow::NothingReferenced {
                            column: name,
                            table: table.to_string(),
                        })
                    }
                }
            }
        }
    }
    Ok(resolved)
}

/// Why a statement the trial ran as admin failed, as a fragment after "as admin it fails:".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    /// The actors' fields could not be filled in.
    #[error("{0}")]
    Template(crate::actors::ActorError),
    /// The server's error: its SQLSTATE and the first line of its text.
    #[error("{message}")]
    Server {
        code: Option<String>,
        message: String,
    },
}

impl Refused {
    /// A unique violation: the row is there already.
    pub(super) fn duplicate_key(&self) -> bool {
        matches!(self, Refused::Server { code: Some(code), .. } if code == "23505")
    }
}

/// Runs `sql` (with the actors' ids) in a savepoint, kept when `keep` (a setup row) else
/// rolled back; the rows it touched, or why it failed.
pub(super) async fn attempt(
    client: &Client,
    actors: &Actors,
    sql: &str,
    keep: bool,
) -> Result<u64, Refused> {
    let sql = actors.render(sql).map_err(Refused::Template)?;
    let _ = client.batch_execute("savepoint db_ci_init").await;
    let result = client.execute(&sql, &[]).await;
    match result {
        Ok(rows) => {
            let end = if keep {
                "release savepoint db_ci_init"
            } else {
                "rollback to savepoint db_ci_init; release savepoint db_ci_init"
            };
            let _ = client.batch_execute(end).await;
            Ok(rows)
        }
        Err(e) => {
            let _ = client
                .batch_execute("rollback to savepoint db_ci_init; release savepoint db_ci_init")
                .await;
            Err(Refused::Server {
                code: e.code().map(|c| c.code().to_owned()),
                message: db_error_text(&e)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            })
        }
    }
}

/// Alice's own row when one exists already (a sign-up trigger made it): the target by its
/// owner column.
pub(super) async fn existing_owned_row(
    client: &Client,
    relation: &Relation,
    actors: &Actors,
    templated: &impl Fn(String) -> String,
) -> Option<Generated> {
    let owner = relation
        .columns
        .iter()
        .find(|c| c.owner && relation.in_unique(&c.name))?;
    let target = format!("{} = {}", quote_ident(&owner.name), quote_literal(ALICE));
    let sql = actors
        .render(&format!(
            "select to_jsonb(t)::text from {} t where {target}",
            relation.quoted()
        ))
        .ok()?;
    let rows = client.query(&sql, &[]).await.ok()?;
    let [row] = rows.as_slice() else {
        return None;
    };
    let json: serde_json::Value = serde_json::from_str(row.get(0)).ok()?;
    let values = json
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), templated(text_of(v)?))))
        .collect();
    Some(Generated { values, target })
}

fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A `where:` picking exactly one row of a view, as admin sees it after the setup.
pub(super) async fn view_target(
    client: &Client,
    relation: &Relation,
    templated: &impl Fn(String) -> String,
) -> Option<String> {
    let _ = client.batch_execute("savepoint db_ci_view").await;
    let rows = client
        .query(
            &format!(
                "select to_jsonb(v)::text from {} v limit 1",
                relation.quoted()
            ),
            &[],
        )
        .await;
    let Ok(rows) = rows else {
        let _ = client
            .batch_execute("rollback to savepoint db_ci_view; release savepoint db_ci_view")
            .await;
        return None;
    };
    let json: serde_json::Value = serde_json::from_str(rows.first()?.get(0)).ok()?;
    let object = json.as_object()?;
    // `id` first, then the other columns in order.
    let mut names: Vec<&String> = relation
        .columns
        .iter()
        .map(|c| &c.name)
        .filter(|n| object.get(*n).and_then(text_of).is_some())
        .collect();
    names.sort_by_key(|n| n.as_str() != "id");
    for name in names {
        let value = text_of(&object[name.as_str()])?;
        let sql = format!(
            "select count(*) from {} where {}::text = {}",
            relation.quoted(),
            quote_ident(name),
            quote_literal(&value)
        );
        if let Ok(row) = client.query_one(&sql, &[]).await {
            if row.get::<_, i64>(0) == 1 {
                let _ = client.batch_execute("release savepoint db_ci_view").await;
                return Some(format!(
                    "{}::text = {}",
                    quote_ident(name),
                    quote_literal(&templated(value))
                ));
            }
        }
    }
    let _ = client.batch_execute("release savepoint db_ci_view").await;
    None
}
