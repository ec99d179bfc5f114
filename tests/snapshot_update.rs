//! The snapshot's life in a user's repository: a first local run writes the missing
//! `db-ci.snapshot.yaml`; under `CI=true` a missing one fails and nothing is written; a schema
//! change then fails with a diff until `--update-snapshot` accepts it.

mod common;

use std::path::Path;

fn run(dir: &Path, extra: &[&str], ci: bool) -> (i32, String) {
    let mut args = vec![
        "snapshot".to_owned(),
        dir.display().to_string(),
        "--backend".to_owned(),
        "local".to_owned(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let output = if ci {
        common::db_ci_with_env(&args, &[("CI", "true")])
    } else {
        // As a developer runs it: no CI variable at all.
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_db-ci"));
        command.args(&args).env_remove("CI");
        command.output().expect("run db-ci")
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn missing_snapshot_is_written_locally_skipped_in_ci_and_changes_need_update() {
    if common::Backend::local().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("0001_notes.sql"),
        "create table if not exists public.notes (id bigint primary key, body text);\n\
         alter table public.notes enable row level security;\n",
    )
    .unwrap();
    let snapshot = dir.path().join("db-ci.snapshot.yaml");

    // CI: missing is nothing to compare with — the check is skipped (never a pass), saying
    // how to start it, and nothing is written.
    let (code, text) = run(dir.path(), &[], true);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("no committed catalog snapshot"), "{text}");
    assert!(!snapshot.exists(), "CI=true must not write a snapshot");

    // Locally: written, and the run says so.
    let (code, text) = run(dir.path(), &[], false);
    assert!(snapshot.exists(), "{text}");
    let first = std::fs::read_to_string(&snapshot).unwrap();
    assert!(first.contains("notes"), "{first}");
    assert_eq!(code, 0, "{text}");

    // Now committed: CI passes, byte for byte the same file.
    let (code, text) = run(dir.path(), &[], true);
    assert_eq!(code, 0, "{text}");
    assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), first);

    // A schema change fails with a diff naming the new column; the file is untouched.
    std::fs::write(
        migrations.join("0002_title.sql"),
        "alter table public.notes add column if not exists title text;\n",
    )
    .unwrap();
    let (code, text) = run(dir.path(), &[], true);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("+") && text.contains("title"), "{text}");
    assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), first);

    // --update-snapshot accepts it; the next CI run passes.
    let (code, text) = run(dir.path(), &["--update-snapshot"], false);
    assert_eq!(code, 0, "{text}");
    let updated = std::fs::read_to_string(&snapshot).unwrap();
    assert!(updated.contains("title"), "{updated}");
    let (code, text) = run(dir.path(), &[], true);
    assert_eq!(code, 0, "{text}");
    // No temp file left beside it (the write is a rename).
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".db-ci") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
