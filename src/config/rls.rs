//! `rls:` in db-ci.yaml: the section type the rls stage reads.

use serde::Deserialize;

/// `rls:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlsConfig {
    /// Schemas whose tables and views the API exposes: coverage is computed over them.
    #[serde(default = "default_exposed_schemas")]
    pub exposed_schemas: Vec<String>,
    /// Fail when fewer than this percentage of (table, command) pairs have a cell.
    pub min_coverage: Option<f64>,
}

impl Default for RlsConfig {
    fn default() -> Self {
        RlsConfig {
            exposed_schemas: default_exposed_schemas(),
            min_coverage: None,
        }
    }
}

fn default_exposed_schemas() -> Vec<String> {
    vec!["public".to_owned()]
}
