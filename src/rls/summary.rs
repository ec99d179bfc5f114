//! The rls stage in the GitHub job summary: the unreviewed-recordings note, the matrix as a
//! grid per relation (failing relations open, the rest folded) and the coverage table.

use std::fmt::Write as _;

use super::detail::{Coverage, RlsDetail};
use crate::policy_tests::cases::Operation;
use crate::report::detail::SummaryParts;
use crate::report::github::{code, escape_markdown, inline};
use crate::report::{Case, CaseVerdict, RlsCell, StageReport};

/// What the rls stage adds to the summary, in the order it is read.
pub(super) fn sections(detail: &RlsDetail, stage: &StageReport, summary: &mut SummaryParts) {
    if let Some(unreviewed) = detail.unreviewed.filter(|n| *n > 0) {
        summary.notes.push(format!(
            "> [!NOTE]\n> {unreviewed} RLS cell(s) hold recorded expectations nobody reviewed yet \
             (actors under `unreviewed:` in the matrices): a recording is a baseline, not a verdict on the policy.\n\n"
        ));
    }
    let (failing, passing) = rls_matrix(stage);
    summary
        .sections
        .push(("the RLS grids of failing relations", failing));
    summary
        .sections
        .push(("the RLS grids of passing relations", passing));
    if let Some(coverage) = &detail.coverage {
        let mut text = String::new();
        coverage_section(&mut text, coverage);
        summary.sections.push(("the RLS coverage table", text));
    }
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
    use crate::policy_tests::cases::Expect;
    use crate::report::Observed;

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
