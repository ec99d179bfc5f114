//! Cells that read a clock the frozen clock cannot reach: not judged as passed. Each
//! unreachable reader is named at its definition in the migrations (file:line:col of the
//! reader inside the statement that creates its object); a cell whose run moved its counter
//! is a broken test, and the reader gets a failure there listing the cells it spoiled.

use crate::clock::{ObjectKind, Unreached};
use crate::project::Project;
use crate::report::{CaseVerdict, Failure, Observed};

use super::judge::Judgement;

/// An unreachable reader and where the project defines it, when that can be told.
#[derive(Debug, Clone)]
pub struct Located {
    pub unreached: Unreached,
    /// The migration (or other replayed file), line and column of the reader.
    pub at: Option<(String, usize, usize)>,
}

impl Located {
    /// "clock_timestamp() in function public.f(integer) (supabase/migrations/1.sql:4:12)".
    pub fn describe(&self) -> String {
        match &self.at {
            Some((file, line, column)) => {
                format!("{} ({file}:{line}:{column})", self.unreached.describe())
            }
            None => self.unreached.describe(),
        }
    }
}

/// Where each of `unfrozen` is defined in `project`'s files.
pub fn locate(project: &Project, unfrozen: &[Unreached]) -> Vec<Located> {
    let reader = regex::Regex::new(r"(?i)\b(clock_timestamp|timeofday)\s*\(").unwrap();
    unfrozen
        .iter()
        .map(|unreached| {
            let (kind, name) = creating(unreached);
            Located {
                unreached: unreached.clone(),
                at: crate::locate::creating_statement_at(project, kind, &name, Some(&reader)),
            }
        })
        .collect()
}

/// The statement kind and bare name that create `unreached`'s object (a default's and a
/// check's: their table).
fn creating(unreached: &Unreached) -> (&'static str, String) {
    let name = unreached.name.as_str();
    let last = |path: &str| {
        path.rsplit('.')
            .next()
            .unwrap_or(path)
            .trim_matches('"')
            .to_owned()
    };
    match unreached.kind {
        ObjectKind::Function => ("function", last(name.split('(').next().unwrap_or(name))),
        ObjectKind::View => ("view", last(name)),
        ObjectKind::Policy => (
            "policy",
            name.rsplit_once(" on ")
                .map_or(name, |(policy, _)| policy)
                .trim_matches('"')
                .to_owned(),
        ),
        ObjectKind::Default => {
            let table = name.rsplit_once('.').map_or(name, |(table, _)| table);
            ("table", last(table))
        }
        ObjectKind::Check => (
            "table",
            last(name.rsplit_once(" on ").map_or(name, |x| x.1)),
        ),
    }
}

/// `judgement` of a cell whose run moved the counters `read`: not a pass whatever it
/// observed, since it observed the real clock where the case froze one.
pub fn not_passed(judgement: Judgement, read: &[String], located: &[Located]) -> Judgement {
    let readers: Vec<String> = located
        .iter()
        .filter(|l| {
            l.unreached
                .counter
                .as_ref()
                .is_some_and(|c| read.contains(c))
        })
        .map(Located::describe)
        .collect();
    if readers.is_empty() {
        return judgement;
    }
    let observed = judgement.observed.as_str();
    Judgement {
        observed: Observed::Broken,
        verdict: CaseVerdict::Broken,
        message: Some(format!(
            "broken test: under the frozen clock the cell read the real clock, which db-ci cannot freeze: {}; its outcome ({observed} at today's time) is not judged. Read `now()` there (the frozen clock sets it), or drop `now:` from the case",
            readers.join("; ")
        )),
    }
}

