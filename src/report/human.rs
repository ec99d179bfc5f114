//! The console reporter: one line per stage with its duration, failures with file:line and
//! the SQL excerpt, each stage's own lines (its detail's), one summary line. Colour per `--color` (on a
//! terminal and in GitHub Actions logs by default, never with a non-empty `NO_COLOR`), in
//! anstyle's styles; progress bars for long stages only on a terminal.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Color, Style};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::detail::Console;
use super::{
    escape_controls as esc, CaseVerdict, Failure, Report, StageReport, StageVerdict, Verdict,
};
use crate::report::events::{Event, Reporter};
use crate::report::file::FileResult;

/// Width of the right-aligned verb column (`   Booted`, `     FAIL`…).
const VERB_WIDTH: usize = 12;
/// Width of the stage-name column, so that the reasons after it line up (`idempotence` + 1).
const STAGE_NAME_WIDTH: usize = 12;

pub struct Human<W: Write> {
    out: W,
    color: bool,
    /// Draw a progress bar while a stage runs (a terminal only: bars in a CI log are noise).
    progress: bool,
    bar: Option<ProgressBar>,
    /// Print every file as it is applied, and findings below the fail level.
    pub verbose: bool,
    /// Fold each stage's detail in `::group::`/`::endgroup::` (GitHub Actions logs).
    pub groups: bool,
    /// A `::group::` of applied files is open.
    files_group: bool,
}

const GOOD: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Green)));
const BAD: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)));
const NOTICE: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
const GREEN: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Green)));
const BLUE: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Blue)));
const CYAN: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Cyan)));
const BOLD: Style = Style::new().bold();

/// `--color`: when the console is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal and in GitHub Actions logs, unless `NO_COLOR` is set (non-empty);
    /// `CLICOLOR_FORCE` forces it on, `CLICOLOR=0` off.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour, given how stdout is connected and the environment (`var` reads a
    /// variable). An empty `NO_COLOR` or `CLICOLOR_FORCE` counts as unset, as both conventions
    /// say.
    pub fn enabled(self, terminal: bool, var: impl Fn(&str) -> Option<OsString>) -> bool {
        let set = |name: &str| var(name).is_some_and(|v| !v.is_empty());
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto if set("NO_COLOR") => false,
            ColorWhen::Auto if set("CLICOLOR_FORCE") => true,
            ColorWhen::Auto if var("CLICOLOR").is_some_and(|v| v == "0") => false,
            // The Actions log viewer renders ANSI colour although stdout is a pipe.
            ColorWhen::Auto if var("GITHUB_ACTIONS").is_some_and(|v| v == "true") => true,
            ColorWhen::Auto => terminal && var("TERM").is_none_or(|t| t != "dumb"),
        }
    }
}

impl Human<std::io::Stdout> {
    /// The reporter on stdout, coloured as `--color auto` decides; progress bars when
    /// stdout is a terminal.
    pub fn stdout() -> Self {
        Human::stdout_with(ColorWhen::Auto)
    }

    /// The reporter on stdout, coloured as `when` decides.
    pub fn stdout_with(when: ColorWhen) -> Self {
        let terminal = std::io::stdout().is_terminal();
        let color = when.enabled(terminal, |name| std::env::var_os(name));
        Human {
            progress: terminal,
            groups: std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
            ..Human::new(std::io::stdout(), color)
        }
    }
}

impl<W: Write> Human<W> {
    /// A reporter writing to `out`, without progress bars.
    pub fn new(out: W, color: bool) -> Self {
        Human {
            out,
            color,
            progress: false,
            bar: None,
            verbose: false,
            groups: false,
            files_group: false,
        }
    }

    fn verb(&self, verb: &str, style: Style) -> String {
        paint(self.color, style, &format!("{verb:>VERB_WIDTH$}"))
    }

