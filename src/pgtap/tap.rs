//! TAP as pg_prove reads it: parsing the lines a test file printed, and judging the file the
//! way TAP::Harness does (plan, sequence, skip/todo, bail out, a file that died).

/// Where something happened in the user's files (after `\i` includes, the included file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

/// A `# SKIP` or `# TODO` directive on a test line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    Skip(String),
    Todo(String),
}

/// One line of TAP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `1..N`, `1..0 # Skip reason` (the whole file skipped) or `1..N todo 3 4`.
    Plan {
        count: usize,
        skip_all: Option<String>,
        todo: Vec<usize>,
    },
    Test {
        ok: bool,
        number: Option<usize>,
        description: String,
        directive: Option<Directive>,
    },
    /// `# …`: diagnostics, attached to the test before them.
    Diagnostic(String),
    BailOut(String),
    /// `TAP version N`.
    Version(usize),
    /// Anything else (a uuid a helper returned, indented subtest lines, `1..3 extra`):
    /// ignored, as TAP::Parser ignores it.
    Other,
}

/// Parses one line of output with TAP::Parser's grammar (TAP 12, what pgTAP prints).
pub fn parse_line(line: &str) -> Line {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if let Some(rest) = line.strip_prefix("TAP") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        if rest.starts_with(char::is_whitespace)
            && words.len() == 2
            && words[0].eq_ignore_ascii_case("version")
        {
            if let Ok(version) = words[1].parse() {
                return Line::Version(version);
            }
        }
    }
    if let Some(rest) = line.strip_prefix("1..") {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            let count: usize = rest[..digits].parse().unwrap_or(usize::MAX);
            let tail = rest[digits..].trim_start();
            if let Some(list) = tail.strip_prefix("todo") {
                let todo: Vec<usize> = list
                    .split_whitespace()
                    .map_while(|n| n.parse().ok())
                    .collect();
                if !todo.is_empty() && list.starts_with(char::is_whitespace) {
                    return Line::Plan {
                        count,
                        skip_all: None,
                        todo,
                    };
                }
            }
            if count == 0 {
                // `# SKIP…` then whitespace then the reason; anything else: no reason.
                let reason = tail
                    .strip_prefix('#')
                    .map(str::trim_start)
                    .filter(|t| t.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("skip")))
                    .and_then(|t| {
                        let t = t[4..].trim_start_matches(|c: char| !c.is_whitespace());
                        t.starts_with(char::is_whitespace)
                            .then(|| t.trim_start().to_owned())
                    })
                    .unwrap_or_default();
                return Line::Plan {
                    count,
                    skip_all: Some(reason),
                    todo: Vec::new(),
                };
            }
            if tail.is_empty() {
                return Line::Plan {
                    count,
                    skip_all: None,
                    todo: Vec::new(),
                };
            }
        }
        return Line::Other;
    }
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix("ok") {
        (true, rest)
    } else {
        if line.trim_start().starts_with("Bail out!") {
            return Line::BailOut(line.trim_start()["Bail out!".len()..].trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix('#') {
            return Line::Diagnostic(rest.trim().to_owned());
        }
        return Line::Other;
    };
    // `ok\b`: `okay` is not a test line, `ok(1)` and `ok|x` are.
    if rest.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
        return Line::Other;
    }
    let rest = rest.trim_start();
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let number = rest[..digits].parse().ok();
    let rest = rest[digits..].trim_start();
    // The directive follows the first `#` not escaped by a backslash.
    let (description, directive) = match find_unescaped_hash(rest) {
        Some(at) => {
            let comment = rest[at + 1..].trim_start();
            let directive = if let Some(reason) = directive_word(comment, "skip") {
                Some(Directive::Skip(reason.trim().to_owned()))
            } else {
                directive_word(comment, "todo")
                    .map(|reason| Directive::Todo(reason.trim().to_owned()))
            };
            match directive {
                Some(d) => (rest[..at].trim_end(), Some(d)),
                None => (rest, None),
            }
        }
        None => (rest, None),
    };
    let description = description.strip_prefix('-').unwrap_or(description).trim();
    Line::Test {
        ok,
        number,
        description: description.replace("\\#", "#"),
        directive,
    }
}

