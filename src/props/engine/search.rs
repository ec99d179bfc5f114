//! The search: proptest's strategies over operation sequences, the runner deterministic in
//! the seed, and the shrinking of a failing sequence to a minimal one, apart from what the
//! steps do.

use std::collections::HashSet;

use proptest::collection::vec as vec_of;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use sha2::{Digest, Sha256};

use super::{CaseResult, Compiled, EngineError, Finding, RawStep, Step, StepOutcome, Tally};

/// How many simplifications shrinking may try before it settles (proptest's default).
const MAX_SHRINK_ITERS: u32 = 1024;

/// The runner for one property: deterministic in the seed, the file and the property's name.
pub fn runner(seed: u64, file: &str, property: &str, cases: u32) -> TestRunner {
    let digest = Sha256::digest(format!("db-ci properties {seed} {file} {property}").as_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &digest);
    let config = Config {
        cases,
        max_shrink_iters: MAX_SHRINK_ITERS,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, rng)
}

fn strategy(compiled: &Compiled) -> impl Strategy<Value = Vec<RawStep>> {
    let draws = compiled.draw_pools.iter().map(Vec::len).max().unwrap_or(0);
    let largest_pool = compiled
        .draw_pools
        .iter()
        .flatten()
        .map(Vec::len)
        .max()
        .unwrap_or(1)
        .max(1);
    let max_steps = compiled.max_steps.max(1) as usize;
    vec_of(
        (
            0..compiled.templates.len().max(1),
            0..compiled.actors.len().max(1),
            vec_of(0..largest_pool, draws),
        ),
        1..=max_steps,
    )
}

/// [`run`] with the database behind `try_sequence` (which runs a sequence from the case's
/// start, fills in each step's outcome and returns to the start): the generation, counting
/// and shrinking, apart from what the steps do.
pub(super) async fn explore(
    compiled: &Compiled,
    runner: &mut TestRunner,
    mut try_sequence: impl AsyncFnMut(
        &[Step],
        &mut Vec<StepOutcome>,
    ) -> std::result::Result<CaseResult, EngineError>,
) -> std::result::Result<Finding, EngineError> {
    let strategy = strategy(compiled);
    let mut tally = Tally::default();
    let mut outcomes = Vec::new();
    let mut executed = 0u64;
    for _ in 0..compiled.cases {
        let mut tree = strategy
            .new_tree(runner)
            .map_err(|e| EngineError::Generate(e.to_string()))?;
        let steps = compiled.concrete(&tree.current());
        let result = try_sequence(&steps, &mut outcomes).await?;
        executed += outcomes.len() as u64;
        tally.count(&outcomes);
        match result {
            CaseResult::Held => continue,
            CaseResult::Broken(_) => {
                let steps = steps.into_iter().zip(outcomes.iter().cloned()).collect();
                return Ok(Finding {
                    tally,
                    result,
                    steps,
                    executed,
                });
            }
            CaseResult::Failed { .. } => {
                let (result, steps, shrink_steps) = shrink(
                    compiled,
                    &mut try_sequence,
                    &mut tree,
                    result,
                    steps,
                    outcomes,
                )
                .await?;
                return Ok(Finding {
                    tally,
                    result,
                    steps,
                    executed: executed + shrink_steps,
                });
            }
        }
    }
    Ok(Finding {
        tally,
        result: CaseResult::Held,
        steps: Vec::new(),
        executed,
    })
}

type Shrunk = (CaseResult, Vec<(Step, StepOutcome)>, u64);

/// proptest's shrinking loop, driven here because each test is asynchronous: simplify while
/// the sequence still fails, complicate back when it passes.
async fn shrink(
    compiled: &Compiled,
    try_sequence: &mut impl AsyncFnMut(
        &[Step],
        &mut Vec<StepOutcome>,
    ) -> std::result::Result<CaseResult, EngineError>,
    tree: &mut dyn ValueTree<Value = Vec<RawStep>>,
    result: CaseResult,
    steps: Vec<Step>,
    outcomes: Vec<StepOutcome>,
) -> std::result::Result<Shrunk, EngineError> {
    let mut best = (result, steps, outcomes);
    let mut executed = 0u64;
    let mut outcomes = Vec::new();
    let mut iterations = 0;
    // Different raw values often pick the same concrete steps: run each sequence once.
    let mut passed: HashSet<Vec<Step>> = HashSet::new();
    if !tree.simplify() {
        return Ok(finish(best, executed));
    }
    while iterations < MAX_SHRINK_ITERS {
        iterations += 1;
        let steps = compiled.concrete(&tree.current());
        let failed = if steps == best.1 {
            true
        } else if passed.contains(&steps) {
            false
        } else {
            let result = try_sequence(&steps, &mut outcomes).await?;
            executed += outcomes.len() as u64;
            let failed = matches!(result, CaseResult::Failed { .. });
            if failed {
                best = (result, steps, outcomes.clone());
            } else {
                passed.insert(steps);
            }
            failed
        };
        if failed {
            if !tree.simplify() {
                break;
            }
        } else if !tree.complicate() {
            break;
        }
    }
    Ok(finish(best, executed))
}

