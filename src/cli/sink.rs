//! The one output path of every command: what a command ended with ([`Outcome`]) is printed,
//! written to the report files and the GitHub job, masked (every registered password) and
//! mapped to the exit code here, and nowhere else. miette draws source snippets here only.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Snippet};
use crate::error::exit;
use crate::report::{github, json, junit, Report, RunError, RunErrorKind, Verdict};
use crate::run::Replayed;

/// What a command ended with.
pub enum Outcome {
    /// Stages ran (run, replay, rls, props, pgtap, snapshot, lint, gate, init's check run):
    /// the report holds the verdict, or the error that stopped the run.
    Ran(Box<Ran>),
    /// Stopped before there was a report: the project could not be read, a flag is wrong,
    /// no backend. Exit 2 or 3 by its kind.
    Stopped(RunError),
    /// Stopped before there was a report, on a check that failed (init's first replay):
    /// exit 1, the message on stderr.
    Failed(String),
    /// A command whose answer is text on stdout (drift, rls --accept), and its verdict.
    Answered { text: String, verdict: Verdict },
}

/// A run's report and what to do with it besides printing it.
pub struct Ran {
    pub report: Report,
    /// `--json`, `--junit`: where to write the report.
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    /// Lines for stdout after the report (seeds to confirm, the next step).
    pub after: Vec<String>,
    /// An error to add when the run does not pass (init: the files it wrote are kept).
    pub if_failed: Option<String>,
    /// The replayed database: kept for the user (`--keep`) or shut down once all is said.
    pub replayed: Option<Replayed>,
    pub keep: bool,
}

/// Where the console and the GitHub job output go; the real ones in [`finish`], buffers
/// and a temporary summary file in tests.
pub struct Streams<'a> {
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
    /// On GitHub Actions: the job summary file, if the job has one. `None`: not on GitHub.
    pub github: Option<Option<PathBuf>>,
}

/// Prints `outcome`, writes its files, keeps or shuts down its database, and returns the
/// process exit code.
pub async fn finish(outcome: Outcome) -> i32 {
    let github = (std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true"))
        .then(|| std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from));
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut streams = Streams {
        out: &mut out,
        err: &mut err,
        github,
    };
    let (code, database) = emit(outcome, &mut streams);
    let _ = streams.out.flush();
    if let Some((replayed, keep)) = database {
        if keep {
            crate::keep::hold_verdict(code);
            replayed.keep().await;
        } else {
            replayed.server.shutdown().await;
        }
    }
    code
}

/// Says what `outcome` has to say on `streams`, masked and with control characters shown
/// escaped; returns the exit code and the database still to keep or shut down.
pub fn emit(outcome: Outcome, streams: &mut Streams<'_>) -> (i32, Option<(Replayed, bool)>) {
    match outcome {
        Outcome::Stopped(error) => {
            say(
                streams.err,
                &format!("error: {}", console_text(&error.diagnostic)),
            );
            github_output(
                streams,
                || github::error_annotation(&error, &github::Paths::from_env(), None),
                || github::error_summary(&error),
            );
            (stopped_code(error.kind), None)
        }
        Outcome::Failed(message) => {
            say(streams.err, &format!("error: {message}"));
            (exit::FAIL, None)
        }
        Outcome::Answered { text, verdict } => {
            say(streams.out, &text);
            (verdict_code(verdict), None)
        }
        Outcome::Ran(ran) => {
            let Ran {
                report,
                json,
                junit,
                after,
                if_failed,
                replayed,
                keep,
            } = *ran;
            if let Some(error) = &report.error {
                say(
                    streams.err,
                    &format!("error: {}", console_text(&error.diagnostic)),
                );
            }
            let mut code = report.exit_code();
            let written = [
                (
                    json,
                    "JSON",
                    json::write as fn(&Report, &Path) -> std::io::Result<()>,
                ),
                (junit, "JUnit", junit::write),
            ];
            for (path, what, write) in written {
                let Some(path) = path else { continue };
                if let Err(e) = write(&report, &path) {
                    say(
                        streams.err,
                        &format!("error: write the {what} report {}: {e}", path.display()),
                    );
                    code = code.max(exit::ENVIRONMENT);
                }
            }
            github_output(
                streams,
                || github::annotations(&report, &github::Paths::from_env()),
                || github::summary(&report),
            );
            for line in &after {
                say(streams.out, line);
            }
            if let Some(message) = if_failed.filter(|_| code != exit::PASS) {
                say(streams.err, &format!("error: {message}"));
            }
            (code, replayed.map(|r| (r, keep)))
        }
    }
}

