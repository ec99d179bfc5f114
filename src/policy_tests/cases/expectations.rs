//! Allow and deny lists resolved against a file's actors into one expectation per actor, with
//! the operations and outcomes a case names.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::yaml::Pos;

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

/// The operations a case can check, in the order reports list them (`operation` in the
/// JSON: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
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

/// What a cell expects (`expected` in the JSON: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

/// Resolves `allow`/`deny` against `actors`; the error (an input error) is at the actor's
/// name, or nowhere of its own (`None`: the case's position) for `others` twice.
pub fn resolve(
    allow: &Who,
    deny: &Who,
    actors: &[&str],
) -> Result<Expectations, (Option<Pos>, String)> {
    if allow == &Who::Others && deny == &Who::Others {
        return Err((
            None,
            "`allow: others` and `deny: others` together".to_owned(),
        ));
    }
    let mut cells = BTreeMap::new();
    for (who, expect) in [(allow, Expect::Allow), (deny, Expect::Deny)] {
        if let Who::Actors(names) = who {
            for name in names {
                let at = Some(Pos::of(name));
                if !actors.contains(&name.value.as_str()) {
                    return Err((
                        at,
                        format!(
                            "`{}` is not an actor of this file (actors: {})",
                            name.value,
                            actors.join(", ")
                        ),
                    ));
                }
                if let Some(previous) = cells.insert(name.value.clone(), expect) {
                    if previous != expect {
                        return Err((at, format!("`{}` is both allowed and denied", name.value)));
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
