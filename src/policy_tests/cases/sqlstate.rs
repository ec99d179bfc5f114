//! Which raised errors count as a denial: `deny_on:`, `deny_sqlstate:` lists and SQLSTATE
//! codes.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

/// `deny_on:`: which raised errors count as a denial beyond 42501 and `deny_sqlstate:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenyOn {
    /// Any error the statement raises, except those saying the statement itself is wrong
    /// or the server is in trouble (see [`error_may_deny`]).
    Error,
}

/// Errors that never read as a denial, even under `deny_on: error`: class 42 (a syntax
/// error, an undefined table, column or function, a policy recursing into itself; 42501
/// itself is a denial anyway), program limits (54: a policy's stack overflow), and the
/// server's own trouble (08, 53, 57, 58, XX). A case that trips them checks nothing.
pub fn error_may_deny(sqlstate: &str) -> bool {
    !matches!(
        sqlstate.get(..2),
        Some("42" | "54" | "08" | "53" | "57" | "58" | "XX")
    )
}

/// A non-empty list of SQLSTATEs (`deny_sqlstate: [P0001, 22023]`); each is validated
/// where it is written, so a typo is an input error at its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStates(pub Vec<String>);

impl<'de> Deserialize<'de> for SqlStates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatesVisitor;
        impl<'de> Visitor<'de> for StatesVisitor {
            type Value = SqlStates;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of 5-character SQLSTATEs, e.g. [P0001]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SqlStates, E> {
                Err(E::custom(format!(
                    "`deny_sqlstate: {v}`: write a list (`[{v}]`)"
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SqlStates, A::Error> {
                let mut states = Vec::new();
                while let Some(state) = seq.next_element::<SqlState>()? {
                    states.push(state.0);
                }
                if states.is_empty() {
                    return Err(de::Error::custom(
                        "`deny_sqlstate: []` lists nothing: name the SQLSTATEs that mean denied, or leave the key out",
                    ));
                }
                Ok(SqlStates(states))
            }
        }
        deserializer.deserialize_any(StatesVisitor)
    }
}

/// One SQLSTATE: five digits or upper-case letters.
struct SqlState(String);

impl<'de> Deserialize<'de> for SqlState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if is_sqlstate(&text) {
            Ok(SqlState(text))
        } else {
            Err(de::Error::custom(format!(
                "`{text}` is not a SQLSTATE (five digits or upper-case letters, e.g. P0001)"
            )))
        }
    }
}

/// Five digits or upper-case ASCII letters, as PostgreSQL spells error codes.
pub fn is_sqlstate(text: &str) -> bool {
    text.len() == 5
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_on_error_never_covers_a_wrong_statement() {
        assert!(error_may_deny("P0001"));
        assert!(error_may_deny("23505"));
        assert!(error_may_deny("22023"));
        for wrong in [
            "42P01", "42883", "42601", "42P17", "54001", "57014", "XX000",
        ] {
            assert!(!error_may_deny(wrong), "{wrong}");
        }
    }
}
