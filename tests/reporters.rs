//! The reporters (console, JUnit, GitHub annotations and job summary, JSON) on hand-built
//! reports, RLS cells included: insta snapshots of what each prints, plus the escaping each
//! must get right. Durations are fixed in the reports, the JUnit timestamp is passed in.

use db_ci::diag::Diagnostic;
use db_ci::policy_tests::cases::{Expect, Operation};
use db_ci::report::events::{Event, Reporter};
use db_ci::report::human::Human;
use db_ci::report::junit::OffsetDateTime;
use db_ci::report::{
    github, json, junit, Case, CaseVerdict, Failure, Report, RlsCell, RunError, RunErrorKind,
    StageReport, StageVerdict, Verdict,
};
use db_ci::rls::detail::{Coverage, CoverageRow, RlsDetail};
use db_ci::stage_id::StageId;

/// Text with every character some reporter must escape.
/// Control characters included, as data can hold them: an ANSI colour, a bell, a NUL, a lone
/// CR, a C1 CSI.
const NASTY: &str = "quote \" apostrophe ' <tag> & amp | pipe % percent: colon, comma\r\nsecond \
     line ]]> end \u{1b}[31mred\u{7}\u{0} cr\rhere \u{9b}2J";

fn file_case(stage: &str, file: &str, verdict: CaseVerdict, line: Option<usize>) -> Case {
    Case {
        name: file.to_owned(),
        group: stage.to_owned(),
        verdict,
        file: Some(file.to_owned()),
        line,
        duration_ms: 12,
        message: None,
        cell: None,
    }
}

/// The report's observation written as the JSON spells it.
fn observed_from(text: &str) -> db_ci::report::Observed {
    use db_ci::report::Observed;
    match text {
        "allow" => Observed::Allow,
        "deny" => Observed::Deny,
        "partial" => Observed::Partial,
        "broken" => Observed::Broken,
        other => panic!("no observation `{other}`"),
    }
}

fn cell(case: &str, actor: &str, operation: &str, expected: &str, observed: &str) -> Case {
    let verdict = match observed {
        "broken" => CaseVerdict::Broken,
        o if o == expected => CaseVerdict::Pass,
        _ => CaseVerdict::Fail,
    };
    Case {
        name: format!("{case} / {operation} as {actor}"),
        group: "policy-tests/profiles.yaml".to_owned(),
        verdict,
        file: Some("policy-tests/profiles.yaml".to_owned()),
        line: Some(if case.starts_with("profiles") { 9 } else { 20 }),
        duration_ms: 3,
        message: (verdict != CaseVerdict::Pass)
            .then(|| format!("{operation} as {actor}: expected {expected}, observed {observed}")),
        cell: Some(RlsCell {
            case: case.to_owned(),
            target: if case.starts_with("profiles") {
                "public.profiles"
            } else {
                "sql"
            }
            .to_owned(),
            actor: actor.to_owned(),
            operation: match operation {
                "select" => Operation::Select,
                "insert" => Operation::Insert,
                "update" => Operation::Update,
                "delete" => Operation::Delete,
                "sql" => Operation::Sql,
                other => panic!("no operation `{other}`"),
            },
            expected: match expected {
                "allow" => Some(Expect::Allow),
                "deny" => Some(Expect::Deny),
                "none" => None,
                other => panic!("no expectation `{other}`"),
            },
            observed: observed_from(observed),
            unreviewed: false,
        }),
    }
}

fn stage(name: StageId, verdict: StageVerdict, duration_ms: u64) -> StageReport {
    StageReport {
        duration_ms,
        ..StageReport::new(name, verdict)
    }
}

