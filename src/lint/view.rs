//! The lint stage on the command line (`--fail-on-lint`, `db-ci lint`) and in the job
//! summary (the findings below the fail level, folded).

use std::fmt::Write as _;

use clap::{Arg, ArgMatches, Command};
use serde::Serialize;

use crate::report::detail::{StageDetail, SummaryParts};
use crate::report::github::{code, inline};
use crate::report::level::FailOn;
use crate::report::{CaseVerdict, StageReport};
use crate::stage::{StageCli, StageCommand, StageOptions};

/// The lint stage's options in a run.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// The lowest level that fails the run (overrides `lint.fail_level`).
    pub fail_on: Option<FailOn>,
}

pub(super) const CLI: StageCli = StageCli {
    flags,
    options,
    command: Some(StageCommand::plain(
        "lint",
        "Replay once, then lint the catalog",
    )),
};

fn flags(command: Command) -> Command {
    command.arg(
        Arg::new("fail_on_lint")
            .long("fail-on-lint")
            .value_name("LEVEL")
            .env("DB_CI_FAIL_ON_LINT")
            .value_parser(clap::builder::EnumValueParser::<FailOn>::new())
            .help("The lowest lint level that fails the run (overrides `lint.fail_level` in db-ci.yaml)"),
    )
}

fn options(matches: &ArgMatches, options: &mut StageOptions) {
    let fail_on = matches
        .try_get_one::<FailOn>("fail_on_lint")
        .ok()
        .flatten()
        .copied();
    options.set(LintOptions { fail_on });
}

/// The lint stage's payload: nothing beyond its cases in the JSON; in the summary, its
/// findings below the fail level.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LintDetail;

impl StageDetail for LintDetail {
    fn summary(&self, stage: &StageReport, summary: &mut SummaryParts) {
        summary.sections.push((
            "the lint findings below the fail level",
            lint_findings(stage),
        ));
    }
}

/// Lint findings below the fail level (passing checks with a message), folded.
fn lint_findings(stage: &StageReport) -> String {
    let findings: Vec<_> = stage
        .cases
        .iter()
        .filter(|c| c.verdict == CaseVerdict::Pass)
        .filter_map(|c| c.message.as_ref().map(|m| (c, m)))
        .collect();
    if findings.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "<details><summary>Lint: {} finding{} below the fail level</summary>\n\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    );
    for (case, message) in findings {
        let place = match (&case.file, case.line) {
            (Some(file), Some(line)) => format!("{} ", code(&format!("{file}:{line}"))),
            (Some(file), None) => format!("{} ", code(file)),
            _ => String::new(),
        };
        let _ = writeln!(out, "- {place}{}", inline(message));
    }
    out.push_str("\n</details>\n\n");
    out
}
