//! `db-ci rls --record` / `--accept`, the round trip a pull request goes through: missing
//! expectations recorded into a pending file beside the matrix, accepted into it in place; a
//! policy change shows as a pending diff of who can do what; with `CI=true` nothing is
//! written and a recording is a failure; partial observations are never recorded; a stale
//! or edited pending file is refused whole; under `CI=true` a cell nobody reviewed (new, or
//! loosened by `--accept`) fails unless `rls.unreviewed: allow`. On every available backend.

mod common;

use std::path::Path;
use std::process::Output;

struct Project {
    _temp: tempfile::TempDir,
    root: std::path::PathBuf,
    backend: Vec<String>,
}

impl Project {
    fn rls(&self, extra: &[&str], ci: bool) -> (Option<i32>, String) {
        let mut args = vec!["rls".to_owned(), self.root.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push("--any-server-version".to_owned());
        args.extend(self.backend.clone());
        let env: &[(&str, &str)] = if ci {
            &[("CI", "true")]
        } else {
            &[("CI", "false")]
        };
        let output: Output = common::db_ci_with_env(&args, env);
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    }

    fn matrix(&self) -> String {
        std::fs::read_to_string(self.root.join("policy-tests/notes.yaml")).unwrap()
    }

    fn pending(&self) -> std::path::PathBuf {
        self.root.join("policy-tests/notes.yaml.pending")
    }
}

fn round_trip(backend: common::Backend) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/pass-rls-owner-only-notes");
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("project");
    common::copy_dir(&fixture, &root);
    let project = Project {
        _temp: temp,
        root,
        backend: backend.args(),
    };
    // Two cases nobody wrote expectations for; the second sees two owners' notes, so
    // signed-in users see part of its rows.
    let original = project.matrix();
    std::fs::write(
        project.root.join("policy-tests/notes.yaml"),
        format!(
            "{original}  - name: bob's note\n    table: notes\n    where: owner_id = '{{{{bob.id}}}}'\n    \
             delete: {{}}  # who may delete it?\n  - name: every note\n    table: notes\n    select: {{}}\n"
        ),
    )
    .unwrap();

    // Without --record, a missing expectation is a broken test that says how to record it.
    let (code, out) = project.rls(&[], false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("db-ci rls --record"), "{out}");

    // In CI, --record writes nothing and fails.
    let before = project.matrix();
    let (code, out) = project.rls(&["--record"], true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("recording is off in CI"), "{out}");
    assert_eq!(project.matrix(), before);
    assert!(!project.pending().exists());

