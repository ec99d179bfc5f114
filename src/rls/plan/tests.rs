//! The planner's unit tests: input errors found without a catalog, and recording.

use std::path::{Path, PathBuf};

use super::*;
use crate::actors::Actors;
use crate::policy_tests::PolicyFileSpec;
use crate::yaml::Pos;

/// A matrix file `m.yaml` read from `text`, with the errors of the cases that do not parse.
fn parsed(text: String) -> (PolicyFile, Vec<(Pos, String)>) {
    let spec: PolicyFileSpec = crate::yaml::parse_yaml(&text, Path::new("m.yaml")).unwrap();
    let actors = Actors::resolve(&spec.actors).unwrap();
    let (file, errors) = PolicyFile::parse(
        "m.yaml".to_owned(),
        PathBuf::from("m.yaml"),
        text,
        spec,
        actors,
    );
    (
        file,
        errors.into_iter().map(|e| (e.pos, e.message)).collect(),
    )
}

fn file_of(text: String) -> PolicyFile {
    parsed(text).0
}

/// The input errors of a matrix with actors alice and anon: its cases' as they are parsed,
/// then what `check` finds in those that parsed.
fn errors(cases: &str) -> Vec<(Pos, String)> {
    let (file, mut errors) = parsed(format!(
        "actors:\n  anon: anon\n  alice: {{ user: alice@example.com }}\ncases:\n{cases}"
    ));
    errors.extend(check(&file).into_iter().map(|e| (e.pos, e.message)));
    errors
}

#[test]
fn new_keys_are_refused_where_they_mean_nothing() {
    for (case, line, says) in [
        (
            "  - name: x\n    sql: select 1\n    sqlstate: P0001\n    deny_sqlstate: [P0001]\n    deny: others\n",
            5,
            "not both",
        ),
        (
            "  - name: x\n    table: t\n    update: { set: { a: 1 }, deny: others, deny_on: error }\n",
            5,
            "`deny_on: error` for update with nobody allowed",
        ),
        (
            "  - name: x\n    table: t\n    then: select true\n    delete: { allow: others }\n",
            7,
            "goes under the operation",
        ),
        (
            "  - name: x\n    table: t\n    select: { allow: others, then: select true }\n",
            7,
            "a select changes nothing",
        ),
        (
            "  - name: x\n    table: t\n    select: { allow: others, ordered: true }\n",
            7,
            "come in no order",
        ),
        (
            "  - name: x\n    table: t\n    select: { allow: others, returns: 3 }\n",
            7,
            "`returns:` of a select is the target rows",
        ),
        (
            "  - name: x\n    table: t\n    returns: [{ a: 1 }]\n    select: { allow: others }\n",
            5,
            "goes under `select:`",
        ),
        (
            "  - name: x\n    sql: select 1\n    returns: [1, 2]\n    allow: others\n",
            7,
            "each an object",
        ),
        (
            "  - name: x\n    sql: select 1\n    returns: 1\n    ordered: true\n    allow: others\n",
            5,
            "`ordered: true` compares `returns:` rows in order",
        ),
        (
            "  - name: x\n    sql: select 1\n    then: select '{{bob.id}}'\n    allow: others\n",
            7,
            "then: `{{bob.id}}` names no actor",
        ),
    ] {
        let found = errors(case);
        assert!(
            found.iter().any(|(p, m)| p.line == line && m.contains(says)),
            "{case}: {found:?}"
        );
    }
    // steps: each step names an actor of the file; someone must be allowed.
    for (case, says) in [
        (
            "  - name: x\n    steps:\n      - { as: bob, sql: select 1, expect: allow }\n",
            "step 1: `bob` is not an actor of this file",
        ),
        (
            "  - name: x\n    steps:\n      - { as: alice, sql: select 1, expect: deny }\n",
            "every step expects deny",
        ),
        (
            "  - name: x\n    allow: [alice]\n    steps:\n      - { as: alice, sql: select 1, expect: allow }\n",
            "expectations on each step",
        ),
        ("  - name: x\n    steps: []\n", "checks nothing"),
    ] {
        let found = errors(case);
        assert!(found.iter().any(|(_, m)| m.contains(says)), "{case}: {found:?}");
    }
    let found =
        errors("  - name: x\n    steps:\n      - { as: bob, sql: select 1, expect: allow }\n");
    assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:15", "{found:?}");
    // Errors about a value point at it: file:line:col.
    let found = errors("  - name: x\n    table: t\n    select: { allow: others, ordered: true }\n");
    assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:39", "{found:?}");
    let found = errors(
        "  - name: x\n    sql: select 1\n    then: select '{{bob.id}}'\n    allow: others\n",
    );
    assert_eq!(found[0].0.at("m.yaml"), "m.yaml:7:11", "{found:?}");
    // The forms that mean something are accepted.
    let fine = "  - name: x\n    sql: select 1\n    deny_sqlstate: [P0001]\n    then: [select true]\n    returns: [{ a: 1 }]\n    ordered: true\n    allow: [alice]\n    deny: others\n  - name: y\n    table: t\n    deny_on: error\n    select: { allow: [alice], deny: others, returns: [{ id: '{{me.id}}' }] }\n    update: { set: { a: 1 }, allow: [alice], deny: others, then: \"select '{{me.email}}' <> ''\" }\n";
    assert_eq!(errors(fine), Vec::new());
    let text = format!(
        "actors:\n  anon: anon\n  alice: {{ user: alice@example.com }}\ncases:\n{}",
        "  - name: s\n    deny_sqlstate: [P0001]\n    steps:\n      - { as: alice, sql: select 1, expect: allow, then: select true }\n      - { as: anon, sql: select 2, expect: deny }\n"
    );
    let file = file_of(text);
    let plan = plan(&file, Catalog::NotRead, false);
    assert_eq!(plan.errors, Vec::new());
    let steps: Vec<(&str, &str, Option<usize>, &[String])> = plan
        .cells
        .iter()
        .map(|c| {
            (
                c.case.as_str(),
                c.actor.name.as_str(),
                c.scenario(),
                c.deny_sqlstates.as_slice(),
            )
        })
        .collect();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0].0, "s / step 1");
    assert_eq!(steps[1].1, "anon");
    assert_eq!(steps[0].2, Some(5));
    assert_eq!(steps[1].2, Some(5), "one scenario");
    assert_eq!(steps[1].3, ["P0001".to_owned()]);
    assert_eq!(plan.cells[0].then, vec!["select true".to_owned()]);
}