/// The first `#` outside a backslash escape (`\\#` escapes the backslash, not the `#`).
fn find_unescaped_hash(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'#' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `SKIP`/`TODO` (any case) as a whole word at the start of `text`: `# skipped` is no
/// directive (TAP::Parser's `\b`).
fn directive_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    (!rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')).then_some(rest)
}

/// What one statement of a test file printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub pos: Pos,
    /// The statement's text (for failure messages).
    pub statement: String,
    pub lines: Vec<String>,
}

/// The error that ended a file (psql with ON_ERROR_STOP, as pg_prove runs it, stops there).
#[derive(Debug, Clone)]
pub struct Death {
    pub pos: Pos,
    pub statement: String,
    pub message: String,
    pub notes: Vec<String>,
}

/// One assertion the file ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub number: usize,
    pub ok: bool,
    pub description: String,
    pub directive: Option<Directive>,
    /// pgTAP's `# …` lines after it (`have:`/`want:`), without the `#`.
    pub diagnostics: Vec<String>,
    pub pos: Pos,
    pub statement: String,
    /// Run beyond the plan printed before it: TAP::Parser counts it failed, even `ok`.
    pub unplanned: bool,
}

impl Assertion {
    /// Whether the harness counts it as failed (TAP::Parser's `is_ok`): beyond the plan, or
    /// `not ok` without a TODO directive (`not ok # SKIP` fails).
    pub fn failed(&self) -> bool {
        self.unplanned || (!self.ok && !matches!(self.directive, Some(Directive::Todo(_))))
    }
}

/// What makes a file fail beyond its failing assertions: TAP::Parser's parse errors, a
/// psql that stopped (its exit status), a bail out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// psql stopped on an error (ON_ERROR_STOP): exit status 3, or 2 when the connection
    /// was lost.
    Died {
        message: String,
        notes: Vec<String>,
    },
    /// No `1..N` line at all.
    NoPlan,
    /// The plan does not match the tests run.
    PlanMismatch {
        planned: usize,
        ran: usize,
    },
    MoreThanOnePlan,
    /// A plan after some tests with more tests after it.
    PlanInTheMiddle {
        planned: usize,
    },
    /// A test number out of order (or repeated).
    OutOfSequence {
        expected: usize,
        found: usize,
    },
    /// `TAP version N` anywhere but the first line, or a version TAP::Parser refuses.
    BadVersion(String),
    /// No test ran, no plan and no skip: a broken test file, not a pass.
    NoTests,
    BailOut(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pos: Pos,
    pub statement: Option<String>,
    pub kind: ProblemKind,
}

impl Problem {
    /// The failure message, a lowercase fragment.
    pub fn message(&self) -> String {
        match &self.kind {
            ProblemKind::Died { message, .. } => format!("test file died: {message}"),
            ProblemKind::NoPlan => {
                "no plan found in the TAP output (select plan(N) or no_plan() and finish())"
                    .to_owned()
            }
            ProblemKind::PlanMismatch { planned, ran } => {
                format!("bad plan: planned {planned} test(s) but ran {ran}")
            }
            ProblemKind::MoreThanOnePlan => "more than one plan found in the TAP output".to_owned(),
            ProblemKind::PlanInTheMiddle { planned } => format!(
                "plan (1..{planned}) printed in the middle of the TAP output: a plan must come before every test or after all of them"
            ),
            ProblemKind::OutOfSequence { expected, found } => {
                format!("tests out of sequence: found test {found} but expected {expected}")
            }
            ProblemKind::BadVersion(why) => why.clone(),
            ProblemKind::NoTests => "broken test: the file ran no test".to_owned(),
            ProblemKind::BailOut(reason) if reason.is_empty() => "bail out".to_owned(),
            ProblemKind::BailOut(reason) => format!("bail out: {reason}"),
        }
    }