    // Locally, --record writes a pending file and lists what it recorded.
    let (code, out) = project.rls(&["--record"], false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not yet accepted"), "{out}");
    assert!(
        out.contains("bob: delete public.notes (none) → allow"),
        "{out}"
    );
    assert!(
        out.contains("anon: delete public.notes (none) → deny"),
        "{out}"
    );
    assert_eq!(project.matrix(), before, "the matrix itself is untouched");
    let pending = std::fs::read_to_string(project.pending()).unwrap();
    assert!(
        pending.contains(
            "delete: { allow: [bob, service], deny: [anon, alice], unreviewed: [anon, alice, bob, service] }  # who may delete it?"
        ),
        "{pending}"
    );
    // Partial visibility is a finding, never a recording: alice and bob stay holes.
    assert!(
        pending.contains("select: { allow: [service], deny: [anon], unreviewed: [anon, service] }"),
        "{pending}"
    );
    assert!(out.contains("observed partial"), "{out}");

    // In CI, a pending file nobody accepted is a failure.
    let (code, out) = project.rls(&[], true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("never accepted"), "{out}");

    // --accept applies it, and refuses in CI.
    let mut accept = vec![
        "rls".to_owned(),
        project.root.display().to_string(),
        "--accept".to_owned(),
    ];
    let output = common::db_ci_with_env(&accept, &[("CI", "true")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(project.pending().exists());
    // A pending file records the matrix it was made from: a case a reviewer added since is
    // never dropped by accepting, and a pending file edited by hand is never applied.
    let recorded_from = project.matrix();
    let grown = format!(
        "{recorded_from}  - name: bob's note stays\n    table: notes\n    where: owner_id = '{{{{bob.id}}}}'\n    delete: {{ allow: [bob, service], deny: others }}\n"
    );
    std::fs::write(project.root.join("policy-tests/notes.yaml"), &grown).unwrap();
    let output = common::db_ci_with_env(&accept, &[("CI", "false")]);
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the matrix changed since it was recorded"),
        "{err}"
    );
    assert_eq!(project.matrix(), grown, "nothing accepted");
    std::fs::write(project.root.join("policy-tests/notes.yaml"), &recorded_from).unwrap();
    let edited = pending.replace("  - name: every note\n", "  - name: every note!\n");
    std::fs::write(project.pending(), &edited).unwrap();
    let output = common::db_ci_with_env(&accept, &[("CI", "false")]);
    let err = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("edited after it was recorded"), "{err}");
    assert_eq!(project.matrix(), recorded_from, "nothing accepted");
    std::fs::write(project.pending(), &pending).unwrap();

    let output = common::db_ci_with_env(&accept, &[("CI", "false")]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("Accepted"), "{out}");
    assert!(!project.pending().exists());
    // The matrix is the recording, without the pending file's header.
    let (header, body) = pending.split_once('\n').unwrap();
    assert!(
        header.starts_with("# db-ci pending recording: matrix sha256:"),
        "{header}"
    );
    assert_eq!(project.matrix(), body);

    // Drop the partial case: what is left holds, with its recordings counted unreviewed;
    // in CI they fail until reviewed, unless the project takes them as its baseline.
    let accepted = project.matrix();
    let cut = accepted.find("  - name: every note").unwrap();
    std::fs::write(
        project.root.join("policy-tests/notes.yaml"),
        &accepted[..cut],
    )
    .unwrap();
    let (code, out) = project.rls(&[], false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unreviewed: 4 RLS cell(s)"), "{out}");
    let (code, out) = project.rls(&[], true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("4 delete cell(s) hold a recorded expectation nobody reviewed"),
        "{out}"
    );
    std::fs::write(
        project.root.join("db-ci.yaml"),
        "rls:\n  unreviewed: allow\n",
    )
    .unwrap();
    let (code, out) = project.rls(&[], true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unreviewed: 4 RLS cell(s)"), "{out}");
    std::fs::remove_file(project.root.join("db-ci.yaml")).unwrap();

    // A pull request loosens a policy: the run fails, and recording shows the diff.
    std::fs::write(
        project.root.join("migrations/0002_public_notes.sql"),
        "drop policy if exists \"anyone reads notes\" on public.notes;\n\
         create policy \"anyone reads notes\" on public.notes for select to anon, authenticated using (true);\n",
    )
    .unwrap();
    let (code, out) = project.rls(&[], true);
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = project.rls(&["--record"], false);
    assert_eq!(code, Some(1), "{out}");
    for change in [
        "anon: select public.notes deny → allow",
        "bob: select public.notes deny → allow",
    ] {
        assert!(out.contains(change), "{change}\n{out}");
    }
    // Listed first as leaks, each with the policy that lets it through.
    assert!(
        out.contains("LOOKS LIKE A LEAK (anon reaches rows of alice): anon: select public.notes deny → allow"),
        "{out}"
    );
    assert!(
        out.contains(
            "policy \"anyone reads notes\" for select to anon, authenticated: using (true)"
        ),
        "{out}"
    );
    // A changed expectation is edited in place (its diff is what the reviewer reads); a
    // loosened one (deny → allow) is unreviewed again: accepting is not reviewing.
    let pending = std::fs::read_to_string(project.pending()).unwrap();
    assert!(
        pending.contains(
            "select: { allow: [anon, alice, bob, service], deny: others, unreviewed: [anon, bob] }"
        ),
        "{pending}"
    );
    accept.truncate(3);
    let output = common::db_ci_with_env(&accept, &[("CI", "false")]);
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(
        out.contains("anon: select public.notes deny → allow"),
        "{out}"
    );
    let (code, out) = project.rls(&[], true);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(
            "2 select cell(s) hold a recorded expectation nobody reviewed (anon allow, bob allow)"
        ),
        "{out}"
    );
    let (code, out) = project.rls(&[], false);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unreviewed: 6 RLS cell(s)"), "{out}");
}

#[test]
fn record_round_trip_on_local_backend() {
    if let Some(backend) = common::Backend::local() {
        round_trip(backend);
    }
}

#[test]
fn record_round_trip_on_container_backend() {
    if let Some(backend) = common::Backend::container() {
        round_trip(backend);
    }
}
