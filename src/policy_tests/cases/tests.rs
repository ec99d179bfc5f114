//! The `cases:` format's unit tests: whole documents parsed, with lines, targets, expectations
//! and the keys refused.

use super::*;
use crate::catalog::QualifiedName;

#[derive(Debug, Deserialize)]
struct Doc {
    cases: Vec<Spanned<CaseSpec>>,
}

const DOC: &str = "\
cases:
  - name: own profile
    table: profiles
    where: id = '{{alice.id}}'
    select: { allow: [alice, svc], deny: others }
    update: { set: { full_name: Mallory, age: 3, tags: [a] }, allow: [alice], deny: [anon, bob, svc] }
  - name: rpc
    sql: select 1
    allow: [alice]
    deny: [bob]
    sqlstate: P0001
";

/// `yaml` (one case) parsed for a file with actors alice and anon.
fn parsed(yaml: &str) -> Result<Case, CaseError> {
    let doc: Doc =
        serde_saphyr::from_str(&format!("cases:\n  - {}", yaml.replace('\n', "\n    "))).unwrap();
    let spec: crate::actors::ActorSpec = serde_saphyr::from_str("anon").unwrap();
    let mut actors = BTreeMap::new();
    actors.insert("anon".to_owned(), spec);
    actors.insert(
        "alice".to_owned(),
        serde_saphyr::from_str("{ user: alice@example.com }").unwrap(),
    );
    let actors = crate::actors::Actors::resolve(&actors).unwrap();
    let (mut cases, mut errors) = parse_cases(&doc.cases, &actors, 1);
    match errors.pop() {
        Some(error) => Err(error),
        None => Ok(cases.remove(0)),
    }
}

#[test]
fn a_case_has_exactly_one_target() {
    let table =
        parsed("name: a\ntable: Private.\"Odd \"\"Name\"\"\"\nselect: { allow: others }").unwrap();
    assert_eq!(
        table.relation(),
        Some(QualifiedName::new("private", "Odd \"Name\""))
    );
    let bucket =
        parsed("name: b\nbucket: avatars\nobject: a.png\nselect: { allow: others }").unwrap();
    assert!(matches!(
        &bucket.kind,
        CaseKind::Bucket { bucket, object: Some(object), .. } if bucket == "avatars" && object == "a.png"
    ));
    assert_eq!(
        bucket.relation(),
        Some(QualifiedName::new("storage", "objects"))
    );
    let sql = parsed("name: c\nsql: select 1\nallow: others").unwrap();
    assert!(matches!(&sql.kind, CaseKind::Sql(call) if call.sql == "select 1"));
    assert_eq!(sql.relation(), None);
    let plain = parsed("name: d\ntable: notes\ndelete: { deny: others }").unwrap();
    assert_eq!(
        plain.relation(),
        Some(QualifiedName::new("public", "notes"))
    );
    assert_eq!(plain.index, 0);
    assert_eq!(plain.line(), 2);
    for (yaml, says) in [
        ("name: e", "exactly one of"),
        ("name: e\ntable: t\nbucket: b", "exactly one of"),
        (
            "name: e\nsql: select 1\nobject: a.png",
            "`object:` needs `bucket:`",
        ),
        (
            "name: e\ntable: a.b.c\nselect: { allow: others }",
            "give `table` or `schema.table`",
        ),
        ("name: e\ntable: t", "no operation"),
    ] {
        let error = parsed(yaml).unwrap_err();
        assert!(
            error.message.starts_with("case `e`: ") && error.message.contains(says),
            "{error}"
        );
    }
    // A table name that does not parse points at the name.
    let error = parsed("name: e\ntable: '\"open'\nselect: { allow: others }").unwrap_err();
    assert_eq!(error.pos.at("m.yaml"), "m.yaml:3:12", "{error}");
}

#[test]
fn cases_parse_with_lines_and_others() {
    let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
    assert_eq!(doc.cases.len(), 2);
    assert_eq!(doc.cases[0].referenced.line(), 2);
    let case = &doc.cases[0].value;
    let select = case.select.as_ref().unwrap();
    assert_eq!(select.deny, Who::Others);
    let actors = ["alice", "anon", "bob", "svc"];
    let e = resolve(&select.allow, &select.deny, &actors).unwrap();
    assert_eq!(e.cells["bob"], Expect::Deny);
    assert_eq!(e.cells["svc"], Expect::Allow);
    assert!(e.missing.is_empty());
    let update = case.update.as_ref().unwrap();
    assert_eq!(update.set["age"], serde_json::json!(3));
    let rpc = &doc.cases[1].value;
    let e = resolve(
        rpc.allow.as_ref().unwrap(),
        rpc.deny.as_ref().unwrap(),
        &actors,
    )
    .unwrap();
    assert_eq!(e.missing, vec!["anon", "svc"]);
}

