//! `db-ci.yaml`: the project's configuration, strict about unknown keys.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

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
    pub rls: crate::rls::RlsConfig,
    #[serde(default)]
    pub snapshot: crate::snapshot::SnapshotConfig,
    #[serde(default)]
    pub lint: crate::lint::LintConfig,
    /// Catalog expectations checked after replay (reported by the snapshot stage).
    #[serde(default)]
    pub expect: crate::snapshot::ExpectConfig,
    /// pgTAP test files run by the pgtap stage.
    #[serde(default)]
    pub pgtap: crate::pgtap::PgtapConfig,
    /// The release gate (`db-ci gate --against`): production's statement timeout, accepted
    /// findings.
    #[serde(default)]
    pub gate: crate::gate::GateConfig,
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

/// Parses YAML text into `T`, turning errors into diagnostics that point at `path:line:col`.
///
/// Every input file is YAML 1.2 (the core schema), as users write GitHub workflows: only
/// `true`/`false` are booleans, so a plain `n`, `no`, `off`, `y`, `yes`, `on` stays text
/// (YAML 1.1 read `title: n` as `false`), and `1_000` is text, not a number.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        underscored_numbers_as_strings: true,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|err| yaml_error(&err, text, path))
}

pub(crate) fn yaml_error(err: &serde_saphyr::Error, text: &str, path: &Path) -> Error {
    let location = err
        .location()
        .map(|l| format!(":{}:{}", l.line(), l.column()))
        .unwrap_or_default();
    // The user-facing wording: the default one gives the parser's own advice (e.g. "set
    // DuplicateKeyPolicy in Options") that means nothing to a db-ci user.
    let formatter = serde_saphyr::UserMessageFormatter;
    let message = format!(
        "{}{location}: {}",
        path.display(),
        bare_message(&serde_saphyr::MessageFormatter::format_message(
            &formatter, err
        ))
    );
    let name = path.display().to_string();
    // The error may carry a snippet of its own, named `<input>`: the option renames it too.
    let options = serde_saphyr::render_options! {
        source_name: Some(name.as_str()),
        formatter: &formatter,
    };
    let report = serde_saphyr::miette::to_miette_report_with_options(err, text, &name, options);
    Error::Yaml {
        rendered: format!("{message}\n{report:?}"),
        message,
        path: path.to_path_buf(),
    }
}

/// serde-saphyr's first line without its own `error: line N column M:` prefix.
fn bare_message(text: &str) -> &str {
    let first = text.lines().next().unwrap_or(text);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((position, message)) if position.contains("column") => message,
        _ => first,
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
        let doc = include_str!("../docs/config.md");
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
    fn yaml_1_1_booleans_are_text_and_core_scalars_are_typed() {
        let yaml = "a: n\nb: no\nc: off\nd: Yes\ne: on\nf: y\ng: true\nh: false\ni: ~\nj: null\nk: 3\nl: 2.5\nm: \"true\"\no: '3'\np: 1_000\n";
        let value: serde_json::Value = parse_yaml(yaml, Path::new("t.yaml")).unwrap();
        for (key, text) in [
            ("a", "n"),
            ("b", "no"),
            ("c", "off"),
            ("d", "Yes"),
            ("e", "on"),
            ("f", "y"),
        ] {
            assert_eq!(value[key], serde_json::json!(text), "{key}");
        }
        assert_eq!(value["g"], serde_json::json!(true));
        assert_eq!(value["h"], serde_json::json!(false));
        assert!(value["i"].is_null() && value["j"].is_null());
        assert_eq!(value["k"], serde_json::json!(3));
        assert_eq!(value["l"], serde_json::json!(2.5));
        // Quoted is always text.
        assert_eq!(value["m"], serde_json::json!("true"));
        assert_eq!(value["o"], serde_json::json!("3"));
        assert_eq!(value["p"], serde_json::json!("1_000"));
    }

    #[test]
    fn bad_duration_names_the_value() {
        let yaml = "replay:\n  statement_timeout: forever\n";
        let err = parse_yaml::<Config>(yaml, Path::new("db-ci.yaml")).unwrap_err();
        assert!(err.to_string().contains("forever"), "{err}");
    }

    #[test]
    fn yaml_errors_name_the_file_and_never_the_parsers_own_advice() {
        let yaml = "replay:\n  statement_timeout: 1s\nreplay:\n  statement_timeout: 2s\n";
        let err = parse_yaml::<Config>(yaml, Path::new("project/db-ci.yaml")).unwrap_err();
        let rendered = err.render();
        assert!(
            err.to_string()
                .starts_with("project/db-ci.yaml:3:1: duplicate mapping key `replay`"),
            "{err}"
        );
        assert!(rendered.contains("[project/db-ci.yaml:3:1]"), "{rendered}");
        assert!(!rendered.contains("<input>"), "{rendered}");
        assert!(!rendered.contains("DuplicateKeyPolicy"), "{rendered}");
    }
}
