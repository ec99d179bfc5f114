//! The actors of a generated matrix, with the `user_metadata` the sign-up triggers read, and
//! what init says when those triggers refuse the generated users.

use std::collections::BTreeMap;

use super::super::model::{PolicyReads, Relation};
use super::rows::deterministic_uuid;
use crate::actors::{ActorSpec, Actors};
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
    let keys: Vec<&super::super::model::MetadataKey> =
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
pub fn guessed_key(reads: &PolicyReads, error: &str) -> Option<super::super::model::MetadataKey> {
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
    (!fed).then(|| super::super::model::MetadataKey {
        key: column.clone(),
        cast: None,
        target: Some((table, column)),
    })
}

fn listed(keys: &[&super::super::model::MetadataKey]) -> String {
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

/// Why the actor lines init wrote do not resolve (a fault of init, never of the project).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActorLinesError {
    #[error("read the actor lines: {0}")]
    Yaml(String),
    /// The actors' own message.
    #[error("{0}")]
    Actors(crate::actors::ActorError),
}

/// Parses the actor lines as the matrix will declare them.
pub fn resolve_actors(actors: &[(String, String)]) -> Result<Actors, ActorLinesError> {
    let yaml: String = actors
        .iter()
        .map(|(name, spec)| format!("{name}: {spec}\n"))
        .collect();
    let specs: BTreeMap<String, ActorSpec> =
        serde_saphyr::from_str(&yaml).map_err(|e| ActorLinesError::Yaml(e.to_string()))?;
    Actors::resolve(&specs).map_err(ActorLinesError::Actors)
}
#[cfg(test)]
mod tests {
    use super::super::super::model::{MetadataKey, SignUpTrigger};
    use super::super::test_support::{column, table};
    use super::*;

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
        handle.rules = crate::init::values::Rules {
            checks: crate::init::values::parse_check(
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
}
