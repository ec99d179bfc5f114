//! Generated values and rows: a sample of each column's type that satisfies its CHECKs, rows
//! owned by alice pointing at the generated parents, the tables' foreign-key order, and the
//! values an update may write.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::super::model::{Column, Relation};
use crate::catalog::QualifiedName;

/// A value of a generated row: text the server casts to the column's type (it may hold
/// `{{alice.id}}`), or the first value of a table the matrix does not generate rows for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Text(String),
    Lookup {
        table: QualifiedName,
        column: String,
    },
}

pub(super) const ALICE: &str = "{{alice.id}}";
pub(super) const BOB: &str = "{{bob.id}}";

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
pub(super) fn deterministic_uuid(seed: &str) -> String {
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

/// Why no row of a table can be generated, as a fragment a draft's left-out note shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum NoRow {
    #[error("`{column}` references its own table and cannot be null")]
    SelfReference { column: String },
    #[error("no value of type {data_type} can be generated for `{column}`")]
    NoSample { data_type: String, column: String },
    /// `table` is `schema.table` as the catalog writes it.
    #[error(
        "`{column}` references {table}, which has no row to point at (the seed could add one)"
    )]
    NothingReferenced { column: String, table: String },
}

/// The columns a generated row writes, with their values; `Err` names a column no value can
/// be generated for.
pub(super) fn row(
    relation: &Relation,
    index: usize,
    nth: usize,
    generated: &BTreeMap<String, Generated>,
) -> Result<Vec<(String, Value)>, NoRow> {
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
        let value = if column.owner && reference.is_none_or(|(fk, _)| fk.references.is_auth_users())
        {
            Value::Text(owner.to_owned())
        } else if let Some((fk, referenced)) = reference {
            if fk.references.to_string() == relation.qualified() {
                if column.not_null {
                    return Err(NoRow::SelfReference {
                        column: column.name.clone(),
                    });
                }
                continue;
            }
            match generated.get(&fk.references.to_string()) {
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
                    return Err(NoRow::NoSample {
                        data_type: column.data_type.clone(),
                        column: column.name.clone(),
                    })
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
pub(super) struct Generated {
    /// Every written column's value, as text (`{{alice.id}}` kept as the template).
    pub(super) values: BTreeMap<String, String>,
    /// The `where:` picking exactly that row.
    pub(super) target: String,
}

/// The rows' order: referenced tables first; tables in a cycle after the rest, by name.
pub(super) fn order(relations: &[&Relation]) -> Vec<usize> {
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
                        .get(&fk.references.to_string())
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

/// The columns an update case may change, with their new values: plain columns (no key,
/// no reference, no owner), text first.
pub(super) fn updates_of(relation: &Relation, index: usize) -> Vec<(String, String)> {
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
#[cfg(test)]
mod tests {
    use super::super::test_support::{column, fk, table};
    use super::*;

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
                    table: QualifiedName::new("public", "teams"),
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
        let error = row(&profiles, 0, 0, &BTreeMap::new())
            .unwrap_err()
            .to_string();
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
    fn uuids_are_stable_and_well_formed() {
        let a = deterministic_uuid("x");
        assert_eq!(a, deterministic_uuid("x"));
        assert_ne!(a, deterministic_uuid("y"));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
    }

    #[test]
    fn generated_rows_satisfy_checks_and_declared_lengths() {
        let mut code = column("id", "character(8)");
        code.rules.max_length = Some(8);
        let mut capacity = column("capacity", "integer");
        capacity.rules.checks = crate::init::values::parse_check(
            "CHECK (((capacity >= 2) AND (capacity <= 10)))",
            "capacity",
        );
        let mut status = column("status", "text");
        status.rules.checks = crate::init::values::parse_check(
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
}
