//! The catalog as every stage names it: a relation's schema-qualified name, parsed once with
//! SQL's quoting rules, so no stage splits `schema.table` text its own way.

mod name;

pub use self::name::{NameError, QualifiedName};
