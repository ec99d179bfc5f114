//! The rls stage on the command line: `--min-coverage` on every command that runs it, and
//! its own command `db-ci rls` with `--record` and `--accept`.

use std::path::Path;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::record::Recording;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::report::Verdict;
use crate::stage::{Answer, StageCli, StageCommand, StageOptions};

/// The rls stage's options in a run.
#[derive(Debug, Clone, Default)]
pub struct RlsOptions {
    /// Fail below this coverage percentage (overrides `rls.min_coverage`).
    pub min_coverage: Option<f64>,
    /// `rls --record`: cells without an expectation, or contradicting theirs, record what
    /// they observe (never written in CI, where they fail).
    pub record: Option<Recording>,
    /// The run checks what this very command just recorded (`init`'s last run): its
    /// unreviewed cells are reported and counted, not failed in CI. The next run fails them.
    pub just_recorded: bool,
    /// `rls --accept` without `--record`: apply the pending recordings, run nothing.
    pub accept_only: bool,
}

pub(super) const CLI: StageCli = StageCli {
    flags,
    options,
    command: Some(StageCommand {
        name: "rls",
        about: "Replay once, then run the RLS matrices (`--record` fills and updates \
                expectations from what the database does; `--accept` applies a pending \
                recording)",
        args: command_args,
        instead: Some(instead),
    }),
};

fn flags(command: Command) -> Command {
    command.arg(
        Arg::new("min_coverage")
            .long("min-coverage")
            .value_name("PERCENT")
            .value_parser(clap::value_parser!(f64))
            .help(
                "Fail the rls stage when fewer than this percentage of exposed (table, \
                 command) pairs have a cell",
            ),
    )
}

fn command_args(command: Command) -> Command {
    command
        .arg(
            Arg::new("record")
                .long("record")
                .action(ArgAction::SetTrue)
                .help(
                    "Record what each cell observes where it has no expectation or \
                     contradicts its own, into `<matrix>.yaml.pending` beside each matrix \
                     for review (never in CI: there a recording is a failure). With \
                     `--accept`, into the matrices themselves",
                ),
        )
        .arg(
            Arg::new("accept")
                .long("accept")
                .action(ArgAction::SetTrue)
                .help(
                    "Apply the pending recordings (`*.yaml.pending`) to their matrices and \
                     show what changed; with `--record`, write recordings straight into the \
                     matrices",
                ),
        )
}

fn options(matches: &ArgMatches, options: &mut StageOptions) {
    let flag = |id: &str| matches.try_get_one::<bool>(id).ok().flatten() == Some(&true);
    let (record, accept) = (flag("record"), flag("accept"));
    options.edit(|rls: &mut RlsOptions| {
        rls.min_coverage = matches
            .try_get_one::<f64>("min_coverage")
            .ok()
            .flatten()
            .copied();
        rls.record = record.then_some(if accept {
            Recording::Write
        } else {
            Recording::Pending
        });
        rls.accept_only = accept && !record;
    });
}

fn instead(dir: &Path, options: &StageOptions) -> Option<Result<Answer>> {
    options
        .get::<RlsOptions>()
        .accept_only
        .then(|| accept_command(dir))
}

/// `db-ci rls --accept`: applies the pending recordings and says who can do what, changed.
fn accept_command(dir: &Path) -> Result<Answer> {
    if crate::files::in_ci() {
        return Err(Error::input(
            "accept recordings: accepting is off in CI (CI=true); accept locally and commit \
             the matrices",
        ));
    }
    let accepted = Project::find(dir).and_then(|p| super::record::accept_pending(&p))?;
    let text = if accepted.is_empty() {
        "Nothing to accept: no pending recording (`db-ci rls --record` writes them)".to_owned()
    } else {
        let mut lines = Vec::new();
        for file in accepted {
            lines.push(format!(
                "Accepted {} ({} change(s))",
                file.rel,
                file.changes.len()
            ));
            lines.extend(file.changes.iter().map(|change| format!("  {change}")));
        }
        lines.join("\n")
    };
    Ok(Answer {
        text,
        verdict: Verdict::Pass,
    })
}
