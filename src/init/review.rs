//! What `init` tells the user about the expectations it recorded: those that look like leaks
//! first, each with the policies that let it through, the rest counted; and that the next
//! CI run fails on them until they are reviewed (or taken as the baseline).

use crate::report::StageReport;
use crate::rls::detail::{RecordedCell, RlsDetail};

/// The lines `init` prints under the matrix `rel` it wrote, from the check run's `stage`.
pub fn lines(stage: &StageReport, rel: &str) -> Vec<String> {
    let recorded: Vec<&RecordedCell> = stage
        .detail::<RlsDetail>()
        .map(|d| d.recorded.iter().filter(|r| r.file == rel).collect())
        .unwrap_or_default();
    if recorded.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for r in recorded.iter().filter(|r| r.looks_like_leak.is_some()) {
        out.push(format!(
            "LOOKS LIKE A LEAK ({}): {rel}:{}: {}: {} {} → {}",
            r.looks_like_leak.as_deref().unwrap_or_default(),
            r.line,
            r.actor,
            r.operation,
            r.target,
            r.to
        ));
        if r.policies.is_empty() && r.operation != "sql" {
            out.push(format!(
                "  no policy of {} applies to it (a view, or RLS off?)",
                r.target
            ));
        }
        out.extend(r.policies.iter().map(|p| format!("  {p}")));
    }
    let leaks = out.iter().filter(|l| l.starts_with("LOOKS")).count();
    out.push(format!(
        "UNREVIEWED: {} recording(s) in {rel} ({leaks} looking like leaks, listed above) are what the database does now, not a verdict on the policies: \
         under CI=true the next run fails on every cell whose actor is under `unreviewed:`. \
         Review each against its policy, then delete the actor from `unreviewed:`; \
         or set `rls.unreviewed: allow` in db-ci.yaml to take them all as the baseline, leaks included.",
        recorded.len()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StageVerdict;
    use crate::stage_id::StageId;

    fn cell(actor: &str, operation: &str, leak: Option<&str>) -> RecordedCell {
        RecordedCell {
            file: "supabase/tests/rls/public.yaml".into(),
            line: 9,
            case: "notes".into(),
            target: "public.notes".into(),
            actor: actor.into(),
            operation: operation.into(),
            from: None,
            to: "allow".into(),
            written_to: None,
            looks_like_leak: leak.map(str::to_owned),
            policies: leak
                .map(|_| vec!["policy \"open\" for all to authenticated: using (true)".to_owned()])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn leaks_first_with_their_policies_then_what_ci_will_do() {
        let mut stage = StageReport::new(StageId::Rls, StageVerdict::Pass);
        stage.detail_mut::<RlsDetail>().recorded = vec![
            cell("alice", "select", None),
            cell("bob", "select", Some("bob reaches rows of alice")),
        ];
        let printed = lines(&stage, "supabase/tests/rls/public.yaml");
        assert_eq!(
            printed[0],
            "LOOKS LIKE A LEAK (bob reaches rows of alice): supabase/tests/rls/public.yaml:9: bob: select public.notes → allow"
        );
        assert_eq!(
            printed[1],
            "  policy \"open\" for all to authenticated: using (true)"
        );
        assert!(
            printed[2].starts_with("UNREVIEWED: 2 recording(s)"),
            "{printed:?}"
        );
        assert!(printed[2].contains("1 looking like leaks"), "{printed:?}");
        assert!(
            printed[2].contains("under CI=true the next run fails"),
            "{printed:?}"
        );
        assert!(printed[2].contains("rls.unreviewed: allow"), "{printed:?}");
        assert!(lines(&stage, "other.yaml").is_empty());
    }
}
