//! The rls stage: declarative allow/deny matrices run as really impersonated roles.

pub mod spec;

use serde::Deserialize;

use crate::error::Result;
use crate::events::Reporter;
use crate::report::StageReport;
use crate::stage::StageContext;

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

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let _ = (ctx, reporter);
    Ok(StageReport::skipped(
        "rls",
        format!("not built yet in db-ci {}", env!("CARGO_PKG_VERSION")),
    ))
}