fn finish(best: (CaseResult, Vec<Step>, Vec<StepOutcome>), executed: u64) -> Shrunk {
    let (result, steps, outcomes) = best;
    // Only the steps up to the failing one matter; later ones never ran.
    let steps = steps.into_iter().zip(outcomes).collect();
    (result, steps, executed)
}
#[cfg(test)]
mod tests {
    use super::super::test_support::{compiled, violated};
    use super::super::Broken;
    use super::*;

    /// Runs `explore` with a fake database: each step ends as `outcome` says (given the
    /// steps before it in its sequence), the first violation fails the case. Returns the
    /// finding and every sequence tried, in order.
    fn explore_with(
        compiled: &Compiled,
        seed: u64,
        outcome: impl Fn(&[Step], &Step) -> std::result::Result<StepOutcome, Broken>,
    ) -> (Finding, Vec<Vec<Step>>) {
        let mut tried = Vec::new();
        let mut runner = runner(
            seed,
            "props/posts.yaml",
            "votes stay positive",
            compiled.cases,
        );
        let finding = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(explore(
                compiled,
                &mut runner,
                async |steps: &[Step], outcomes: &mut Vec<StepOutcome>| {
                    tried.push(steps.to_vec());
                    outcomes.clear();
                    for (index, step) in steps.iter().enumerate() {
                        match outcome(&steps[..index], step) {
                            Ok(o) => {
                                outcomes.push(o.clone());
                                if matches!(o, StepOutcome::Violated(_)) {
                                    return Ok(CaseResult::Failed {
                                        step: index,
                                        outcome: o,
                                    });
                                }
                            }
                            Err(broken) => return Ok(CaseResult::Broken(broken)),
                        }
                    }
                    Ok(CaseResult::Held)
                },
            ))
            .unwrap();
        (finding, tried)
    }

    /// Shrinking, after the first failing case, never runs a sequence again once it saw it
    /// pass (different raw values often make the same steps); returns how many it ran.
    fn shrink_runs_each_passing_sequence_once(
        tried: &[Vec<Step>],
        fails: impl Fn(&[Step]) -> bool,
    ) -> usize {
        let first_failure = tried.iter().position(|s| fails(s)).unwrap();
        let mut passed = HashSet::new();
        for sequence in &tried[first_failure + 1..] {
            if !fails(sequence) {
                assert!(passed.insert(sequence.clone()), "ran twice: {sequence:?}");
            }
        }
        tried.len() - first_failure - 1
    }

    #[test]
    fn generated_sequences_stay_within_the_property_bounds() {
        let c = compiled(vec![]);
        let strategy = strategy(&c);
        let mut runner = runner(7, "props/posts.yaml", "bounds", 1);
        let mut lengths = HashSet::new();
        for _ in 0..300 {
            let raw = strategy.new_tree(&mut runner).unwrap().current();
            lengths.insert(raw.len());
            assert!((1..=6).contains(&raw.len()), "{raw:?}");
            for (operation, actor, picks) in &raw {
                assert!(*operation < 2 && *actor == 0, "{raw:?}");
                // One pick per draw of the operation that draws most, each inside the pool.
                assert_eq!(picks.len(), 1, "{raw:?}");
                assert!(picks[0] < 3, "{raw:?}");
            }
        }
        assert_eq!(
            lengths.len(),
            6,
            "every length from 1 to max_steps: {lengths:?}"
        );
    }