    fn start_bar(&mut self, name: &str, total: usize) {
        self.finish_bar();
        if !self.progress || total == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stdout());
        // Styled only when colour is on (NO_COLOR holds for the bar too).
        let prefix_style = if self.color { ".cyan.bold" } else { "" };
        let template = format!(
            "{{prefix:>{VERB_WIDTH}{prefix_style}}} [{{elapsed:>5}}] {{bar:30}} {{pos}}/{{len}} {{msg}}"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix("Running");
        bar.set_message(esc(name).into_owned());
        // One check can take a minute (a property's cases): the clock keeps moving meanwhile,
        // so a slow check never looks like a hang.
        bar.enable_steady_tick(Duration::from_millis(250));
        self.bar = Some(bar);
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// `::endgroup::` and a newline if a group of applied files is open, else nothing.
    fn end_files_group(&mut self) -> String {
        if std::mem::take(&mut self.files_group) {
            "::endgroup::\n".to_owned()
        } else {
            String::new()
        }
    }

    fn stage_text(&self, stage: &StageReport) -> String {
        let (verb, code) = match stage.verdict {
            StageVerdict::Pass => ("PASS", GOOD),
            StageVerdict::Fail => ("FAIL", BAD),
            StageVerdict::Skipped => ("SKIP", NOTICE),
        };
        let head = |verb: String| {
            let mut text = format!(
                "{verb} [{:>6}] {}",
                secs(Duration::from_millis(stage.duration_ms)),
                stage.name
            );
            if let Some(reason) = &stage.reason {
                text.push_str(
                    &" ".repeat(STAGE_NAME_WIDTH.saturating_sub(stage.name.as_str().len()) + 1),
                );
                text.push_str(&esc(reason));
            }
            text
        };
        let indent = " ".repeat(VERB_WIDTH + 1);
        let mut detail = String::new();
        for failure in &stage.failures {
            detail.push('\n');
            detail.push_str(&failure_lines(self.color, &indent, failure));
        }
        if self.verbose {
            // Findings below the fail level (lint warnings): passing checks with a message.
            for case in stage
                .cases
                .iter()
                .filter(|c| c.verdict == CaseVerdict::Pass)
            {
                let Some(message) = &case.message else {
                    continue;
                };
                let place = match (&case.file, case.line) {
                    (Some(file), Some(line)) => format!("{}:{line}: ", esc(file)),
                    (Some(file), None) => format!("{}: ", esc(file)),
                    _ => String::new(),
                };
                let _ = write!(detail, "\n{indent}{place}{}", esc(message));
            }
        }
        // The stage's own lines (the rls coverage table, its recordings).
        if let Some(own) = stage.detail.get() {
            let console = Console {
                color: self.color,
                indent: indent.clone(),
            };
            detail.push_str(&own.console(stage, &console));
        }
        if self.groups && !detail.is_empty() {
            // The plain head titles the fold (a group title shows no colour); the coloured
            // head stays visible beside it in the log. The runner reads a line that starts
            // with `::` (after spaces) as a command: the detail quotes data (an error's
            // detail line), so commands are paused around it with a token data cannot know.
            let token = format!("db-ci-{:016x}", rand::random::<u64>());
            return format!(
                "::group::{}\n{}\n::stop-commands::{token}{detail}\n::{token}::\n::endgroup::",
                head(format!("{verb:>VERB_WIDTH$}")),
                head(self.verb(verb, code))
            );
        }
        head(self.verb(verb, code)) + &detail
    }
}

fn paint(color: bool, style: Style, text: &str) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_owned()
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// One failure as the console shows it: `file:line:col: message`, the statement, the notes;
/// every line starts with `indent` (the console indents under the verb column).
fn failure_lines(color: bool, indent: &str, failure: &Failure) -> String {
    let column = failure.column.map(|c| format!(":{c}")).unwrap_or_default();
    let mut text = format!(
        "{indent}{}:{}{column}: {}",
        paint(color, BOLD, &esc(&failure.file)),
        failure.line,
        esc(&failure.message).replace('\n', &format!("\n{indent}"))
    );
    if let Some(statement) = &failure.statement {
        for line in esc(statement).lines() {
            text.push_str(&format!("\n{indent}{} {line}", paint(color, BLUE, "│")));
        }
    }
    for note in &failure.notes {
        text.push_str(&format!(
            "\n{indent}{} {}",
            paint(color, CYAN, "note:"),
            esc(note).replace('\n', &format!("\n{indent}      "))
        ));
    }
    text
}

/// The failure text without colour, exactly as the console prints it: what the JUnit
/// failure body and the library's assertions show.
pub fn failure_text(failure: &Failure) -> String {
    failure_lines(false, "", failure)
}

/// Every failure of `report` without colour, stage by stage, as the console prints them,
/// plus the run error if the run stopped: the text a failed library assertion panics with.
pub fn report_failures_text(report: &Report) -> String {
    let human = Human::new(Vec::new(), false);
    let mut text = String::new();
    for stage in report
        .stages
        .iter()
        .filter(|s| s.verdict == StageVerdict::Fail)
    {
        text.push_str(&human.stage_text(stage));
        text.push('\n');
    }
    if let Some(error) = &report.error {
        text.push_str(&format!("error: {}\n", esc(&error.message())));
    }
    text.push_str(&summary_line(&human, report));
    text
}

impl<W: Write> Reporter for Human<W> {
    fn event(&mut self, event: &Event<'_>) {
        let line = match event {
            Event::ProjectRead {
                root,
                layout,
                migrations,
                seeds,
                mode,
                mode_reason,
                skipped,
            } => {
                let mut line = format!(
                    "{} {} ({layout}): {migrations} migrations, {seeds} seeds, {mode} replay \
                     ({mode_reason})",
                    self.verb("Project", GOOD),
                    esc(root)
                );
                for (file, why) in skipped.iter() {
                    let _ = write!(line, "\n  note: {} not applied: {}", esc(file), esc(why));
                }
                line
            }
            Event::BackendReady {
                description,
                duration,
            } => format!(
                "{} {} in {}",
                self.verb("Booted", GOOD),
                esc(description),
                secs(*duration)
            ),
            Event::ShimApplied { grants, duration } => format!(
                "{} Supabase platform shim ({grants} grants) in {}",
                self.verb("Shimmed", GOOD),
                secs(*duration)
            ),
            Event::FileDone { pass, outcome } => {
                let failed = matches!(outcome.result, FileResult::Failed(_));
                if !self.verbose && !failed {
                    return;
                }
                let state = match &outcome.result {
                    FileResult::Applied => "applied",
                    FileResult::SkippedByLedger => "in ledger, skipped",
                    FileResult::SeedUpToDate(crate::report::file::Rerun::Fails(_)) => {
                        "seed up to date in the seed ledger, skipped (not re-runnable by hand: see the note)"
                    }
                    FileResult::SeedUpToDate(_) => "seed up to date in the seed ledger, skipped",
                    FileResult::Exempt(_) => "exempt, skipped",
                    FileResult::Failed(_) => "failed",
                };
                let line = format!(
                    "{} [{:>6}] pass {pass} {} {state}",
                    self.verb(
                        if failed { "FAIL" } else { "OK" },
                        if failed { BAD } else { GREEN }
                    ),
                    secs(outcome.duration),
                    esc(&outcome.file)
                );
                // Hundreds of files in a CI log: folded until the stage's verdict.
                if self.groups && self.verbose && !self.files_group {
                    self.files_group = true;
                    format!("::group::pass {pass}: files\n{line}")
                } else {
                    line
                }
            }
            Event::StageStarted { name, total } => {
                self.start_bar(name.as_str(), *total);
                return;
            }
            Event::CaseStarted { stage, name } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{stage}: {} …", esc(name)));
                }
                return;
            }
            Event::CaseDone { stage, case } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("{stage}: {}", esc(&case.name)));
                }
                return;
            }
            Event::StageDone(stage) => {
                self.finish_bar();
                self.end_files_group() + &self.stage_text(stage)
            }
            Event::RunDone(report) => {
                self.finish_bar();
                self.end_files_group() + &summary_line(self, report)
            }
        };
        let line = crate::redact::scrub(&line);
        // A line printed under a live bar would be torn by its next redraw.
        let _ = match self.bar.clone() {
            Some(bar) => bar.suspend(|| writeln!(self.out, "{line}")),
            None => writeln!(self.out, "{line}"),
        };
    }
}

