//! The lint stage: security and performance rules over the catalog (issue 5 builds it).

use serde::Deserialize;

use crate::error::Result;
use crate::events::Reporter;
use crate::report::StageReport;
use crate::stage::StageContext;

/// `lint:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {}

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let _ = (ctx, reporter);
    Ok(StageReport::skipped(
        "lint",
        format!("not built yet in db-ci {}", env!("CARGO_PKG_VERSION")),
    ))
}
