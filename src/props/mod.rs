//! The properties stage: proptest-driven operation sequences against trigger-maintained
//! counters, shrunk to a runnable SQL reproducer.

pub mod engine;
pub mod reproducer;

use std::time::Instant;

use tokio_postgres::Client;

use crate::actors::{Actor, EFFECTIVE_ROLE_SQL};
use crate::error::Result;
use crate::policy_tests::properties::{line_of, literal_sql, PoolSpec, PropertySpec, Template};
use crate::policy_tests::{self, PolicyFile};
use crate::report::events::{Event, Reporter};
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::sql::db_error_text;
use crate::stage::StageContext;
use crate::stage_id::StageId;
use engine::{CaseResult, Compiled, Finding, Impersonation, StepOutcome, Tally, CASE_SAVEPOINT};

use crate::yaml::Pos;

/// A property is vacuous when fewer than this share of its steps changed anything.
const MIN_EFFECTIVE_SHARE: f64 = 0.05;

/// What one property's run produced for the report.
struct Outcome {
    verdict: CaseVerdict,
    message: Option<String>,
    failure: Option<Failure>,
    tally: Tally,
    executed: u64,
}

impl Outcome {
    fn broken(file: &PolicyFile, line: usize, message: String) -> Outcome {
        Outcome {
            verdict: CaseVerdict::Broken,
            failure: Some(Failure {
                file: file.rel.clone(),
                line,
                column: None,
                message: message.clone(),
                notes: vec![
                    "the property itself is wrong: fix it so it can test something".to_owned(),
                ],
                statement: None,
            }),
            message: Some(message),
            tally: Tally::default(),
            executed: 0,
        }
    }
}

/// Counts over the whole stage, for its reason line and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTally {
    pub properties: usize,
    pub cases: u64,
    pub steps: u64,
    pub rejected: u64,
    /// Steps executed including shrinking.
    pub executed: u64,
}

inventory::submit!(crate::stage::Registration {
    id: StageId::Properties,
    load: |input| {
        for file in input.policy_files {
            if let Some((pos, error)) = check(file).into_iter().next() {
                return Err(pos.error(&file.rel, error.to_string()));
            }
        }
        Ok(Box::new(stage))
    },
    on_rehearsal: false,
    // `--seed` is the run's (every report prints it), not a flag of this stage alone.
    cli: crate::stage::StageCli {
        command: Some(crate::stage::StageCommand::plain(
            "props",
            "Replay once, then run the counter properties",
        )),
        ..crate::stage::StageCli::NONE
    },
});

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    stage_with_tally(ctx, reporter)
        .await
        .map(|(stage, _)| stage)
}

