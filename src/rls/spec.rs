//! The `cases:` format of policy-test files: what each RLS case says is allowed and denied.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// One case: a target (table, view, storage object or SQL) and the expectations per operation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    pub name: String,
    /// A table or view, optionally schema-qualified (default schema `public`).
    pub table: Option<String>,
    /// A storage bucket: the target is `storage.objects` rows of this bucket.
    pub bucket: Option<String>,
    /// With `bucket`: the object's name (path), e.g. `{{alice.id}}/avatar.png`.
    pub object: Option<String>,
    /// The target rows, as a SQL condition; `{{actor.field}}` and `{{me.field}}` templates.
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// Columns identifying a target row when the table has no primary key (views).
    pub key: Option<Vec<String>>,
    pub select: Option<OpSpec>,
    pub insert: Option<InsertSpec>,
    pub update: Option<UpdateSpec>,
    pub delete: Option<OpSpec>,
    /// An RPC case: SQL run as each actor (`select start_session('{{alice.id}}')`).
    pub sql: Option<String>,
    /// For `sql` cases.
    pub allow: Option<Who>,
    /// For `sql` cases.
    pub deny: Option<Who>,
    /// For `sql` cases: the SQLSTATE a denying function raises instead of 42501.
    pub sqlstate: Option<String>,
    /// For `sql` cases that read (`select * from get_user_jobs(…)`): judge by the rows
    /// returned — allow = at least one row, deny = none (or 42501 / `sqlstate`).
    #[serde(default)]
    pub returns_rows: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpSpec {
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InsertSpec {
    /// Column → value of the row each actor tries to insert.
    pub values: BTreeMap<String, Value>,
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSpec {
    /// Column → new value.
    pub set: BTreeMap<String, Value>,
    #[serde(default)]
    pub allow: Who,
    #[serde(default)]
    pub deny: Who,
}

/// A list of actor names, or `others`: every actor of the file not listed on the other side.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Who {
    #[default]
    Nobody,
    Actors(Vec<Spanned<String>>),
    Others,
}

impl<'de> Deserialize<'de> for Who {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WhoVisitor;
        impl<'de> Visitor<'de> for WhoVisitor {
            type Value = Who;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of actor names, or `others`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Who, E> {
                match v {
                    "others" => Ok(Who::Others),
                    _ => Err(E::custom(format!(
                        "`{v}`: write a list (`[{v}]`) or `others` for every actor not listed on the other side"
                    ))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Who, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<Spanned<String>>()? {
                    names.push(name);
                }
                Ok(Who::Actors(names))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Who, E> {
                Ok(Who::Nobody)
            }
        }
        deserializer.deserialize_any(WhoVisitor)
    }
}

/// The operations a case can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Select,
    Insert,
    Update,
    Delete,
    Sql,
}

impl Operation {
    pub const TABLE_OPERATIONS: [Operation; 4] = [
        Operation::Select,
        Operation::Insert,
        Operation::Update,
        Operation::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Select => "select",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Sql => "sql",
        }
    }
}

/// What a cell expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Allow,
    Deny,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        }
    }
}

/// The expectations of one operation, resolved against the file's actors: actor → expect,
/// and the actors with no expectation (a broken test: the matrix has a hole).
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub cells: BTreeMap<String, Expect>,
    pub missing: Vec<String>,
}

/// Resolves `allow`/`deny` against `actors`; the error (an input error) names the line.
pub fn resolve(allow: &Who, deny: &Who, actors: &[&str]) -> Result<Expectations, (usize, String)> {
    if allow == &Who::Others && deny == &Who::Others {
        return Err((0, "`allow: others` and `deny: others` together".to_owned()));
    }
    let mut cells = BTreeMap::new();
    for (who, expect) in [(allow, Expect::Allow), (deny, Expect::Deny)] {
        if let Who::Actors(names) = who {
            for name in names {
                let line = name.referenced.line() as usize;
                if !actors.contains(&name.value.as_str()) {
                    return Err((
                        line,
                        format!(
                            "`{}` is not an actor of this file (actors: {})",
                            name.value,
                            actors.join(", ")
                        ),
                    ));
                }
                if let Some(previous) = cells.insert(name.value.clone(), expect) {
                    if previous != expect {
                        return Err((line, format!("`{}` is both allowed and denied", name.value)));
                    }
                }
            }
        }
    }
    let others = match (allow, deny) {
        (Who::Others, _) => Some(Expect::Allow),
        (_, Who::Others) => Some(Expect::Deny),
        _ => None,
    };
    let mut missing = Vec::new();
    for actor in actors {
        if !cells.contains_key(*actor) {
            match others {
                Some(expect) => {
                    cells.insert((*actor).to_owned(), expect);
                }
                None => missing.push((*actor).to_owned()),
            }
        }
    }
    Ok(Expectations { cells, missing })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        cases: Vec<Spanned<CaseSpec>>,
    }

    const DOC: &str = "\
cases:
  - name: own profile
    table: profiles
    where: id = '{{alice.id}}'
    select: { allow: [alice, svc], deny: others }
    update: { set: { full_name: Mallory, age: 3, tags: [a] }, allow: [alice], deny: [anon, bob, svc] }
  - name: rpc
    sql: select 1
    allow: [alice]
    deny: [bob]
    sqlstate: P0001
";

    #[test]
    fn cases_parse_with_lines_and_others() {
        let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
        assert_eq!(doc.cases.len(), 2);
        assert_eq!(doc.cases[0].referenced.line(), 2);
        let case = &doc.cases[0].value;
        let select = case.select.as_ref().unwrap();
        assert_eq!(select.deny, Who::Others);
        let actors = ["alice", "anon", "bob", "svc"];
        let e = resolve(&select.allow, &select.deny, &actors).unwrap();
        assert_eq!(e.cells["bob"], Expect::Deny);
        assert_eq!(e.cells["svc"], Expect::Allow);
        assert!(e.missing.is_empty());
        let update = case.update.as_ref().unwrap();
        assert_eq!(update.set["age"], serde_json::json!(3));
        let rpc = &doc.cases[1].value;
        let e = resolve(
            rpc.allow.as_ref().unwrap(),
            rpc.deny.as_ref().unwrap(),
            &actors,
        )
        .unwrap();
        assert_eq!(e.missing, vec!["anon", "svc"]);
    }

    #[test]
    fn unknown_actor_and_contradiction_name_their_line() {
        let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
        let select = doc.cases[0].value.select.as_ref().unwrap();
        let (line, message) = resolve(&select.allow, &select.deny, &["alice", "bob"]).unwrap_err();
        assert_eq!(line, 5);
        assert!(message.contains("`svc` is not an actor"), "{message}");
        let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: [a], deny: [a] }\n";
        let doc: Doc = serde_saphyr::from_str(yaml).unwrap();
        let select = doc.cases[0].value.select.as_ref().unwrap();
        let (_, message) = resolve(&select.allow, &select.deny, &["a"]).unwrap_err();
        assert!(message.contains("both allowed and denied"), "{message}");
    }

    #[test]
    fn unknown_keys_and_bare_names_are_rejected() {
        let yaml = "cases:\n  - name: x\n    table: t\n    selct: { allow: [a] }\n";
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
        assert!(err.contains("selct"), "{err}");
        let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: alice }\n";
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
        assert!(err.contains("[alice]"), "{err}");
    }
}