    #[test]
    fn the_runner_is_deterministic_in_seed_file_and_property() {
        let c = compiled(vec![]);
        let first = |seed: u64, property: &str| {
            let mut runner = runner(seed, "props/posts.yaml", property, 1);
            (0..5)
                .map(|_| strategy(&c).new_tree(&mut runner).unwrap().current())
                .collect::<Vec<_>>()
        };
        assert_eq!(first(7, "a"), first(7, "a"));
        assert_ne!(first(7, "a"), first(8, "a"));
        assert_ne!(first(7, "a"), first(7, "b"));
    }

    #[test]
    fn a_property_that_holds_runs_every_case_and_counts_its_steps() {
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            Ok(if step.operation == 1 {
                StepOutcome::Applied { rows: 0 }
            } else if step.sql.ends_with("+ 3") {
                StepOutcome::Rejected {
                    sqlstate: "23514".into(),
                }
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        assert_eq!(finding.result, CaseResult::Held);
        assert!(finding.steps.is_empty());
        assert_eq!(tried.len(), 40);
        let all: Vec<&Step> = tried.iter().flatten().collect();
        assert_eq!(finding.tally.cases, 40);
        assert_eq!(finding.tally.steps, all.len() as u64);
        assert_eq!(finding.executed, all.len() as u64);
        let resets = all.iter().filter(|s| s.operation == 1).count() as u64;
        let rejected = all.iter().filter(|s| s.sql.ends_with("+ 3")).count() as u64;
        assert_eq!(finding.tally.no_ops, resets);
        assert_eq!(finding.tally.rejected, rejected);
        assert!(resets > 0 && rejected > 0, "{resets} {rejected}");
    }

    #[test]
    fn a_failure_shrinks_to_the_one_step_that_causes_it() {
        // Adding 3 breaks the invariant, whatever ran before.
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            Ok(if step.sql.ends_with("+ 3") {
                violated()
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        let CaseResult::Failed { step, outcome } = &finding.result else {
            panic!("{:?}", finding.result);
        };
        assert_eq!((*step, outcome), (0, &violated()));
        let steps: Vec<&str> = finding.steps.iter().map(|(s, _)| s.sql.as_str()).collect();
        assert_eq!(steps, ["update posts set votes = votes + 3"]);
        assert_eq!(finding.steps[0].1, violated());
        let fails = |s: &[Step]| s.iter().any(|s| s.sql.ends_with("+ 3"));
        let shrink_runs = shrink_runs_each_passing_sequence_once(&tried, fails);
        assert!(shrink_runs > 0);
        assert_eq!(
            finding.tally.cases,
            (tried.len() - shrink_runs) as u64,
            "shrinking runs are not generated cases"
        );
    }

    #[test]
    fn a_failure_needing_two_steps_keeps_both_and_drops_the_rest() {
        // Adding 1 after a reset (at any distance) breaks the invariant.
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |earlier, step| {
            let after_reset = earlier.iter().any(|s| s.operation == 1);
            Ok(if after_reset && step.sql.ends_with("+ 1") {
                violated()
            } else {
                StepOutcome::Applied { rows: 1 }
            })
        });
        let CaseResult::Failed { step, .. } = finding.result else {
            panic!("no failure found: {:?}", finding.result);
        };
        let steps: Vec<&str> = finding.steps.iter().map(|(s, _)| s.sql.as_str()).collect();
        assert_eq!(
            steps,
            [
                "update posts set votes = 0",
                "update posts set votes = votes + 1"
            ]
        );
        assert_eq!(step, 1);
        shrink_runs_each_passing_sequence_once(&tried, |s| {
            s.iter()
                .skip_while(|s| s.operation != 1)
                .any(|s| s.sql.ends_with("+ 1"))
        });
    }

    #[test]
    fn a_broken_case_stops_at_once_without_shrinking() {
        let c = compiled(vec![]);
        let (finding, tried) = explore_with(&c, 7, |_, step| {
            if step.operation == 1 {
                Err(Broken {
                    message: "operation 2 fails by itself".into(),
                    operation: Some(1),
                })
            } else {
                Ok(StepOutcome::Applied { rows: 1 })
            }
        });
        assert!(matches!(finding.result, CaseResult::Broken(_)));
        let last = tried.last().unwrap();
        assert_eq!(finding.tally.cases, tried.len() as u64);
        // The steps before the broken one, with their outcomes; nothing after it.
        let broken_at = last.iter().position(|s| s.operation == 1).unwrap();
        assert_eq!(finding.steps.len(), broken_at);
        assert!(finding.steps.iter().all(|(s, _)| s.operation == 0));
    }
}
