//! The matrices `db-ci init` writes: per exposed schema, actors, a setup with one row per
//! table in "alice's world" (generated in foreign-key order, owner columns set to alice, a
//! membership row making her a member), and one case per table and view with every command
//! left without an expectation for the rls stage to record. Every row and operation is tried
//! as admin first; what fails there is left out with the reason, never written to fail later.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::model::{Column, PolicyReads, Relation, RelationKind};
use crate::actors::{ActorSpec, Actors};
use crate::sql::quote::quote_ident_if_needed as quote_ident;
use crate::sql::{db_error_text, quote_literal};
use crate::yaml::edit::plain_or_quoted;

/// The actors every generated matrix has: who is not signed in, the user whose world the
/// rows are, an outsider, and the server's own key; plus an admin when policies read
/// `app_metadata`. Users carry the `user_metadata` the sign-up triggers read.
pub fn actors(reads: &PolicyReads, relations: &[Relation]) -> Vec<(String, String)> {
    let metadata = |index: usize, name: &str| -> String {
        let entries = sign_up_metadata(reads, relations, index, name);
        if entries.is_empty() {
            return String::new();
        }
        let fields: Vec<String> = entries
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    serde_json::Value::String(text) => plain_or_quoted(text),
                    other => other.to_string(),
                };
                format!("{}: {value}", plain_or_quoted(key))
            })
            .collect();
        format!(", user_metadata: {{ {} }}", fields.join(", "))
    };
    let mut actors = vec![
        ("anon".to_owned(), "anon".to_owned()),
        (
            "alice".to_owned(),
            format!("{{ user: alice@example.test{} }}", metadata(0, "alice")),
        ),
        (
            "bob".to_owned(),
            format!("{{ user: bob@example.test{} }}", metadata(1, "bob")),
        ),
        ("service".to_owned(), "service_role".to_owned()),
    ];
    if let Some((claim, value)) = &reads.app_metadata {
        actors.push((
            "admin".to_owned(),
            format!(
                "{{ user: admin@example.test, app_metadata: {{ {}: {} }}{} }}",
                plain_or_quoted(claim),
                plain_or_quoted(value),
                metadata(2, "admin")
            ),
        ));
    }
    actors
}

/// The `user_metadata` the user `name` (the `index`th user) is given so that the sign-up
/// triggers can create it: a value per key they read, of the type they cast it to and
/// satisfying the CHECKs of the column they put it in.
fn sign_up_metadata(
    reads: &PolicyReads,
    relations: &[Relation],
    index: usize,
    name: &str,
) -> Vec<(String, serde_json::Value)> {
    let mut entries: Vec<(String, serde_json::Value)> = Vec::new();
    for key in reads.sign_up.iter().flat_map(|t| &t.keys) {
        if entries.iter().any(|(k, _)| *k == key.key) {
            continue;
        }
        let column = key.target.as_ref().and_then(|(table, column)| {
            let table = table.replace('"', "");
            relations
                .iter()
                .find(|r| r.qualified() == table || (r.schema == "public" && r.name == table))
                .and_then(|r| r.column(column))
        });
        let kind = key
            .cast
            .clone()
            .or_else(|| column.map(|c| c.data_type.clone()))
            .unwrap_or_else(|| "text".to_owned());
        let kind = kind.split('(').next().unwrap_or_default().trim().to_owned();
        let rules = column.map(|c| c.rules.clone()).unwrap_or_default();
        let value = match kind.as_str() {
            "int" | "int2" | "int4" | "int8" | "smallint" | "integer" | "bigint" | "numeric"
            | "real" | "float4" | "float8" | "double precision" | "decimal" => {
                let integer = !matches!(
                    kind.as_str(),
                    "numeric" | "real" | "float4" | "float8" | "double precision" | "decimal"
                );
                rules
                    .number((index + 1) as f64, integer, index)
                    .and_then(|n| serde_json::from_str::<serde_json::Value>(&n).ok())
                    .unwrap_or_else(|| serde_json::json!(index + 1))
            }
            "bool" | "boolean" => serde_json::Value::Bool(true),
            "uuid" => serde_json::Value::String(deterministic_uuid(&format!(
                "metadata {name} {}",
                key.key
            ))),
            "date" => serde_json::Value::String(format!("2000-01-0{}", index + 1)),
            "timestamptz"
            | "timestamp"
            | "timestamp with time zone"
            | "timestamp without time zone" => {
                serde_json::Value::String(format!("2000-01-0{} 00:00:00+00", index + 1))
            }
            _ => {
                let preferred = if key.key.contains("email") {
                    format!("{name}@example.test")
                } else {
                    name.to_owned()
                };
                serde_json::Value::String(
                    rules
                        .text(std::slice::from_ref(&preferred), index)
                        .unwrap_or(preferred),
                )
            }
        };
        entries.push((key.key.clone(), value));
    }
    entries
}

