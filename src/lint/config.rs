//! `lint:` in db-ci.yaml: the section the lint stage reads, its rule ids checked against the
//! rules there are as it is parsed.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::{Section, SectionRegistration};
use crate::report::level::Level;

/// A rule's level in the config: a level, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleLevel {
    Off,
    Info,
    Warn,
    Error,
}

impl Section for LintConfig {
    const KEY: &'static str = "lint";
}

inventory::submit!(SectionRegistration::of::<LintConfig>());

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

/// A rule id no lint rule has.
#[derive(Debug, thiserror::Error)]
#[error("unknown rule `{id}` (rules: {})", .known.join(", "))]
struct UnknownRule {
    id: String,
    known: Vec<&'static str>,
}

fn known_rule(id: &str) -> std::result::Result<(), UnknownRule> {
    let rules = super::rules();
    if rules.iter().any(|rule| rule.id == id) {
        return Ok(());
    }
    Err(UnknownRule {
        id: id.to_owned(),
        known: rules.iter().map(|rule| rule.id).collect(),
    })
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
