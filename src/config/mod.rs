//! `db-ci.yaml`: the project's configuration, strict about unknown keys. Config owns the
//! keys every run reads (where SQL lives, the shim, the replay); each stage's section is a
//! type in the stage's own folder, registered there ([`SectionRegistration`]) and parsed here at discovery, so config imports no stage and a new stage's section touches
//! no file of config.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::yaml::parse_yaml;

/// The name of the configuration file at the project root.
pub const FILE_NAME: &str = "db-ci.yaml";

/// The top-level keys config itself owns; every other key belongs to a registered section.
const OWN_KEYS: &[&str] = &["migrations", "seeds", "policy_tests", "shim", "replay"];

#[derive(Debug, Default, Clone, Deserialize)]
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
    /// The stages' sections, each parsed by its registered type (defaults when absent).
    #[serde(skip)]
    sections: Sections,
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
        // A db-ci.yaml that is a broken link or a folder is no config to run without.
        match crate::files::file_if_present(&path) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(what) => {
                return Err(Error::input(format!(
                    "read {}: {what}, where db-ci's config file is expected",
                    path.display()
                )))
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("read {}: {e}", path.display())))?;
        Config::parse(&text, &path).map(Some)
    }

    /// Parses the text of a `db-ci.yaml` read from `path`: config's own keys, then every
    /// registered section, then any key no one owns, each error at its `path:line:col`.
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        // An empty file (or one of comments only) is a valid, all-defaults config.
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(Config::default());
        }
        let mut config: Config = parse_yaml(text, path)?;
        let keys: BTreeMap<String, serde::de::IgnoredAny> = parse_yaml(text, path)?;
        if let Some(unknown) = keys.keys().find(|k| !known_key(k)) {
            let line = crate::yaml::key_line(text, &[unknown]).unwrap_or(1);
            // Registration order is the linker's: the sections are listed sorted.
            let mut sections: Vec<&str> = inventory::iter::<SectionRegistration>
                .into_iter()
                .map(|s| s.key)
                .collect();
            sections.sort_unstable();
            let expected: Vec<&str> = OWN_KEYS.iter().copied().chain(sections).collect();
            let message = format!(
                "unknown field `{unknown}`, expected one of {}",
                expected
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            return Err(crate::yaml::key_error(text, path, line, unknown, &message));
        }
        for section in inventory::iter::<SectionRegistration> {
            let value = (section.parse)(text, path)?;
            config.sections.0.insert(section.key, value);
        }
        Ok(config)
    }

    /// The stage section `T` (its defaults when the file does not write it).
    pub fn section<T: Section>(&self) -> &T {
        self.sections
            .0
            .get(T::KEY)
            .and_then(|value| value.downcast_ref::<T>())
            .unwrap_or_else(|| {
                // A type that is not registered is a bug of db-ci, found by any test of its
                // stage: every section is registered beside its type.
                panic!("the `{}` section is not registered", T::KEY)
            })
    }

    /// Replaces the section `T`: for library users and tests building a config in code.
    pub fn set_section<T: Section>(&mut self, value: T) {
        self.sections.0.insert(T::KEY, Arc::new(value));
    }
}

fn known_key(key: &str) -> bool {
    OWN_KEYS.contains(&key)
        || inventory::iter::<SectionRegistration>
            .into_iter()
            .any(|s| s.key == key)
}

/// A stage's section of `db-ci.yaml`: the type the stage reads, parsed (with every check
/// that needs no database) when the project is discovered.
pub trait Section:
    serde::de::DeserializeOwned + Default + fmt::Debug + Send + Sync + 'static
{
    /// The top-level key of the section.
    const KEY: &'static str;
}

/// A section type made known to config, submitted beside the type:
/// `inventory::submit!(SectionRegistration::of::<RlsConfig>());`.
pub struct SectionRegistration {
    key: &'static str,
    parse: fn(&str, &Path) -> Result<Arc<dyn Any + Send + Sync>>,
    default: fn() -> Arc<dyn Any + Send + Sync>,
}

impl SectionRegistration {
    pub const fn of<T: Section>() -> SectionRegistration {
        SectionRegistration {
            key: T::KEY,
            parse: parse_section::<T>,
            default: default_section::<T>,
        }
    }
}

inventory::collect!(SectionRegistration);

fn parse_section<T: Section>(text: &str, path: &Path) -> Result<Arc<dyn Any + Send + Sync>> {
    let only: OnlyKey<T> = parse_yaml(text, path)?;
    Ok(Arc::new(only.0.unwrap_or_default()))
}

fn default_section<T: Section>() -> Arc<dyn Any + Send + Sync> {
    Arc::new(T::default())
}

