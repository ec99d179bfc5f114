//! The GitHub reporter: one `::error` annotation per failing check at its file:line in the
//! pull request (within GitHub's per-step budget), and the `$GITHUB_STEP_SUMMARY` markdown
//! (verdict table, failures grouped by check, the RLS matrix as a grid per relation, coverage,
//! lint findings; under GitHub's size limit). Everything user-controlled is escaped for where
//! it goes: workflow-command data and properties, markdown, `<code>`, fenced blocks.

use crate::stage_id::StageId;
use std::fmt::Write as _;
use std::path::{Component, PathBuf};

use super::{
    Case, CaseVerdict, Coverage, Failure, Report, RlsCell, StageReport, StageVerdict, Verdict,
};
use crate::policy_tests::cases::Operation;

/// GitHub shows at most 10 `error` annotations per step (and 50 per job); later ones are
/// dropped silently. We annotate the first ten failures and say plainly how many more there
/// are, so nobody takes the annotations for the whole list.
pub const MAX_ERROR_ANNOTATIONS: usize = 10;

/// Where the annotations are resolved: GitHub reads `file=` relative to the repository root
/// (`$GITHUB_WORKSPACE`), while the report names files relative to the project directory,
/// itself given relative to the working directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub workspace: PathBuf,
    pub cwd: PathBuf,
}

impl Paths {
    /// `$GITHUB_WORKSPACE` (else the working directory) and the working directory.
    pub fn from_env() -> Paths {
        let cwd = std::env::current_dir().unwrap_or_default();
        let workspace = std::env::var_os("GITHUB_WORKSPACE")
            .map(PathBuf::from)
            .unwrap_or_else(|| cwd.clone());
        Paths { workspace, cwd }
    }

    /// `file` of the project at `project`, relative to the workspace when it lies inside it.
    pub fn repository_path(&self, project: &str, file: &str) -> String {
        let path = self.cwd.join(project).join(file);
        let mut normal = PathBuf::new();
        for component in path.components() {
            match component {
                Component::CurDir => {}
                Component::ParentDir => {
                    normal.pop();
                }
                other => normal.push(other),
            }
        }
        let workspace: PathBuf = self
            .workspace
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect();
        normal
            .strip_prefix(&workspace)
            .unwrap_or(&normal)
            .to_string_lossy()
            .into_owned()
    }
}

/// The `::error file=…,line=…,col=…,title=…::message` lines, one per failing case or finding
/// (every actor and operation of an RLS case in one annotation), in stage order up to GitHub's
/// budget, then a `::warning::` that counts the rest.
pub fn annotations(report: &Report, paths: &Paths) -> String {
    let groups = failure_groups(report);
    let mut out = String::new();
    let mut budget = MAX_ERROR_ANNOTATIONS;
    if let Some(error) = &report.error {
        out.push_str(&error_annotation(
            error.kind.as_str(),
            &error.message,
            paths,
            Some(&report.project),
        ));
        budget -= 1;
    }
    for group in groups.iter().take(budget) {
        let failure = group.failures[0];
        let mut properties = Vec::new();
        // A failure no file could be blamed for is annotated on the run, not on a file.
        if !failure.file.starts_with('(') {
            let file = paths.repository_path(&report.project, &failure.file);
            properties.push(format!("file={}", escape_property(&file)));
            if failure.line > 0 {
                properties.push(format!("line={}", failure.line));
                if let Some(column) = failure.column.filter(|_| group.failures.len() == 1) {
                    properties.push(format!("col={column}"));
                }
            }
        }
        let title = match group.failures.len() {
            1 => format!("db-ci {}", group.stage.name),
            n => format!("db-ci {} ({n} failures)", group.stage.name),
        };
        properties.push(format!("title={}", escape_property(&title)));
        let _ = writeln!(
            out,
            "::error {}::{}",
            properties.join(","),
            escape_data(&group.message())
        );
    }
    if groups.len() > budget {
        let left: Vec<&FailureGroup> = groups.iter().skip(budget).collect();
        let mut per_stage: Vec<(StageId, usize)> = Vec::new();
        for group in &left {
            match per_stage
                .iter_mut()
                .find(|(name, _)| *name == group.stage.name)
            {
                Some((_, count)) => *count += 1,
                None => per_stage.push((group.stage.name, 1)),
            }
        }
        let per_stage: Vec<String> = per_stage
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        let _ = writeln!(
            out,
            "::warning title=db-ci::{}",
            escape_data(&format!(
                "{} more failing checks are not annotated ({}): GitHub shows \
                 {MAX_ERROR_ANNOTATIONS} error annotations per step. The job summary lists every \
                 failure, as do the JUnit and JSON reports",
                left.len(),
                per_stage.join(", ")
            ))
        );
    }
    out
}