/// What init says when the matrix's users cannot be created: the sign-up triggers' error,
/// and the `user_metadata` key to fill in when the error names a column a key feeds (else
/// every key they read).
pub fn sign_up_failure(reads: &PolicyReads, error: &str) -> String {
    let functions: Vec<&str> = reads.sign_up.iter().map(|t| t.function.as_str()).collect();
    let keys: Vec<&super::model::MetadataKey> =
        reads.sign_up.iter().flat_map(|t| &t.keys).collect();
    let column = regex::Regex::new(r#"column "([^"]+)""#)
        .ok()
        .and_then(|re| re.captures(error).map(|c| c[1].to_owned()));
    let named = column.as_deref().and_then(|column| {
        keys.iter()
            .find(|k| k.target.as_ref().is_some_and(|(_, c)| c == column) || k.key == column)
    });
    let trigger = if functions.is_empty() {
        "creating a user in auth.users".to_owned()
    } else {
        format!("the sign-up trigger {} on auth.users", functions.join(", "))
    };
    let what = match (named, column.as_deref()) {
        (Some(key), _) => format!(
            "fill in `user_metadata: {{ {}: … }}` on each user actor with a value it accepts",
            plain_or_quoted(&key.key)
        ),
        (None, Some(column)) if !functions.is_empty() => format!(
            "it fills `{column}` from something db-ci could not read; give each user actor the \
             `user_metadata` (or the seed the row) it needs{}",
            listed(&keys)
        ),
        _ => format!(
            "give each user actor the `user_metadata` it needs{}",
            listed(&keys)
        ),
    };
    format!("{trigger} fails for the generated users ({error}): {what}")
}

/// The key to try when the users fail on a NOT NULL column of a sign-up trigger's insert
/// that no key read feeds: the column's own name (`handle` from `raw_user_meta_data`'s
/// `handle` is the usual way). `None` when a key already feeds it, or the error is another.
pub fn guessed_key(reads: &PolicyReads, error: &str) -> Option<super::model::MetadataKey> {
    if reads.sign_up.is_empty() {
        return None;
    }
    let pattern =
        regex::Regex::new(r#"null value in column "([^"]+)" of relation "([^"]+)""#).ok()?;
    let found = pattern.captures(error)?;
    let (column, table) = (found[1].to_owned(), found[2].to_owned());
    let fed = reads
        .sign_up
        .iter()
        .flat_map(|t| &t.keys)
        .any(|k| k.key == column || k.target.as_ref().is_some_and(|(_, c)| *c == column));
    (!fed).then(|| super::model::MetadataKey {
        key: column.clone(),
        cast: None,
        target: Some((table, column)),
    })
}

fn listed(keys: &[&super::model::MetadataKey]) -> String {
    if keys.is_empty() {
        return String::new();
    }
    format!(
        " (it reads {})",
        keys.iter()
            .map(|k| format!("`{}`", k.key))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Parses the actor lines as the matrix will declare them.
pub fn resolve_actors(actors: &[(String, String)]) -> Result<Actors, String> {
    let yaml: String = actors
        .iter()
        .map(|(name, spec)| format!("{name}: {spec}\n"))
        .collect();
    let specs: BTreeMap<String, ActorSpec> =
        serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
    Actors::resolve(&specs)
}

/// A value of a generated row: text the server casts to the column's type (it may hold
/// `{{alice.id}}`), or the first value of a table the matrix does not generate rows for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Lookup { table: String, column: String },
}

const ALICE: &str = "{{alice.id}}";
const BOB: &str = "{{bob.id}}";

/// A sample of `column`'s type: `nth` 0 for the setup row, 1 for the inserted and updated
/// ones, 2 for a spare parent row; `distinct` for key and unique columns, which must not
/// collide with other rows.
fn sample(
    relation: &Relation,
    index: usize,
    column: &Column,
    nth: usize,
    distinct: bool,
) -> Option<String> {
    if let Some(first) = column.labels.first() {
        return Some(column.labels.get(nth).unwrap_or(first).clone());
    }
    let ty = column.data_type.as_str();
    let base = ty.split('(').next().unwrap_or(ty).trim();
    if ty.ends_with("[]") {
        return Some("{}".to_owned());
    }
    let length: Option<usize> = ty
        .split_once('(')
        .and_then(|(_, rest)| rest.trim_end_matches(')').split(',').next())
        .and_then(|n| n.trim().parse().ok());
    // Rows of one table differ in `nth`; key values differ across tables too.
    let variant = if distinct { index * 4 + nth } else { nth };
    let rules = &column.rules;
    Some(match base {
        "uuid" => deterministic_uuid(&format!(
            "{}.{}.{}.{nth}",
            relation.qualified(),
            column.name,
            index
        )),
        "smallint" | "integer" | "bigint" | "numeric" | "real" | "double precision" | "money" => {
            // Four values per table and row kind, so no two rows of a table meet.
            let preferred = match base {
                "smallint" if distinct => 20_000 + index * 4 + nth,
                "integer" | "bigint" if distinct => 900_000_000 + index * 4 + nth,
                _ => 1 + nth,
            };
            let integer = matches!(base, "smallint" | "integer" | "bigint");
            if rules.is_empty() {
                preferred.to_string()
            } else {
                rules.number(preferred as f64, integer, variant)?
            }
        }
        "boolean" => (nth == 0).to_string(),
        "text" | "character varying" | "citext" | "character" | "name" => {
            let text = if distinct {
                format!("db-ci-{index}-{nth}")
            } else if nth == 0 {
                "db-ci".to_owned()
            } else {
                "db-ci edited".to_owned()
            };
            rules.text(&[text], variant)?
        }
        "date" => format!("2025-01-0{}", 1 + nth),
        "timestamp with time zone" => format!("2025-01-0{} 00:00:00+00", 1 + nth),
        "timestamp without time zone" => format!("2025-01-0{} 00:00:00", 1 + nth),
        "time without time zone" | "time with time zone" => format!("1{nth}:00:00"),
        "interval" => format!("{} day", 1 + nth),
        "json" | "jsonb" => {
            if nth == 0 {
                "{}".to_owned()
            } else {
                "{\"db-ci\": 1}".to_owned()
            }
        }
        "inet" | "cidr" => format!("127.0.0.{}", 1 + nth),
        "bytea" => format!("\\x0{nth}"),
        "vector" | "halfvec" => {
            let n = length?;
            format!("[{}]", vec![nth.to_string(); n].join(","))
        }
        _ => return None,
    })
}

/// A version-4-shaped uuid derived from `seed`: the same on every run.
fn deterministic_uuid(seed: &str) -> String {
    let digest = Sha256::digest(format!("db-ci init {seed}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The columns a generated row writes, with their values; `Err` names a column no value can
/// be generated for.
fn row(
    relation: &Relation,
    index: usize,
    nth: usize,
    generated: &BTreeMap<String, Generated>,
) -> Result<Vec<(String, Value)>, String> {
    // An inserted row that owns a key (a profile keyed by its user) is bob's: alice has hers.
    let owner_keyed = relation
        .columns
        .iter()
        .any(|c| c.owner && relation.in_unique(&c.name));
    let owner = if nth == 1 && owner_keyed { BOB } else { ALICE };
    let mut values = Vec::new();
    for column in &relation.columns {
        if column.always_generated && !relation.primary_key.contains(&column.name) {
            continue;
        }
        let key = relation.primary_key.contains(&column.name);
        if nth == 1 && key && column.has_default && !column.owner {
            continue;
        }
        if column.always_generated {
            // An identity primary key: the inserted row takes the server's.
            if nth == 1 {
                continue;
            }
        }
        let reference = relation.reference_of(&column.name);
        let value = if column.owner && reference.is_none_or(|(fk, _)| fk.references == "auth.users")
        {
            Value::Text(owner.to_owned())
        } else if let Some((fk, referenced)) = reference {
            if fk.references == relation.qualified() {
                if column.not_null {
                    return Err(format!(
                        "`{}` references its own table and cannot be null",
                        column.name
                    ));
                }
                continue;
            }
            match generated.get(&fk.references) {
                Some(parent) => match parent.values.get(referenced) {
                    Some(text) => Value::Text(text.clone()),
                    None => continue,
                },
                None => Value::Lookup {
                    table: fk.references.clone(),
                    column: referenced.to_owned(),
                },
            }
        } else if key || (column.not_null && !column.has_default) {
            let distinct = relation.in_unique(&column.name);
            match sample(relation, index, column, nth, distinct) {
                Some(text) => Value::Text(text),
                None => {
                    return Err(format!(
                        "no value of type {} can be generated for `{}`",
                        column.data_type, column.name
                    ))
                }
            }
        } else {
            continue;
        };
        values.push((column.name.clone(), value));
    }
    Ok(values)
}

/// A table's row as the setup wrote it (or as a trigger or the seed already had it).
#[derive(Debug, Clone)]
struct Generated {
    /// Every written column's value, as text (`{{alice.id}}` kept as the template).
    values: BTreeMap<String, String>,
    /// The `where:` picking exactly that row.
    target: String,
}

/// The rows' order: referenced tables first; tables in a cycle after the rest, by name.
fn order(relations: &[&Relation]) -> Vec<usize> {
    let names: BTreeMap<String, usize> = relations
        .iter()
        .enumerate()
        .map(|(i, r)| (r.qualified(), i))
        .collect();
    let mut placed = vec![false; relations.len()];
    let mut order = Vec::new();
    loop {
        let ready: Vec<usize> = (0..relations.len())
            .filter(|&i| !placed[i])
            .filter(|&i| {
                relations[i].foreign_keys.iter().all(|fk| {
                    names
                        .get(&fk.references)
                        .is_none_or(|&j| j == i || placed[j])
                })
            })
            .collect();
        if ready.is_empty() {
            break;
        }
        for i in ready {
            placed[i] = true;
            order.push(i);
        }
    }
    order.extend((0..relations.len()).filter(|&i| !placed[i]));
    order
}

/// One case of a generated matrix.
#[derive(Debug, Clone, Default)]
pub struct CaseDraft {
    pub relation: String,
    /// The case's name when not the relation's.
    pub name: Option<String>,
    /// Whether the case has a `select:` (a delete-only case of a spare row has not).
    pub select: bool,
    pub target: Option<String>,
    pub insert: Option<Vec<(String, String)>>,
    pub update: Option<(String, String)>,
    pub delete: bool,
    /// Why a command has no cell.
    pub left_out: Vec<String>,
}

/// A generated matrix, before its expectations are recorded.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub schema: String,
    pub actors: Vec<(String, String)>,
    pub setup: Vec<String>,
    pub cases: Vec<CaseDraft>,
    /// Tables and views with no case, and why (flagged to the user).
    pub left_out: Vec<String>,
}

/// Builds `schema`'s matrix by trying every row and operation as admin, in one transaction
/// rolled back: what fails there is left out with the reason.
pub async fn draft(
    client: &Client,
    schema: &str,
    relations: &[Relation],
    actor_lines: Vec<(String, String)>,
    actors: &Actors,
) -> crate::error::Result<Draft> {
    let environment = |what: &str, e: tokio_postgres::Error| {
        crate::error::Error::Environment(format!("{what}: {}", db_error_text(&e)))
    };
    let mut draft = Draft {
        schema: schema.to_owned(),
        actors: actor_lines,
        ..Draft::default()
    };
    let mine: Vec<&Relation> = relations.iter().filter(|r| r.schema == schema).collect();
    if mine.is_empty() {
        return Ok(draft);
    }
    client
        .batch_execute("begin")
        .await
        .map_err(|e| environment("begin the trial of the generated rows", e))?;
    // Tables outside the schema that its tables reference (transitively): rows for them
    // are generated too, so that a document can point at its storage object.
    let mut support: Vec<&Relation> = Vec::new();
    let mut queue: Vec<&str> = mine
        .iter()
        .flat_map(|r| r.foreign_keys.iter().map(|fk| fk.references.as_str()))
        .collect();
    while let Some(name) = queue.pop() {
        let Some(relation) = relations.iter().find(|r| r.qualified() == name) else {
            continue;
        };
        if relation.schema == schema || support.iter().any(|r| r.qualified() == name) {
            continue;
        }
        support.push(relation);
        queue.extend(
            relation
                .foreign_keys
                .iter()
                .map(|fk| fk.references.as_str()),
        );
    }
    let result = trial(client, &mine, &support, actors, &mut draft).await;
    let _ = client.batch_execute("rollback").await;
    result?;
    Ok(draft)
}

async fn trial(
    client: &Client,
    relations: &[&Relation],
    support: &[&Relation],
    actors: &Actors,
    draft: &mut Draft,
) -> crate::error::Result<()> {
    client
        .batch_execute(&actors.create_users_sql())
        .await
        .map_err(|e| {
            crate::error::Error::Environment(format!(
                "create the matrix's users as the rls stage does: {}",
                db_error_text(&e)
            ))
        })?;
    // Actor ids in values read back become templates again.
    let ids: Vec<(String, String)> = ["alice", "bob", "admin"]
        .iter()
        .filter_map(|name| {
            let id = actors.render(&format!("{{{{{name}.id}}}}")).ok()?;
            Some((id, format!("{{{{{name}.id}}}}")))
        })
        .collect();
    let templated = |text: String| {
        ids.iter()
            .find(|(id, _)| *id == text)
            .map_or(text, |(_, template)| template.clone())
    };
    let tables: Vec<&Relation> = relations
        .iter()
        .chain(support)
        .copied()
        .filter(|r| r.kind == RelationKind::Table)
        .collect();
    let mut generated: BTreeMap<String, Generated> = BTreeMap::new();
    let mut left_out: BTreeMap<String, String> = BTreeMap::new();
    for index in order(&tables) {
        let relation = tables[index];
        let qualified = relation.qualified();
        let values = match row(relation, index, 0, &generated) {
            Ok(values) => values,
            Err(why) => {
                left_out.insert(qualified, why);
                continue;
            }
        };
        let values = match resolve(client, relation, values, &templated).await {
            Ok(values) => values,
            Err(why) => {
                // The referenced table's own row failed: that is the reason to show.
                let parent = relation
                    .foreign_keys
                    .iter()
                    .find(|fk| why.contains(&format!("references {},", fk.references)))
                    .and_then(|fk| left_out.get(&fk.references).map(|p| (fk, p)));
                let why = match parent {
                    Some((fk, parent)) => {
                        format!("{why}; a generated {} row fails: {parent}", fk.references)
                    }
                    None => why,
                };
                left_out.insert(qualified, why);
                continue;
            }
        };
        let sql = insert_sql(relation, &values);
        match attempt(client, actors, &sql, true).await {
            Ok(_) => {
                let target = target_of(relation, &values);
                draft.setup.push(format!("{sql};"));
                generated.insert(
                    qualified,
                    Generated {
                        values: values.into_iter().collect(),
                        target,
                    },
                );
            }
            Err(why) => {
                // A row a trigger already made for alice (her profile on sign-up): that row
                // is the target.
                match existing_owned_row(client, relation, actors, &templated).await {
                    Some(found) => {
                        generated.insert(qualified, found);
                    }
                    None => {
                        left_out.insert(
                            qualified,
                            format!("its generated row fails as admin: {why}"),
                        );
                    }
                }
            }
        }
    }

    let mut spares = BTreeMap::new();
    for (index, relation) in relations.iter().enumerate() {
        let qualified = relation.qualified();
        if relation.kind == RelationKind::View {
            match view_target(client, relation, &templated).await {
                Some(target) => draft.cases.push(CaseDraft {
                    relation: qualified,
                    target: Some(target),
                    select: true,
                    ..CaseDraft::default()
                }),
                None => draft.left_out.push(format!(
                    "{qualified}: the view shows no row to admin that a `where:` picks alone"
                )),
            }
            continue;
        }
        let Some(row0) = generated.get(&qualified) else {
            if let Some(why) = left_out.get(&qualified) {
                draft.left_out.push(format!("{qualified}: {why}"));
            }
            continue;
        };
        let mut case = CaseDraft {
            relation: qualified.clone(),
            target: Some(row0.target.clone()),
            select: true,
            ..CaseDraft::default()
        };
        // insert: a second row of the same world.
        let insert = match row(relation, index, 1, &generated) {
            Ok(values) => resolve(client, relation, values, &templated).await,
            Err(why) => Err(why),
        };
        match insert {
            Ok(mut values) if !values.is_empty() => {
                let sql = insert_sql(relation, &values);
                let mut result = attempt(client, actors, &sql, false).await.map(|_| ());
                // A link table keyed by its references (assistant × workspace) already links
                // the setup's parents: the new row links spare ones.
                if result
                    .as_ref()
                    .is_err_and(|why| why.contains("duplicate key"))
                {
                    let mut spared = false;
                    for fk in &relation.foreign_keys {
                        if !fk.columns.iter().any(|c| relation.in_unique(c)) {
                            continue;
                        }
                        let Some(parent) = spare(
                            client,
                            actors,
                            relations,
                            &fk.references,
                            &generated,
                            &mut spares,
                            &mut draft.setup,
                            &templated,
                        )
                        .await
                        else {
                            continue;
                        };
                        for (column, referenced) in fk.columns.iter().zip(&fk.referenced_columns) {
                            if let (Some(slot), Some(value)) = (
                                values.iter_mut().find(|(n, _)| n == column),
                                parent.get(referenced),
                            ) {
                                slot.1 = value.clone();
                                spared = true;
                            }
                        }
                    }
                    if spared {
                        let sql = insert_sql(relation, &values);
                        result = attempt(client, actors, &sql, false).await.map(|_| ());
                    }
                }
                // A row keyed by its owner that bob already has (a sign-up trigger made his
                // profile): the setup removes his, so the insert shows who may create one.
                if result
                    .as_ref()
                    .is_err_and(|why| why.contains("duplicate key"))
                {
                    if let Some(owner) = relation
                        .columns
                        .iter()
                        .find(|c| c.owner && relation.in_unique(&c.name))
                    {
                        let clear = format!(
                            "delete from {} where {} = {}",
                            relation.quoted(),
                            quote_ident(&owner.name),
                            quote_literal(BOB)
                        );
                        if attempt(client, actors, &clear, true).await == Ok(1) {
                            draft.setup.push(format!("{clear};"));
                            let sql = insert_sql(relation, &values);
                            result = attempt(client, actors, &sql, false).await.map(|_| ());
                        }
                    }
                }
                match result {
                    Ok(()) => case.insert = Some(values),
                    Err(why) => case
                        .left_out
                        .push(format!("insert: as admin it fails: {why}")),
                }
            }
            Ok(_) => case.left_out.push("insert: no column to write".to_owned()),
            Err(why) => case.left_out.push(format!("insert: {why}")),
        }
        // The first plain column the update really changes (a default may already hold
        // the sample value).
        let mut update_failed = None;
        for (column, value) in updates_of(relation, index) {
            let sql = format!(
                "update {} set {col} = {value} where {} and {col} is distinct from {value}",
                relation.quoted(),
                row0.target,
                col = quote_ident(&column),
                value = quote_literal(&value),
            );
            match attempt(client, actors, &sql, false).await {
                Ok(1) => {
                    case.update = Some((column, value));
                    break;
                }
                Ok(_) => {}
                Err(why) => {
                    update_failed.get_or_insert(why);
                }
            }
        }
        if case.update.is_none() {
            case.left_out.push(match update_failed {
                Some(why) => format!("update: as admin it fails: {why}"),
                None => "update: no plain column to change".to_owned(),
            });
        }
        let sql = format!("delete from {} where {}", relation.quoted(), row0.target);
        let mut delete_spare = None;
        match attempt(client, actors, &sql, false).await {
            Ok(_) => case.delete = true,
            // Rows of other tables point at the target and forbid its deletion: a spare row
            // nothing points at is deleted instead, in a case of its own.
            Err(why) => {
                let spared = match spare(
                    client,
                    actors,
                    relations,
                    &qualified,
                    &generated,
                    &mut spares,
                    &mut draft.setup,
                    &templated,
                )
                .await
                {
                    Some(values) => {
                        let values: Vec<(String, String)> = values.into_iter().collect();
                        let target = target_of(relation, &values);
                        let sql = format!("delete from {} where {target}", relation.quoted());
                        attempt(client, actors, &sql, false)
                            .await
                            .ok()
                            .map(|_| target)
                    }
                    None => None,
                };
                match spared {
                    Some(target) => delete_spare = Some(target),
                    None => case
                        .left_out
                        .push(format!("delete: as admin it fails: {why}")),
                }
            }
        }
        draft.cases.push(case);
        if let Some(target) = delete_spare {
            draft.cases.push(CaseDraft {
                relation: qualified.clone(),
                name: Some(format!("{qualified}, a row nothing references")),
                target: Some(target),
                select: false,
                delete: true,
                ..CaseDraft::default()
            });
        }
    }
    Ok(())
}

/// The `where:` picking a generated row: its primary key, else every value written.
fn target_of(relation: &Relation, values: &[(String, String)]) -> String {
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
async fn spare(
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
fn insert_sql(relation: &Relation, values: &[(String, String)]) -> String {
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
async fn resolve(
    client: &Client,
    relation: &Relation,
    values: Vec<(String, Value)>,
    templated: &impl Fn(String) -> String,
) -> Result<Vec<(String, String)>, String> {
    let mut resolved = Vec::new();
    for (name, value) in values {
        match value {
            Value::Text(text) => resolved.push((name, text)),
            Value::Lookup { table, column } => {
                let (schema, table_name) = table.split_once('.').unwrap_or(("public", &table));
                let sql = format!(
                    "select {col}::text from {}.{} where {col} is not null order by 1 limit 1",
                    quote_ident(schema),
                    quote_ident(table_name),
                    col = quote_ident(&column)
                );
                match client.query_opt(&sql, &[]).await {
                    Ok(Some(row)) => resolved.push((name, templated(row.get(0)))),
                    _ if !relation.column(&name).is_some_and(|c| c.not_null) => {}
                    _ => {
                        return Err(format!(
                            "`{name}` references {table}, which has no row to point at (the seed could add one)"
                        ))
                    }
                }
            }
        }
    }
    Ok(resolved)
}

/// Runs `sql` (with the actors' ids) in a savepoint, kept when `keep` (a setup row) else
/// rolled back; the rows it touched, or the error text.
async fn attempt(client: &Client, actors: &Actors, sql: &str, keep: bool) -> Result<u64, String> {
    let sql = actors.render(sql)?;
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
            Err(db_error_text(&e)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned())
        }
    }
}

/// Alice's own row when one exists already (a sign-up trigger made it): the target by its
/// owner column.
async fn existing_owned_row(
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
async fn view_target(
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

/// The columns an update case may change, with their new values: plain columns (no key,
/// no reference, no owner), text first.
fn updates_of(relation: &Relation, index: usize) -> Vec<(String, String)> {
    let plain = |c: &&Column| {
        !c.always_generated
            && !c.owner
            && !relation.primary_key.contains(&c.name)
            && relation.reference_of(&c.name).is_none()
    };
    let mut candidates: Vec<&Column> = relation.columns.iter().filter(plain).collect();
    candidates.sort_by_key(|c| !matches!(c.data_type.as_str(), "text" | "citext"));
    candidates
        .into_iter()
        .flat_map(|c| {
            // Every label of an enum: the trial keeps the first that changes the row.
            let values: Vec<String> = if let Some(allowed) = c.rules.allowed() {
                allowed.iter().rev().cloned().collect()
            } else if c.labels.is_empty() {
                sample(relation, index, c, 1, relation.in_unique(&c.name))
                    .into_iter()
                    .collect()
            } else {
                c.labels.iter().rev().cloned().collect()
            };
            values.into_iter().map(|v| (c.name.clone(), v))
        })
        .collect()
}

/// The matrix as YAML: header, actors, setup, and one case per table or view with every
/// command written `{}` for the rls stage to record.
pub fn render(draft: &Draft) -> String {
    let mut out = format!(
        "# Written by `db-ci init` for the exposed schema `{}`.\n\
         #\n\
         # Every expectation below was RECORDED from what the database did when init ran: it is\n\
         # a baseline, not a verdict on the policies. `unreviewed:` lists the actors whose cell\n\
         # still holds a recording; review each (should this actor be able to do this?), fix\n\
         # the policy or the expectation, then delete the actor from `unreviewed:`. Every run\n\
         # counts the cells still unreviewed.\n\
         #\n\
         # The rows are alice's world: owner columns hold her id, membership rows make her a\n\
         # member; bob is signed in and owns nothing. `db-ci rls --record` records cases you add.\n",
        draft.schema
    );
    out.push_str("actors:\n");
    for (name, spec) in &draft.actors {
        out.push_str(&format!("  {name}: {spec}\n"));
    }
    if draft.setup.is_empty() {
        out.push_str("setup: \"\"\n");
    } else {
        out.push_str("setup: |\n");
        for statement in &draft.setup {
            out.push_str(&format!("  {statement}\n"));
        }
    }
    for why in &draft.left_out {
        out.push_str(&format!("# NOT GENERATED: {why}\n"));
    }
    out.push_str("cases:\n");
    if draft.cases.is_empty() {
        out.push_str("  []\n");
    }
    for case in &draft.cases {
        out.push_str(&format!(
            "  - name: {}\n    table: {}\n",
            plain_or_quoted(case.name.as_deref().unwrap_or(&case.relation)),
            plain_or_quoted(&case.relation)
        ));
        for why in &case.left_out {
            out.push_str(&format!("    # not generated: {why}\n"));
        }
        if let Some(target) = &case.target {
            out.push_str(&format!("    where: {}\n", block_scalar(target)));
        }
        if case.select {
            out.push_str("    select: {}\n");
        }
        if let Some(values) = &case.insert {
            let values = values
                .iter()
                .map(|(k, v)| format!("{}: {}", plain_or_quoted(k), yaml_string(v)))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!("    insert: {{ values: {{ {values} }} }}\n"));
        }
        if let Some((column, value)) = &case.update {
            out.push_str(&format!(
                "    update: {{ set: {{ {}: {} }} }}\n",
                plain_or_quoted(column),
                yaml_string(value)
            ));
        }
        if case.delete {
            out.push_str("    delete: {}\n");
        }
    }
    out
}

/// `text` as a block mapping's value: plain when YAML reads it back as the same string.
fn block_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.trim() == text
        && !text.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\n')
        && serde_saphyr::from_str::<String>(text).ok().as_deref() == Some(text);
    if plain {
        text.to_owned()
    } else {
        yaml_string(text)
    }
}

/// A string the matrix reads back as that string (values are text the server casts).
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

#[cfg(test)]
mod tests {
    use super::super::model::{ForeignKey, MetadataKey, SignUpTrigger};
    use super::*;

    fn column(name: &str, ty: &str) -> Column {
        Column {
            name: name.to_owned(),
            data_type: ty.to_owned(),
            not_null: true,
            has_default: false,
            always_generated: false,
            labels: Vec::new(),
            owner: false,
            rules: Default::default(),
        }
    }

    fn table(name: &str, columns: Vec<Column>, fks: Vec<ForeignKey>) -> Relation {
        Relation {
            schema: "public".to_owned(),
            name: name.to_owned(),
            kind: RelationKind::Table,
            columns,
            primary_key: vec!["id".to_owned()],
            unique: vec![vec!["id".to_owned()]],
            foreign_keys: fks,
        }
    }

    fn fk(column: &str, references: &str) -> ForeignKey {
        ForeignKey {
            columns: vec![column.to_owned()],
            references: references.to_owned(),
            referenced_columns: vec!["id".to_owned()],
        }
    }

    #[test]
    fn referenced_tables_come_first_and_cycles_last() {
        let teams = table("teams", vec![column("id", "uuid")], vec![]);
        let members = table(
            "members",
            vec![column("id", "uuid"), column("team_id", "uuid")],
            vec![fk("team_id", "public.teams")],
        );
        let a = table(
            "a",
            vec![column("id", "uuid")],
            vec![fk("b_id", "public.b")],
        );
        let b = table(
            "b",
            vec![column("id", "uuid")],
            vec![fk("a_id", "public.a")],
        );
        let relations = [&members, &a, &teams, &b];
        assert_eq!(order(&relations), vec![2, 0, 1, 3]);
    }

    #[test]
    fn rows_are_alices_and_point_at_the_generated_parents() {
        let mut user_id = column("user_id", "uuid");
        user_id.owner = true;
        let mut created = column("created_at", "timestamp with time zone");
        created.has_default = true;
        let members = table(
            "members",
            vec![
                column("id", "bigint"),
                column("team_id", "uuid"),
                user_id,
                created,
                column("role", "text"),
            ],
            vec![fk("team_id", "public.teams")],
        );
        let mut generated = BTreeMap::new();
        generated.insert(
            "public.teams".to_owned(),
            Generated {
                values: [("id".to_owned(), "t-1".to_owned())].into_iter().collect(),
                target: String::new(),
            },
        );
        let values = row(&members, 3, 0, &generated).unwrap();
        assert_eq!(
            values,
            vec![
                ("id".to_owned(), Value::Text("900000012".to_owned())),
                ("team_id".to_owned(), Value::Text("t-1".to_owned())),
                ("user_id".to_owned(), Value::Text(ALICE.to_owned())),
                ("role".to_owned(), Value::Text("db-ci".to_owned())),
            ]
        );
        // Without a generated parent, the seed's first row is read.
        let values = row(&members, 3, 1, &BTreeMap::new()).unwrap();
        assert_eq!(
            values[1],
            (
                "team_id".to_owned(),
                Value::Lookup {
                    table: "public.teams".to_owned(),
                    column: "id".to_owned()
                }
            )
        );
        assert_eq!(values[0].1, Value::Text("900000013".to_owned()));
    }

    #[test]
    fn a_row_keyed_by_its_owner_is_inserted_for_bob() {
        let mut id = column("id", "uuid");
        id.owner = true;
        let profiles = table(
            "profiles",
            vec![id, column("name", "text")],
            vec![fk("id", "auth.users")],
        );
        let setup = row(&profiles, 0, 0, &BTreeMap::new()).unwrap();
        assert_eq!(setup[0].1, Value::Text(ALICE.to_owned()));
        let insert = row(&profiles, 0, 1, &BTreeMap::new()).unwrap();
        assert_eq!(insert[0].1, Value::Text(BOB.to_owned()));
    }

    #[test]
    fn a_column_of_an_unknown_type_is_named() {
        let profiles = table(
            "shapes",
            vec![column("id", "uuid"), column("area", "geometry")],
            vec![],
        );
        let error = row(&profiles, 0, 0, &BTreeMap::new()).unwrap_err();
        assert!(
            error.contains("geometry") && error.contains("`area`"),
            "{error}"
        );
    }

    #[test]
    fn update_prefers_a_plain_text_column() {
        let mut owner = column("owner_id", "uuid");
        owner.owner = true;
        let notes = table(
            "notes",
            vec![
                column("id", "uuid"),
                owner,
                column("pinned", "boolean"),
                column("body", "text"),
            ],
            vec![],
        );
        assert_eq!(
            updates_of(&notes, 0),
            vec![
                ("body".to_owned(), "db-ci edited".to_owned()),
                ("pinned".to_owned(), "false".to_owned())
            ]
        );
    }

    #[test]
    fn where_clauses_are_plain_when_they_read_back() {
        assert_eq!(block_scalar("id = '1'"), "id = '1'");
        assert_eq!(block_scalar("'x' = id"), "\"'x' = id\"");
        assert_eq!(block_scalar("true"), "true");
        assert_eq!(block_scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn uuids_are_stable_and_well_formed() {
        let a = deterministic_uuid("x");
        assert_eq!(a, deterministic_uuid("x"));
        assert_ne!(a, deterministic_uuid("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    fn sign_up(keys: Vec<MetadataKey>) -> PolicyReads {
        PolicyReads {
            app_metadata: Some(("role".to_owned(), "admin".to_owned())),
            sign_up: vec![SignUpTrigger {
                function: "public.handle_new_user".to_owned(),
                keys,
            }],
        }
    }

    fn key(key: &str, cast: Option<&str>, target: Option<&str>) -> MetadataKey {
        MetadataKey {
            key: key.to_owned(),
            cast: cast.map(str::to_owned),
            target: target.map(|c| ("public.profiles".to_owned(), c.to_owned())),
        }
    }

    #[test]
    fn users_carry_the_metadata_the_sign_up_trigger_reads() {
        let mut handle = column("handle", "character varying(4)");
        handle.rules = super::super::values::Rules {
            checks: super::super::values::parse_check(
                "CHECK (((handle)::text ~ '^[A-Z][a-z]+$'::text))",
                "handle",
            ),
            max_length: Some(4),
        };
        let profiles = table("profiles", vec![column("id", "uuid"), handle], vec![]);
        let reads = sign_up(vec![
            key("handle", None, Some("handle")),
            key("age", Some("int"), None),
            key("user's email", None, None),
        ]);
        let lines = actors(&reads, &[profiles]);
        let alice = &lines.iter().find(|(n, _)| n == "alice").unwrap().1;
        assert_eq!(
            alice,
            "{ user: alice@example.test, user_metadata: { handle: Alic, age: 1, \"user's email\": alice@example.test } }"
        );
        let bob = &lines.iter().find(|(n, _)| n == "bob").unwrap().1;
        assert!(bob.contains("handle: Bob, age: 2"), "{bob}");
        let admin = &lines.iter().find(|(n, _)| n == "admin").unwrap().1;
        assert!(
            admin.contains("app_metadata: { role: admin }, user_metadata: { handle: Admi"),
            "{admin}"
        );
        let resolved = resolve_actors(&lines).unwrap();
        let sql = resolved.create_users_sql();
        assert!(
            sql.contains(r#""handle": "Alic""#) || sql.contains(r#""handle":"Alic""#),
            "{sql}"
        );
    }

    #[test]
    fn a_sign_up_failure_names_the_key_to_fill_in() {
        let reads = sign_up(vec![
            key("handle", None, Some("handle")),
            key("bio", None, None),
        ]);
        let message = sign_up_failure(
            &reads,
            "null value in column \"handle\" of relation \"profiles\" violates not-null constraint",
        );
        assert!(message.contains("public.handle_new_user"), "{message}");
        assert!(
            message.contains("`user_metadata: { handle: … }`"),
            "{message}"
        );
        // A column fed by nothing db-ci read: named, with the keys it did read.
        let message = sign_up_failure(
            &reads,
            "null value in column \"nickname\" of relation \"profiles\" violates not-null constraint",
        );
        assert!(
            message.contains("`nickname`") && message.contains("`handle`, `bio`"),
            "{message}"
        );
        // A column no key feeds is tried under its own name, once.
        let missing = "null value in column \"nickname\" of relation \"profiles\" violates not-null constraint";
        let guess = guessed_key(&reads, missing).unwrap();
        assert_eq!(guess.key, "nickname");
        assert_eq!(
            guess.target,
            Some(("profiles".to_owned(), "nickname".to_owned()))
        );
        let mut with_guess = reads.clone();
        with_guess.sign_up[0].keys.push(guess);
        assert_eq!(guessed_key(&with_guess, missing), None);
        assert_eq!(guessed_key(&reads, "permission denied"), None);
        let message = sign_up_failure(&PolicyReads::default(), "permission denied");
        assert!(
            message.contains("creating a user in auth.users"),
            "{message}"
        );
    }

    #[test]
    fn generated_rows_satisfy_checks_and_declared_lengths() {
        let mut code = column("id", "character(8)");
        code.rules.max_length = Some(8);
        let mut capacity = column("capacity", "integer");
        capacity.rules.checks = super::super::values::parse_check(
            "CHECK (((capacity >= 2) AND (capacity <= 10)))",
            "capacity",
        );
        let mut status = column("status", "text");
        status.rules.checks = super::super::values::parse_check(
            "CHECK ((status = ANY (ARRAY['open'::text, 'closed'::text])))",
            "status",
        );
        let rooms = table("rooms", vec![code, capacity, status], vec![]);
        let setup = row(&rooms, 11, 0, &BTreeMap::new()).unwrap();
        let insert = row(&rooms, 11, 1, &BTreeMap::new()).unwrap();
        let text = |values: &[(String, Value)], i: usize| match &values[i].1 {
            Value::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        assert!(text(&setup, 0).chars().count() <= 8);
        assert_ne!(text(&setup, 0), text(&insert, 0));
        let n: i64 = text(&setup, 1).parse().unwrap();
        assert!((2..=10).contains(&n), "{n}");
        assert_eq!(text(&setup, 2), "open");
        // The update tries every allowed value, not a text the CHECK refuses.
        let updates = updates_of(&rooms, 11);
        assert!(
            updates.contains(&("status".to_owned(), "closed".to_owned())),
            "{updates:?}"
        );
        assert!(!updates
            .iter()
            .any(|(c, v)| c == "status" && v.starts_with("db-ci")));
    }

    #[test]
    fn the_rendered_matrix_parses() {
        let draft = Draft {
            schema: "public".to_owned(),
            actors: actors(
                &PolicyReads {
                    app_metadata: Some(("role".to_owned(), "admin".to_owned())),
                    ..PolicyReads::default()
                },
                &[],
            ),
            setup: vec!["insert into public.notes (id) values ('1');".to_owned()],
            cases: vec![CaseDraft {
                relation: "public.notes".to_owned(),
                name: None,
                select: true,
                target: Some("\"id\" = '1'".to_owned()),
                insert: Some(vec![("id".to_owned(), "2".to_owned())]),
                update: Some(("body".to_owned(), "db-ci edited".to_owned())),
                delete: true,
                left_out: vec![],
            }],
            left_out: vec!["public.x: no value".to_owned()],
        };
        let text = render(&draft);
        let spec: crate::policy_tests::PolicyFileSpec = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(spec.cases.len(), 1);
        assert!(resolve_actors(&draft.actors).is_ok());
    }
}
