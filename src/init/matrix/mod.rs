//! The matrices `db-ci init` writes: per exposed schema, actors, a setup with one row per
//! table in "alice's world" (generated in foreign-key order, owner columns set to alice, a
//! membership row making her a member), and one case per table and view with every command
//! left without an expectation for the rls stage to record. Every row and operation is tried
//! as admin first; what fails there is left out with the reason, never written to fail later.
//!
//! This module owns the draft's types; `actors` declares who the matrix runs as, `rows`
//! generates values and rows, `trial` tries them as admin, `as_admin` holds the statements
//! it runs, and `render` writes the draft as YAML.

mod actors;
mod as_admin;
mod render;
mod rows;
#[cfg(test)]
mod test_support;
mod trial;

pub use self::actors::{actors, guessed_key, resolve_actors, sign_up_failure};
pub use self::render::render;
pub use self::trial::draft;

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