/// The stage, and its counts (the benchmark reports steps per second from them).
pub async fn stage_with_tally(
    ctx: &StageContext<'_>,
    reporter: &mut dyn Reporter,
) -> Result<(StageReport, StageTally)> {
    let started = Instant::now();
    let files = match crate::policy_tests::files_for(
        ctx.project,
        ctx.policy_files,
        |f| !f.spec.properties.is_empty(),
        "properties",
    ) {
        Ok(files) => files,
        Err(reason) => {
            return Ok((
                StageReport::skipped(StageId::Properties, reason.to_string()),
                StageTally::default(),
            ))
        }
    };
    // Actors bound to seeded users get their ids and claims from the replayed database.
    let bound = {
        let client = ctx.server.connect(ctx.database).await?;
        crate::policy_tests::check_actor_roles(&client, &files).await?;
        crate::policy_tests::bind_existing_users(&client, &files).await?
    };
    let files: Vec<&crate::policy_tests::PolicyFile> = bound.iter().collect();
    // The CLI always passes a seed; a library caller without one gets a fixed seed, so that
    // a run is still reproducible.
    let seed = ctx.options.seed.unwrap_or(0);
    let total = files.iter().map(|f| f.spec.properties.len()).sum();
    reporter.event(&Event::StageStarted {
        name: StageId::Properties,
        total,
    });
    let mut stage = StageReport::new(StageId::Properties, StageVerdict::Pass);
    let mut tally = StageTally::default();
    for file in files {
        let prepared = policy_tests::prepare(ctx.server, ctx.database, file, "props").await?;
        let (prepared, setup_failure) = match prepared {
            Ok(prepared) => (prepared, None),
            Err((prepared, failure)) => (prepared, Some(failure)),
        };
        // The file's shared setup made its fixtures as the harness; the properties (their
        // setup, invariant and admin steps) run as the platform's postgres.
        crate::shim::platform::become_postgres(&prepared.client)
            .await
            .map_err(|e| {
                crate::error::Error::environment(format!(
                    "become the platform's postgres: {}",
                    db_error_text(&e)
                ))
            })?;
        for property in &file.spec.properties {
            reporter.event(&Event::CaseStarted {
                stage: StageId::Properties,
                name: &property.value.name,
            });
            let property_started = Instant::now();
            let line = line_of(property);
            let outcome = match &setup_failure {
                Some(failure) => Outcome::broken(file, failure.line, failure.message.clone()),
                None => {
                    let run = Run {
                        ctx,
                        file,
                        spec: &property.value,
                        line,
                        seed,
                    };
                    run.outcome(&prepared.client).await?
                }
            };
            tally.properties += 1;
            tally.cases += outcome.tally.cases;
            tally.steps += outcome.tally.steps;
            tally.rejected += outcome.tally.rejected;
            tally.executed += outcome.executed;
            let case = Case {
                name: property.value.name.clone(),
                group: file.rel.clone(),
                verdict: outcome.verdict,
                file: Some(file.rel.clone()),
                line: Some(line),
                duration_ms: property_started.elapsed().as_millis() as u64,
                message: outcome.message,
                cell: None,
            };
            reporter.event(&Event::CaseDone {
                stage: StageId::Properties,
                case: &case,
            });
            stage.cases.push(case);
            stage.failures.extend(outcome.failure);
        }
        prepared.drop_all(ctx.server).await;
    }
    stage.checks = stage.cases.len();
    stage.duration_ms = started.elapsed().as_millis() as u64;
    if stage.cases.iter().any(|c| c.verdict != CaseVerdict::Pass) {
        stage.verdict = StageVerdict::Fail;
    } else {
        stage.reason = Some(format!(
            "{} propert{} held over {} cases and {} steps ({} rejected by constraints or RLS), seed {seed}",
            tally.properties,
            if tally.properties == 1 { "y" } else { "ies" },
            tally.cases,
            tally.steps,
            tally.rejected
        ));
    }
    Ok((stage, tally))
}

/// What is wrong with a property, and the line that says it: reported as a broken test.
type Problem = (usize, String);

fn problem(line: usize, message: impl Into<String>) -> Problem {
    (line, message.into())
}

/// What is wrong with a property as written.
#[derive(Debug, thiserror::Error)]
pub enum PropertyError {
    #[error("no operations to run")]
    NoOperations,
    #[error(transparent)]
    Template(#[from] crate::actors::ActorError),
    #[error(transparent)]
    Draw(#[from] crate::policy_tests::properties::BadDraw),
    #[error("`{{{{{pool}}}}}` names no pool (pools: {})", list(.pools))]
    NoSuchPool { pool: String, pools: Vec<String> },
    #[error("`as: {name}` is not an actor of this file (actors: {})", list(.actors))]
    NotAnActor { name: String, actors: Vec<String> },
}

/// Names for a message, `none` when there are none.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The property's templates filled with the file's actors and checked against its pools and
/// actors; needs no database, so a bad property is found when the file is read, at the
/// position of what is wrong.
fn render(
    file: &PolicyFile,
    spec: &PropertySpec,
    property: Pos,
) -> std::result::Result<Rendered, (Pos, PropertyError)> {
    let actors = &file.actors;
    let render = |text: &str, at: Pos| actors.render(text).map_err(|e| (at, e.into()));
    if spec.operations.is_empty() {
        return Err((property, PropertyError::NoOperations));
    }
    let mut operations = Vec::new();
    for operation in &spec.operations {
        let at = Pos::of(operation);
        let template =
            Template::parse(&render(&operation.value, at)?).map_err(|e| (at, e.into()))?;
        for draw in &template.draws {
            if !spec.pools.contains_key(&draw.pool) {
                return Err((
                    at,
                    PropertyError::NoSuchPool {
                        pool: draw.pool.clone(),
                        pools: spec.pools.keys().cloned().collect(),
                    },
                ));
            }
        }
        operations.push(template);
    }
    let mut run_as = Vec::new();
    for name in &spec.run_as {
        match actors.get(&name.value) {
            Some(actor) => run_as.push(actor.clone()),
            None => {
                return Err((
                    Pos::of(name),
                    PropertyError::NotAnActor {
                        name: name.value.clone(),
                        actors: actors.names().map(str::to_owned).collect(),
                    },
                ))
            }
        }
    }
    let setup = match &spec.setup {
        Some(setup) => Some(render(&setup.value, Pos::of(setup))?),
        None => None,
    };
    let show = match &spec.show {
        Some(show) => Some(render(&show.value, Pos::of(show))?),
        None => None,
    };
    Ok(Rendered {
        setup,
        operations,
        invariant: render(&spec.invariant.value, Pos::of(&spec.invariant))?,
        show,
        actors: run_as,
    })
}

/// The input errors of `file`'s properties (an unknown pool or actor, a template that does
/// not parse), so a bad property is exit 2 before anything boots.
pub fn check(file: &PolicyFile) -> Vec<(Pos, PropertyError)> {
    file.spec
        .properties
        .iter()
        .filter_map(|property| render(file, &property.value, Pos::of(property)).err())
        .collect()
}

/// One property of one file, run on the file's prepared database.
struct Run<'a> {
    ctx: &'a StageContext<'a>,
    file: &'a PolicyFile,
    spec: &'a PropertySpec,
    line: usize,
    seed: u64,
}

/// The property's SQL with actor templates filled, and its actors resolved.
struct Rendered {
    setup: Option<String>,
    operations: Vec<Template>,
    invariant: String,
    show: Option<String>,
    actors: Vec<Actor>,
}

impl Run<'_> {
    fn broken(&self, line: usize, message: String) -> Outcome {
        Outcome::broken(
            self.file,
            line,
            format!("property \"{}\": {message}", self.spec.name),
        )
    }