fn summary_line<W: Write>(human: &Human<W>, report: &Report) -> String {
    let count = |v: StageVerdict| report.stages.iter().filter(|s| s.verdict == v).count();
    let code = match report.verdict {
        Verdict::Pass => GOOD,
        Verdict::Fail => BAD,
    };
    let verdict = match (&report.error, report.verdict) {
        (Some(e), _) => format!("error ({})", e.kind),
        (None, Verdict::Pass) => "pass".to_owned(),
        (None, Verdict::Fail) => "FAIL".to_owned(),
    };
    let seed = report
        .seed
        .map(|s| format!(", seed {s}"))
        .unwrap_or_default();
    format!(
        "{} [{:>6}] {verdict}: {} passed, {} failed, {} skipped{seed}",
        human.verb("Summary", code),
        secs(Duration::from_millis(report.duration_ms)),
        count(StageVerdict::Pass),
        count(StageVerdict::Fail),
        count(StageVerdict::Skipped),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Case, CaseVerdict};
    use crate::stage_id::StageId;

    #[test]
    fn the_progress_message_names_what_runs_not_what_last_finished() {
        let mut human = Human::new(Vec::new(), false);
        human.progress = true;
        human.event(&Event::StageStarted {
            name: StageId::Properties,
            total: 2,
        });
        human.event(&Event::CaseStarted {
            stage: StageId::Properties,
            name: "likes_count matches\u{1b}[2J",
        });
        let bar = human.bar.as_ref().expect("a bar while the stage runs");
        assert_eq!(bar.message(), "properties: likes_count matches\\x1b[2J …");
        let case = Case {
            name: "likes_count matches".into(),
            group: "policy-tests/posts.yaml".into(),
            verdict: CaseVerdict::Pass,
            file: None,
            line: None,
            duration_ms: 0,
            message: None,
            cell: None,
        };
        human.event(&Event::CaseDone {
            stage: StageId::Properties,
            case: &case,
        });
        let bar = human.bar.as_ref().unwrap();
        assert_eq!(bar.position(), 1);
        assert_eq!(bar.message(), "properties: likes_count matches");
    }
}
