//! The statement time limit holds whatever the SQL under test does to switch it off, and
//! ends a statement at its value (not twice it): each `fail-timeout-*` fixture sleeps for
//! 600s behind a 1s limit and must end within a few seconds.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn every_timeout_bypass_ends_at_its_limit() {
    let Some(backend) = common::Backend::local() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // (fixture, the stage that times out, the most that stage may take)
    let cases = [
        (
            "fail-timeout-migration-sets-statement-timeout-0",
            "replay",
            1900,
        ),
        ("fail-timeout-set-local-statement-timeout-0", "replay", 1900),
        ("fail-timeout-rls-setup-sleeps", "rls", 1900),
        // The batch, then each of the case's two cells alone.
        ("fail-timeout-rls-sql-case-sleeps", "rls", 4500),
        ("fail-timeout-props-operation-sleeps", "properties", 1900),
        ("fail-timeout-props-invariant-sleeps", "properties", 1900),
    ];
    for (fixture, stage, most_ms) in cases {
        let json = tempfile::tempdir().unwrap();
        let report = json.path().join("r.json");
        let mut args = vec!["run".to_owned(), root.join(fixture).display().to_string()];
        args.extend(backend.args());
        args.extend(["--json".to_owned(), report.display().to_string()]);
        let started = Instant::now();
        let output = common::db_ci_with_env(&args, &[("CI", "true")]);
        let took = started.elapsed();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{fixture}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(took < Duration::from_secs(30), "{fixture} took {took:?}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        let stage = report["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == stage)
            .unwrap();
        let ms = stage["duration_ms"].as_u64().unwrap();
        assert!(
            (1000..=most_ms).contains(&ms),
            "{fixture}: the {} stage took {ms}ms with a 1s limit",
            stage["name"]
        );
    }
}
