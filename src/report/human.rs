//! The console reporter: one line per stage with its duration, failures with file:line and
//! the SQL excerpt, one summary line. Colour only on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::{Report, StageVerdict, Verdict};
use crate::events::{Event, Reporter};
use crate::replay::FileResult;

pub struct Human<W: Write> {
    out: W,
    color: bool,
    /// Print every file as it is applied.
    pub verbose: bool,
}

impl Human<std::io::Stdout> {
    pub fn stdout() -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Human {
            out: std::io::stdout(),
            color,
            verbose: false,
        }
    }
}

impl<W: Write> Human<W> {
    pub fn new(out: W, color: bool) -> Self {
        Human {
            out,
            color,
            verbose: false,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn verb(&self, verb: &str, code: &str) -> String {
        self.paint(code, &format!("{verb:>12}"))
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
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
            } => format!(
                "{} {root} ({layout}): {migrations} migrations, {seeds} seeds, {mode} replay",
                self.verb("Project", "1;32")
            ),
            Event::BackendReady {
                description,
                duration,
            } => format!(
                "{} {description} in {}",
                self.verb("Booted", "1;32"),
                secs(*duration)
            ),
            Event::ShimApplied { grants, duration } => format!(
                "{} Supabase platform shim ({grants} grants) in {}",
                self.verb("Shimmed", "1;32"),
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
                    FileResult::Exempt(_) => "exempt, skipped",
                    FileResult::Failed(_) => "failed",
                };
                format!(
                    "{} [{:>6}] pass {pass} {} {state}",
                    self.verb(
                        if failed { "FAIL" } else { "OK" },
                        if failed { "1;31" } else { "32" }
                    ),
                    secs(outcome.duration),
                    outcome.file
                )
            }
            Event::StageDone(stage) => {
                let (verb, code) = match stage.verdict {
                    StageVerdict::Pass => ("PASS", "1;32"),
                    StageVerdict::Fail => ("FAIL", "1;31"),
                    StageVerdict::Skipped => ("SKIP", "1;33"),
                };
                let mut text = format!(
                    "{} [{:>6}] {:<12}",
                    self.verb(verb, code),
                    secs(Duration::from_millis(stage.duration_ms)),
                    stage.name
                );
                if let Some(reason) = &stage.reason {
                    text.push_str(&format!(" {reason}"));
                }
                for failure in &stage.failures {
                    let column = failure.column.map(|c| format!(":{c}")).unwrap_or_default();
                    text.push_str(&format!(
                        "\n{:>12} {}:{}{column}: {}",
                        "",
                        self.paint("1", &failure.file),
                        failure.line,
                        failure.message.replace('\n', "\n             ")
                    ));
                    if let Some(statement) = &failure.statement {
                        for line in statement.lines() {
                            text.push_str(&format!(
                                "\n{:>12} {} {line}",
                                "",
                                self.paint("34", "│")
                            ));
                        }
                    }
                    for note in &failure.notes {
                        text.push_str(&format!(
                            "\n{:>12} {} {}",
                            "",
                            self.paint("36", "note:"),
                            note.replace('\n', "\n                   ")
                        ));
                    }
                }
                text
            }
            Event::StageStarted { .. } | Event::CaseDone { .. } => return,
            Event::RunDone(report) => summary_line(self, report),
        };
        let _ = writeln!(self.out, "{line}");
    }
}

fn summary_line<W: Write>(human: &Human<W>, report: &Report) -> String {
    let count = |v: StageVerdict| report.stages.iter().filter(|s| s.verdict == v).count();
    let (verb, code) = match report.verdict {
        Verdict::Pass => ("Summary", "1;32"),
        Verdict::Fail => ("Summary", "1;31"),
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
        human.verb(verb, code),
        secs(Duration::from_millis(report.duration_ms)),
        count(StageVerdict::Pass),
        count(StageVerdict::Fail),
        count(StageVerdict::Skipped),
    )
}
