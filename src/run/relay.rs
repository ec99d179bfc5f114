//! The reporter of stages that run side by side: each stage's events reach the run's reporter
//! in report order, as if the stages had run one after another. The stage first in order
//! that is not done yet is live (its events go through as they come); a later stage's events
//! wait until every stage before it is done, then go through at once. Stages run ahead on a
//! guess (that pass 2 changes nothing) are taken back whole when the guess fails
//! ([`Relay::take_back`]): what they sent and ended with is dropped, and they run again.

use std::cell::RefCell;

use crate::error::{Error, Result};
use crate::report::events::{Event, Reporter};
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
    /// Bumped by [`Relay::take_back`]: a sink of an older round is no longer heard.
    round: u32,
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
                round: 0,
            }),
        }
    }

    /// The reporter stage `id` runs with; it ends with [`Relay::done`].
    pub fn sink(&self, id: StageId) -> Sink<'_, 'r> {
        let index = self.index(id);
        let round = self.state.borrow().round;
        Sink {
            relay: self,
            index,
            round,
        }
    }

    /// Whether what `sink` sends is still heard: its stages were not taken back, and no
    /// stage ended in an error (the stages after it are not to run).
    pub fn heard(&self, sink: &Sink<'_, 'r>) -> bool {
        let state = self.state.borrow();
        !sink.taken_back(&state)
            && state.error.is_none()
            && !state.done.iter().any(|d| matches!(d, Some(Err(_))))
    }

    /// Whether stage `id` ended (reported, or waiting to be).
    pub fn ended(&self, id: StageId) -> bool {
        let index = self.index(id);
        let state = self.state.borrow();
        index < state.live || state.done[index].is_some()
    }

    /// Takes back every stage after the first (none of them reported yet, since the first
    /// is not done): what they sent and ended with so far, or will send through the sinks
    /// they hold, is dropped, and they are to run again with new sinks.
    pub fn take_back(&self) {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        state.round += 1;
        for index in 1..state.order.len() {
            state.kept[index].clear();
            state.done[index] = None;
        }
    }

    /// Whether [`Relay::take_back`] was called.
    pub fn was_taken_back(&self) -> bool {
        self.state.borrow().round > 0
    }

    fn index(&self, id: StageId) -> usize {
        self.state
            .borrow()
            .order
            .iter()
            .position(|stage| *stage == id)
            .expect("a stage the relay orders")
    }

    /// The stage of `sink` ended: it is reported (with every stage after it that is done
    /// already) once every stage before it is.
    pub fn done(&self, sink: Sink<'_, 'r>, result: Result<StageReport>) {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        if sink.taken_back(state) {
            return;
        }
        state.done[sink.index] = Some(result);
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
    round: u32,
}

impl Reporter for Sink<'_, '_> {
    fn event(&mut self, event: &Event<'_>) {
        let mut state = self.relay.state.borrow_mut();
        if self.taken_back(&state) {
            return;
        }
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

impl Sink<'_, '_> {
    /// Whether the stage of this sink was taken back since it got it (never the first).
    fn taken_back(&self, state: &State<'_>) -> bool {
        self.index > 0 && state.round != self.round
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

    fn event(name: StageId, total: usize) -> Event<'static> {
        Event::StageStarted { name, total }
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
        lint.event(&event(StageId::Lint, 1));
        idempotence.event(&event(StageId::Idempotence, 1));
        rls.event(&Event::CaseStarted {
            stage: StageId::Rls,
            name: "a.yaml",
        });
        relay.done(lint, stage(StageId::Lint));
        relay.done(idempotence, stage(StageId::Idempotence));
        rls.event(&Event::CaseStarted {
            stage: StageId::Rls,
            name: "b.yaml",
        });
        relay.done(rls, stage(StageId::Rls));
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
    fn stages_taken_back_are_not_heard_and_run_again() {
        let mut log = Log::default();
        let relay = Relay::new(&mut log, vec![StageId::Idempotence, StageId::Lint]);
        let idempotence = relay.sink(StageId::Idempotence);
        let mut ahead = relay.sink(StageId::Lint);
        ahead.event(&event(StageId::Lint, 1));
        relay.take_back();
        assert!(!relay.heard(&ahead));
        ahead.event(&event(StageId::Lint, 2));
        relay.done(ahead, stage(StageId::Lint));
        relay.done(idempotence, stage(StageId::Idempotence));
        let mut again = relay.sink(StageId::Lint);
        assert!(relay.heard(&again));
        again.event(&event(StageId::Lint, 3));
        relay.done(again, stage(StageId::Lint));
        let (reports, _) = relay.finish();
        assert_eq!(reports.len(), 2);
        assert_eq!(log.0, ["done idempotence", "start lint", "done lint"]);
    }

    #[test]
    fn nothing_after_an_error_is_reported() {
        let mut log = Log::default();
        let relay = Relay::new(
            &mut log,
            vec![StageId::Rls, StageId::Snapshot, StageId::Lint],
        );
        let (rls, snapshot, lint) = (
            relay.sink(StageId::Rls),
            relay.sink(StageId::Snapshot),
            relay.sink(StageId::Lint),
        );
        relay.done(lint, stage(StageId::Lint));
        relay.done(snapshot, Err(Error::environment("read the catalog")));
        assert!(!relay.heard(&rls));
        relay.done(rls, stage(StageId::Rls));
        let (reports, error) = relay.finish();
        assert_eq!(reports.len(), 1);
        assert!(error.is_some());
        assert_eq!(log.0, ["done rls"]);
    }
}
