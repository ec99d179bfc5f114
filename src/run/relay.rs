//! The reporter of stages that run side by side: each stage's events reach the run's reporter
//! in report order, as if the stages had run one after another. The stage first in order
//! that is not done yet is live (its events go through as they come); a later stage's events
//! wait until every stage before it is done, then go through at once.

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::events::{Event, Reporter};
use crate::report::file::FileOutcome;
use crate::report::{Case, StageReport};
use crate::stage_id::StageId;

/// An event of a stage, kept until the stage is live.
enum Kept {
    Started(usize),
    CaseStarted(String),
    CaseDone(Case),
    FileDone(u8, FileOutcome),
}

struct State<'r> {
    reporter: &'r mut dyn Reporter,
    order: Vec<StageId>,
    /// The index in `order` of the live stage.
    live: usize,
    kept: Vec<Vec<Kept>>,
    done: Vec<Option<Result<StageReport>>>,
    /// The stages done, in order, up to the first that ended in an error.
    reports: Vec<StageReport>,
    error: Option<Error>,
}

/// The stages of `order`, run in any order or side by side, reported in `order`.
pub(super) struct Relay<'r> {
    state: RefCell<State<'r>>,
}

impl<'r> Relay<'r> {
    pub fn new(reporter: &'r mut dyn Reporter, order: Vec<StageId>) -> Relay<'r> {
        let count = order.len();
        Relay {
            state: RefCell::new(State {
                reporter,
                order,
                live: 0,
                kept: (0..count).map(|_| Vec::new()).collect(),
                done: (0..count).map(|_| None).collect(),
                reports: Vec::new(),
                error: None,
            }),
        }
    }

    /// The reporter stage `id` runs with.
    pub fn sink(&self, id: StageId) -> Sink<'_, 'r> {
        let index = self.index(id);
        Sink { relay: self, index }
    }

    fn index(&self, id: StageId) -> usize {
        self.state
            .borrow()
            .order
            .iter()
            .position(|stage| *stage == id)
            .expect("a stage the relay orders")
    }

    /// Stage `id` ended: it is reported (with every stage after it that is done already)
    /// once every stage before it is.
    pub fn done(&self, id: StageId, result: Result<StageReport>) {
        let index = self.index(id);
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        state.done[index] = Some(result);
        while state.error.is_none() && state.live < state.order.len() {
            let live = state.live;
            let Some(result) = state.done[live].take() else {
                break;
            };
            match result {
                Ok(stage) => {
                    state.reporter.event(&Event::StageDone(&stage));
                    state.reports.push(stage);
                }
                // Nothing after an error is reported, as when the run stops there.
                Err(error) => {
                    state.error = Some(error);
                    break;
                }
            }
            state.live += 1;
            if state.live < state.order.len() {
                let live = state.live;
                let id = state.order[live];
                for event in &std::mem::take(&mut state.kept[live]) {
                    send(state.reporter, id, event);
                }
            }
        }
    }

    /// Whether a stage ended in an error: the stages not started yet are not run.
    pub fn stopped(&self) -> bool {
        let state = self.state.borrow();
        state.error.is_some() || state.done.iter().any(|d| matches!(d, Some(Err(_))))
    }

    /// The stages reported, in order, and the error that stopped the run, if any.
    pub fn finish(self) -> (Vec<StageReport>, Option<Error>) {
        let state = self.state.into_inner();
        (state.reports, state.error)
    }
}

/// The reporter one stage of a [`Relay`] runs with.
pub(super) struct Sink<'a, 'r> {
    relay: &'a Relay<'r>,
    index: usize,
}

impl Reporter for Sink<'_, '_> {
    fn event(&mut self, event: &Event<'_>) {
        let mut state = self.relay.state.borrow_mut();
        if state.live == self.index {
            state.reporter.event(event);
            return;
        }
        let kept = match event {
            Event::StageStarted { total, .. } => Kept::Started(*total),
            Event::CaseStarted { name, .. } => Kept::CaseStarted((*name).to_owned()),
            Event::CaseDone { case, .. } => Kept::CaseDone((*case).clone()),
            Event::FileDone { pass, outcome } => Kept::FileDone(*pass, (*outcome).clone()),
            // What a stage does not send: the run sends them itself.
            Event::ProjectRead { .. }
            | Event::BackendReady { .. }
            | Event::ShimApplied { .. }
            | Event::StageDone(_)
            | Event::RunDone(_) => return,
        };
        state.kept[self.index].push(kept);
    }
}

fn send(reporter: &mut dyn Reporter, stage: StageId, event: &Kept) {
    reporter.event(&match event {
        Kept::Started(total) => Event::StageStarted {
            name: stage,
            total: *total,
        },
        Kept::CaseStarted(name) => Event::CaseStarted { stage, name },
        Kept::CaseDone(case) => Event::CaseDone { stage, case },
        Kept::FileDone(pass, outcome) => Event::FileDone {
            pass: *pass,
            outcome,
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::StageVerdict;

    /// What reached the reporter, as text.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Reporter for Log {
        fn event(&mut self, event: &Event<'_>) {
            self.0.push(match event {
                Event::StageStarted { name, .. } => format!("start {name}"),
                Event::CaseStarted { stage, name } => format!("case {stage} {name}"),
                Event::StageDone(stage) => format!("done {}", stage.name),
                _ => "other".to_owned(),
            });
        }
    }

    fn stage(id: StageId) -> Result<StageReport> {
        Ok(StageReport::new(id, StageVerdict::Pass))
    }

    #[test]
    fn later_stages_wait_for_the_earlier_ones_and_keep_their_events() {
        let mut log = Log::default();
        let relay = Relay::new(
            &mut log,
            vec![StageId::Idempotence, StageId::Rls, StageId::Lint],
        );
        let (mut idempotence, mut rls, mut lint) = (
            relay.sink(StageId::Idempotence),
            relay.sink(StageId::Rls),
            relay.sink(StageId::Lint),
        );
        lint.event(&Event::StageStarted {
            name: StageId::Lint,
            total: 1,
        });
        idempotence.event(&Event::StageStarted {
            name: StageId::Idempotence,
            total: 1,
        });
        rls.event(&Event::CaseStarted {
            stage: StageId::Rls,
            name: "a.yaml",
        });
        relay.done(StageId::Lint, stage(StageId::Lint));
        relay.done(StageId::Idempotence, stage(StageId::Idempotence));
        rls.event(&Event::CaseStarted {
            stage: StageId::Rls,
            name: "b.yaml",
        });
        relay.done(StageId::Rls, stage(StageId::Rls));
        let (reports, error) = relay.finish();
        assert!(error.is_none());
        let names: Vec<StageId> = reports.iter().map(|r| r.name).collect();
        assert_eq!(names, [StageId::Idempotence, StageId::Rls, StageId::Lint]);
        assert_eq!(
            log.0,
            [
                "start idempotence",
                "done idempotence",
                "case rls a.yaml",
                "case rls b.yaml",
                "done rls",
                "start lint",
                "done lint"
            ]
        );
    }

    #[test]
    fn nothing_after_an_error_is_reported() {
        let mut log = Log::default();
        let relay = Relay::new(
            &mut log,
            vec![StageId::Rls, StageId::Snapshot, StageId::Lint],
        );
        relay.done(StageId::Lint, stage(StageId::Lint));
        relay.done(
            StageId::Snapshot,
            Err(Error::environment("read the catalog")),
        );
        assert!(relay.stopped());
        relay.done(StageId::Rls, stage(StageId::Rls));
        let (reports, error) = relay.finish();
        assert_eq!(reports.len(), 1);
        assert!(error.is_some());
        assert_eq!(log.0, ["done rls"]);
    }
}
