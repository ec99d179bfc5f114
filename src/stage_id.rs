//! The stages' names as a type: what a run reaches, what `--json` calls them, what a library
//! user selects. A misspelt stage is a compile error, or a parse error naming the stages.

use std::fmt;

use serde::Serialize;
use strum::VariantArray;

/// One stage of db-ci, named as in the JSON report. The variants are in the order a run
/// reaches them; every variant but [`StageId::Gate`] (a command of its own) is a stage of
/// `db-ci run`, and every one after idempotence runs on the replayed database through the
/// stage registry (`stage::Registration`), so a new stage is a variant here and a folder
/// that registers it, wherever among the variants it goes.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    clap::ValueEnum,
    strum::VariantArray,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum StageId {
    /// Every migration and seed applies from scratch.
    Replay,
    /// The pipeline replayed a second time succeeds and changes nothing.
    Idempotence,
    /// The RLS allow/deny matrices, as impersonated roles.
    Rls,
    /// Property tests of trigger-maintained data.
    Properties,
    /// The project's own pgTAP suites.
    Pgtap,
    /// The catalog against its recorded snapshot.
    Snapshot,
    /// Splinter-style lints of the catalog.
    Lint,
    /// The release gate against production (`db-ci gate`), never part of `db-ci run`; where
    /// it stands among the variants does not matter.
    Gate,
}

impl StageId {
    /// The stages of `db-ci run`, in the order a run reaches them: every one but the gate.
    pub fn run() -> impl Iterator<Item = StageId> {
        Self::VARIANTS
            .iter()
            .copied()
            .filter(|stage| *stage != StageId::Gate)
    }

    /// The stages that work on the replayed database, in order (replay and idempotence come
    /// first and are run apart: every later stage needs their result).
    pub fn after_replay() -> impl Iterator<Item = StageId> {
        Self::run().skip_while(|stage| matches!(stage, StageId::Replay | StageId::Idempotence))
    }

    /// The name in the JSON report and on the command line.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The stage called `name`, or why there is none (naming the stages there are).
    pub fn parse(name: &str) -> Result<StageId, UnknownStage> {
        Self::VARIANTS
            .iter()
            .copied()
            .find(|stage| stage.as_str() == name)
            .ok_or_else(|| UnknownStage(name.to_owned()))
    }
}

/// A name no stage has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStage(pub String);

impl fmt::Display for UnknownStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = StageId::VARIANTS.iter().map(|s| s.as_str()).collect();
        write!(f, "know stage `{}` (stages: {})", self.0, known.join(", "))
    }
}

impl std::error::Error for UnknownStage {}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that `{:<12}` aligns stage names in tables.
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for StageId {
    type Err = UnknownStage;

    fn from_str(name: &str) -> Result<StageId, UnknownStage> {
        StageId::parse(name)
    }
}

/// Reports read by JSON consumers compare names as strings: let tests do so too.
impl PartialEq<&str> for StageId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_serialize_as_the_json_contract_says() {
        for &stage in StageId::VARIANTS {
            assert_eq!(StageId::parse(stage.as_str()), Ok(stage));
            assert_eq!(
                serde_json::to_string(&stage).unwrap(),
                format!("\"{}\"", stage.as_str())
            );
        }
    }

    #[test]
    fn a_misspelt_stage_is_refused_with_the_names_there_are() {
        let error = StageId::parse("rsl").unwrap_err().to_string();
        assert!(error.contains("`rsl`"), "{error}");
        assert!(error.contains("rls"), "{error}");
    }

    #[test]
    fn the_run_is_every_stage_but_the_gate_and_after_replay_its_tail() {
        let run: Vec<_> = StageId::run().collect();
        assert_eq!(run.first(), Some(&StageId::Replay));
        assert!(!run.contains(&StageId::Gate));
        assert_eq!(run.len(), StageId::VARIANTS.len() - 1);
        let after: Vec<_> = StageId::after_replay().collect();
        assert_eq!(run[2..], after[..]);
        assert_eq!(after.first(), Some(&StageId::Rls));
    }

    #[test]
    fn display_pads_for_tables() {
        assert_eq!(format!("{:<8}|", StageId::Rls), "rls     |");
    }
}
