//! `lint:` in db-ci.yaml and `--fail-on-lint`: the levels, the section type and the rule
//! ids the lint stage's rules answer to.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The id of every lint rule, in report order: what `lint.levels` and `lint.allow` may name.
/// The lint stage's `rules()` has exactly these (a test there holds them equal).
pub const RULE_IDS: &[&str] = &[
    "rls_disabled_in_public",
    "policy_exists_rls_disabled",
    "rls_enabled_no_policy",
    "security_definer_view",
    "materialized_view_in_api",
    "auth_users_exposed",
    "rls_references_user_metadata",
    "rls_policy_always_true",
    "security_definer_search_path",
    "function_search_path_mutable",
    "anon_security_definer_function_executable",
    "authenticated_security_definer_function_executable",
    "auth_rls_initplan",
    "multiple_permissive_policies",
    "unindexed_foreign_keys",
    "no_primary_key",
    "duplicate_index",
    "extension_in_public",
];

/// How serious a finding is. Ordered: `info < warn < error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The lowest level that fails the run, from the command line (`--fail-on-lint`), overriding
/// `lint.fail_level`; `never` reports findings without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Info,
    Warn,
    Error,
    Never,
}

impl FailOn {
    /// The level at or above which findings fail; `None` for never.
    pub fn level(self) -> Option<Level> {
        match self {
            FailOn::Info => Some(Level::Info),
            FailOn::Warn => Some(Level::Warn),
            FailOn::Error => Some(Level::Error),
            FailOn::Never => None,
        }
    }
}

/// A rule's level in the config: a level, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    Off,
    Info,
    Warn,
    Error,
}

/// `lint:` in db-ci.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintConfig {
    /// Findings at or above this level fail the stage (default `error`).
    pub fail_level: Option<Level>,
    /// Per rule id: `error`, `warn`, `info` or `off`.
    #[serde(default, deserialize_with = "levels_of_known_rules")]
    pub levels: BTreeMap<String, RuleLevel>,
    /// Findings accepted on purpose, each with its reason.
    #[serde(default)]
    pub allow: Vec<Allowance>,
}

/// `lint.levels` read strictly: its keys are rule ids, so an unknown one is an unknown key,
/// rejected where it is written.
fn levels_of_known_rules<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<BTreeMap<String, RuleLevel>, D::Error> {
    let levels = BTreeMap::<String, RuleLevel>::deserialize(deserializer)?;
    for id in levels.keys() {
        known_rule(id).map_err(serde::de::Error::custom)?;
    }
    Ok(levels)
}

fn known_rule_id<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    let id = String::deserialize(deserializer)?;
    known_rule(&id).map_err(serde::de::Error::custom)?;
    Ok(id)
}

fn a_reason<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<String, D::Error> {
    let reason = String::deserialize(deserializer)?;
    if reason.trim().is_empty() {
        return Err(serde::de::Error::custom("an allowance needs a reason"));
    }
    Ok(reason)
}

fn known_rule(id: &str) -> std::result::Result<(), String> {
    if RULE_IDS.contains(&id) {
        return Ok(());
    }
    Err(format!(
        "unknown rule `{id}` (rules: {})",
        RULE_IDS.join(", ")
    ))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    #[serde(deserialize_with = "known_rule_id")]
    pub rule: String,
    /// The finding's object as reported, e.g. `public.greetings`.
    pub object: String,
    #[serde(deserialize_with = "a_reason")]
    pub reason: String,
}