#[test]
fn input_errors_are_found_without_the_catalog_and_the_catalog_adds_only_its_own() {
    // `update:` without `set:` on a table with no key is an input error, whatever key
    // the catalog would have given.
    let found = errors(
        "  - name: u\n    table: t\n    update: { set: {}, allow: [alice], deny: others }\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("`update:` needs `set:`"), "{found:?}");
    // A case with no target, two targets, or an object without a bucket.
    for (case, says) in [
        (
            "  - name: n\n    select: { allow: others }\n",
            "exactly one of",
        ),
        (
            "  - name: n\n    table: t\n    sql: select 1\n    allow: others\n",
            "exactly one of",
        ),
        (
            "  - name: n\n    table: t\n    object: a.png\n    select: { allow: others }\n",
            "`object:` needs `bucket:`",
        ),
    ] {
        let found = errors(case);
        assert_eq!(found.len(), 1, "{case}: {found:?}");
        assert!(found[0].1.contains(says), "{case}: {found:?}");
    }
    // A well-formed table case: no error before boot; against a catalog where its table
    // is missing, that is the one error, and where it exists, none.
    let file = file_of(
        "actors:\n  anon: anon\n  alice: { user: alice@example.com }\ncases:\n  - name: t\n    table: app.Notes\n    update: { set: { a: 1 }, allow: [alice], deny: others }\n".to_owned(),
    );
    assert_eq!(plan(&file, Catalog::NotRead, false).errors, Vec::new());
    let mut targets = BTreeMap::new();
    let missing = plan(&file, Catalog::Read(&targets), false).errors;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].message.contains("app.notes does not exist"),
        "{missing:?}"
    );
    targets.insert(
        crate::catalog::QualifiedName::new("app", "notes"),
        TargetInfo {
            exists: true,
            key: vec!["id".to_owned()],
            has_xmin: true,
            ..TargetInfo::default()
        },
    );
    let planned = plan(&file, Catalog::Read(&targets), false);
    assert_eq!(planned.errors, Vec::new());
    assert_eq!(planned.cells.len(), 2);
    assert!(planned.cells.iter().all(|c| c.broken().is_none()));
}

#[test]
fn recording_turns_holes_into_cells_without_an_expectation() {
    let text = "actors:\n  anon: anon\n  alice: { user: alice@example.com }\n  bob: { user: bob@example.com }\ncases:\n  - name: r\n    sql: select 1\n    allow: [alice]\n    unreviewed: [alice]\n".to_owned();
    let file = file_of(text);
    let checked = plan(&file, Catalog::NotRead, false);
    assert_eq!(checked.cells.len(), 1);
    assert_eq!(checked.holes.len(), 2, "anon and bob have no expectation");
    let recording = plan(&file, Catalog::NotRead, true);
    assert!(recording.holes.is_empty());
    let cells: Vec<(&str, Option<Expect>, bool)> = recording
        .cells
        .iter()
        .map(|c| (c.actor.name.as_str(), c.expect, c.unreviewed))
        .collect();
    assert_eq!(
        cells,
        [
            ("alice", Some(Expect::Allow), true),
            ("anon", None, false),
            ("bob", None, false)
        ]
    );
    assert!(recording.cells.iter().all(|c| c.case_index == 0));
}