/// The whole document read for one key: the section's value is parsed from the document
/// itself, so its errors carry their real line and column; every other key is skipped.
struct OnlyKey<T>(Option<T>);

impl<'de, T: Section> Deserialize<'de> for OnlyKey<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: Section> serde::de::Visitor<'de> for Visit<T> {
            type Value = OnlyKey<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<OnlyKey<T>, A::Error> {
                let mut found = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == T::KEY {
                        // `rls:` with nothing after it is the section's defaults.
                        found = map
                            .next_value::<Option<T>>()?
                            .or_else(|| Some(T::default()));
                    } else {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(OnlyKey(found))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

/// Every registered section's value, keyed by its top-level key.
#[derive(Clone)]
struct Sections(BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>);

impl Default for Sections {
    fn default() -> Self {
        Sections(
            inventory::iter::<SectionRegistration>
                .into_iter()
                .map(|s| (s.key, (s.default)()))
                .collect(),
        )
    }
}

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
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
        let config = Config::parse(yaml, Path::new("docs/config.md")).unwrap();
        assert_eq!(config.migrations, vec!["supabase/migrations"]);
        assert_eq!(config.replay.mode, ReplayMode::Auto);
        assert_eq!(config.replay.statement_timeout, Duration::from_secs(60));
        assert_eq!(config.replay.exempt.len(), 1);
        assert!(config.shim.expose_new_tables);
        // Each stage's section, read through its registered type.
        assert_eq!(config.section::<crate::lint::LintConfig>().allow.len(), 1);
        assert_eq!(
            config
                .section::<crate::snapshot::expect_config::ExpectConfig>()
                .objects
                .len(),
            2
        );
        assert!(config.section::<crate::snapshot::SnapshotConfig>().enabled);
        let pgtap = config.section::<crate::pgtap::PgtapConfig>();
        assert_eq!(pgtap.path_names(), vec!["supabase/tests"]);
        assert_eq!(config.section::<crate::gate::GateConfig>().allow.len(), 1);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_position() {
        let yaml = "migrations: m\nreplay:\n  mdoe: strict\n";
        let err = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("db-ci.yaml:3:"), "{message}");
        assert!(message.contains("mdoe"), "{message}");
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn an_unknown_top_level_key_is_refused_at_its_line_naming_every_section() {
        let yaml = "migrations: m\n# note\nrsl:\n  min_coverage: 50\n";
        let err = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap_err();
        let message = err.to_string();
        assert!(
            message.ends_with(
                "db-ci.yaml:3:1: unknown field `rsl`, expected one of `migrations`, `seeds`, \
                 `policy_tests`, `shim`, `replay`, `expect`, `gate`, `lint`, `pgtap`, `rls`, \
                 `snapshot`"
            ),
            "{message}"
        );
        for key in OWN_KEYS
            .iter()
            .chain(&["rls", "lint", "snapshot", "expect", "pgtap", "gate"])
        {
            assert!(message.contains(&format!("`{key}`")), "{key}: {message}");
        }
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
    }

    #[test]
    fn a_section_error_is_at_its_line_in_the_whole_file() {
        let yaml = "migrations: m\nrls:\n  exposed_schemas: [public]\n  min_coverge: 50\n";
        let err = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("db-ci.yaml:4:"), "{err}");
        assert!(err.to_string().contains("min_coverge"), "{err}");
    }

    #[test]
    fn an_absent_or_empty_section_is_its_defaults() {
        let config = Config::parse("rls:\n# nothing yet\n", Path::new("db-ci.yaml")).unwrap();
        assert_eq!(config.section::<crate::rls::RlsConfig>().min_coverage, None);
        let config = Config::parse("# only a comment\n", Path::new("db-ci.yaml")).unwrap();
        assert!(config.section::<crate::snapshot::SnapshotConfig>().enabled);
        assert!(
            Config::default()
                .section::<crate::snapshot::SnapshotConfig>()
                .enabled
        );
    }

    #[test]
    fn a_zero_timeout_must_be_spelled_off() {
        let err = Config::parse(
            "replay:\n  statement_timeout: 0s\n",
            Path::new("db-ci.yaml"),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("db-ci.yaml:2:"), "{err}");
        assert!(err.to_string().contains("write `off`"), "{err}");
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
        let config = Config::parse(
            "replay:\n  statement_timeout: off\n",
            Path::new("db-ci.yaml"),
        )
        .unwrap();
        assert!(config.replay.statement_timeout.is_zero());
    }

    #[test]
    fn bad_duration_names_the_value() {
        let yaml = "replay:\n  statement_timeout: forever\n";
        let err = Config::parse(yaml, Path::new("db-ci.yaml")).unwrap_err();
        assert!(err.to_string().contains("forever"), "{err}");
    }
}