/// The failures of one failing check: the cells of one RLS case (they share its file:line),
/// one lint finding, one migration's statement.
pub(crate) struct FailureGroup<'a> {
    pub stage: &'a StageReport,
    pub failures: Vec<&'a Failure>,
}

impl FailureGroup<'_> {
    /// The check's failures split for display: what they share (`case `…` on t:`), one line
    /// per failure (the actor, operation, expected and observed), and their notes without
    /// repeats. A single failure is all head.
    pub fn parts(&self) -> (String, Vec<String>, Vec<String>) {
        let mut notes: Vec<String> = Vec::new();
        for note in self.failures.iter().flat_map(|f| &f.notes) {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
        if let [failure] = self.failures.as_slice() {
            return (failure.message.clone(), Vec::new(), notes);
        }
        let messages: Vec<&str> = self.failures.iter().map(|f| f.message.as_str()).collect();
        let shared = shared_prefix(&messages);
        let items = messages
            .iter()
            .map(|m| m[shared.len()..].to_owned())
            .collect();
        (shared.trim_end().to_owned(), items, notes)
    }

    /// One message for the whole check: the head, a `- ` line per failure, then the notes.
    pub fn message(&self) -> String {
        let (head, items, notes) = self.parts();
        let mut lines: Vec<String> = Vec::new();
        if !head.is_empty() {
            lines.push(head);
        }
        lines.extend(items.into_iter().map(|item| format!("- {item}")));
        lines.extend(notes.into_iter().map(|note| format!("note: {note}")));
        lines.join("\n")
    }
}

/// The longest prefix every message shares that ends after a `": "` (so it never cuts a word).
fn shared_prefix<'a>(messages: &[&'a str]) -> &'a str {
    let Some(first) = messages.first() else {
        return "";
    };
    let mut len = first.len();
    for message in &messages[1..] {
        len = first
            .char_indices()
            .zip(message.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, c), _)| i + c.len_utf8())
            .min(len);
    }
    match first[..len].rfind(": ") {
        Some(at) => &first[..at + 2],
        None => "",
    }
}

/// Failures grouped by the check they belong to (stage, file and line), in stage order.
/// A failure without a line (a catalog difference) is a check of its own.
pub(crate) fn failure_groups(report: &Report) -> Vec<FailureGroup<'_>> {
    let mut groups: Vec<FailureGroup> = Vec::new();
    for stage in &report.stages {
        let first = groups.len();
        for failure in &stage.failures {
            let same = groups[first..].iter_mut().find(|g| {
                let other = g.failures[0];
                failure.line > 0 && other.line == failure.line && other.file == failure.file
            });
            match same {
                Some(group) => group.failures.push(failure),
                None => groups.push(FailureGroup {
                    stage,
                    failures: vec![failure],
                }),
            }
        }
    }
    groups
}

/// Where an error message points: its first `file:line[:col]:`.
pub(crate) fn error_location(message: &str) -> Option<(String, usize, Option<usize>)> {
    static LOCATION: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = LOCATION.get_or_init(|| {
        regex::Regex::new(r"(?:^|[\s(])([^\s:()<>]+):([0-9]+)(?::([0-9]+))?:").expect("valid regex")
    });
    let first = message.lines().next()?;
    let found = pattern.captures(first)?;
    Some((
        found[1].to_owned(),
        found[2].parse().ok()?,
        found.get(3).and_then(|c| c.as_str().parse().ok()),
    ))
}