/// What the run says at each reader's definition: a failure for one a cell read (naming
/// those cells), a note for one no cell read or whose reads cannot be counted.
pub fn findings(
    matrix: &str,
    located: &[Located],
    read_by: &[(String, Vec<String>)],
) -> (Vec<Failure>, Vec<String>) {
    let (mut failures, mut notes) = (Vec::new(), Vec::new());
    for l in located {
        let cells: &[String] = l
            .unreached
            .counter
            .as_ref()
            .and_then(|c| read_by.iter().find(|(counter, _)| counter == c))
            .map_or(&[], |(_, cells)| cells.as_slice());
        if cells.is_empty() {
            let why = if l.unreached.counter.is_some() {
                "no cell read it"
            } else {
                "cells that call it cannot be told"
            };
            notes.push(format!(
                "the frozen clock of {matrix} cannot reach {}: {why}",
                l.describe()
            ));
            continue;
        }
        let (file, line, column) =
            l.at.clone()
                .map_or((matrix.to_owned(), 1, None), |(f, line, c)| {
                    (f, line, Some(c))
                });
        failures.push(Failure {
            file,
            line,
            column,
            message: format!(
                "the frozen clock of {matrix} cannot reach {}: {} cell(s) read it and are not judged",
                l.unreached.describe(),
                cells.len()
            ),
            notes: cells.iter().map(|c| format!("read by {c}")).collect(),
            statement: None,
        });
    }
    (failures, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn located(kind: ObjectKind, name: &str, counter: Option<&str>) -> Located {
        Located {
            unreached: Unreached {
                kind,
                name: name.to_owned(),
                reader: "clock_timestamp()".to_owned(),
                counter: counter.map(str::to_owned),
            },
            at: Some(("supabase/migrations/1.sql".to_owned(), 4, 12)),
        }
    }

    fn passed() -> Judgement {
        Judgement {
            observed: Observed::Deny,
            verdict: CaseVerdict::Pass,
            message: None,
        }
    }

    #[test]
    fn a_cell_that_read_the_real_clock_is_not_judged_as_passed() {
        let readers = [
            located(
                ObjectKind::Policy,
                "\"live\" on public.invites",
                Some("read_1"),
            ),
            located(ObjectKind::Function, "public.audit()", Some("read_2")),
        ];
        let judged = not_passed(passed(), &["read_1".to_owned()], &readers);
        assert_eq!(judged.verdict, CaseVerdict::Broken);
        let message = judged.message.unwrap();
        assert!(
            message.contains(
                "clock_timestamp() in policy \"live\" on public.invites (supabase/migrations/1.sql:4:12)"
            ),
            "{message}"
        );
        assert!(!message.contains("audit"), "{message}");
        assert!(message.contains("deny at today's time"), "{message}");
        // A cell that read none of them keeps its verdict.
        assert_eq!(
            not_passed(passed(), &[], &readers).verdict,
            CaseVerdict::Pass
        );
    }

    #[test]
    fn a_reader_is_named_at_its_definition_and_fails_only_when_read() {
        let readers = [
            located(ObjectKind::View, "public.v", Some("read_1")),
            located(ObjectKind::Function, "public.audit()", Some("read_2")),
            located(ObjectKind::Function, "public.py()", None),
        ];
        let read_by = [("read_1".to_owned(), vec!["v / select as bob".to_owned()])];
        let (failures, notes) = findings("policy-tests/v.yaml", &readers, &read_by);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].file, "supabase/migrations/1.sql");
        assert_eq!((failures[0].line, failures[0].column), (4, Some(12)));
        assert!(
            failures[0].message.contains("1 cell(s) read it"),
            "{failures:?}"
        );
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("no cell read it"), "{notes:?}");
        assert!(notes[1].contains("cannot be told"), "{notes:?}");
    }

    #[test]
    fn each_kind_is_found_by_the_statement_that_creates_it() {
        let of = |kind, name: &str| creating(&located(kind, name, None).unreached);
        assert_eq!(
            of(ObjectKind::Function, "public.audit(integer)"),
            ("function", "audit".to_owned())
        );
        assert_eq!(
            of(ObjectKind::Policy, "\"live ones\" on public.t"),
            ("policy", "live ones".to_owned())
        );
        assert_eq!(
            of(ObjectKind::Default, "public.t.at"),
            ("table", "t".to_owned())
        );
        assert_eq!(
            of(ObjectKind::Check, "t_ok on public.t"),
            ("table", "t".to_owned())
        );
        assert_eq!(of(ObjectKind::View, "public.v"), ("view", "v".to_owned()));
    }
}
