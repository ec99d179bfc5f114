//! `snapshot:` in db-ci.yaml: the section the snapshot stage reads.

use serde::Deserialize;

use crate::config::{Section, SectionRegistration};

/// Where the snapshot lives when the config does not say, relative to the project root.
pub const DEFAULT_PATH: &str = "db-ci.snapshot.yaml";

/// `snapshot:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Where the committed snapshot lives, relative to the project root.
    pub path: Option<String>,
    /// `false` turns the comparison off (expectations still run).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl Section for SnapshotConfig {
    const KEY: &'static str = "snapshot";
}

inventory::submit!(SectionRegistration::of::<SnapshotConfig>());

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            path: None,
            enabled: true,
        }
    }
}

fn enabled_by_default() -> bool {
    true
}

impl SnapshotConfig {
    /// The snapshot's path relative to the project root, with `/` separators.
    pub fn relative_path(&self) -> String {
        self.path.clone().unwrap_or_else(|| DEFAULT_PATH.to_owned())
    }
}