#[test]
fn unknown_actor_and_contradiction_name_their_line() {
    let doc: Doc = serde_saphyr::from_str(DOC).unwrap();
    let select = doc.cases[0].value.select.as_ref().unwrap();
    let (at, message) = resolve(&select.allow, &select.deny, &["alice", "bob"]).unwrap_err();
    assert_eq!(at.map(|at| at.at("m.yaml")).as_deref(), Some("m.yaml:5:30"));
    assert!(message.contains("`svc` is not an actor"), "{message}");
    let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: [a], deny: [a] }\n";
    let doc: Doc = serde_saphyr::from_str(yaml).unwrap();
    let select = doc.cases[0].value.select.as_ref().unwrap();
    let (_, message) = resolve(&select.allow, &select.deny, &["a"]).unwrap_err();
    assert!(message.contains("both allowed and denied"), "{message}");
}

#[test]
fn deny_sqlstate_lists_and_deny_on_parse_and_are_checked_where_written() {
    let yaml = "cases:\n  - name: x\n    table: t\n    deny_sqlstate: [P0001, 22023]\n    update: { set: { a: 1 }, allow: [a], deny_on: error }\n";
    let doc: Doc = crate::yaml::parse_yaml(yaml, std::path::Path::new("m.yaml")).unwrap();
    let case = &doc.cases[0].value;
    assert_eq!(
        case.deny_sqlstate,
        Some(SqlStates(vec!["P0001".to_owned(), "22023".to_owned()]))
    );
    assert_eq!(case.update.as_ref().unwrap().deny_on, Some(DenyOn::Error));
    for (bad, at, says) in [
        (
            "deny_sqlstate: [P001]",
            "m.yaml:4:21",
            "`P001` is not a SQLSTATE",
        ),
        (
            "deny_sqlstate: [p0001]",
            "m.yaml:4:21",
            "`p0001` is not a SQLSTATE",
        ),
        ("deny_sqlstate: P0001", "m.yaml:4:20", "write a list"),
        ("deny_sqlstate: []", "m.yaml:4:", "lists nothing"),
        ("deny_on: errors", "m.yaml:4:", "errors"),
    ] {
        let yaml = format!("cases:\n  - name: x\n    table: t\n    {bad}\n");
        let err = crate::yaml::parse_yaml::<Doc>(&yaml, std::path::Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(at) && err.contains(says), "{bad}: {err}");
    }
}

#[test]
fn then_takes_a_query_or_a_list_and_holds_on_rows_without_false() {
    let yaml = "cases:\n  - name: x\n    sql: select 1\n    then: select true;\n  - name: y\n    table: t\n    update: { set: { a: 1 }, then: [select 1, 'select exists(select 1)'] }\n";
    let doc: Doc = crate::yaml::parse_yaml(yaml, std::path::Path::new("m.yaml")).unwrap();
    let then = doc.cases[0].value.then.as_ref().unwrap();
    assert_eq!(then.value, Then(vec!["select true".to_owned()]));
    assert_eq!(then.referenced.line(), 4);
    let update = doc.cases[1].value.update.as_ref().unwrap();
    assert_eq!(update.then.as_ref().unwrap().value.0.len(), 2);
    for bad in ["then: []", "then: ' ; '"] {
        let yaml = format!("cases:\n  - name: x\n    sql: select 1\n    {bad}\n");
        let err = crate::yaml::parse_yaml::<Doc>(&yaml, std::path::Path::new("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.yaml:4:"), "{bad}: {err}");
    }
    assert_eq!(then_holds(r#"[{"ok":true}]"#), Ok(()));
    assert_eq!(then_holds(r#"[{"id":1,"n":"x"},{"id":2,"n":"y"}]"#), Ok(()));
    assert_eq!(then_holds("[]").unwrap_err().to_string(), "returned no row");
    assert_eq!(
        then_holds(r#"[{"archived":false}]"#)
            .unwrap_err()
            .to_string(),
        r#"returned [{"archived":false}]"#
    );
    assert!(then_holds(r#"[{"ok":true},{"ok":null}]"#).is_err());
}

#[test]
fn unknown_keys_and_bare_names_are_rejected() {
    let yaml = "cases:\n  - name: x\n    table: t\n    selct: { allow: [a] }\n";
    let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
    assert!(err.contains("selct"), "{err}");
    let yaml = "cases:\n  - name: x\n    table: t\n    select: { allow: alice }\n";
    let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err().to_string();
    assert!(err.contains("[alice]"), "{err}");
}
