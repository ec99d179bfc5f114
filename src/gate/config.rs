//! `gate:` in db-ci.yaml: the section the release gate reads, checked as it is parsed.

use std::time::Duration;

use serde::Deserialize;

use super::judge::FindingKind;
use crate::config::{Section, SectionRegistration};

/// `gate:` in db-ci.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// How long one read-only query on production may run (a copy of a table's rows over it
    /// says "not checked").
    #[serde(
        default = "default_prod_timeout",
        deserialize_with = "crate::config::duration"
    )]
    pub statement_timeout: Duration,
    /// How much of production's tables (their size on disk, all together) the gate copies to
    /// the rehearsal to run the pending migrations on their rows; over it the data checks say
    /// "not checked" and block unless allowed.
    #[serde(default = "default_copy_budget_mb")]
    pub copy_budget_mb: u64,
    /// Findings accepted on purpose, each with its reason.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

impl Section for GateConfig {
    const KEY: &'static str = "gate";
}

inventory::submit!(SectionRegistration::of::<GateConfig>());

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            statement_timeout: default_prod_timeout(),
            copy_budget_mb: default_copy_budget_mb(),
            allow: Vec::new(),
        }
    }
}

fn default_copy_budget_mb() -> u64 {
    512
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
    /// Only findings of this kind (an unknown kind is refused where it is written).
    #[serde(default)]
    pub kind: Option<FindingKind>,
    #[serde(deserialize_with = "a_reason")]
    pub reason: String,
}

fn a_reason<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let reason = String::deserialize(d)?;
    if reason.trim().is_empty() {
        return Err(serde::de::Error::custom(
            "an allowance needs a non-empty `reason`",
        ));
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    #[test]
    fn an_allowance_without_a_reason_or_of_an_unknown_kind_is_refused_where_written() {
        for (yaml, line, needle) in [
            (
                "gate:\n  allow:\n    - file: m/0030_drop.sql\n      reason: ' '\n",
                4,
                "needs a non-empty `reason`",
            ),
            (
                "gate:\n  allow:\n    - file: m/0030_drop.sql\n      kind: rewrit\n      reason: ok\n",
                4,
                "rewrit",
            ),
        ] {
            let err = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("db-ci.yaml:{line}:")),
                "{yaml}: {message}"
            );
            assert!(message.contains(needle), "{yaml}: {message}");
            assert_eq!(err.exit_code(), crate::error::exit::INPUT);
        }
    }

    #[test]
    fn a_kind_is_read_as_the_finding_kind_reports_print() {
        let yaml = "gate:\n  allow:\n    - file: m/0030.sql\n      kind: index-build\n      reason: small table\n";
        let config = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap();
        let allow = &config.section::<GateConfig>().allow[0];
        assert_eq!(allow.kind, Some(FindingKind::IndexBuild));
        assert_eq!(allow.kind.unwrap().as_str(), "index-build");
    }
}
