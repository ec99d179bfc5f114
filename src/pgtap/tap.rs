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
    /// `1..N`, or `1..0 # Skip reason` (the whole file skipped).
    Plan {
        count: usize,
        skip_all: Option<String>,
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
    /// Anything else (a uuid a helper returned, indented subtest lines): ignored, as TAP says.
    Other,
}

/// Parses one line of output.
pub fn parse_line(line: &str) -> Line {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix('#') {
        return Line::Diagnostic(rest.trim().to_owned());
    }
    if let Some(rest) = line.strip_prefix("Bail out!") {
        return Line::BailOut(rest.trim().to_owned());
    }
    if let Some(rest) = line.strip_prefix("1..") {
        let (count, comment) = match rest.split_once('#') {
            Some((count, comment)) => (count.trim(), Some(comment.trim())),
            None => (rest.trim(), None),
        };
        if let Ok(count) = count.parse::<usize>() {
            let skip_all = (count == 0).then(|| {
                comment
                    .map(|c| strip_word(c, "skip").unwrap_or(c).trim().to_owned())
                    .unwrap_or_default()
            });
            return Line::Plan { count, skip_all };
        }
        return Line::Other;
    }
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix("ok") {
        (true, rest)
    } else {
        return Line::Other;
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Line::Other;
    }
    let rest = rest.trim_start();
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let number = rest[..digits].parse().ok();
    let rest = rest[digits..].trim_start();
    let rest = rest.strip_prefix('-').unwrap_or(rest).trim_start();
    // The directive follows an unescaped `#`.
    let (description, directive) = match find_unescaped_hash(rest) {
        Some(at) => {
            let comment = rest[at + 1..].trim();
            let directive = if let Some(reason) = strip_word(comment, "skip") {
                Some(Directive::Skip(reason.trim().to_owned()))
            } else {
                strip_word(comment, "todo").map(|reason| Directive::Todo(reason.trim().to_owned()))
            };
            match directive {
                Some(d) => (rest[..at].trim_end(), Some(d)),
                None => (rest, None),
            }
        }
        None => (rest, None),
    };
    Line::Test {
        ok,
        number,
        description: description.replace("\\#", "#"),
        directive,
    }
}

fn find_unescaped_hash(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1] != b'\\'))
}

/// `word` at the start of `text`, case-insensitive (TAP accepts `SKIP`, `skip`, `Skipped`).
fn strip_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = &text[word.len()..];
    // `skipped:`, `SKIP:` and the like.
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    Some(rest.trim_start_matches(':'))
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
}

impl Assertion {
    /// Whether the harness counts it as failed: `not ok` without a TODO.
    pub fn failed(&self) -> bool {
        !self.ok && !matches!(self.directive, Some(Directive::Todo(_)))
    }
}

/// What makes a file fail beyond its failing assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The file ended on an error.
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
    /// A test number out of order.
    OutOfSequence {
        expected: usize,
        found: usize,
    },
    /// No test ran and the file did not skip itself: a broken test file, not a pass.
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
            ProblemKind::OutOfSequence { expected, found } => {
                format!("tests out of sequence: found test {found} but expected {expected}")
            }
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
}

impl Judged {
    pub fn passed(&self) -> bool {
        self.problems.is_empty() && !self.assertions.iter().any(Assertion::failed)
    }
}

/// Judges what a file printed, statement by statement, and how it ended, as TAP::Harness
/// does. `first` is where the file starts (for problems no statement stands for).
pub fn judge(first: &Pos, outputs: &[Output], death: Option<&Death>) -> Judged {
    let mut judged = Judged::default();
    let mut plan_at: Option<(Pos, String)> = None;
    let mut plans = 0;
    let mut sequence_problem = None;
    'outputs: for output in outputs {
        for text in &output.lines {
            match parse_line(text) {
                Line::Plan { count, skip_all } => {
                    plans += 1;
                    if plans == 1 {
                        judged.planned = Some(count);
                        judged.skipped_all = skip_all;
                        plan_at = Some((output.pos.clone(), output.statement.clone()));
                    }
                }
                Line::Test {
                    ok,
                    number,
                    description,
                    directive,
                } => {
                    let expected = judged.assertions.len() + 1;
                    let number = number.unwrap_or(expected);
                    if number != expected && sequence_problem.is_none() {
                        sequence_problem = Some(Problem {
                            pos: output.pos.clone(),
                            statement: Some(output.statement.clone()),
                            kind: ProblemKind::OutOfSequence {
                                expected,
                                found: number,
                            },
                        });
                    }
                    judged.assertions.push(Assertion {
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
                    judged.problems.push(Problem {
                        pos: output.pos.clone(),
                        statement: Some(output.statement.clone()),
                        kind: ProblemKind::BailOut(reason),
                    });
                    break 'outputs;
                }
                Line::Other => {}
            }
        }
    }
    if let Some(death) = death {
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
    }
    judged.problems.extend(sequence_problem);
    if plans > 1 {
        judged.problems.push(Problem {
            pos: first.clone(),
            statement: None,
            kind: ProblemKind::MoreThanOnePlan,
        });
    }
    if judged.bailed_out || death.is_some() {
        return judged;
    }
    let ran = judged.assertions.len();
    match (judged.planned, &judged.skipped_all) {
        (_, Some(_)) if ran == 0 => {}
        (Some(planned), _) if planned != ran => {
            let (pos, statement) = plan_at.expect("a plan was seen");
            judged.problems.push(Problem {
                pos,
                statement: Some(statement),
                kind: ProblemKind::PlanMismatch { planned, ran },
            });
        }
        (Some(_), _) => {}
        (None, _) if ran == 0 => judged.problems.push(Problem {
            pos: first.clone(),
            statement: None,
            kind: ProblemKind::NoTests,
        }),
        (None, _) => judged.problems.push(Problem {
            pos: first.clone(),
            statement: None,
            kind: ProblemKind::NoPlan,
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
                skip_all: None
            }
        );
        assert_eq!(
            parse_line("1..0 # Skip no pgvector here"),
            Line::Plan {
                count: 0,
                skip_all: Some("no pgvector here".to_owned())
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