/// A failing run: replay passes, idempotence fails twice (one file, one catalog difference
/// no file case stands for), rls fails with a denied cell allowed and a broken cell.
fn failing_report() -> Report {
    let mut replay = stage(StageId::Replay, StageVerdict::Pass, 90);
    replay.reason = Some("3 files applied".to_owned());
    replay.checks = 3;
    replay.cases = vec![
        file_case(
            "replay",
            "migrations/0001_init.sql",
            CaseVerdict::Pass,
            None,
        ),
        file_case(
            "replay",
            "migrations/0002_policies.sql",
            CaseVerdict::Pass,
            None,
        ),
        file_case("replay", "seeds/seed.sql", CaseVerdict::Pass, None),
    ];

    let mut idempotence = stage(StageId::Idempotence, StageVerdict::Fail, 120);
    idempotence.checks = 3;
    idempotence.failures = vec![
        Failure {
            file: "migrations/0002_policies.sql".to_owned(),
            line: 14,
            column: Some(1),
            message: "policy \"owners manage <their> todos\" for table \"todos\" already exists"
                .to_owned(),
            notes: vec![
                "this file succeeded in pass 1 and failed when run a second time".to_owned(),
                "not re-runnable: precede it with DROP POLICY IF EXISTS … ON …".to_owned(),
            ],
            statement: Some("create policy \"owners manage <their> todos\" on todos\n  using (owner = auth.uid());".to_owned()),
        },
        Failure {
            file: "seeds/seed.sql".to_owned(),
            line: 3,
            column: None,
            message: NASTY.to_owned(),
            notes: vec![],
            statement: None,
        },
    ];
    idempotence.cases = vec![
        file_case(
            "idempotence",
            "migrations/0001_init.sql",
            CaseVerdict::Pass,
            None,
        ),
        Case {
            message: Some(idempotence.failures[0].message.clone()),
            ..file_case(
                "idempotence",
                "migrations/0002_policies.sql",
                CaseVerdict::Fail,
                Some(14),
            )
        },
        file_case("idempotence", "seeds/seed.sql", CaseVerdict::Skipped, None),
    ];
    idempotence.cases[2].message = Some("exempt: data seed, run once".to_owned());

    let mut rls = stage(StageId::Rls, StageVerdict::Fail, 45);
    let profiles = "profiles: owner only | visible";
    rls.cases = vec![
        cell(profiles, "alice", "select", "allow", "allow"),
        cell(profiles, "anon", "select", "deny", "allow"),
        cell(profiles, "alice", "update", "allow", "allow"),
        cell(profiles, "anon", "update", "deny", "deny"),
        cell(profiles, "alice", "delete", "deny", "broken"),
        cell(
            "start_session is the owner's",
            "alice",
            "sql",
            "allow",
            "allow",
        ),
        cell(
            "start_session is the owner's",
            "anon",
            "sql",
            "deny",
            "deny",
        ),
    ];
    rls.checks = rls.cases.len();
    rls.failures = vec![
        Failure {
            file: "policy-tests/profiles.yaml".to_owned(),
            line: 9,
            column: None,
            message: "case `profiles: owner only | visible` on public.profiles: select as anon: \
                      expected deny, observed allow (1 of 1 target rows visible)"
                .to_owned(),
            notes: vec![],
            statement: None,
        },
        Failure {
            file: "policy-tests/profiles.yaml".to_owned(),
            line: 9,
            column: None,
            message: "case `profiles: owner only | visible` on public.profiles: delete as alice: \
                      broken test: insert or update on table \"x\" violates foreign key constraint"
                .to_owned(),
            notes: vec![],
            statement: None,
        },
    ];
    rls.detail_mut::<RlsDetail>().coverage = Some(Coverage {
        tables: vec![
            CoverageRow {
                table: "public.profiles".to_owned(),
                select: true,
                insert: false,
                update: true,
                delete: true,
                not_applicable: vec![],
            },
            CoverageRow {
                table: "public.todos".to_owned(),
                select: false,
                insert: false,
                update: false,
                delete: false,
                not_applicable: vec![],
            },
            CoverageRow {
                table: "public.todo_counts".to_owned(),
                select: true,
                insert: false,
                update: false,
                delete: false,
                not_applicable: vec![
                    "insert".to_owned(),
                    "update".to_owned(),
                    "delete".to_owned(),
                ],
            },
        ],
        percent: 37.5,
        minimum: Some(50.0),
    });

    let mut properties = stage(StageId::Properties, StageVerdict::Skipped, 0);
    properties.reason = Some("no properties in policy-tests".to_owned());
    let mut snapshot = stage(StageId::Snapshot, StageVerdict::Skipped, 0);
    snapshot.reason = Some("no committed snapshot".to_owned());
    let mut lint = stage(StageId::Lint, StageVerdict::Skipped, 0);
    lint.reason = Some("not selected".to_owned());

    Report {
        verdict: Verdict::Fail,
        db_ci_version: "0.1.0",
        project: "fixtures/example".to_owned(),
        backend: Some("local PostgreSQL 15.18".to_owned()),
        server_version: Some("15.18".to_owned()),
        replay_mode: "strict".to_owned(),
        seed: Some(42),
        duration_ms: 812,
        stages: vec![replay, idempotence, rls, properties, snapshot, lint],
        error: None,
    }
}

fn passing_report() -> Report {
    let mut report = failing_report();
    report.verdict = Verdict::Pass;
    report.stages.truncate(1);
    for (name, reason) in [
        (
            "idempotence",
            "pass 2 applied; 40 catalog objects and 2 tables identical",
        ),
        ("rls", "no policy tests in policy-tests"),
        ("properties", "no properties in policy-tests"),
        ("snapshot", "no committed snapshot"),
        ("lint", "not selected"),
    ] {
        let verdict = if name == "idempotence" {
            StageVerdict::Pass
        } else {
            StageVerdict::Skipped
        };
        let mut stage = stage(StageId::parse(name).unwrap(), verdict, 10);
        stage.reason = Some(reason.to_owned());
        report.stages.push(stage);
    }
    report
}

/// The repository is checked out at /w, db-ci runs there.
fn paths() -> github::Paths {
    github::Paths {
        workspace: "/w".into(),
        cwd: "/w".into(),
    }
}

fn timestamp() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

fn junit_text(report: &Report) -> String {
    String::from_utf8(junit::to_xml(report, timestamp(), &paths()).unwrap()).unwrap()
}

