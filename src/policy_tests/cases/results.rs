//! What a case's `then:` and `returns:` checks read: the queries parsed, and the rows a
//! statement returned compared with the rows wanted.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// `then:`: one SQL query or a list of them, each of which must hold after an allowed
/// operation (see [`then_holds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Then(pub Vec<String>);

impl<'de> Deserialize<'de> for Then {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ThenVisitor;
        impl<'de> Visitor<'de> for ThenVisitor {
            type Value = Then;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an SQL query, or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Then, E> {
                one_query(v).map(|q| Then(vec![q])).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Then, A::Error> {
                let mut queries = Vec::new();
                while let Some(query) = seq.next_element::<String>()? {
                    queries.push(one_query(&query).map_err(de::Error::custom)?);
                }
                if queries.is_empty() {
                    return Err(de::Error::custom(
                        "`then: []` checks nothing: give a query that must hold, or leave the key out",
                    ));
                }
                Ok(Then(queries))
            }
        }
        deserializer.deserialize_any(ThenVisitor)
    }
}

/// A `then:` query with nothing in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an empty `then:` query checks nothing")]
pub struct EmptyQuery;

/// A `then:` query as it is wrapped in a subquery: without its trailing semicolon, never
/// empty.
fn one_query(text: &str) -> Result<String, EmptyQuery> {
    let query = text.trim().trim_end_matches(';').trim_end();
    if query.is_empty() {
        return Err(EmptyQuery);
    }
    Ok(query.to_owned())
}

/// Why a `then:` query did not hold, as a fragment after "the post-condition".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unheld {
    #[error("returned something unreadable ({error}): {rows}")]
    Unreadable { error: String, rows: String },
    #[error("returned no row")]
    NoRow,
    /// Its rows, shortened for a message.
    #[error("returned {0}")]
    Returned(String),
}

/// Does a `then:` query hold, given its rows as a JSON array of objects? It must return at
/// least one row, and no value in the rows may be `false` or null (`select exists(…)`,
/// `select count(*) = 1 …`, `select … where <predicate>` all read naturally). The error
/// says what it returned instead.
pub fn then_holds(rows_json: &str) -> Result<(), Unheld> {
    let rows: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(rows_json).map_err(|e| Unheld::Unreadable {
            error: e.to_string(),
            rows: rows_json.to_owned(),
        })?;
    if rows.is_empty() {
        return Err(Unheld::NoRow);
    }
    if rows
        .iter()
        .flat_map(|row| row.values())
        .any(|v| matches!(v, Value::Bool(false) | Value::Null))
    {
        return Err(Unheld::Returned(shorten(rows_json)));
    }
    Ok(())
}

/// Text for a message: at most a few hundred characters.
pub fn shorten(text: &str) -> String {
    const MAX: usize = 400;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}

/// The rows a statement returned, each as its (column, value) pairs in column order.
pub type Rows = Vec<Vec<(String, Value)>>;

/// A `returns:` list with an item that is not a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`returns:` as a list is rows, each an object like `{{ id: 1, name: x }}`; write a single value without a list")]
pub struct NotRows;

/// Is `want` (from `returns:`) written as rows? A list is rows, each an object naming the
/// columns compared; anything else is one value.
pub fn returns_rows_wanted(want: &Value) -> Result<bool, NotRows> {
    match want {
        Value::Array(items) if items.iter().all(Value::is_object) => Ok(true),
        Value::Array(_) => Err(NotRows),
        _ => Ok(false),
    }
}

/// What a statement returned that `returns:` did not want: both, shortened for a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", shorten(&format!("want {want}, have {have}")))]
pub struct Mismatch {
    pub want: String,
    pub have: String,
}