/// The exit code of an error that stopped a command.
pub fn stopped_code(kind: RunErrorKind) -> i32 {
    match kind {
        RunErrorKind::Input => exit::INPUT,
        RunErrorKind::Environment => exit::ENVIRONMENT,
    }
}

/// The exit code of a verdict.
pub fn verdict_code(verdict: Verdict) -> i32 {
    match verdict {
        Verdict::Pass => exit::PASS,
        Verdict::Fail => exit::FAIL,
    }
}

/// What init's failure says and exits with; the project is left as it was.
pub fn init_failed(failed: crate::init::Failed) -> Outcome {
    use crate::init::InitError;
    let mut outcome = match failed.error {
        InitError::Stopped(error) => Outcome::Stopped(error),
        InitError::FirstReplayFails { .. } => Outcome::Failed(failed.error.to_string()),
        other => Outcome::Stopped(RunError::new(other.kind(), other.to_string())),
    };
    if failed.undone {
        let note = "note: init wrote nothing: the project is as it was";
        match &mut outcome {
            Outcome::Stopped(error) => error.diagnostic.notes.push(note.to_owned()),
            Outcome::Failed(message) => {
                message.push('\n');
                message.push_str(note);
            }
            _ => {}
        }
    }
    outcome
}

/// `text` on `to`, masked and escaped, with a final newline.
fn say(to: &mut dyn Write, text: &str) {
    let text = crate::report::escape_controls(text);
    let text = crate::redact::scrub(&text);
    let _ = writeln!(to, "{text}");
}

/// On GitHub Actions: the annotations on stdout and the job summary appended to its file.
fn github_output(
    streams: &mut Streams<'_>,
    annotations: impl FnOnce() -> String,
    summary: impl FnOnce() -> String,
) {
    let Some(summary_file) = &streams.github else {
        return;
    };
    let _ = write!(streams.out, "{}", crate::redact::scrub(&annotations()));
    if let Some(path) = summary_file {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut file| {
                let summary = crate::redact::scrub(&summary()).into_owned();
                file.write_all(summary.as_bytes())
            });
        if let Err(e) = appended {
            say(streams.err, &format!("error: write the job summary: {e}"));
        }
    }
}

/// A diagnostic as the console shows it: the position and message, the notes, then the
/// source line drawn by miette, the error's span underlined.
pub fn console_text(diagnostic: &Diagnostic) -> String {
    let mut text = diagnostic.to_string();
    if let Some(snippet) = &diagnostic.snippet {
        text.push('\n');
        text.push_str(&drawn(diagnostic, snippet));
    }
    text
}

