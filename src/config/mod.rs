//! `db-ci.yaml`: the project's configuration, strict about unknown keys. Each stage's
//! section type lives in a file of its own here (`rls`, `snapshot`, `expect`, `lint`, `pgtap`,
//! `gate`), so the stages import config and config imports no stage.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub mod expect;
pub mod gate;
pub mod lint;
pub mod pgtap;
pub mod rls;
pub mod snapshot;

use crate::error::{Error, Result};
use crate::yaml::parse_yaml;

/// The name of the configuration file at the project root.
pub const FILE_NAME: &str = "db-ci.yaml";

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Folders of versioned migration files.
    #[serde(default, deserialize_with = "one_or_many")]
    pub migrations: Vec<String>,
    /// Seed files or globs, in order.
    #[serde(default, deserialize_with = "one_or_many")]
    pub seeds: Vec<String>,
    /// Folder of RLS matrices and properties.
    pub policy_tests: Option<String>,
    #[serde(default)]
    pub shim: ShimConfig,
    #[serde(default)]
    pub replay: ReplayConfig,
    #[serde(default)]
    pub rls: rls::RlsConfig,
    #[serde(default)]
    pub snapshot: snapshot::SnapshotConfig,
    #[serde(default)]
    pub lint: lint::LintConfig,
    /// Catalog expectations checked after replay (reported by the snapshot stage).
    #[serde(default)]
    pub expect: expect::ExpectConfig,
    /// pgTAP test files run by the pgtap stage.
    #[serde(default)]
    pub pgtap: pgtap::PgtapConfig,
    /// The release gate (`db-ci gate --against`): production's statement timeout, accepted
    /// findings.
    #[serde(default)]
    pub gate: gate::GateConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShimConfig {
    /// Classic Supabase default privileges (true) or the 2026 "not auto-exposed" mode.
    #[serde(default = "default_true")]
    pub expose_new_tables: bool,
}

impl Default for ShimConfig {
    fn default() -> Self {
        ShimConfig {
            expose_new_tables: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReplayMode {
    /// Pass 2 re-runs every file.
    Strict,
    /// Pass 2 skips migrations recorded in `supabase_migrations.schema_migrations`.
    Ledger,
    /// Ledger for a Supabase CLI layout (how those projects deploy), strict elsewhere;
    /// resolved by project discovery.
    #[default]
    Auto,
}

impl ReplayMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayMode::Strict => "strict",
            ReplayMode::Ledger => "ledger",
            ReplayMode::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    #[serde(default)]
    pub mode: ReplayMode,
    #[serde(default = "default_statement_timeout", with = "humantime_serde_compat")]
    pub statement_timeout: Duration,
    /// Globs of files run statement by statement instead of in one transaction.
    #[serde(default)]
    pub no_transaction: Vec<String>,
    /// Files run in pass 1 only.
    #[serde(default)]
    pub exempt: Vec<Exemption>,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            mode: ReplayMode::Auto,
            statement_timeout: default_statement_timeout(),
            no_transaction: Vec::new(),
            exempt: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub file: String,
    pub reason: String,
}

fn default_true() -> bool {
    true
}

fn default_statement_timeout() -> Duration {
    Duration::from_secs(60)
}

fn one_or_many<'de, D>(deserializer: D) -> std::result::Result<Vec<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// A humantime duration (`30s`, `2m`) for `deserialize_with`.
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Duration, D::Error> {
    humantime_serde_compat::deserialize(d)
}

mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// A duration, or `off` (no limit: `Duration::ZERO`). A zero spelled as a duration is
    /// refused: it switches the limit off, which must be meant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim() == "off" {
            return Ok(Duration::ZERO);
        }
        let duration = humantime::parse_duration(&text).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration `{text}` ({e}); write e.g. `30s` or `2m`"
            ))
        })?;
        if duration.is_zero() {
            return Err(serde::de::Error::custom(format!(
                "a statement timeout of `{text}` would switch the limit off; write `off` if \
                 that is meant"
            )));
        }
        Ok(duration)
    }
}

impl Config {
    /// Reads `DIR/db-ci.yaml` if it exists.
    pub fn load(dir: &Path) -> Result<Option<Config>> {
        let path = dir.join(FILE_NAME);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("read {}: {e}", path.display())))?;
        // An empty file is a valid, all-defaults config.
        if text.trim().is_empty() {
            return Ok(Some(Config::default()));
        }
        parse_yaml(&text, &path).map(Some)
    }

    /// Whether `DIR/db-ci.yaml` sets `rls.exposed_schemas` itself (else the Supabase CLI's
    /// `[api] schemas` are the default). Called after [`Config::load`] accepted the file.
    pub fn sets_exposed_schemas(dir: &Path) -> bool {
        #[derive(Deserialize)]
        struct Probe {
            rls: Option<ProbeRls>,
        }
        #[derive(Deserialize)]
        struct ProbeRls {
            exposed_schemas: Option<serde::de::IgnoredAny>,
        }
        std::fs::read_to_string(dir.join(FILE_NAME))
            .ok()
            .and_then(|text| serde_saphyr::from_str::<Probe>(&text).ok())
            .and_then(|probe| probe.rls)
            .is_some_and(|rls| rls.exposed_schemas.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_config_parses() {
        let doc = include_str!("../../docs/config.md");
        let yaml = doc
            .split("```yaml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/config.md has a yaml block");
        let config: Config = parse_yaml(yaml, Path::new("docs/config.md")).unwrap();
        assert_eq!(config.migrations, vec!["supabase/migrations"]);
        assert_eq!(config.replay.mode, ReplayMode::Auto);
        assert_eq!(config.replay.statement_timeout, Duration::from_secs(60));
        assert_eq!(config.replay.exempt.len(), 1);
        assert!(config.shim.expose_new_tables);
        assert_eq!(config.lint.allow.len(), 1);
        assert_eq!(config.expect.objects.len(), 2);
        assert!(config.snapshot.enabled);
        assert_eq!(config.pgtap.paths, vec!["supabase/tests"]);
        assert_eq!(config.pgtap.jobs, Some(2));
        assert_eq!(config.gate.allow.len(), 1);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_position() {
        let yaml = "migrations: m\nreplay:\n  mdoe: strict\n";
        let err = parse_yaml::<Config>(yaml, Path::new("db-ci.yaml")).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("db-ci.yaml:3:"), "{message}");
        assert!(message.contains("mdoe"), "{message}");
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn a_zero_timeout_must_be_spelled_off() {
        let err = parse_yaml::<Config>(
            "replay:\n  statement_timeout: 0s\n",
            Path::new("db-ci.yaml"),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("db-ci.yaml:2:"), "{err}");
        assert!(err.to_string().contains("write `off`"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
        let config = parse_yaml::<Config>(
            "replay:\n  statement_timeout: off\n",
            Path::new("db-ci.yaml"),
        )
        .unwrap();
        assert!(config.replay.statement_timeout.is_zero());
    }

    #[test]
    fn bad_duration_names_the_value() {
        let yaml = "replay:\n  statement_timeout: forever\n";
        let err = parse_yaml::<Config>(yaml, Path::new("db-ci.yaml")).unwrap_err();
        assert!(err.to_string().contains("forever"), "{err}");
    }
}