/// Compares what a statement returned with `returns:`. Rows: the same number, each equal on
/// the columns the wanted rows name (other columns are not compared), in any order unless
/// `ordered`. One value: exactly one row of one column, equal to it. Numbers compare by
/// value (`3` equals `3.0`); everything else as JSON. The error shows want and have.
pub fn compare_returns(want: &Value, ordered: bool, have: &Rows) -> Result<(), Mismatch> {
    let mismatch = |have: String| Mismatch {
        want: want.to_string(),
        have,
    };
    if let Value::Array(wanted) = want {
        let mut columns: Vec<&String> = Vec::new();
        for row in wanted.iter().filter_map(Value::as_object) {
            for column in row.keys() {
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        // Each returned row as the wanted columns only; a column it lacks stays missing.
        let projected: Vec<serde_json::Map<String, Value>> = have
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .filter_map(|c| {
                        row.iter()
                            .find(|(name, _)| name == *c)
                            .map(|(name, value)| (name.clone(), value.clone()))
                    })
                    .collect()
            })
            .collect();
        let shown = Value::Array(projected.iter().cloned().map(Value::Object).collect());
        let same_row = |w: &Value, h: &serde_json::Map<String, Value>| match w {
            Value::Object(w) => {
                w.len() == h.len()
                    && w.iter()
                        .all(|(k, v)| h.get(k).is_some_and(|hv| json_eq(v, hv)))
            }
            _ => false,
        };
        let equal = wanted.len() == projected.len()
            && if ordered {
                wanted.iter().zip(&projected).all(|(w, h)| same_row(w, h))
            } else {
                let mut used = vec![false; projected.len()];
                wanted.iter().all(|w| {
                    let found = projected
                        .iter()
                        .enumerate()
                        .find(|(i, h)| !used[*i] && same_row(w, h));
                    match found {
                        Some((i, _)) => {
                            used[i] = true;
                            true
                        }
                        None => false,
                    }
                })
            };
        return if equal {
            Ok(())
        } else {
            Err(mismatch(shown.to_string()))
        };
    }
    match have.as_slice() {
        [row] if row.len() == 1 && json_eq(want, &row[0].1) => Ok(()),
        [row] if row.len() == 1 => Err(mismatch(row[0].1.to_string())),
        _ => Err(mismatch(format!(
            "{} row(s) ({}), where one value was wanted",
            have.len(),
            Value::Array(
                have.iter()
                    .map(|row| Value::Object(row.iter().cloned().collect()))
                    .collect()
            )
        ))),
    }
}

/// JSON equality with numbers compared by value: PostgreSQL writes `numeric` 3 as `3.0`
/// when its scale says so, YAML writes `3`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn rows(json: &str) -> Rows {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn returns_compare_rows_in_any_order_on_the_named_columns_or_one_value() {
        use serde_json::json;
        let have = rows(
            r#"[[["id",2],["email","b@x.io"],["n",3.0]],[["id",1],["email","a@x.io"],["n",1]]]"#,
        );
        let want = json!([{ "id": 1, "email": "a@x.io" }, { "id": 2, "email": "b@x.io", "n": 3 }]);
        // every row is compared on the columns any wanted row names
        assert!(compare_returns(&json!([{ "id": 1 }, { "id": 2 }]), false, &have).is_ok());
        assert!(compare_returns(&json!([{ "id": 2 }, { "id": 1 }]), true, &have).is_ok());
        assert!(compare_returns(&json!([{ "id": 1 }, { "id": 2 }]), true, &have).is_err());
        let err = compare_returns(&json!([{ "email": "b@x.io" }]), false, &have)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"want [{"email":"b@x.io"}], have [{"email":"b@x.io"},{"email":"a@x.io"}]"#
        );
        // a wanted column the rows lack is a mismatch, never ignored
        assert!(compare_returns(&json!([{ "idd": 1 }, { "idd": 2 }]), false, &have).is_err());
        assert!(
            compare_returns(&want, false, &have).is_err(),
            "row 1 has n 1, not absent"
        );
        assert!(compare_returns(&json!([]), false, &rows("[]")).is_ok());
        // one value
        let one = rows(r#"[[["get_claims",{"role":"admin","n":2.0}]]]"#);
        assert!(compare_returns(&json!({ "n": 2, "role": "admin" }), false, &one).is_ok());
        let err = compare_returns(&json!({ "role": "user" }), false, &one)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(r#"want {"role":"user"}, have {"#), "{err}");
        let err = compare_returns(&json!(1), false, &have)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 row(s)"), "{err}");
        assert_eq!(returns_rows_wanted(&json!([{ "a": 1 }])), Ok(true));
        assert_eq!(returns_rows_wanted(&json!("x")), Ok(false));
        assert!(returns_rows_wanted(&json!([1, 2])).is_err());
    }
}