    fn render(&self) -> std::result::Result<Rendered, Problem> {
        render(self.file, self.spec, Pos::from(self.line))
            .map_err(|(at, e)| (at.line, e.to_string()))
    }

    /// Runs the property in a transaction on `client` and rolls it back.
    async fn outcome(&self, client: &Client) -> Result<Outcome> {
        let rendered = match self.render() {
            Ok(rendered) => rendered,
            Err((line, message)) => return Ok(self.broken(line, message)),
        };
        client.batch_execute("begin").await.map_err(|e| {
            crate::error::Error::environment(format!("begin: {}", db_error_text(&e)))
        })?;
        let outcome = self.in_transaction(client, &rendered).await;
        // The prepared invariant outlives the transaction: this session's only statement.
        client
            .batch_execute("rollback; deallocate all")
            .await
            .map_err(|e| {
                crate::error::Error::environment(format!("rollback: {}", db_error_text(&e)))
            })?;
        outcome
    }

    async fn in_transaction(&self, client: &Client, rendered: &Rendered) -> Result<Outcome> {
        if let (Some(setup), Some(spanned)) = (&rendered.setup, &self.spec.setup) {
            if let Err(e) = client.batch_execute(setup).await {
                return Ok(self.broken(
                    line_of(spanned),
                    format!("setup failed: {}", db_error_text(&e)),
                ));
            }
        }
        for actor in &rendered.actors {
            if let Err(message) = check_actor(client, actor).await {
                return Ok(self.broken(self.line, message.to_string()));
            }
        }
        let mut compiled = match self.compile(client, rendered).await {
            Ok(compiled) => compiled,
            Err((line, message)) => return Ok(self.broken(line, message)),
        };
        let invariant_line = line_of(&self.spec.invariant);
        match engine::query_rows(client, &compiled.invariant).await {
            Err(e) => return Ok(self.broken(invariant_line, format!("the invariant query failed: {e}"))),
            Ok(rows) if !rows.rows.is_empty() => {
                return Ok(self.broken(
                    invariant_line,
                    format!(
                        "the invariant does not hold before any operation (fix the setup or the seeds): {}",
                        rows.describe(3).join(" ")
                    ),
                ))
            }
            Ok(_) => {}
        }
        compiled.invariant_call = engine::prepare_invariant(client, &compiled.invariant).await;
        client
            .batch_execute(&format!("savepoint {CASE_SAVEPOINT}"))
            .await
            .map_err(|e| crate::error::Error::environment(db_error_text(&e)))?;
        let mut runner = engine::runner(self.seed, &self.file.rel, &self.spec.name, compiled.cases);
        let finding = engine::run(client, &compiled, &mut runner)
            .await
            .map_err(|e| crate::error::Error::environment(e.to_string()))?;
        Ok(self.judge(client, rendered, &compiled, finding).await)
    }

