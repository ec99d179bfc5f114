//! The `$GITHUB_STEP_SUMMARY` markdown: the verdict table, the error that stopped the run,
//! every failure grouped by check, then each stage's own sections (its detail's), within
//! GitHub's size limit.

use std::fmt::Write as _;

use super::failure_groups;
use super::markdown::{code, escape_markdown, fenced, inline};
use crate::report::detail::SummaryParts;
use crate::report::{Report, RunError, StageReport, StageVerdict, Verdict};

/// The error as the job summary shows it, in a fixed-width block: the message, then the
/// source line it points at, underlined.
fn error_text(error: &RunError) -> String {
    let mut text = error.message();
    if let Some(snippet) = &error.diagnostic.snippet {
        text.push_str("\n\n");
        text.push_str(&snippet.plain());
    }
    text
}

/// The job summary of a run that stopped before it had a report (the project could not be
/// read): the first line, then the whole error as a fenced block, source line and all.
pub fn error_summary(error: &RunError) -> String {
    format!(
        "## db-ci: ❌ {} error\n\n**Error:** {}\n\n{}\n",
        error.kind,
        escape_markdown(&error.diagnostic.headline()),
        fenced(&error_text(error), "text")
    )
}

fn stage_icon(verdict: StageVerdict) -> &'static str {
    match verdict {
        StageVerdict::Pass => "✅ pass",
        StageVerdict::Fail => "❌ fail",
        StageVerdict::Skipped => "⏭️ skipped",
    }
}

/// GitHub refuses a job summary over 1 MiB; stay well under it (other steps may write too).
pub const SUMMARY_LIMIT: usize = 1024 * 1024 - 64 * 1024;

/// The `$GITHUB_STEP_SUMMARY` markdown, most important first: the verdict table, the error
/// that stopped the run, every failure grouped by check, the RLS matrix (a grid per relation,
/// failing relations open, the rest folded), RLS coverage, lint findings below the fail
/// level. Sections that would take it over [`SUMMARY_LIMIT`] are left out, from the last, and
/// named in a closing line.
pub fn summary(report: &Report) -> String {
    let mut head = String::new();
    let verdict = match (&report.error, report.verdict) {
        (Some(error), _) => format!("❌ {} error", error.kind),
        (None, Verdict::Pass) => "✅ pass".to_owned(),
        (None, Verdict::Fail) => "❌ fail".to_owned(),
    };
    let _ = writeln!(head, "## db-ci: {verdict}\n");
    let mut facts = vec![format!("project {}", code(&report.project))];
    if let Some(backend) = &report.backend {
        facts.push(escape_markdown(backend));
    }
    facts.push(format!("{} replay", escape_markdown(&report.replay_mode)));
    if let Some(seed) = report.seed {
        facts.push(format!("seed {seed}"));
    }
    facts.push(format!("{:.2} s", report.duration_ms as f64 / 1000.0));
    let _ = writeln!(head, "{}\n", facts.join(" · "));

    head.push_str("| stage | verdict | checks | time | details |\n|---|---|---:|---:|---|\n");
    for stage in &report.stages {
        let details = match (stage.verdict, &stage.reason) {
            (StageVerdict::Fail, _) => {
                let checks = failure_groups_of(stage);
                let failures = stage.failures.len().max(1);
                match (checks, failures) {
                    (0 | 1, 1) => "1 failure".to_owned(),
                    (c, f) if c == f || c == 0 => format!("{f} failures"),
                    (1, f) => format!("{f} failures in 1 check"),
                    (c, f) => format!("{f} failures in {c} checks"),
                }
            }
            (_, Some(reason)) => inline(reason),
            (_, None) => String::new(),
        };
        let _ = writeln!(
            head,
            "| {} | {} | {} | {:.2}&nbsp;s | {details} |",
            stage.name,
            stage_icon(stage.verdict),
            stage.checks,
            stage.duration_ms as f64 / 1000.0
        );
    }
    head.push('\n');
    if let Some(error) = &report.error {
        let _ = writeln!(head, "### Error\n\n{}", fenced(&error_text(error), "text"));
    }

    let mut failures = String::new();
    failures_section(&mut failures, report);
    // Each stage's own notes and sections (the rls grids and coverage, lint's findings
    // below the fail level), in stage order.
    let mut parts = SummaryParts::default();
    for stage in &report.stages {
        if let Some(detail) = stage.detail.get() {
            detail.summary(stage, &mut parts);
        }
    }
    for note in &parts.notes {
        head.push_str(note);
    }
    let sections = parts.sections;
    assemble(head, failures, sections)
}

