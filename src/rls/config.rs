//! `rls:` in db-ci.yaml: the section the rls stage reads, and the schemas a project exposes.

use serde::Deserialize;

use crate::config::{Section, SectionRegistration};
use crate::project::Project;

/// `rls:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsConfig {
    /// Schemas whose tables and views the API exposes: coverage is computed over them
    /// (default: the Supabase CLI's `[api] schemas`, else `public`; see [`exposed_schemas`]).
    pub exposed_schemas: Option<Vec<String>>,
    /// Fail when fewer than this percentage of (table, command) pairs have a cell.
    pub min_coverage: Option<f64>,
    /// What a run under `CI=true` does with a cell whose expectation nobody reviewed (its
    /// actor under `unreviewed:`): fail it (the default), or accept it as a baseline.
    #[serde(default)]
    pub unreviewed: Unreviewed,
}

/// `rls.unreviewed`: whether CI accepts recorded expectations nobody reviewed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unreviewed {
    /// Under `CI=true` an unreviewed cell fails the run, as a pending snapshot does.
    #[default]
    Fail,
    /// The project takes whatever the database did when it was recorded as its baseline.
    Allow,
}

impl Section for RlsConfig {
    const KEY: &'static str = "rls";
}

inventory::submit!(SectionRegistration::of::<RlsConfig>());

/// The schemas the project's API serves: `rls.exposed_schemas` when db-ci.yaml sets it, else
/// `[api] schemas` from `supabase/config.toml` (none when its API is disabled), else `public`.
pub fn exposed_schemas(project: &Project) -> Vec<String> {
    project
        .config
        .section::<RlsConfig>()
        .exposed_schemas
        .as_ref()
        .or(project.supabase.api_schemas.as_ref())
        .cloned()
        .unwrap_or_else(|| vec!["public".to_owned()])
}