/// The message without the source snippet miette draws under it (box art needs a fixed-width
/// font; the annotation already sits on the line).
fn without_snippet(message: &str) -> String {
    message
        .lines()
        .take_while(|line| !line.trim_start().starts_with('×'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The annotation of an error that stopped the run (`kind`: input or environment), at the
/// file and line it names. `project` is the directory the message's paths are relative to;
/// without one (the project could not be read) they are relative to the working directory.
pub fn error_annotation(kind: &str, message: &str, paths: &Paths, project: Option<&str>) -> String {
    let mut properties = Vec::new();
    if let Some((file, line, column)) = error_location(message) {
        // The project's own files are named relative to it, the project's location (read
        // before there was a project) relative to the working directory.
        let base = match project {
            Some(project) if paths.cwd.join(project).join(&file).exists() => project,
            _ if paths.cwd.join(&file).exists() => ".",
            Some(project) => project,
            None => ".",
        };
        let file = paths.repository_path(base, &file);
        properties.push(format!("file={}", escape_property(&file)));
        properties.push(format!("line={line}"));
        if let Some(column) = column {
            properties.push(format!("col={column}"));
        }
    }
    properties.push(format!(
        "title={}",
        escape_property(&format!("db-ci: {kind} error"))
    ));
    format!(
        "::error {}::{}\n",
        properties.join(","),
        escape_data(&without_snippet(message))
    )
}

/// The job summary of a run that stopped before it had a report (the project could not be
/// read): the first line, then the whole message as a fenced block, source snippet and all.
pub fn error_summary(kind: &str, message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    format!(
        "## db-ci: ❌ {kind} error\n\n**Error:** {}\n\n{}\n",
        escape_markdown(first),
        fenced(message, "text")
    )
}

/// `text` as a fenced code block: a fence longer than any run of backticks inside, control
/// characters shown escaped (markdown shows the rest as is, in a fixed-width font).
pub fn fenced(text: &str, language: &str) -> String {
    let text = super::escape_controls(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{language}\n{}\n{fence}\n", text.trim_end())
}

/// Workflow-command message data: `%`, CR and LF are the characters the runner decodes; any
/// other control character from data is shown escaped (`\x1b`), never sent raw into the log.
pub fn escape_data(text: &str) -> String {
    super::escape_controls(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command property values: as data, plus `:` and `,`, which end a property.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Text in a markdown table cell: backslash-escapes the punctuation markdown would act on
/// (`|` ends a cell; `*`, `_`, `` ` ``, `<`… would format or inject HTML), newlines as `<br>`.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in super::escape_controls(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '#' | '&' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
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
        let _ = writeln!(head, "### Error\n\n{}", fenced(&error.message, "text"));
    }

    let mut failures = String::new();
    failures_section(&mut failures, report);
    let mut sections: Vec<(&str, String)> = Vec::new();
    if let Some(rls) = report.stage(StageId::Rls) {
        if let Some(unreviewed) = rls.unreviewed.filter(|n| *n > 0) {
            let _ = writeln!(
                head,
                "> [!NOTE]\n> {unreviewed} RLS cell(s) hold recorded expectations nobody reviewed yet \
                 (actors under `unreviewed:` in the matrices): a recording is a baseline, not a verdict on the policy.\n"
            );
        }
        let (failing, passing) = rls_matrix(rls);
        sections.push(("the RLS grids of failing relations", failing));
        sections.push(("the RLS grids of passing relations", passing));
        if let Some(coverage) = &rls.coverage {
            let mut text = String::new();
            coverage_section(&mut text, coverage);
            sections.push(("the RLS coverage table", text));
        }
    }
    if let Some(lint) = report.stage(StageId::Lint) {
        sections.push((
            "the lint findings below the fail level",
            lint_findings(lint),
        ));
    }
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

/// `text` as inline code that stays code anywhere, a table cell included: HTML-escaped in
/// `<code>` (backticks inside a table would need escaping, which GitHub then shows).
pub fn code(text: &str) -> String {
    format!("<code>{}</code>", html_literal(text))
}

/// Text shown literally inside HTML that markdown still parses: markup and every character
/// markdown or a table would act on as an entity.
fn html_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in super::escape_controls(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("<br>"),
            '\r' => {}
            '|' | '*' | '_' | '`' | '[' | ']' | '\\' | '~' | '#' | '!' | '$' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Markdown for a message: its `` `code` `` spans as [`code`], the rest escaped.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('`') {
        let Some(len) = rest[open + 1..].find('`') else {
            break;
        };
        out.push_str(&escape_markdown(&rest[..open]));
        out.push_str(&code(&rest[open + 1..open + 1 + len]));
        rest = &rest[open + 2 + len..];
    }
    out.push_str(&escape_markdown(rest));
    out
}

/// One RLS matrix cell's text from every cell a relation's cases have at one (actor,
/// operation): ✅ and the expected outcome(s) when all were observed as expected, else ❌ and
/// expected → observed for each wrong one (⚠️ for a broken check). A cell whose expectation
/// is an unreviewed recording carries the legend's 📝, passing or not: the reviewer's
/// question is whether it is right.
fn cell_text(cells: &[(&Case, &RlsCell)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut passed: Vec<&str> = Vec::new();
    let unreviewed = cells.iter().any(|(_, cell)| cell.unreviewed);
    for (case, cell) in cells {
        let part = match case.verdict {
            CaseVerdict::Pass => {
                if !passed.contains(&cell.expected_text()) {
                    passed.push(cell.expected_text());
                }
                continue;
            }
            CaseVerdict::Fail => format!(
                "❌ {} → {}",
                escape_markdown(cell.expected_text()),
                escape_markdown(cell.observed.as_str())
            ),
            CaseVerdict::Broken => {
                format!("⚠️ broken ({})", escape_markdown(cell.expected_text()))
            }
            CaseVerdict::Skipped => format!("⏭️ {}", escape_markdown(cell.expected_text())),
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    if !passed.is_empty() {
        let passed: Vec<String> = passed.iter().map(|p| escape_markdown(p)).collect();
        parts.insert(0, format!("✅ {}", passed.join(", ")));
    }
    let text = parts.join("<br>");
    if unreviewed {
        format!("{text} 📝")
    } else {
        text
    }
}

/// A markdown table: `corner` over the row labels, one column per `columns`, `cell` for each.
fn grid(
    corner: &str,
    rows: &[String],
    columns: &[String],
    cell: impl Fn(&str, &str) -> String,
) -> String {
    let mut out = format!("| {corner} |");
    for column in columns {
        let _ = write!(out, " {column} |");
    }
    out.push_str("\n|---|");
    for _ in columns {
        out.push_str(":---:|");
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "| {row} |");
        for column in columns {
            let _ = write!(out, " {} |", cell(row, column));
        }
        out.push('\n');
    }
    out
}

/// The RLS matrix as one small grid per relation (a row per actor, a column per operation;
/// RPC cases: a row per case, a column per actor). Returns the grids of relations with a
/// wrong cell (shown open, first) and those of the others (each folded in `<details>`).
fn rls_matrix(stage: &StageReport) -> (String, String) {
    let cells: Vec<(&Case, &RlsCell)> = stage
        .cases
        .iter()
        .filter_map(|case| case.cell.as_ref().map(|cell| (case, cell)))
        .collect();
    if cells.is_empty() {
        return (String::new(), String::new());
    }
    let mut targets: Vec<&str> = Vec::new();
    for (_, cell) in &cells {
        if !targets.contains(&cell.target.as_str()) {
            targets.push(&cell.target);
        }
    }
    let mut failing = String::new();
    let mut passing = String::new();
    let mut failing_count = 0;
    for target in targets {
        let mine: Vec<(&Case, &RlsCell)> = cells
            .iter()
            .copied()
            .filter(|(_, cell)| cell.target == target)
            .collect();
        let mut actors: Vec<&str> = Vec::new();
        for (_, cell) in &mine {
            if !actors.contains(&cell.actor.as_str()) {
                actors.push(&cell.actor);
            }
        }
        let wrong = mine
            .iter()
            .filter(|(case, _)| matches!(case.verdict, CaseVerdict::Fail | CaseVerdict::Broken))
            .count();
        let table = if target == "sql" {
            // RPC cases call a function: the case is the row, the actors the columns.
            let mut names: Vec<&str> = Vec::new();
            for (_, cell) in &mine {
                if !names.contains(&cell.case.as_str()) {
                    names.push(&cell.case);
                }
            }
            let rows: Vec<String> = names.iter().map(|n| inline(n)).collect();
            let columns: Vec<String> = actors.iter().map(|a| escape_markdown(a)).collect();
            grid("case", &rows, &columns, |row, column| {
                let index = rows.iter().position(|r| r == row).unwrap_or(0);
                let actor = actors[columns.iter().position(|c| c == column).unwrap_or(0)];
                let here: Vec<_> = mine
                    .iter()
                    .copied()
                    .filter(|(_, cell)| cell.case == names[index] && cell.actor == actor)
                    .collect();
                cell_text(&here)
            })
        } else {
            let operations: Vec<Operation> = Operation::TABLE_OPERATIONS
                .into_iter()
                .chain([Operation::Sql])
                .filter(|op| mine.iter().any(|(_, cell)| cell.operation == *op))
                .collect();
            let rows: Vec<String> = actors.iter().map(|a| escape_markdown(a)).collect();
            let columns: Vec<String> = operations
                .iter()
                .map(|o| escape_markdown(o.as_str()))
                .collect();
            grid("actor", &rows, &columns, |row, column| {
                let actor = actors[rows.iter().position(|r| r == row).unwrap_or(0)];
                let operation = operations[columns.iter().position(|c| c == column).unwrap_or(0)];
                let here: Vec<_> = mine
                    .iter()
                    .copied()
                    .filter(|(_, cell)| cell.actor == actor && cell.operation == operation)
                    .collect();
                cell_text(&here)
            })
        };
        let name = if target == "sql" {
            "RPC cases (sql)".to_owned()
        } else {
            code(target)
        };
        if wrong > 0 {
            failing_count += 1;
            let _ = writeln!(
                failing,
                "#### ❌ {name} · {wrong} of {} cells wrong\n\n{table}",
                mine.len()
            );
        } else {
            let _ = writeln!(
                passing,
                "<details><summary>✅ {name} · {} cells as expected</summary>\n\n{table}\n</details>\n",
                mine.len()
            );
        }
    }
    let any_unreviewed = cells.iter().any(|(_, cell)| cell.unreviewed);
    let legend = format!(
        "Each cell: ✅ the expected outcome was observed; ❌ expected → observed{}.\n\n",
        if any_unreviewed {
            "; 📝 the expectation is a recording nobody reviewed yet"
        } else {
            ""
        }
    );
    let failing = if failing_count > 0 {
        format!("### RLS matrix\n\n{legend}{failing}")
    } else {
        String::new()
    };
    let passing = match (failing_count, passing.is_empty()) {
        (_, true) => String::new(),
        (0, false) => format!("### RLS matrix\n\n{legend}{passing}"),
        (_, false) => passing,
    };
    (failing, passing)
}

fn coverage_section(out: &mut String, coverage: &Coverage) {
    let short = coverage.minimum.is_some_and(|m| coverage.percent < m);
    let minimum = coverage
        .minimum
        .map(|m| format!(" (minimum {m:.0}%)"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "<details{}><summary>RLS coverage: {:.0}%{minimum}</summary>\n\n| table | select | insert | update | delete |\n|---|:---:|:---:|:---:|:---:|",
        if short { " open" } else { "" },
        coverage.percent
    );
    for row in &coverage.tables {
        let marks: Vec<&str> = row
            .commands()
            .iter()
            .map(|(_, covered, applies)| match (covered, applies) {
                (true, _) => "✅",
                (false, true) => "—",
                (false, false) => "n/a",
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", code(&row.table), marks.join(" | "));
    }
    out.push_str("\n</details>\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Expect, Observed};

    fn cell(
        verdict: CaseVerdict,
        expected: &str,
        observed: Observed,
        unreviewed: bool,
    ) -> (Case, RlsCell) {
        let rls = RlsCell {
            case: "c".to_owned(),
            target: "public.t".to_owned(),
            actor: "anon".to_owned(),
            operation: Operation::Select,
            expected: match expected {
                "allow" => Some(Expect::Allow),
                "deny" => Some(Expect::Deny),
                _ => None,
            },
            observed,
            unreviewed,
        };
        let case = Case {
            name: "c".to_owned(),
            group: "f".to_owned(),
            verdict,
            file: None,
            line: None,
            duration_ms: 0,
            message: None,
            cell: Some(rls.clone()),
        };
        (case, rls)
    }

    #[test]
    fn a_passing_recording_says_it_is_unreviewed() {
        let (case, rls) = cell(CaseVerdict::Pass, "deny", Observed::Deny, true);
        assert_eq!(cell_text(&[(&case, &rls)]), "✅ deny 📝");
        let (case, rls) = cell(CaseVerdict::Pass, "deny", Observed::Deny, false);
        assert_eq!(cell_text(&[(&case, &rls)]), "✅ deny");
        // The legend's mark is on the cell whatever its verdict (in CI it fails).
        let (case, rls) = cell(CaseVerdict::Fail, "deny", Observed::Allow, true);
        assert_eq!(cell_text(&[(&case, &rls)]), "❌ deny → allow 📝");
        let (case, rls) = cell(CaseVerdict::Fail, "deny", Observed::Allow, false);
        assert_eq!(cell_text(&[(&case, &rls)]), "❌ deny → allow");
    }
}
