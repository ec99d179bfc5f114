//! `pgtap:` in db-ci.yaml: the section the pgtap stage reads.

use serde::Deserialize;

use crate::config::{Section, SectionRegistration};

/// `pgtap:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgtapConfig {
    /// Folders (searched recursively for `*.sql` and `*.pg`) or single test files.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// Parallel sessions, each on its own clone (default: the number of cores, at most 4).
    pub jobs: Option<usize>,
}

impl Section for PgtapConfig {
    const KEY: &'static str = "pgtap";
}

inventory::submit!(SectionRegistration::of::<PgtapConfig>());

impl Default for PgtapConfig {
    fn default() -> Self {
        PgtapConfig {
            paths: default_paths(),
            jobs: None,
        }
    }
}

pub(crate) fn default_paths() -> Vec<String> {
    vec!["supabase/tests".to_owned()]
}
