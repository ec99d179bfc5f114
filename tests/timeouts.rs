//! The statement time limit holds whatever the SQL under test does to switch it off, and
//! ends a statement at its value (not twice it): each `fail-timeout-*` fixture sleeps for
//! 600s behind a 1s limit and must end within seconds.
//!
//! How long a stage takes beside the sleep (cloning a database, creating actors) depends on
//! the machine, so the limit is read from a difference: each fixture runs once at 1s and once
//! at 3s, and the stage must take 2s more per statement stopped. A limit enforced at twice
//! its value makes that 4s; a statement that is not waited for makes it 0.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

/// Runs the fixture at `root` and returns the named stage's duration in milliseconds.
fn stage_ms(backend: &common::Backend, fixture: &str, root: &Path, stage: &str) -> u64 {
    let json = tempfile::tempdir().unwrap();
    let report = json.path().join("r.json");
    let mut args = vec!["run".to_owned(), root.display().to_string()];
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
    assert!(took < Duration::from_secs(60), "{fixture} took {took:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let stage = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .unwrap();
    stage["duration_ms"].as_u64().unwrap()
}

#[test]
fn every_timeout_bypass_ends_at_its_limit() {
    let Some(backend) = common::Backend::local() else {
        return;
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    // (fixture, the stage that times out, how many statements the limit stops there)
    let cases = [
        (
            "fail-timeout-migration-sets-statement-timeout-0",
            "replay",
            1,
        ),
        ("fail-timeout-set-local-statement-timeout-0", "replay", 1),
        ("fail-timeout-rls-setup-sleeps", "rls", 1),
        // The batch, then each of the case's two cells alone.
        ("fail-timeout-rls-sql-case-sleeps", "rls", 3),
        ("fail-timeout-props-operation-sleeps", "properties", 1),
        ("fail-timeout-props-invariant-sleeps", "properties", 1),
    ];
    // Three at a time: the runs mostly wait on their sleeps. A case's two runs stay one after
    // the other, so the difference read from them sees the same neighbours' load.
    common::parallel(cases.to_vec(), 3, |(fixture, stage, stopped)| {
        let at_1s = stage_ms(&backend, fixture, &fixtures.join(fixture), stage);
        assert!(
            at_1s >= 1000 * stopped,
            "{fixture}: the {stage} stage took {at_1s}ms: it did not wait for the 1s limit"
        );

        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join(fixture);
        common::copy_dir(&fixtures.join(fixture), &root);
        let config = root.join("db-ci.yaml");
        let yaml = std::fs::read_to_string(&config).unwrap();
        assert!(yaml.contains("statement_timeout: 1s"), "{fixture}");
        std::fs::write(
            &config,
            yaml.replace("statement_timeout: 1s", "statement_timeout: 3s"),
        )
        .unwrap();
        let at_3s = stage_ms(&backend, fixture, &root, stage);

        let more = at_3s.saturating_sub(at_1s);
        assert!(
            (1500 * stopped..=3000 * stopped).contains(&more),
            "{fixture}: the {stage} stage took {at_1s}ms at a 1s limit and {at_3s}ms at 3s: \
             {more}ms more where {}ms were due",
            2000 * stopped
        );
    });
}
