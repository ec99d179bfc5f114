//! The stages' names as a type: what a run reaches, what `--json` calls them, what a library
//! user selects. A misspelt stage is a compile error, or a parse error naming the stages.

use std::fmt;

use serde::Serialize;

/// One stage of db-ci, named as in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
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
    /// The release gate against production (`db-ci gate`), never part of `db-ci run`.
    Gate,
}

impl StageId {
    /// The stages of `db-ci run`, in the order a run reaches them.
    pub const RUN: [StageId; 7] = [
        StageId::Replay,
        StageId::Idempotence,
        StageId::Rls,
        StageId::Properties,
        StageId::Pgtap,
        StageId::Snapshot,
        StageId::Lint,
    ];

    /// The stages that work on the replayed database, in order (replay and idempotence come
    /// first and are run apart: every later stage needs their result).
    pub const AFTER_REPLAY: [StageId; 5] = [
        StageId::Rls,
        StageId::Properties,
        StageId::Pgtap,
        StageId::Snapshot,
        StageId::Lint,
    ];

    /// The name in the JSON report and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StageId::Replay => "replay",
            StageId::Idempotence => "idempotence",
            StageId::Rls => "rls",
            StageId::Properties => "properties",
            StageId::Pgtap => "pgtap",
            StageId::Snapshot => "snapshot",
            StageId::Lint => "lint",
            StageId::Gate => "gate",
        }
    }

    /// The stage called `name`, or an error fragment listing the names there are.
    pub fn parse(name: &str) -> Result<StageId, String> {
        [StageId::Gate]
            .into_iter()
            .chain(StageId::RUN)
            .find(|stage| stage.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = StageId::RUN.iter().map(|s| s.as_str()).collect();
                format!("know stage `{name}` (stages: {}, gate)", known.join(", "))
            })
    }
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad` so that `{:<12}` aligns stage names in tables.
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for StageId {
    type Err = String;

    fn from_str(name: &str) -> Result<StageId, String> {
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
        for stage in StageId::RUN.into_iter().chain([StageId::Gate]) {
            assert_eq!(StageId::parse(stage.as_str()), Ok(stage));
            assert_eq!(
                serde_json::to_string(&stage).unwrap(),
                format!("\"{}\"", stage.as_str())
            );
        }
    }

    #[test]
    fn a_misspelt_stage_is_refused_with_the_names_there_are() {
        let error = StageId::parse("rsl").unwrap_err();
        assert!(error.contains("`rsl`"), "{error}");
        assert!(error.contains("rls"), "{error}");
    }

    #[test]
    fn after_replay_is_the_run_order_less_its_first_two() {
        assert_eq!(StageId::RUN[2..], StageId::AFTER_REPLAY);
    }

    #[test]
    fn display_pads_for_tables() {
        assert_eq!(format!("{:<8}|", StageId::Rls), "rls     |");
    }
}