    /// A broken test file (no test ran) rather than a failing one.
    pub fn broken(&self) -> bool {
        matches!(self.kind, ProblemKind::NoTests)
    }
}

/// A judged file.
#[derive(Debug, Clone, Default)]
pub struct Judged {
    pub assertions: Vec<Assertion>,
    pub problems: Vec<Problem>,
    /// `1..0 # skip reason`: the file skipped itself.
    pub skipped_all: Option<String>,
    /// The file printed `Bail out!`: the harness stops running files.
    pub bailed_out: bool,
    pub planned: Option<usize>,
    /// psql stopped on an error before the end of the file.
    pub died: bool,
}

impl Judged {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && !self.assertions.iter().any(Assertion::failed)
    }

    /// Planned assertions that never ran (a file that died or stopped early).
    pub fn never_ran(&self) -> usize {
        self.planned
            .map_or(0, |planned| planned.saturating_sub(self.assertions.len()))
    }
}

/// TAP::Parser's states for where the plan may be (its `_make_state_table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Planned,
    PlannedAfterTest,
    /// A plan after tests: fine if it is the last test-ish line.
    GotPlan,
    Unplanned,
}

/// Judges what a file printed, statement by statement, and how it ended, as TAP::Harness
/// does: TAP::Parser's grammar and state table, and psql's exit status (`death`: psql
/// stopped on an error). `first` is where the file starts (for problems no statement
/// stands for).
pub fn judge(first: &Pos, outputs: &[Output], death: Option<&Death>) -> Judged {
    let mut judged = Judged::default();
    let mut plan_at: Option<(Pos, String)> = None;
    let mut state = State::Init;
    let mut first_line = true;
    let mut todo_plan: Vec<usize> = Vec::new();
    let push = |judged: &mut Judged, output: &Output, kind: ProblemKind| {
        judged.problems.push(Problem {
            pos: output.pos.clone(),
            statement: Some(output.statement.clone()).filter(|s| !s.is_empty()),
            kind,
        });
    };
    'outputs: for output in outputs {
        for text in &output.lines {
            let line = parse_line(text);
            let was_first = std::mem::replace(&mut first_line, false);
            match line {
                Line::Version(version) => {
                    if !was_first || state != State::Init {
                        push(
                            &mut judged,
                            output,
                            ProblemKind::BadVersion(
                                "a TAP version line must be the first line of the output"
                                    .to_owned(),
                            ),
                        );
                    } else if version <= 12 {
                        push(
                            &mut judged,
                            output,
                            ProblemKind::BadVersion(format!(
                                "explicit TAP version must be at least 13, got {version}"
                            )),
                        );
                    }
                }
                Line::Plan {
                    count,
                    skip_all,
                    todo,
                } => {
                    let mut set_plan = |judged: &mut Judged| {
                        judged.planned = Some(count);
                        judged.skipped_all = skip_all.clone();
                        todo_plan = todo.clone();
                        plan_at = Some((output.pos.clone(), output.statement.clone()));
                    };
                    state = match state {
                        State::Init => {
                            set_plan(&mut judged);
                            State::Planned
                        }
                        State::Unplanned => {
                            set_plan(&mut judged);
                            State::GotPlan
                        }
                        State::Planned | State::PlannedAfterTest | State::GotPlan => {
                            push(&mut judged, output, ProblemKind::MoreThanOnePlan);
                            State::Planned
                        }
                    };
                }
                Line::Test {
                    ok,
                    number,
                    description,
                    mut directive,
                } => {
                    state = match state {
                        State::Init | State::Unplanned => State::Unplanned,
                        State::Planned | State::PlannedAfterTest => State::PlannedAfterTest,
                        State::GotPlan => {
                            let planned = judged.planned.unwrap_or_default();
                            push(
                                &mut judged,
                                output,
                                ProblemKind::PlanInTheMiddle { planned },
                            );
                            State::PlannedAfterTest
                        }
                    };
                    let expected = judged.assertions.len() + 1;
                    if let Some(found) = number.filter(|&n| n != expected) {
                        push(
                            &mut judged,
                            output,
                            ProblemKind::OutOfSequence { expected, found },
                        );
                    }
                    let number = number.unwrap_or(expected);
                    if let Some(at) = todo_plan.iter().position(|&n| n == number) {
                        todo_plan.remove(at);
                        directive = Some(Directive::Todo(String::new()));
                    }
                    let unplanned = judged.planned.is_some_and(|p| expected > p);
                    judged.assertions.push(Assertion {
                        unplanned,
                        number,
                        ok,
                        description,
                        directive,
                        diagnostics: Vec::new(),
                        pos: output.pos.clone(),
                        statement: output.statement.clone(),
                    });
                }
                Line::Diagnostic(text) => {
                    if let Some(last) = judged.assertions.last_mut() {
                        if !text.is_empty() {
                            last.diagnostics.push(text);
                        }
                    }
                }
                Line::BailOut(reason) => {
                    judged.bailed_out = true;
                    push(&mut judged, output, ProblemKind::BailOut(reason));
                    break 'outputs;
                }
                Line::Other => {}
            }
        }
    }
    if let Some(death) = death {
        judged.died = true;
        let ran = judged.assertions.len();
        let mut notes = death.notes.clone();
        notes.push(match judged.planned {
            Some(planned) => format!("{ran} of {planned} planned test(s) ran before the error"),
            None => format!("{ran} test(s) ran before the error"),
        });
        judged.problems.push(Problem {
            pos: death.pos.clone(),
            statement: Some(death.statement.clone()).filter(|s| !s.is_empty()),
            kind: ProblemKind::Died {
                message: death.message.clone(),
                notes,
            },
        });
        // The plan checks would only repeat that the file stopped early.
        return judged;
    }
    if judged.bailed_out {
        return judged;
    }
    let ran = judged.assertions.len();
    match judged.planned {
        Some(planned) if planned != ran => {
            let (pos, statement) = plan_at.expect("a plan was seen");
            judged.problems.push(Problem {
                pos,
                statement: Some(statement).filter(|s| !s.is_empty()),
                kind: ProblemKind::PlanMismatch { planned, ran },
            });
        }
        Some(_) => {}
        None => judged.problems.push(Problem {
            pos: first.clone(),
            statement: None,
            kind: if ran == 0 {
                ProblemKind::NoTests
            } else {
                ProblemKind::NoPlan
            },
        }),
    }
    judged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize) -> Pos {
        Pos {
            file: "supabase/tests/t.sql".to_owned(),
            line,
            column: 1,
        }
    }

    fn out(line: usize, text: &str) -> Output {
        Output {
            pos: pos(line),
            statement: format!("statement at {line}"),
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn parses_tap_lines() {
        assert_eq!(
            parse_line("1..3"),
            Line::Plan {
                count: 3,
                skip_all: None,
                todo: Vec::new(),
            }
        );
        assert_eq!(
            parse_line("1..0 # Skip no pgvector here"),
            Line::Plan {
                count: 0,
                skip_all: Some("no pgvector here".to_owned()),
                todo: Vec::new(),
            }
        );
        assert_eq!(
            parse_line("not ok 2 - alice sees her note # TODO fix the policy"),
            Line::Test {
                ok: false,
                number: Some(2),
                description: "alice sees her note".to_owned(),
                directive: Some(Directive::Todo("fix the policy".to_owned())),
            }
        );
        assert_eq!(
            parse_line("ok 4 # SKIP no storage"),
            Line::Test {
                ok: true,
                number: Some(4),
                description: String::new(),
                directive: Some(Directive::Skip("no storage".to_owned())),
            }
        );
        assert_eq!(
            parse_line("ok 5 - issue \\# 12 fixed"),
            Line::Test {
                ok: true,
                number: Some(5),
                description: "issue # 12 fixed".to_owned(),
                directive: None,
            }
        );
        assert_eq!(
            parse_line("#         have: 1"),
            Line::Diagnostic("have: 1".to_owned())
        );
        assert_eq!(
            parse_line("Bail out! no database"),
            Line::BailOut("no database".to_owned())
        );
        // Not TAP: a uuid a helper returned, okay-ish words, indented subtests.
        assert_eq!(
            parse_line("6f1c2a9e-0000-4000-8000-000000000000"),
            Line::Other
        );
        assert_eq!(parse_line("okay"), Line::Other);
        // TAP::Parser's `ok\b`: `ok(1)` is a test; `# skipped` is no directive; a plan
        // with a tail is not a plan.
        assert!(matches!(
            parse_line("ok(1)"),
            Line::Test {
                ok: true,
                number: None,
                ..
            }
        ));
        assert!(matches!(
            parse_line("ok 1 # skipped x"),
            Line::Test {
                directive: None,
                ..
            }
        ));
        assert_eq!(parse_line("1..3 extra"), Line::Other);
        assert_eq!(parse_line("  Bail out! x"), Line::BailOut("x".to_owned()));
        assert_eq!(parse_line("    ok 1 - inner"), Line::Other);
    }

    #[test]
    fn a_passing_file_ties_each_assertion_to_its_statement() {
        let outputs = [
            out(2, "1..2"),
            out(3, "ok 1 - first"),
            out(5, "ok 2 - second"),
        ];
        let judged = judge(&pos(1), &outputs, None);
        assert!(judged.passed(), "{judged:?}");
        assert_eq!(judged.assertions[1].pos.line, 5);
    }

    #[test]
    fn a_failing_assertion_keeps_have_and_want() {
        let outputs = [
            out(1, "1..1"),
            out(
                4,
                "not ok 1 - count\n# Failed test 1: \"count\"\n#         have: 1\n#         want: 2",
            ),
        ];
        let judged = judge(&pos(1), &outputs, None);
        assert!(!judged.passed());
        let failed = &judged.assertions[0];
        assert!(failed.failed());
        assert_eq!(failed.pos.line, 4);
        assert_eq!(
            failed.diagnostics,
            ["Failed test 1: \"count\"", "have: 1", "want: 2"]
        );
        assert!(judged.problems.is_empty());
    }

    #[test]
    fn todo_failures_do_not_fail_and_skips_pass() {
        let outputs = [
            out(1, "1..2"),
            out(2, "not ok 1 - later # TODO not built"),
            out(3, "ok 2 # skip no storage"),
        ];
        assert!(judge(&pos(1), &outputs, None).passed());
    }

    #[test]
    fn plan_mismatch_is_reported_at_the_plan() {
        let outputs = [out(2, "1..3"), out(3, "ok 1"), out(4, "ok 2")];
        let judged = judge(&pos(1), &outputs, None);
        assert_eq!(
            judged.problems[0].kind,
            ProblemKind::PlanMismatch { planned: 3, ran: 2 }
        );
        assert_eq!(judged.problems[0].pos.line, 2);
    }

    #[test]
    fn no_plan_and_no_tests() {
        let judged = judge(&pos(1), &[out(2, "ok 1")], None);
        assert_eq!(judged.problems[0].kind, ProblemKind::NoPlan);
        let judged = judge(&pos(1), &[out(2, "some text")], None);
        assert_eq!(judged.problems[0].kind, ProblemKind::NoTests);
        assert!(judged.problems[0].broken());
        // A plan of tests that never run is a mismatch, not an empty pass.
        let judged = judge(&pos(1), &[out(2, "1..0")], None);
        assert!(judged.passed(), "1..0 skips the whole file");
        let judged = judge(&pos(1), &[out(2, "1..2")], None);
        assert_eq!(
            judged.problems[0].kind,
            ProblemKind::PlanMismatch { planned: 2, ran: 0 }
        );
    }

    #[test]
    fn no_plan_with_finish_prints_the_plan_last() {
        let outputs = [out(2, "ok 1"), out(3, "ok 2"), out(4, "1..2")];
        assert!(judge(&pos(1), &outputs, None).passed());
    }

    #[test]
    fn a_file_that_died_says_where_and_how_far_it_got() {
        let outputs = [out(1, "1..3"), out(2, "ok 1")];
        let death = Death {
            pos: pos(3),
            statement: "select nope();".to_owned(),
            message: "function nope() does not exist".to_owned(),
            notes: Vec::new(),
        };
        let judged = judge(&pos(1), &outputs, Some(&death));
        assert_eq!(judged.problems.len(), 1, "{judged:?}");
        let problem = &judged.problems[0];
        assert_eq!(problem.pos.line, 3);
        assert!(problem.message().contains("function nope() does not exist"));
        match &problem.kind {
            ProblemKind::Died { notes, .. } => {
                assert_eq!(notes, &["1 of 3 planned test(s) ran before the error"])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn plan_placement_as_tap_parser_judges_it() {
        // A plan in the middle is refused; at the end it is fine.
        let judged = judge(
            &pos(1),
            &[out(1, "ok 1"), out(2, "1..2"), out(3, "ok 2")],
            None,
        );
        assert!(judged
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::PlanInTheMiddle { planned: 2 }));
        assert!(judge(&pos(1), &[out(1, "ok 1\nok 2\n1..2\nnot TAP")], None).passed());
        // Two plans, a repeated number, a late version line.
        let judged = judge(&pos(1), &[out(1, "1..1\nok 1\n1..1")], None);
        assert_eq!(judged.problems[0].kind, ProblemKind::MoreThanOnePlan);
        let judged = judge(&pos(1), &[out(1, "1..2\nok 1\nok 1")], None);
        assert_eq!(
            judged.problems[0].kind,
            ProblemKind::OutOfSequence {
                expected: 2,
                found: 1
            }
        );
        let judged = judge(&pos(1), &[out(1, "1..1\nTAP version 13\nok 1")], None);
        assert!(matches!(
            judged.problems[0].kind,
            ProblemKind::BadVersion(_)
        ));
        // `not ok # SKIP` fails (only TODO reverses a test); tests after a skip-all plan and
        // beyond the plan fail too.
        assert!(!judge(&pos(1), &[out(1, "1..1\nnot ok 1 # SKIP no")], None).passed());
        let judged = judge(&pos(1), &[out(1, "1..1\nok 1\nok 2")], None);
        assert!(judged.assertions[1].failed() && !judged.assertions[0].failed());
        let judged = judge(&pos(1), &[out(1, "1..0 # skip x\nok 1")], None);
        assert_eq!(
            judged.problems[0].kind,
            ProblemKind::PlanMismatch { planned: 0, ran: 1 }
        );
    }

    #[test]
    fn out_of_sequence_and_bail_out() {
        let judged = judge(&pos(1), &[out(1, "1..2"), out(2, "ok 2")], None);
        assert!(judged.problems.iter().any(|p| p.kind
            == ProblemKind::OutOfSequence {
                expected: 1,
                found: 2
            }));
        let judged = judge(
            &pos(1),
            &[
                out(1, "1..2"),
                out(2, "Bail out! no fixtures"),
                out(3, "ok 1"),
            ],
            None,
        );
        assert!(judged.bailed_out);
        assert_eq!(judged.assertions.len(), 0);
        assert_eq!(judged.problems[0].message(), "bail out: no fixtures");
    }
}