    /// Reads the pools (in the transaction, after setup) and fixes each draw's values.
    async fn compile(
        &self,
        client: &Client,
        rendered: &Rendered,
    ) -> std::result::Result<Compiled, Problem> {
        let mut pools = std::collections::BTreeMap::new();
        for (name, pool) in &self.spec.pools {
            let line = line_of(pool);
            let values: Vec<String> = match &pool.value {
                PoolSpec::Query(query) => {
                    let query = self
                        .file
                        .actors
                        .render(query)
                        .map_err(|e| problem(line, e.to_string()))?;
                    let rows = engine::query_rows(client, &query)
                        .await
                        .map_err(|e| problem(line, format!("pool `{name}`: {e}")))?;
                    rows.rows
                        .iter()
                        .map(|row| {
                            row.first()
                                .cloned()
                                .flatten()
                                .map_or("null".to_owned(), |v| crate::sql::quote_literal(&v))
                        })
                        .collect()
                }
                PoolSpec::Values(values) => values
                    .iter()
                    .map(|value| match value {
                        // `'{{alice.id}}'` in a list is the actor's id.
                        serde_json::Value::String(text) => self
                            .file
                            .actors
                            .render(text)
                            .map(|text| crate::sql::quote_literal(&text))
                            .map_err(|e| e.to_string()),
                        other => literal_sql(other).map_err(|e| e.to_string()),
                    })
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| problem(line, format!("pool `{name}`: {e}")))?,
            };
            if values.is_empty() {
                return Err(problem(
                    line,
                    format!("pool `{name}` is empty: no operation can draw from it"),
                ));
            }
            pools.insert(name.as_str(), values);
        }
        let draw_pools = rendered
            .operations
            .iter()
            .map(|t| {
                t.draws
                    .iter()
                    .map(|d| pools[d.pool.as_str()].clone())
                    .collect()
            })
            .collect();
        Ok(Compiled {
            templates: rendered.operations.clone(),
            draw_pools,
            actors: rendered.actors.clone(),
            impersonations: rendered.actors.iter().map(Impersonation::of).collect(),
            invariant: rendered.invariant.clone(),
            invariant_call: rendered.invariant.clone(),
            cases: self.spec.cases.max(1),
            max_steps: self.spec.max_steps.max(1),
        })
    }

    async fn judge(
        &self,
        client: &Client,
        rendered: &Rendered,
        compiled: &Compiled,
        finding: Finding,
    ) -> Outcome {
        let tally = finding.tally;
        let mut outcome = Outcome {
            verdict: CaseVerdict::Pass,
            message: None,
            failure: None,
            tally,
            executed: finding.executed,
        };
        let counts = format!(
            "{} case(s), {} step(s): {} rejected by constraints or RLS, {} changed nothing",
            tally.cases, tally.steps, tally.rejected, tally.no_ops
        );
        match &finding.result {
            CaseResult::Held => {
                let effective = tally.steps - tally.rejected - tally.no_ops;
                if (effective as f64) < MIN_EFFECTIVE_SHARE * tally.steps as f64 {
                    let broken = self.broken(
                        self.line,
                        format!(
                            "vacuous: only {effective} of {} steps changed anything ({counts}); the operations never exercise the counter",
                            tally.steps
                        ),
                    );
                    return Outcome {
                        tally,
                        executed: finding.executed,
                        ..broken
                    };
                }
                outcome.message = Some(format!("held: {counts}"));
            }
            CaseResult::Broken(broken) => {
                let line = broken
                    .operation
                    .and_then(|o| self.spec.operations.get(o))
                    .map_or(line_of(&self.spec.invariant), line_of);
                return Outcome {
                    tally,
                    executed: finding.executed,
                    ..self.broken(line, broken.message.clone())
                };
            }
            CaseResult::Failed { step, outcome: how } => {
                let failure = self
                    .failure(client, rendered, compiled, &finding, *step, how)
                    .await;
                outcome.verdict = CaseVerdict::Fail;
                outcome.message = Some(failure.message.clone());
                outcome.failure = Some(failure);
            }
        }
        outcome
    }

    async fn failure(
        &self,
        client: &Client,
        rendered: &Rendered,
        compiled: &Compiled,
        finding: &Finding,
        step: usize,
        how: &StepOutcome,
    ) -> Failure {
        let count = step + 1;
        let steps_word = if count == 1 { "step" } else { "steps" };
        let message = match how {
            StepOutcome::Violated(rows) => format!(
                "property \"{}\" violated after {count} {steps_word}: {}",
                self.spec.name,
                rows.describe(1).join(" ")
            ),
            StepOutcome::Raised { sqlstate, message } => format!(
                "property \"{}\" failed after {count} {steps_word}: step {count} raised an error (SQLSTATE {sqlstate}): {message}",
                self.spec.name
            ),
            _ => format!("property \"{}\" failed after {count} {steps_word}", self.spec.name),
        };
        let replay_command = format!(
            "db-ci props {} --seed {}",
            self.ctx.project.root.display(),
            self.seed
        );
        let mut notes = vec![format!(
            "seed {}: `{replay_command}` replays this run and prints the same sequence",
            self.seed
        )];
        for (index, (step, _)) in finding.steps.iter().enumerate() {
            let who = step
                .actor
                .and_then(|a| compiled.actors.get(a))
                .map_or(String::new(), |a| format!(" as {}", a.name));
            notes.push(format!("step {}{who}: {}", index + 1, step.sql.trim()));
        }
        if let StepOutcome::Violated(rows) = how {
            notes.push(format!(
                "before step {count} the invariant held; after it, it returns: {}",
                rows.describe(5).join(" ")
            ));
        }
        if let Some(show) = &rendered.show {
            let steps: Vec<_> = finding.steps.iter().map(|(s, _)| s.clone()).collect();
            match engine::before_and_after(client, compiled, &steps, show).await {
                Ok((before, after)) => {
                    notes.push(format!(
                        "show before step {count}: {}",
                        before.describe(10).join(" ")
                    ));
                    notes.push(format!(
                        "show after step {count}: {}",
                        after.describe(10).join(" ")
                    ));
                }
                Err(e) => notes.push(format!("the show query failed: {e}")),
            }
        }
        notes.push(format!(
            "found after {} case(s) and {} step(s), then shrunk to {count} {steps_word}",
            finding.tally.cases, finding.tally.steps
        ));
        let users = self.file.actors.create_users_sql();
        let file_setup = self
            .file
            .spec
            .setup
            .as_ref()
            .and_then(|s| self.file.actors.render(s).ok());
        let at = self.file.at(self.line);
        let script = reproducer::Script {
            property: &self.spec.name,
            at: &at,
            seed: self.seed,
            replay_command: &replay_command,
            create_users: &users,
            file_setup: file_setup.as_deref(),
            property_setup: rendered.setup.as_deref(),
            actors: &compiled.actors,
            steps: &finding.steps,
            invariant: &rendered.invariant,
        };
        Failure {
            file: self.file.rel.clone(),
            line: self.line,
            column: None,
            message,
            notes,
            statement: Some(script.render()),
        }
    }
}