/// The summary from its parts, within [`SUMMARY_LIMIT`]: optional sections are dropped from
/// the last, then failure blocks from the last, and what was left out is said.
fn assemble(head: String, failures: String, mut sections: Vec<(&str, String)>) -> String {
    const NOTE_ROOM: usize = 2048;
    let size = |failures: &str, sections: &[(&str, String)]| {
        head.len() + failures.len() + sections.iter().map(|(_, s)| s.len()).sum::<usize>()
    };
    let mut left_out: Vec<String> = Vec::new();
    while size(&failures, &sections) + NOTE_ROOM > SUMMARY_LIMIT {
        match sections.pop() {
            Some((name, text)) if !text.is_empty() => left_out.insert(0, name.to_owned()),
            Some(_) => {}
            None => break,
        }
    }
    let mut failures = failures;
    if head.len() + failures.len() + NOTE_ROOM > SUMMARY_LIMIT {
        // Whole failure blocks only: each starts with the ❌ line.
        let room = SUMMARY_LIMIT.saturating_sub(head.len() + NOTE_ROOM);
        let cut = failures[..room.min(failures.len())]
            .rfind("\n❌ ")
            .map_or(0, |at| at + 1);
        let dropped = failures[cut..].matches("\n❌ ").count()
            + usize::from(failures[cut..].starts_with("❌ "));
        failures.truncate(cut);
        left_out.insert(
            0,
            format!("{dropped} failing checks at the end of the list"),
        );
    }
    let mut out = head + &failures;
    for (_, text) in &sections {
        out.push_str(text);
    }
    if !left_out.is_empty() {
        let _ = writeln!(
            out,
            "*Left out to stay under GitHub's 1 MiB job-summary limit: {}. The JUnit and JSON \
             reports hold everything.*\n",
            left_out.join("; ")
        );
    }
    out
}

/// How many failing checks a stage's failures make.
fn failure_groups_of(stage: &StageReport) -> usize {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut count = 0;
    for failure in &stage.failures {
        if failure.line > 0 && seen.contains(&(failure.file.as_str(), failure.line)) {
            continue;
        }
        seen.push((failure.file.as_str(), failure.line));
        count += 1;
    }
    count
}

/// Every failing check, grouped: a block per RLS case, lint finding or statement, with its
/// file:line, one line per actor and operation that was wrong, and the notes (the fix hint).
/// Never capped: a summary far under GitHub's 1 MiB holds thousands.
fn failures_section(out: &mut String, report: &Report) {
    let groups = failure_groups(report);
    if groups.is_empty() {
        return;
    }
    out.push_str("### Failures\n\n");
    for group in &groups {
        let failure = group.failures[0];
        let mut place = failure.file.clone();
        if failure.line > 0 {
            let _ = write!(place, ":{}", failure.line);
            if let Some(column) = failure.column.filter(|_| group.failures.len() == 1) {
                let _ = write!(place, ":{column}");
            }
        }
        let count = match group.failures.len() {
            1 => String::new(),
            n => format!(" · {n} failures"),
        };
        let _ = writeln!(
            out,
            "❌ **{}** · {}{count}\n",
            group.stage.name,
            code(&place)
        );
        let (head, items, notes) = group.parts();
        if !head.is_empty() {
            let _ = writeln!(out, "{}\n", inline(&head));
        }
        for item in &items {
            let _ = writeln!(out, "- {}", inline(item));
        }
        for note in &notes {
            let _ = writeln!(out, "- *note:* {}", inline(note));
        }
        if !items.is_empty() || !notes.is_empty() {
            out.push('\n');
        }
        if let (1, Some(statement)) = (group.failures.len(), &failure.statement) {
            let _ = writeln!(
                out,
                "<details><summary>statement</summary>\n\n{}\n</details>\n",
                fenced(statement, "sql")
            );
        }
    }
}