fn console_text(report: &Report) -> String {
    let mut out = Vec::new();
    {
        let mut human = Human::new(&mut out, false);
        for stage in &report.stages {
            human.event(&Event::StageDone(stage));
        }
        human.event(&Event::RunDone(report));
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn junit_of_a_failing_run() {
    insta::assert_snapshot!(junit_text(&failing_report()));
}

#[test]
fn junit_of_a_passing_run_has_no_failures() {
    let xml = junit_text(&passing_report());
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(!xml.contains("<error"), "{xml}");
    insta::assert_snapshot!(xml);
}

/// What a JUnit consumer reads back: every `failure`/`error` element's message attribute and
/// body, unescaped by a real XML parser.
fn parsed_failures(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event as Xml;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found: Vec<(String, String)> = Vec::new();
    let mut inside = false;
    loop {
        match reader
            .read_event()
            .expect("the JUnit file is well-formed XML")
        {
            Xml::Start(e) if matches!(e.name().as_ref(), b"failure" | b"error") => {
                let message = e
                    .try_get_attribute("message")
                    .unwrap()
                    .expect("a message attribute")
                    .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .unwrap()
                    .into_owned();
                found.push((message, String::new()));
                inside = true;
            }
            Xml::End(e) if matches!(e.name().as_ref(), b"failure" | b"error") => inside = false,
            Xml::CData(text) if inside => {
                let body = String::from_utf8(text.into_inner().into_owned()).unwrap();
                found.last_mut().unwrap().1.push_str(&body);
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    found
}

#[test]
fn junit_escapes_markup_quotes_newlines_and_cdata_ends() {
    let xml = junit_text(&failing_report());
    let failures = parsed_failures(&xml);
    let nasty = failures
        .iter()
        .find(|(message, _)| message.starts_with("quote"))
        .expect("the failure with the nasty message is a testcase");
    assert_eq!(nasty.0, NASTY.lines().next().unwrap());
    assert!(
        nasty.1.contains("second line ]]> end"),
        "body: {:?}",
        nasty.1
    );
    assert!(nasty
        .1
        .starts_with("seeds/seed.sql:3: quote \" apostrophe ' <tag> & amp"));
    // Denied-but-allowed cell, broken cell, the policy failure, the catalog-less one.
    assert_eq!(failures.len(), 4, "{failures:#?}");
    let policy = failures
        .iter()
        .find(|(m, _)| m.starts_with("policy"))
        .unwrap();
    assert!(policy
        .1
        .contains("migrations/0002_policies.sql:14:1: policy"));
    assert!(policy.1.contains("note: not re-runnable"));
}

/// The attributes of every element named `name`, in document order.
fn elements(xml: &str, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    use quick_xml::events::Event as Xml;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut found = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) | Xml::Empty(e) if e.name().as_ref() == name.as_bytes() => {
                found.push(
                    e.attributes()
                        .map(|a| {
                            let a = a.unwrap();
                            (
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                                    .unwrap()
                                    .into_owned(),
                            )
                        })
                        .collect(),
                );
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    found
}

/// A character XML 1.0 allows (its `Char` production).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

#[test]
fn junit_holds_only_valid_xml_characters() {
    let mut report = failing_report();
    // Control characters in every place data reaches: a case name, a file, a message.
    report.stages[2].cases[0].name = "profiles \u{1b}]0;title\u{7} / select".to_owned();
    report.stages[2].cases[0].file = Some("policy-tests/\u{1}odd.yaml".to_owned());
    report.stages[2].cases[0].message = Some("a \u{ffff} value".to_owned());
    let xml = junit_text(&report);
    let bad: Vec<char> = xml.chars().filter(|c| !is_xml_char(*c)).collect();
    assert!(bad.is_empty(), "characters XML forbids: {bad:?}");
    // Shown escaped, not dropped: the reader still sees that they were there.
    assert!(
        xml.contains(r"end \x1b[31mred\x07\x00 cr\x0dhere \u{9b}2J"),
        "{xml}"
    );
    assert!(xml.contains(r"profiles \x1b]0;title\x07 / select"), "{xml}");
    assert!(xml.contains(r"policy-tests/\x01odd.yaml"), "{xml}");
    assert!(xml.contains(r"a \u{ffff} value"), "{xml}");
    // libxml2's own parser agrees, where it is installed (Debian: libxml2-utils).
    if let Ok(status) = std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .map(|o| o.status)
    {
        assert!(status.success());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db-ci.xml");
        std::fs::write(&path, &xml).unwrap();
        let out = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("xmllint not installed: checked the characters only");
    }
}

#[test]
fn junit_suites_carry_the_stage_time_and_the_root_the_totals() {
    let xml = junit_text(&failing_report());
    let root = &elements(&xml, "testsuites")[0];
    // 3 replay + 3 idempotence + 1 catalog-less failure + 7 rls cells + 3 skipped stages.
    assert_eq!(root["tests"], "17", "{root:?}");
    assert_eq!(root["failures"], "3", "{root:?}");
    assert_eq!(root["errors"], "1", "{root:?}");
    assert_eq!(root["skipped"], "4", "{root:?}");
    assert_eq!(root["time"], "0.812", "{root:?}");
    let suites = elements(&xml, "testsuite");
    let times: Vec<(&str, &str)> = suites
        .iter()
        .map(|s| (s["name"].as_str(), s["time"].as_str()))
        .collect();
    assert_eq!(
        times,
        [
            ("replay", "0.090"),
            ("idempotence", "0.120"),
            ("rls", "0.045"),
            ("properties", "0.000"),
            ("snapshot", "0.000"),
            ("lint", "0.000")
        ]
    );
    // The per-suite counts add up to the root's.
    for key in ["tests", "failures", "errors", "skipped"] {
        let sum: usize = suites
            .iter()
            .map(|s| s[key].parse::<usize>().unwrap())
            .sum();
        assert_eq!(sum.to_string(), root[key], "{key}");
    }
}

#[test]
fn junit_shows_lint_warnings_as_system_out_of_their_testcase() {
    let mut report = passing_report();
    let lint = report.stages.iter_mut().find(|s| s.name == "lint").unwrap();
    lint.verdict = StageVerdict::Pass;
    lint.cases = vec![
        Case {
            message: Some(
                "warn auth_rls_initplan: policy \"read own\" on public.todos: re-evaluates \
                 auth.uid() per row"
                    .to_owned(),
            ),
            group: "auth_rls_initplan".to_owned(),
            name: "auth_rls_initplan: policy \"read own\" on public.todos".to_owned(),
            ..file_case(
                "lint",
                "migrations/0002_policies.sql",
                CaseVerdict::Pass,
                Some(7),
            )
        },
        Case {
            name: "no_primary_key: no findings".to_owned(),
            file: None,
            line: None,
            ..file_case("lint", "", CaseVerdict::Pass, None)
        },
    ];
    let xml = junit_text(&report);
    let outs = system_outs(&xml);
    assert_eq!(
        outs,
        [(
            "auth_rls_initplan: policy \"read own\" on public.todos".to_owned(),
            "warn auth_rls_initplan: policy \"read own\" on public.todos: re-evaluates \
             auth.uid() per row"
                .to_owned()
        )]
    );
    assert!(!xml.contains("<failure"), "{xml}");
}

/// (testcase name, system-out text) for every testcase with a system-out.
fn system_outs(xml: &str) -> Vec<(String, String)> {
    use quick_xml::events::Event as Xml;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut case = String::new();
    let mut inside = false;
    let mut found = Vec::new();
    loop {
        match reader.read_event().expect("well-formed XML") {
            Xml::Start(e) if e.name().as_ref() == b"testcase" => {
                case = e
                    .try_get_attribute("name")
                    .unwrap()
                    .unwrap()
                    .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                    .unwrap()
                    .into_owned();
            }
            Xml::Start(e) if e.name().as_ref() == b"system-out" => {
                inside = true;
                found.push((case.clone(), String::new()));
            }
            Xml::End(e) if e.name().as_ref() == b"system-out" => inside = false,
            Xml::CData(text) if inside => {
                let text = String::from_utf8(text.into_inner().into_owned()).unwrap();
                found.last_mut().unwrap().1.push_str(&text);
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    found
}

#[test]
fn junit_is_written_atomically_to_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reports/db-ci.xml");
    junit::write(&failing_report(), &path).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    assert_eq!(parsed_failures(&xml).len(), 4);
    // Only the report is left in the directory: no temporary file.
    assert_eq!(
        std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1
    );
}

#[test]
fn annotations_of_a_failing_run() {
    insta::assert_snapshot!(github::annotations(&failing_report(), &paths()));
}

#[test]
fn annotations_stop_at_githubs_per_step_limit() {
    let mut report = failing_report();
    let failure = report.stages[1].failures[0].clone();
    report.stages[1].failures = (1..=13)
        .map(|line| Failure {
            line,
            ..failure.clone()
        })
        .collect();
    let text = github::annotations(&report, &paths());
    let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("::error ")).collect();
    // 13 failing idempotence statements and 1 failing rls case: the first 10 in stage order
    // are annotated, the other 4 counted.
    assert_eq!(errors.len(), github::MAX_ERROR_ANNOTATIONS);
    assert!(errors.iter().all(|e| e.contains("title=db-ci idempotence")));
    assert!(errors[9].contains("line=10,"), "{}", errors[9]);
    let warning = text.lines().last().unwrap();
    assert!(
        warning.starts_with(
            "::warning title=db-ci::4 more failing checks are not annotated (idempotence 3, rls 1)"
        ),
        "{warning}"
    );
    assert!(
        warning.contains("The job summary lists every failure"),
        "{warning}"
    );
}

#[test]
fn one_annotation_per_failing_case_names_every_actor_and_operation() {
    let text = github::annotations(&failing_report(), &paths());
    let rls: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("policy-tests/profiles.yaml"))
        .collect();
    // The two wrong cells of the case at line 9 share one annotation.
    assert_eq!(rls.len(), 1, "{text}");
    assert!(rls[0].starts_with(
        "::error file=fixtures/example/policy-tests/profiles.yaml,line=9,\
         title=db-ci rls (2 failures)::case `profiles: owner only | visible` on public.profiles:%0A"
    ));
    assert!(rls[0].contains("%0A- select as anon: expected deny, observed allow"));
    assert!(rls[0].contains("%0A- delete as alice: broken test"));
    // Every failing check of every stage has exactly one annotation: 2 idempotence, 1 rls.
    assert_eq!(
        text.lines().filter(|l| l.starts_with("::error ")).count(),
        3
    );
    assert!(!text.contains("::warning"), "{text}");
}

/// Many failing RLS cases before the lint stage: the lint failures are still in the summary
/// (no cap drops a whole stage) and counted by the overflow warning.
#[test]
fn later_stages_failures_are_never_dropped() {
    let mut report = failing_report();
    let template = report.stages[2].failures[0].clone();
    report.stages[2].failures = (1..=60)
        .map(|line| Failure {
            line,
            message: format!("case `c{line}`: select as anon: expected deny, observed allow"),
            ..template.clone()
        })
        .collect();
    let lint = report.stages.iter_mut().find(|s| s.name == "lint").unwrap();
    lint.verdict = StageVerdict::Fail;
    lint.failures = (1..=8)
        .map(|n| Failure {
            file: "migrations/0001_init.sql".to_owned(),
            line: n,
            column: None,
            message: format!("error rls_disabled_in_public: public.t{n}: RLS is off"),
            notes: vec!["fix: `alter table … enable row level security`".to_owned()],
            statement: None,
        })
        .collect();
    let summary = github::summary(&report);
    for n in 1..=8 {
        assert!(
            summary.contains(&format!("public.t{n}: RLS is off")),
            "lint t{n}"
        );
    }
    assert!(summary.contains("c60"));
    let annotations = github::annotations(&report, &paths());
    // 2 idempotence + 58 more rls + 8 lint beyond the budget.
    assert!(
        annotations.contains(
            "::warning title=db-ci::60 more failing checks are not annotated (rls 52, lint 8)"
        ),
        "{annotations}"
    );
}

#[test]
fn input_errors_are_annotated_at_their_file_and_line() {
    let mut report = passing_report();
    report.verdict = Verdict::Fail;
    let source = format!("{}    selct: {{}}\n", "x: 1\n".repeat(13));
    report.error = Some(RunError::from_error(&db_ci::error::Error::from(
        Diagnostic::at(
            "policy-tests/notes.yaml",
            14,
            Some(5),
            "unknown field `selct`, expected one of select",
        )
        .with_source(&source),
    )));
    let annotations = github::annotations(&report, &paths());
    assert_eq!(
        annotations,
        "::error file=fixtures/example/policy-tests/notes.yaml,line=14,col=5,\
         title=db-ci%3A input error::policy-tests/notes.yaml:14:5: unknown field `selct`, \
         expected one of select\n"
    );
    // Read before the project was: the path is relative to the working directory.
    let early = github::error_annotation(
        &RunError::from_error(&db_ci::error::Error::at(
            "fixtures/x/db-ci.yaml",
            3,
            Some(15),
            "unknown field `mni`",
        )),
        &paths(),
        None,
    );
    assert!(
        early.starts_with("::error file=fixtures/x/db-ci.yaml,line=3,col=15,title="),
        "{early}"
    );
    // No position, no file, even when the message names one.
    let plain = github::error_annotation(
        &RunError::new(
            RunErrorKind::Input,
            "order migrations: duplicate version 0002: a.sql:1: and b.sql",
        ),
        &paths(),
        None,
    );
    assert!(plain.starts_with("::error title="), "{plain}");
    // The summary shows the source line, underlined, in a fixed-width block.
    let summary = github::summary(&report);
    assert!(
        summary.contains("```text\npolicy-tests/notes.yaml:14:5: unknown field `selct`"),
        "{summary}"
    );
    assert!(
        summary.contains("14 │     selct: {}\n   │     ^^^^^\n```\n"),
        "{summary}"
    );
    // JUnit: the run's error case at the file and line.
    let xml = junit_text(&report);
    assert!(
        xml.contains(r#"file="fixtures/example/policy-tests/notes.yaml" line="14""#),
        "{xml}"
    );
    // JSON: the position as fields.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["error"]["file"], "policy-tests/notes.yaml");
    assert_eq!(json["error"]["line"], 14);
    assert_eq!(json["error"]["column"], 5);
}

#[test]
fn github_logs_fold_each_stages_detail() {
    let report = failing_report();
    let mut out = Vec::new();
    {
        let mut human = Human::new(&mut out, false);
        human.groups = true;
        for stage in &report.stages {
            human.event(&Event::StageDone(stage));
        }
        human.event(&Event::RunDone(&report));
    }
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // A stage with nothing more than its line is not folded.
    assert_eq!(
        lines[0],
        "        PASS [ 0.09s] replay       3 files applied"
    );
    assert_eq!(lines[1], "::group::        FAIL [ 0.12s] idempotence");
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("::group::")).count(),
        2,
        "{text}"
    );
    assert_eq!(
        lines.iter().filter(|l| **l == "::endgroup::").count(),
        2,
        "{text}"
    );
    // Data inside the fold cannot issue workflow commands: they are paused around it, with a
    // token that changes every time, and resumed before the group ends.
    let idempotence_end = lines.iter().position(|l| *l == "::endgroup::").unwrap();
    let stop = lines[3]
        .strip_prefix("::stop-commands::")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(stop.starts_with("db-ci-") && stop.len() > 12, "{stop}");
    assert_eq!(lines[idempotence_end - 1], format!("::{stop}::"));
    let rls = lines
        .iter()
        .position(|l| l.starts_with("::group::") && l.contains("rls"))
        .unwrap();
    assert!(
        lines[rls + 2].starts_with("::stop-commands::db-ci-"),
        "{text}"
    );
    assert_ne!(lines[rls + 2], lines[3], "a fresh token per fold");
    let end = rls
        + lines[rls..]
            .iter()
            .position(|l| *l == "::endgroup::")
            .unwrap();
    assert!(
        lines[rls..end].iter().any(|l| l.contains("RLS coverage")),
        "{text}"
    );
    assert!(lines[end + 1].contains("SKIP"), "{text}");
}

#[test]
fn workflow_command_escaping() {
    assert_eq!(
        github::escape_data("50% done\r\nnext: a, b\ra"),
        "50%25 done%0Anext: a, b\\x0da"
    );
    assert_eq!(github::escape_property("dir:a,b%\nc"), "dir%3Aa%2Cb%25%0Ac");
}

#[test]
fn markdown_escaping_keeps_table_cells_whole() {
    assert_eq!(
        github::escape_markdown("a | b <script> *x*\nnext"),
        "a \\| b \\<script\\> \\*x\\*<br>next"
    );
}

#[test]
fn summary_of_a_failing_run_has_the_rls_grid() {
    let summary = github::summary(&failing_report());
    assert!(summary.contains("### RLS matrix"));
    insta::assert_snapshot!(summary);
}

#[test]
fn summary_of_a_passing_run() {
    let summary = github::summary(&passing_report());
    assert!(summary.starts_with("## db-ci: ✅ pass"));
    assert!(!summary.contains("❌"));
    insta::assert_snapshot!(summary);
}

#[test]
fn summary_and_annotations_of_a_run_that_stopped() {
    let mut report = passing_report();
    report.verdict = Verdict::Fail;
    report.error = Some(RunError::new(
        RunErrorKind::Environment,
        "find a usable PostgreSQL backend:\n  local: no initdb",
    ));
    let annotations = github::annotations(&report, &paths());
    assert_eq!(
        annotations,
        "::error title=db-ci%3A environment error::find a usable PostgreSQL backend:%0A  local: no initdb\n"
    );
    assert!(github::summary(&report).starts_with("## db-ci: ❌ environment error"));
    let xml = junit_text(&report);
    assert_eq!(
        parsed_failures(&xml)[0].0,
        "find a usable PostgreSQL backend:"
    );
}

#[test]
fn console_output_of_a_failing_run() {
    insta::assert_snapshot!(console_text(&failing_report()));
}

/// Whatever the data holds, no reporter that writes to a terminal or a log passes a control
/// character through: only newlines (and the console's own colour, when on).
#[test]
fn no_reporter_emits_a_raw_control_character_from_data() {
    let report = failing_report();
    let raw = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect()
    };
    let console = console_text(&report);
    assert_eq!(raw(&console), Vec::<char>::new(), "{console:?}");
    assert!(
        console.contains(r"end \x1b[31mred\x07\x00 cr\x0dhere \u{9b}2J"),
        "{console}"
    );
    let annotations = github::annotations(&report, &paths());
    assert_eq!(raw(&annotations), Vec::<char>::new(), "{annotations:?}");
    assert!(
        annotations.contains(r"end \x1b[31mred\x07\x00"),
        "{annotations}"
    );
    let summary = github::summary(&report);
    assert_eq!(raw(&summary), Vec::<char>::new(), "{summary:?}");
    // With colour on, the only escapes are the console's own SGR codes.
    let mut coloured = Vec::new();
    {
        let mut human = Human::new(&mut coloured, true);
        for stage in &report.stages {
            human.event(&Event::StageDone(stage));
        }
    }
    let coloured = String::from_utf8(coloured).unwrap();
    let without_sgr = regex_lite_strip_sgr(&coloured);
    assert_eq!(raw(&without_sgr), Vec::<char>::new(), "{coloured:?}");
    assert!(coloured.contains(r"\x1b[31mred"), "{coloured}");
}

/// `text` without `ESC [ digits/semicolons m` sequences.
fn regex_lite_strip_sgr(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('\u{1b}') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .strip_prefix('[')
            .and_then(|a| a.find('m').map(|m| (a, m)))
            .filter(|(a, m)| a[..*m].chars().all(|c| c.is_ascii_digit() || c == ';'));
        match end {
            Some((_, m)) => rest = &after[m + 2..],
            None => {
                out.push('\u{1b}');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn console_output_of_a_passing_run() {
    insta::assert_snapshot!(console_text(&passing_report()));
}

#[test]
fn json_keeps_the_design_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    json::write(&failing_report(), &path).unwrap();
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(value["verdict"], "fail");
    let names: Vec<&str> = value["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "replay",
            "idempotence",
            "rls",
            "properties",
            "snapshot",
            "lint"
        ]
    );
    let idempotence = &value["stages"][1];
    assert_eq!(idempotence["verdict"], "fail");
    assert_eq!(
        idempotence["failures"][0]["file"],
        "migrations/0002_policies.sql"
    );
    assert_eq!(idempotence["failures"][0]["line"], 14);
    assert_eq!(value["stages"][2]["cases"][1]["cell"]["observed"], "allow");
    assert_eq!(value["stages"][3]["verdict"], "skipped");
    assert_eq!(
        value["stages"][3]["reason"],
        "no properties in policy-tests"
    );
}

#[test]
fn annotation_paths_are_relative_to_the_repository_root() {
    let at = |workspace: &str, cwd: &str, project: &str| {
        github::Paths {
            workspace: workspace.into(),
            cwd: cwd.into(),
        }
        .repository_path(project, "migrations/0001_init.sql")
    };
    assert_eq!(at("/w", "/w", "."), "migrations/0001_init.sql");
    assert_eq!(
        at("/w", "/w", "db/project"),
        "db/project/migrations/0001_init.sql"
    );
    assert_eq!(
        at("/w", "/w/db", "./project"),
        "db/project/migrations/0001_init.sql"
    );
    assert_eq!(
        at("/w", "/elsewhere", "/w/db/../project"),
        "project/migrations/0001_init.sql"
    );
    // Outside the workspace GitHub cannot place it anyway: the absolute path, unchanged.
    assert_eq!(at("/w", "/w", "/tmp/p"), "/tmp/p/migrations/0001_init.sql");
}

#[test]
fn console_without_a_terminal_prints_no_progress() {
    let report = failing_report();
    let rls = report.stage(StageId::Rls).unwrap();
    let mut out = Vec::new();
    {
        let mut human = Human::new(&mut out, false);
        human.event(&Event::StageStarted {
            name: StageId::Rls,
            total: rls.cases.len(),
        });
        for case in &rls.cases {
            human.event(&Event::CaseDone {
                stage: StageId::Rls,
                case,
            });
        }
        human.event(&Event::StageDone(rls));
    }
    let text = String::from_utf8(out).unwrap();
    // Only the stage's own lines: no bar, no carriage return, no escape code.
    assert!(text.starts_with("        FAIL [ 0.04s] rls\n"), "{text}");
    assert!(!text.contains('\r') && !text.contains('\x1b'), "{text:?}");
    let mut stage_only = Vec::new();
    Human::new(&mut stage_only, false).event(&Event::StageDone(rls));
    assert_eq!(text, String::from_utf8(stage_only).unwrap());
}

#[test]
fn colour_choice() {
    use db_ci::report::human::ColorWhen;
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    };
    let auto = ColorWhen::Auto;
    assert!(auto.enabled(true, env(&[])));
    assert!(!auto.enabled(false, env(&[])));
    assert!(!auto.enabled(true, env(&[("TERM", "dumb")])));
    assert!(!auto.enabled(true, env(&[("NO_COLOR", "1")])));
    // Empty means unset, for NO_COLOR and CLICOLOR_FORCE alike.
    assert!(auto.enabled(true, env(&[("NO_COLOR", "")])));
    assert!(!auto.enabled(false, env(&[("CLICOLOR_FORCE", "")])));
    assert!(auto.enabled(false, env(&[("CLICOLOR_FORCE", "1")])));
    assert!(!auto.enabled(true, env(&[("CLICOLOR", "0")])));
    assert!(auto.enabled(false, env(&[("GITHUB_ACTIONS", "true")])));
    assert!(!auto.enabled(false, env(&[("GITHUB_ACTIONS", "true"), ("NO_COLOR", "x")])));
    assert!(ColorWhen::Always.enabled(false, env(&[("NO_COLOR", "1")])));
    assert!(!ColorWhen::Never.enabled(true, env(&[("CLICOLOR_FORCE", "1")])));
}

#[test]
fn verbose_console_lists_lint_warnings_at_their_line() {
    let mut report = passing_report();
    let lint = report.stages.iter_mut().find(|s| s.name == "lint").unwrap();
    lint.verdict = StageVerdict::Pass;
    lint.reason = Some("18 rules: 0 error, 1 warn".to_owned());
    lint.cases = vec![Case {
        message: Some("warn auth_rls_initplan: policy \"read own\" on public.todos".to_owned()),
        ..file_case(
            "lint",
            "migrations/0002_policies.sql",
            CaseVerdict::Pass,
            Some(7),
        )
    }];
    let lint = report.stage(StageId::Lint).unwrap();
    let print = |verbose: bool| {
        let mut out = Vec::new();
        {
            let mut human = Human::new(&mut out, false);
            human.verbose = verbose;
            human.event(&Event::StageDone(lint));
        }
        String::from_utf8(out).unwrap()
    };
    assert_eq!(
        print(true),
        "        PASS [ 0.01s] lint         18 rules: 0 error, 1 warn\n             \
         migrations/0002_policies.sql:7: warn auth_rls_initplan: policy \"read own\" on \
         public.todos\n"
    );
    assert!(!print(false).contains("auth_rls_initplan"));
}

/// The job summary's structure, as a reviewer reads it: verdict table first, failures
/// grouped, failing relations' grids open before the passing ones (folded), coverage, lint
/// findings below the fail level folded; code as `<code>`, never as escaped backticks.
#[test]
fn summary_puts_failures_first_and_folds_what_passed() {
    let mut report = failing_report();
    let lint = report.stages.iter_mut().find(|s| s.name == "lint").unwrap();
    lint.verdict = StageVerdict::Pass;
    // What the lint stage attaches to its report: its findings' section in the summary.
    lint.detail = db_ci::report::detail::Detail::new(db_ci::lint::LintDetail);
    lint.reason = Some("18 rules: 0 error, 1 warn".to_owned());
    lint.cases = vec![Case {
        message: Some("warn function_search_path_mutable: `public.f()`: no search_path".to_owned()),
        ..file_case(
            "lint",
            "migrations/0001_init.sql",
            CaseVerdict::Pass,
            Some(4),
        )
    }];
    let summary = github::summary(&report);
    let at = |needle: &str| {
        summary
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in:\n{summary}"))
    };
    let order = [
        at("## db-ci: ❌ fail"),
        at("| stage | verdict |"),
        at("### Failures"),
        at("❌ **rls** · <code>policy-tests/profiles.yaml:9</code> · 2 failures"),
        at("### RLS matrix"),
        at("#### ❌ <code>public.profiles</code> · 2 of 5 cells wrong"),
        at("<details><summary>✅ RPC cases (sql) · 2 cells as expected</summary>"),
        at("<details open><summary>RLS coverage: 38% (minimum 50%)</summary>"),
        at("<details><summary>Lint: 1 finding below the fail level</summary>"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}\n{summary}"
    );
    // The failing relation's grid: a row per actor, a column per operation.
    assert!(summary.contains(
        "| actor | select | update | delete |\n|---|:---:|:---:|:---:|\n\
         | alice | ✅ allow | ✅ allow | ⚠️ broken (deny) |\n\
         | anon | ❌ deny → allow | ✅ deny |  |\n"
    ));
    // The failing grid is not folded: no <details> opens between its heading and its table.
    let failing = at("#### ❌ <code>public.profiles</code>");
    assert!(!summary[at("### RLS matrix")..failing].contains("<details"));
    // Code stays code: no escaped backtick anywhere, and the lint finding's code is <code>.
    assert!(!summary.contains("\\`"), "{summary}");
    assert!(summary.contains("<code>public.f()</code>"), "{summary}");
    assert!(summary.contains("case <code>profiles: owner only &#124; visible</code>"));
}

/// A summary that would pass GitHub's 1 MiB limit leaves out whole sections, from the last,
/// and says which; the failures stay.
#[test]
fn summary_stays_under_githubs_limit_and_says_what_it_left_out() {
    let mut report = failing_report();
    let rls = &mut report.stages[2];
    let template = rls.cases[0].clone();
    rls.cases = (0..12_000)
        .map(|n| {
            let mut case = template.clone();
            let cell = case.cell.as_mut().unwrap();
            cell.target = format!("public.table_with_a_long_name_{n}");
            cell.actor = format!("actor_{}", n % 7);
            case
        })
        .collect();
    let summary = github::summary(&report);
    assert!(summary.len() <= github::SUMMARY_LIMIT, "{}", summary.len());
    assert!(summary.contains("### Failures"));
    assert!(
        summary.contains(
            "*Left out to stay under GitHub's 1 MiB job-summary limit: the RLS grids of \
             passing relations; the RLS coverage table."
        ),
        "{}",
        &summary[summary.len() - 400..]
    );
    // The small report keeps everything.
    assert!(!github::summary(&failing_report()).contains("Left out"));
}

#[test]
fn junit_files_are_repository_relative_like_the_annotations() {
    let xml = junit_text(&failing_report());
    let files: Vec<String> = elements(&xml, "testcase")
        .into_iter()
        .filter_map(|case| case.get("file").cloned())
        .collect();
    assert!(!files.is_empty());
    assert!(
        files.iter().all(|f| f.starts_with("fixtures/example/")),
        "{files:?}"
    );
    let annotations = github::annotations(&failing_report(), &paths());
    assert!(annotations.contains("file=fixtures/example/migrations/0002_policies.sql,"));
    assert!(files.contains(&"fixtures/example/migrations/0002_policies.sql".to_owned()));
}