/// Why an actor cannot be trusted to run a property's steps.
#[derive(Debug, thiserror::Error)]
enum ActorCheck {
    #[error("impersonating `{actor}` failed: {error}")]
    Impersonation {
        actor: String,
        error: engine::EngineError,
    },
    #[error("impersonating `{0}`: no role row")]
    NoRoleRow(String),
    #[error(transparent)]
    Role(#[from] crate::actors::ActorError),
}

/// Checks that impersonating `actor` really runs as its role, without superuser or (unless
/// service_role) BYPASSRLS, exactly as RLS cells check it.
async fn check_actor(client: &Client, actor: &Actor) -> std::result::Result<(), ActorCheck> {
    let sql = format!(
        "savepoint db_ci_actor;\n{}\n{EFFECTIVE_ROLE_SQL};",
        actor.impersonation_sql()
    );
    let rows = engine::query_rows(client, &sql).await;
    let _ = client
        .batch_execute("rollback to savepoint db_ci_actor")
        .await;
    let rows = rows.map_err(|error| ActorCheck::Impersonation {
        actor: actor.name.clone(),
        error,
    })?;
    let row = rows
        .rows
        .first()
        .ok_or_else(|| ActorCheck::NoRoleRow(actor.name.clone()))?;
    let text = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok(actor.check_effective_role(&text(0), text(1) == "t", text(2) == "t")?)
}