/// The snippet in miette's box art, named by the diagnostic's file.
fn drawn(diagnostic: &Diagnostic, snippet: &Snippet) -> String {
    #[derive(Debug, thiserror::Error, miette::Diagnostic)]
    #[error("{message}")]
    struct Drawn {
        message: String,
        #[source_code]
        src: miette::NamedSource<String>,
        #[label("here")]
        span: miette::SourceSpan,
    }
    let drawn = Drawn {
        message: diagnostic.message.clone(),
        src: miette::NamedSource::new(
            diagnostic.file.clone().unwrap_or_default(),
            snippet.source.clone(),
        ),
        span: (snippet.offset, snippet.len).into(),
    };
    let mut text = String::new();
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    match handler.render_report(&mut text, &drawn) {
        Ok(()) => text.trim_end().to_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StageReport, StageVerdict};

    fn report(verdict: Verdict, error: Option<RunError>) -> Report {
        Report {
            verdict,
            db_ci_version: "0",
            project: ".".to_owned(),
            backend: None,
            server_version: None,
            replay_mode: "plain".to_owned(),
            seed: None,
            duration_ms: 0,
            stages: vec![StageReport::new(
                crate::stage_id::StageId::Replay,
                StageVerdict::Pass,
            )],
            error,
        }
    }

    fn ran(report: Report) -> Outcome {
        Outcome::Ran(Box::new(Ran {
            report,
            json: None,
            junit: None,
            after: Vec::new(),
            if_failed: None,
            replayed: None,
            keep: false,
        }))
    }

    /// The exit code and what stdout and stderr got.
    fn emitted(outcome: Outcome) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut streams = Streams {
            out: &mut out,
            err: &mut err,
            github: None,
        };
        let (code, _) = emit(outcome, &mut streams);
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn every_outcome_maps_to_its_documented_exit_code() {
        let input = RunError::from_error(&crate::error::Error::at("db-ci.yaml", 3, Some(1), "x"));
        let environment = RunError::new(RunErrorKind::Environment, "no backend");
        let cases = [
            (ran(report(Verdict::Pass, None)), exit::PASS),
            (ran(report(Verdict::Fail, None)), exit::FAIL),
            (ran(report(Verdict::Fail, Some(input.clone()))), exit::INPUT),
            (
                ran(report(Verdict::Fail, Some(environment.clone()))),
                exit::ENVIRONMENT,
            ),
            (Outcome::Stopped(input), exit::INPUT),
            (Outcome::Stopped(environment), exit::ENVIRONMENT),
            (Outcome::Failed("tune".into()), exit::FAIL),
            (
                Outcome::Answered {
                    text: "no drift".into(),
                    verdict: Verdict::Pass,
                },
                exit::PASS,
            ),
            (
                Outcome::Answered {
                    text: "drift".into(),
                    verdict: Verdict::Fail,
                },
                exit::FAIL,
            ),
        ];
        for (outcome, code) in cases {
            assert_eq!(emitted(outcome).0, code);
        }
    }

    #[test]
    fn a_report_file_that_cannot_be_written_is_an_environment_error() {
        let dir = tempfile::tempdir().unwrap();
        let Outcome::Ran(mut ran) = ran(report(Verdict::Fail, None)) else {
            unreachable!()
        };
        // A directory where the file should go.
        ran.json = Some(dir.path().to_path_buf());
        let (code, _, err) = emitted(Outcome::Ran(ran));
        assert_eq!(code, exit::ENVIRONMENT);
        assert!(err.contains("error: write the JSON report"), "{err}");
    }

    #[test]
    fn everything_the_sink_prints_is_masked_and_escaped() {
        let secret = "sink-test-secret-4711";
        crate::redact::register_password(secret);
        let leak = format!("connect as postgres:{secret}@prod \u{1b}[2J");
        let gate = report(
            Verdict::Fail,
            Some(RunError::new(RunErrorKind::Environment, leak.clone())),
        );
        let outcomes = [
            ran(gate),
            Outcome::Stopped(RunError::new(RunErrorKind::Input, leak.clone())),
            Outcome::Failed(leak.clone()),
            Outcome::Answered {
                text: leak.clone(),
                verdict: Verdict::Fail,
            },
        ];
        for outcome in outcomes {
            let (_, out, err) = emitted(outcome);
            let all = format!("{out}{err}");
            assert!(!all.contains(secret), "{all}");
            assert!(!all.contains('\u{1b}'), "{all:?}");
            assert!(all.contains("connect as postgres:"), "{all}");
        }
    }

    #[test]
    fn an_input_error_is_printed_at_its_position_with_the_line_drawn() {
        let error = crate::error::Error::from(
            Diagnostic::at("p/db-ci.yaml", 2, Some(1), "unknown field `rsl`")
                .with_source("a: 1\nrsl: 2\n"),
        );
        let (code, _, err) = emitted(Outcome::Stopped(RunError::from_error(&error)));
        assert_eq!(code, exit::INPUT);
        assert!(
            err.starts_with("error: p/db-ci.yaml:2:1: unknown field `rsl`\n"),
            "{err}"
        );
        assert!(err.contains("[p/db-ci.yaml:2:1]"), "{err}");
        assert!(err.contains("rsl: 2"), "{err}");
    }
}
