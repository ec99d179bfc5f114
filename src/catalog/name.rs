//! A schema-qualified name as SQL reads it: `"My Schema"."t"`, `public.t`, `t`. Unquoted parts
//! fold to lower case (ASCII letters, as PostgreSQL folds them), quoted ones keep their case
//! and their dots (`""` is a quote).

use std::fmt;

use crate::sql::quote_ident;

/// `schema.name` as the catalog spells it (`pg_namespace.nspname`, `pg_class.relname`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

/// Why text is not a relation name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("read `{0}` as a relation name: it is empty")]
    Empty(String),
    #[error("read `{0}` as a relation name: a quoted part has no closing `\"`")]
    Unclosed(String),
    #[error("read `{0}` as a relation name: give `table` or `schema.table`")]
    TooManyParts(String),
    #[error("read `{0}` as a relation name: `{1}` cannot stand there (quote the part: `\"...\"`)")]
    Unexpected(String, char),
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> QualifiedName {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// `text` as a relation name; an unqualified name is in `default_schema`.
    pub fn parse(text: &str, default_schema: &str) -> Result<QualifiedName, NameError> {
        let mut parts = parts(text)?;
        match parts.len() {
            1 => Ok(QualifiedName::new(default_schema, parts.remove(0))),
            2 => {
                let name = parts.remove(1);
                Ok(QualifiedName::new(parts.remove(0), name))
            }
            _ => Err(NameError::TooManyParts(text.to_owned())),
        }
    }

    /// Like [`QualifiedName::parse`], for text the caller already knows is a name (it read it
    /// from the catalog or wrote it itself): what cannot be split stays whole as the name.
    pub fn lenient(text: &str, default_schema: &str) -> QualifiedName {
        QualifiedName::parse(text, default_schema)
            .unwrap_or_else(|_| QualifiedName::new(default_schema, text.trim()))
    }

    /// `auth.users`, where Supabase keeps its users: a column referencing it holds a user.
    pub fn is_auth_users(&self) -> bool {
        self.schema == "auth" && self.name == "users"
    }

    /// The name quoted for SQL: `"schema"."name"`.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// `schema.name` unquoted, as messages and reports write it.
impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The dot-separated identifiers of `text`, each folded or unquoted.
fn parts(text: &str) -> Result<Vec<String>, NameError> {
    let mut parts = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut part = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => part.push('"'),
                    Some('"') => break,
                    Some(c) => part.push(c),
                    None => return Err(NameError::Unclosed(text.to_owned())),
                }
            }
            if part.is_empty() {
                return Err(NameError::Empty(text.to_owned()));
            }
        } else {
            while let Some(c) = chars.next_if(|c| c.is_alphanumeric() || *c == '_' || *c == '$') {
                // PostgreSQL folds ASCII letters only (in UTF-8 databases).
                part.push(c.to_ascii_lowercase());
            }
            if part.is_empty() {
                return match chars.peek() {
                    None | Some('.') => Err(NameError::Empty(text.to_owned())),
                    Some(c) => Err(NameError::Unexpected(text.to_owned(), *c)),
                };
            }
        }
        parts.push(part);
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => return Ok(parts),
            Some('.') => {}
            Some(c) => return Err(NameError::Unexpected(text.to_owned(), c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<QualifiedName, NameError> {
        QualifiedName::parse(text, "public")
    }

    #[test]
    fn unquoted_names_fold_and_default_to_the_schema() {
        assert_eq!(
            parse("Notes").unwrap(),
            QualifiedName::new("public", "notes")
        );
        assert_eq!(
            parse(" app.Notes ").unwrap(),
            QualifiedName::new("app", "notes")
        );
        assert_eq!(
            parse("app . t$1").unwrap(),
            QualifiedName::new("app", "t$1")
        );
        assert_eq!(
            QualifiedName::parse("t", "storage").unwrap(),
            QualifiedName::new("storage", "t")
        );
    }

    #[test]
    fn quoted_names_keep_case_dots_and_escaped_quotes() {
        assert_eq!(
            parse(r#""My Schema"."t""#).unwrap(),
            QualifiedName::new("My Schema", "t")
        );
        assert_eq!(
            parse(r#""a.b""#).unwrap(),
            QualifiedName::new("public", "a.b")
        );
        assert_eq!(
            parse(r#""x.y"."Say ""hi""""#).unwrap(),
            QualifiedName::new("x.y", r#"Say "hi""#)
        );
        assert_eq!(parse(r#"app."T""#).unwrap(), QualifiedName::new("app", "T"));
    }

    #[test]
    fn what_is_not_a_name_says_why() {
        assert!(matches!(parse(""), Err(NameError::Empty(_))));
        assert!(matches!(parse("a."), Err(NameError::Empty(_))));
        assert!(matches!(parse(r#""""#), Err(NameError::Empty(_))));
        assert!(matches!(parse(r#""open"#), Err(NameError::Unclosed(_))));
        assert!(matches!(parse("a.b.c"), Err(NameError::TooManyParts(_))));
        assert!(matches!(parse("a b"), Err(NameError::Unexpected(_, 'b'))));
        assert!(matches!(parse("a-b"), Err(NameError::Unexpected(_, '-'))));
    }

    #[test]
    fn a_name_writes_back_quoted_and_plain() {
        let name = parse(r#""My Schema"."a""b""#).unwrap();
        assert_eq!(name.quoted(), r#""My Schema"."a""b""#);
        assert_eq!(name.to_string(), r#"My Schema.a"b"#);
        assert_eq!(parse(&name.quoted()).unwrap(), name);
        assert_eq!(
            QualifiedName::lenient("a.b.c", "public"),
            QualifiedName::new("public", "a.b.c")
        );
    }
}
