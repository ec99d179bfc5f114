//! `pgtap:` in db-ci.yaml: the section the pgtap stage reads.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::config::{Section, SectionRegistration};

/// `pgtap:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgtapConfig {
    /// Folders (searched recursively for `*.sql` and `*.pg`) or single test files, each where
    /// db-ci.yaml writes it (one that is not there is an input error at its position).
    #[serde(default = "default_paths")]
    pub paths: Vec<Spanned<String>>,
}

impl Section for PgtapConfig {
    const KEY: &'static str = "pgtap";
}

inventory::submit!(SectionRegistration::of::<PgtapConfig>());

impl Default for PgtapConfig {
    fn default() -> Self {
        PgtapConfig {
            paths: default_paths(),
        }
    }
}

/// Where the Supabase CLI keeps pgTAP tests: looked in when db-ci.yaml names no paths, and
/// skipped quietly when absent.
pub(crate) const DEFAULT_PATH: &str = "supabase/tests";

fn default_paths() -> Vec<Spanned<String>> {
    use serde_saphyr::Location;
    vec![Spanned::new(
        DEFAULT_PATH.to_owned(),
        Location::UNKNOWN,
        Location::UNKNOWN,
    )]
}

impl PgtapConfig {
    /// The paths as written, without their positions.
    pub fn path_names(&self) -> Vec<String> {
        self.paths.iter().map(|path| path.value.clone()).collect()
    }
}
