//! The GitHub reporter's annotations: one `::error` per failing check at its file:line in the
//! pull request (within GitHub's per-step budget), workflow-command data escaped. The job
//! summary is `summary`, its markdown escaping `markdown`.

mod markdown;
mod summary;

use crate::stage_id::StageId;
use std::fmt::Write as _;
use std::path::{Component, PathBuf};

pub use markdown::{code, escape_markdown, fenced, inline};
pub use summary::{error_summary, summary, SUMMARY_LIMIT};

use super::{Failure, Report, RunError, StageReport};

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
        out.push_str(&error_annotation(error, paths, Some(&report.project)));
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

/// The annotation of an error that stopped the run, at the file, line and column it carries.
/// `project` is the directory its file is relative to; without one (the project could not be
/// read) it is relative to the working directory.
pub fn error_annotation(error: &RunError, paths: &Paths, project: Option<&str>) -> String {
    let diagnostic = &error.diagnostic;
    let mut properties = Vec::new();
    if let (Some(file), Some(line)) = (&diagnostic.file, diagnostic.line) {
        // The project's own files are named relative to it, the project's location (read
        // before there was a project) relative to the working directory.
        let base = match project {
            Some(project) if paths.cwd.join(project).join(file).exists() => project,
            _ if paths.cwd.join(file).exists() => ".",
            Some(project) => project,
            None => ".",
        };
        let file = paths.repository_path(base, file);
        properties.push(format!("file={}", escape_property(&file)));
        properties.push(format!("line={line}"));
        if let Some(column) = diagnostic.column {
            properties.push(format!("col={column}"));
        }
    }
    properties.push(format!(
        "title={}",
        escape_property(&format!("db-ci: {} error", error.kind))
    ));
    format!(
        "::error {}::{}\n",
        properties.join(","),
        escape_data(&error.message())
    )
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
