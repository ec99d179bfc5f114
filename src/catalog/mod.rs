//! The catalog as every stage names it: a relation's schema-qualified name, parsed once with
//! SQL's quoting rules, so no stage splits `schema.table` text its own way, and the
//! relations of a database listed by one query.

mod name;
mod relations;

pub use self::name::{NameError, QualifiedName};
pub use self::relations::{relations, Relation, Which};
