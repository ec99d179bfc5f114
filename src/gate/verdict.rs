//! The gate stage's verdict: `gate.allow` applied to the findings, and the findings turned
//! into the stage's failures, cases and reason.

use crate::project::Project;
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};

use super::config::{Allow, GateConfig};
use super::judge::{Finding, FindingKind};

/// Whether `allow` accepts `finding`.
fn allows(allow: &Allow, finding: &Finding) -> bool {
    allow.file == finding.file
        && allow
            .relation
            .as_ref()
            .is_none_or(|r| finding.relation.as_deref() == Some(r.as_str()))
        && allow.kind.is_none_or(|k| k == finding.kind)
}

/// Applies `gate.allow`, and turns findings into the stage's failures and cases.
pub(super) fn finish(
    project: &Project,
    stage: &mut StageReport,
    mut findings: Vec<Finding>,
    notes: Vec<String>,
    checks: usize,
) {
    for finding in &mut findings {
        if let Some(allow) = project
            .config
            .section::<GateConfig>()
            .allow
            .iter()
            .find(|a| allows(a, finding))
        {
            finding.allowed = Some(allow.reason.clone());
        }
    }
    let blocking = findings
        .iter()
        .filter(|f| f.blocks && f.allowed.is_none())
        .count();
    stage.checks = checks.max(1);
    for finding in &findings {
        let blocks = finding.blocks && finding.allowed.is_none();
        let mut finding_notes = finding
            .advice
            .iter()
            .map(|a| format!("safe: {a}"))
            .collect::<Vec<_>>();
        if finding.kind == FindingKind::Drift {
            finding_notes = finding.advice.clone();
        }
        if let Some(reason) = &finding.allowed {
            finding_notes.insert(0, format!("allowed by gate.allow: {reason}"));
        }
        if blocks {
            stage.failures.push(Failure {
                file: finding.file.clone(),
                line: finding.line,
                column: None,
                message: finding.message.clone(),
                notes: finding_notes,
                statement: finding.statement.clone(),
            });
        }
        stage.cases.push(Case {
            name: format!(
                "{}:{} {}",
                finding.file,
                finding.line,
                finding.kind.as_str()
            ),
            group: finding.file.clone(),
            verdict: if blocks {
                CaseVerdict::Fail
            } else {
                CaseVerdict::Pass
            },
            file: Some(finding.file.clone()),
            line: Some(finding.line),
            duration_ms: 0,
            message: Some(if blocks {
                finding.message.clone()
            } else if let Some(reason) = &finding.allowed {
                format!("allowed ({reason}): {}", finding.message)
            } else {
                format!("warning: {}", finding.message)
            }),
            cell: None,
        });
    }
    let warnings: Vec<String> = findings
        .iter()
        .filter(|f| !(f.blocks && f.allowed.is_none()))
        .map(|f| format!("{}:{}: {}", f.file, f.line, f.message))
        .collect();
    let mut reason = notes.join("; ");
    if !warnings.is_empty() {
        reason.push_str(&format!("; not blocking: {}", warnings.join("; ")));
    }
    if blocking > 0 {
        stage.verdict = StageVerdict::Fail;
        reason = format!("blocked by {blocking} finding(s); {reason}");
    } else {
        reason = format!("safe to apply; {reason}");
    }
    stage.reason = Some(reason);
}
