//! The snapshot stage: the project's catalog as one deterministic YAML file, compared with
//! the committed one (issue 5 builds it), and drift of a live database against it.

use serde::Deserialize;

use crate::error::Result;
use crate::events::Reporter;
use crate::report::StageReport;
use crate::stage::StageContext;

/// `snapshot:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Where the committed snapshot lives, relative to the project root.
    pub path: Option<String>,
}

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let _ = (ctx, reporter);
    Ok(StageReport::skipped(
        "snapshot",
        format!("not built yet in db-ci {}", env!("CARGO_PKG_VERSION")),
    ))
}

/// `db-ci drift --against URL`: returns the exit code.
pub async fn drift_command(dir: &std::path::Path, against: &str) -> i32 {
    let _ = (dir, against);
    eprintln!("error: drift is not built yet");
    crate::error::exit::ENVIRONMENT
}
