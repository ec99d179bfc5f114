//! The rls stage's report payload (coverage, unreviewed cells, this run's recordings) and
//! how it shows on the console and in JUnit; the job summary's grids are in `summary`.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Style};
use serde::Serialize;

use crate::report::detail::{Console, StageDetail, SummaryParts};
use crate::report::escape_controls as esc;
use crate::report::human::failure_text;
use crate::report::{Case, Failure, StageReport};

/// What the rls stage reports beside its cells, after the shared fields in the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RlsDetail {
    /// RLS coverage of the exposed tables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
    /// Cells whose expectation is a recording nobody reviewed yet (an actor listed under
    /// `unreviewed:`); present whenever matrices ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreviewed: Option<usize>,
    /// Expectations this run recorded (`rls --record`, `init`): who can do what, changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recorded: Vec<RecordedCell>,
}

/// One recorded expectation: "anon: select public.profiles deny → allow".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedCell {
    /// The matrix file, and the line of the case.
    pub file: String,
    pub line: usize,
    pub case: String,
    pub target: String,
    pub actor: String,
    pub operation: String,
    /// allow | deny, or absent for a cell that had no expectation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    pub to: String,
    /// Where it was written: the matrix itself, its `.pending` file, or nowhere (CI).
    pub written_to: Option<String>,
    /// Why it looks like a leak (an actor reaching rows another user owns, anon writing, a
    /// policy that holds for every row): a reviewer reads these first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub looks_like_leak: Option<String>,
    /// The policies of its table that apply to its actor and operation, as
    /// `policy "name" for update to authenticated: using (…) with check (…)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

/// Which commands of each exposed table have at least one allow or deny cell.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Coverage {
    pub tables: Vec<CoverageRow>,
    /// Covered (table, command) pairs over all pairs, 0–100.
    pub percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CoverageRow {
    /// `schema.table`
    pub table: String,
    pub select: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    /// Commands the relation does not support (a materialized view takes no insert): left
    /// out of the percentage.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applicable: Vec<String>,
}

impl CoverageRow {
    /// (command, covered, applicable) for select, insert, update, delete.
    pub fn commands(&self) -> [(&'static str, bool, bool); 4] {
        let applies = |name: &str| !self.not_applicable.iter().any(|n| n == name);
        [
            ("select", self.select, applies("select")),
            ("insert", self.insert, applies("insert")),
            ("update", self.update, applies("update")),
            ("delete", self.delete, applies("delete")),
        ]
    }
}

const NOTICE: Style = Style::new()
    .bold()
    .fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
const GREEN: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Green)));
const YELLOW: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
const CYAN: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Cyan)));

impl StageDetail for RlsDetail {
    fn console(&self, _stage: &StageReport, console: &Console) -> String {
        let indent = &console.indent;
        let mut detail = String::new();
        if let Some(coverage) = &self.coverage {
            detail.push('\n');
            detail.push_str(&coverage_table(console, coverage));
        }
        // Recordings written into the matrices (a pending or refused one is a failure above):
        // those that look like leaks first, each with its policies.
        let mut written: Vec<&RecordedCell> = self
            .recorded
            .iter()
            .filter(|r| r.written_to.as_deref() == Some(r.file.as_str()))
            .collect();
        written.sort_by_key(|r| r.looks_like_leak.is_none());
        for recorded in written {
            let leak = recorded
                .looks_like_leak
                .as_deref()
                .map(|why| format!("LOOKS LIKE A LEAK ({}): ", esc(why)))
                .unwrap_or_default();
            let _ = write!(
                detail,
                "\n{indent}{} {leak}{}:{}: {}: {} {} {} → {}",
                console.paint(CYAN, "recorded:"),
                esc(&recorded.file),
                recorded.line,
                esc(&recorded.actor),
                recorded.operation,
                esc(&recorded.target),
                recorded.from.as_deref().unwrap_or("(none)"),
                recorded.to
            );
            if recorded.looks_like_leak.is_some() {
                for policy in &recorded.policies {
                    let _ = write!(detail, "\n{indent}  {}", esc(policy));
                }
            }
        }
        if let Some(unreviewed) = self.unreviewed.filter(|n| *n > 0) {
            let _ = write!(
                detail,
                "\n{indent}{} {unreviewed} RLS cell(s) hold recorded expectations nobody reviewed yet: check each, then remove its actor from `unreviewed:`",
                console.paint(NOTICE, "unreviewed:"),
            );
        }
        detail
    }

    fn summary(&self, stage: &StageReport, summary: &mut SummaryParts) {
        super::summary::sections(self, stage, summary);
    }

    fn junit_failure_text(&self, case: &Case, failures: &[&Failure]) -> Option<String> {
        let cell = case.cell.as_ref()?;
        // Cells of one RLS case share its file:line: keep the failure about this cell (its
        // message names the operation and the actor).
        let this_cell = format!("{} as {}", cell.operation, cell.actor);
        let about_cell = |f: &Failure| {
            f.message.match_indices(&this_cell).any(|(at, _)| {
                matches!(
                    f.message[at + this_cell.len()..].chars().next(),
                    Some(':' | ' ')
                )
            })
        };
        let mine: Vec<String> = failures
            .iter()
            .copied()
            .filter(|f| about_cell(f))
            .map(failure_text)
            .collect();
        if !mine.is_empty() {
            return Some(mine.join("\n"));
        }
        None
    }
}

/// Which (table, command) pairs have an RLS cell: `✓` covered, `·` not, `-` not applicable.
fn coverage_table(console: &Console, coverage: &Coverage) -> String {
    // One column left of the stage's detail lines, under the verb.
    let indent = &console.indent[..console.indent.len().saturating_sub(1)];
    let width = coverage
        .tables
        .iter()
        .map(|row| esc(&row.table).chars().count())
        .max()
        .unwrap_or(0)
        .max("table".len());
    let minimum = coverage
        .minimum
        .map(|m| format!(" (minimum {m:.0}%)"))
        .unwrap_or_default();
    let mut text = format!(
        "{indent} RLS coverage {:.0}%{minimum}\n{indent} {:<width$}  select insert update delete",
        coverage.percent, "table"
    );
    let mark = |covered: bool, applies: bool| {
        if covered {
            console.paint(GREEN, "✓")
        } else if applies {
            console.paint(YELLOW, "·")
        } else {
            // The relation does not support the command (a materialized view's insert).
            "-".to_owned()
        }
    };
    for row in &coverage.tables {
        text.push_str(&format!("\n{indent} {:<width$} ", esc(&row.table)));
        // Each column is 7 wide (" select"); the mark may carry colour codes, which a
        // `{:>7}` would count, so it is padded by hand.
        for (_, covered, applies) in row.commands() {
            text.push_str("      ");
            text.push_str(&mark(covered, applies));
        }
    }
    text
}
