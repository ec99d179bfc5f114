//! `gate:` in db-ci.yaml: the section type the release gate reads.

use std::time::Duration;

use serde::Deserialize;

/// `gate:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// How long one read-only query on production may run (pre-flight checks over it say
    /// "not checked").
    #[serde(
        default = "default_prod_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub statement_timeout: Duration,
    /// Findings accepted on purpose, each with its reason.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            statement_timeout: default_prod_timeout(),
            allow: Vec::new(),
        }
    }
}

fn default_prod_timeout() -> Duration {
    Duration::from_secs(5)
}

/// One accepted finding: in `file`, optionally only on `relation` and of `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    pub file: String,
    #[serde(default)]
    pub relation: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub reason: String,
}
