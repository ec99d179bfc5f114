//! `db-ci init`: what an unconfigured project is told to do next, and writing a `db-ci.yaml`
//! tuned to the project from what a replay of it shows, and a recorded matrix per exposed
//! schema.

mod matrix;
mod model;
mod review;
mod values;

use crate::config::ReplayMode;
use crate::policy_tests::PolicyFile;
use crate::project::{FileKind, Project};
use crate::report::events::{Reporter, Silent};
use crate::report::{RunError, RunErrorKind, StageReport, StageVerdict};
use crate::rls::detail::RlsDetail;
use crate::rls::record::Recording;
use crate::rls::RlsOptions;
use crate::run::{run_keeping, Replayed};
use crate::stage::{RunOptions, StageContext};
use crate::stage_id::StageId;
use std::path::{Path, PathBuf};

/// One line for the end of a run on a project without `db-ci.yaml`: what to do next.
/// `None` once the project is configured.
pub fn next_step_hint(project: &Project) -> Option<String> {
    if project.root.join(crate::config::FILE_NAME).is_file() {
        return None;
    }
    Some(format!(
        "next: no {} in {}: run `db-ci init {}` to write one tuned to this project",
        crate::config::FILE_NAME,
        project.root.display(),
        project.root.display()
    ))
}

/// One line per exemption `init` wrote that nobody confirmed yet (its reason still starts with
/// [`CONFIRM`]): printed on every run, so an exemption is never silent.
pub fn unconfirmed_exemptions(project: &Project) -> Vec<String> {
    project
        .files()
        .filter(|f| f.exempt.as_deref().is_some_and(|r| r.starts_with(CONFIRM)))
        .map(|f| {
            format!(
                "flagged: {} is exempt from pass 2 with a reason nobody confirmed yet \
                 (db-ci.yaml replay.exempt: make it re-runnable, or remove the CONFIRM marker)",
                f.rel
            )
        })
        .collect()
}

/// What a replay of the project showed, turned into `db-ci.yaml` settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tuning {
    /// `replay.mode` to write (`auto` when auto already fits).
    pub mode: Option<ReplayMode>,
    /// Why the mode was chosen, as a comment.
    pub mode_comment: String,
    /// Seeds that failed or changed data when re-run: (file, what happened).
    pub exempt: Vec<(String, String)>,
}

/// The text every exemption written by `init` carries until a person confirms it.
pub const CONFIRM: &str = "CONFIRM (written by db-ci init):";

/// Reads the idempotence stage of an init replay: seeds that are not re-runnable get an
/// exemption to confirm; migrations failing a strict pass 2 switch the project to ledger.
pub fn tune(project: &Project, idempotence: Option<&StageReport>) -> Tuning {
    let declared = project.config.replay.mode;
    let mut tuning = Tuning {
        // A mode set in an existing db-ci.yaml (`--force`) is kept.
        mode: (declared != ReplayMode::Auto).then_some(declared),
        mode_comment: format!("{} replay: {}", project.mode.as_str(), project.mode_reason),
        exempt: Vec::new(),
    };
    let Some(stage) = idempotence else {
        return tuning;
    };
    for failure in &stage.failures {
        let Some(file) = project.files().find(|f| f.rel == failure.file) else {
            continue;
        };
        match file.kind {
            FileKind::Seed => {
                if !tuning.exempt.iter().any(|(f, _)| *f == file.rel) {
                    let what = failure.message.lines().next().unwrap_or_default();
                    tuning.exempt.push((file.rel.clone(), what.to_owned()));
                }
            }
            FileKind::Migration if project.mode == ReplayMode::Strict => {
                tuning.mode = Some(ReplayMode::Ledger);
                tuning.mode_comment = format!(
                    "ledger: {} fails when re-run ({}); these migrations are applied once, \
                     through supabase_migrations.schema_migrations",
                    file.rel,
                    failure.message.lines().next().unwrap_or_default()
                );
            }
            FileKind::Migration => {}
        }
    }
    tuning
}

/// The commented `db-ci.yaml` for `project` tuned as `tuning` says.
pub fn render_config(project: &Project, tuning: &Tuning) -> String {
    let mut out = String::new();
    out.push_str("# db-ci.yaml written by `db-ci init`: every key is optional (docs/config.md).\n");
    out.push_str(&format!(
        "# Layout found: {} ({} migrations, {} seeds).\n",
        project.layout,
        project.migrations.len(),
        project.seeds.len()
    ));
    if project.layout.ends_with(".yaml") || !project.supabase.cli_layout {
        let dirs: std::collections::BTreeSet<&str> = project
            .migrations
            .iter()
            .filter_map(|m| m.rel.rsplit_once('/').map(|(d, _)| d))
            .collect();
        if !dirs.is_empty() {
            out.push_str("migrations:\n");
            for dir in dirs {
                out.push_str(&format!("  - {dir}\n"));
            }
        }
        if !project.seeds.is_empty() {
            out.push_str("seeds:\n");
            for seed in &project.seeds {
                out.push_str(&format!("  - {}\n", seed.rel));
            }
        }
    } else {
        out.push_str(
            "# Migrations and seeds come from supabase/config.toml ([db.seed] sql_paths).\n",
        );
    }
    out.push_str("replay:\n");
    out.push_str(&format!("  # {}\n", tuning.mode_comment));
    let mode = tuning.mode.unwrap_or(ReplayMode::Auto);
    out.push_str(&format!(
        "  mode: {}   # strict: re-run every file in pass 2\n",
        mode.as_str()
    ));
    if !tuning.exempt.is_empty() {
        out.push_str(
            "  # These seeds failed or changed data when re-run, so pass 2 skips them. Make each\n\
             \x20 # re-runnable (ON CONFLICT, fixed ids) and delete its entry, or confirm the\n\
             \x20 # reason by removing the CONFIRM marker.\n",
        );
        out.push_str("  exempt:\n");
        for (file, what) in &tuning.exempt {
            out.push_str(&format!("    - file: {file}\n"));
            out.push_str(&format!(
                "      reason: {}\n",
                yaml_string(&format!("{CONFIRM} not re-runnable: {what}"))
            ));
        }
    }
    out.push_str("rls:\n");
    if project.supabase.api_schemas.is_some() {
        out.push_str("  # from supabase/config.toml [api] schemas\n");
    }
    out.push_str(&format!(
        "  exposed_schemas: [{}]\n",
        crate::rls::exposed_schemas(project)
            .iter()
            .map(|s| yaml_string(s))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

/// A YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// What init wrote, remembered so that a failure can put the project back as it was: every
/// file it replaced or created, and the folders it created.
#[derive(Debug, Default)]
pub struct Writes {
    /// Each path touched, with its content before (`None`: it did not exist).
    before: Vec<(PathBuf, Option<Vec<u8>>)>,
    created_dirs: Vec<PathBuf>,
}

impl Writes {
    fn remember(&mut self, path: &Path) -> std::io::Result<()> {
        if self.before.iter().any(|(p, _)| p == path) {
            return Ok(());
        }
        let old = match std::fs::read(path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        // The folders this write will create, outermost last, to remove on undo.
        let mut missing = Vec::new();
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            missing.push(d.to_path_buf());
            dir = d.parent();
        }
        self.created_dirs.extend(missing);
        self.before.push((path.to_path_buf(), old));
        Ok(())
    }

    /// Writes `bytes` to `path` (whole, atomically), remembering what was there.
    pub fn write(&mut self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        self.remember(path)?;
        crate::files::write_atomically(path, bytes)
    }

    /// Removes `path`, remembering what was there.
    pub fn remove(&mut self, path: &Path) -> std::io::Result<()> {
        self.remember(path)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The files written that exist now.
    pub fn written(&self) -> Vec<&Path> {
        self.before
            .iter()
            .map(|(p, _)| p.as_path())
            .filter(|p| p.exists())
            .collect()
    }

    /// Puts every file back as it was and removes the folders created; what cannot be put
    /// back is said.
    pub fn undo(self) {
        for (path, old) in self.before.iter().rev() {
            let restored = match old {
                Some(bytes) => crate::files::write_atomically(path, bytes),
                None => match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                },
            };
            if let Err(e) = restored {
                eprintln!("error: put {} back as it was: {e}", path.display());
            }
        }
        for dir in &self.created_dirs {
            // Only when empty: anything else in it is not init's.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Why init stopped.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The project could not be read, or a replay or the recording stopped on an error.
    #[error("{}", .0.message())]
    Stopped(RunError),
    #[error("write {}: it exists (pass --force to regenerate)", .0.join(", "))]
    Exists(Vec<String>),
    #[error("remove {} to regenerate it: {source}", .path.display())]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A check failed (exit 1): there is nothing to tune from.
    #[error(
        "tune {}: the first replay fails; fix the failure above, then run db-ci init again",
        .path.display()
    )]
    FirstReplayFails { path: PathBuf },
    #[error("write {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("resolve the generated actors: {0}")]
    Actors(String),
}

impl InitError {
    /// Whose problem it is, for an error that is not a failed check.
    pub fn kind(&self) -> RunErrorKind {
        match self {
            InitError::Stopped(error) => error.kind,
            InitError::Exists(_) => RunErrorKind::Input,
            _ => RunErrorKind::Environment,
        }
    }
}

impl From<crate::error::Error> for InitError {
    fn from(error: crate::error::Error) -> Self {
        InitError::Stopped(RunError::from_error(&error))
    }
}

/// Init stopped: why, and whether it took back files it had written.
#[derive(Debug)]
pub struct Failed {
    pub error: InitError,
    pub undone: bool,
}

/// `db-ci init DIR`: replay, tune and write `db-ci.yaml`; generate a matrix per exposed
/// schema on the replayed database and record its expectations. `Ok` with what was written
/// (the caller then runs every stage with it); `Err` with why not, the project left as it
/// was.
pub async fn command(
    dir: &Path,
    force: bool,
    options: &RunOptions,
    human: &mut dyn Reporter,
) -> Result<Writes, Failed> {
    let mut writes = Writes::default();
    match write_all(dir, force, options, human, &mut writes).await {
        Ok(()) => Ok(writes),
        Err(error) => {
            let touched = writes.written().len();
            writes.undo();
            Err(Failed {
                error,
                undone: touched > 0,
            })
        }
    }
}

async fn write_all(
    dir: &Path,
    force: bool,
    options: &RunOptions,
    human: &mut dyn Reporter,
    writes: &mut Writes,
) -> Result<(), InitError> {
    let mut project = Project::find(dir)?;
    // Regenerating (`--force`) looks at every file afresh: earlier exemptions are re-derived.
    for file in project
        .migrations
        .iter_mut()
        .chain(project.seeds.iter_mut())
    {
        file.exempt = None;
    }
    let path = project.root.join(crate::config::FILE_NAME);
    let matrices: Vec<(String, PathBuf)> = crate::rls::exposed_schemas(&project)
        .iter()
        .map(|schema| (schema.clone(), matrix_path(&project, schema)))
        .collect();
    if !force {
        let existing: Vec<String> = std::iter::once(&path)
            .chain(matrices.iter().map(|(_, p)| p))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(InitError::Exists(existing));
        }
    }
    // Regenerated from scratch: the old matrices are not read (one that no longer parses
    // would stop the run before anything is regenerated); put back if init fails.
    for (_, matrix) in &matrices {
        if force && matrix.is_file() {
            if let Err(source) = writes.remove(matrix) {
                return Err(InitError::Remove {
                    path: matrix.clone(),
                    source,
                });
            }
        }
    }
    // The first replay shows what to tune; the later stages run at the end, with what init
    // wrote.
    let first_options = RunOptions {
        only: Some(vec![StageId::Idempotence]),
        ..options.clone()
    };
    let mut tuning = tune(&project, None);
    let mut silent = Silent;
    // Pass 2 stops at the first file that fails: each round exempts what it found and
    // replays again, until a round finds nothing new (at most once per seed, plus the switch
    // to ledger).
    let mut rounds = project.seeds.len() + 2;
    let mut first = true;
    let replayed = loop {
        // The first replay is shown; the rounds after it only say what they exempted.
        let reporter: &mut dyn Reporter = if first { human } else { &mut silent };
        first = false;
        let (report, replayed) = run_keeping(&project, &first_options, reporter).await;
        if let Some(error) = report.error {
            if let Some(replayed) = replayed {
                replayed.server.shutdown().await;
            }
            return Err(InitError::Stopped(error));
        }
        let Some(replayed) = replayed.filter(|_| {
            report.stage(StageId::Replay).map(|s| s.verdict) == Some(StageVerdict::Pass)
        }) else {
            return Err(InitError::FirstReplayFails { path });
        };
        let found = tune(&project, report.stage(StageId::Idempotence));
        let mut changed = false;
        for (file, what) in found.exempt {
            if tuning.exempt.iter().any(|(f, _)| *f == file) {
                continue;
            }
            if let Some(seed) = project.seeds.iter_mut().find(|s| s.rel == file) {
                seed.exempt = Some(format!("{CONFIRM} not re-runnable: {what}"));
            }
            tuning.exempt.push((file, what));
            changed = true;
        }
        // Once switched, the project replays in that mode: a later round does not switch back.
        if let Some(mode) = found.mode.filter(|m| tuning.mode != Some(*m)) {
            project.mode = mode;
            tuning.mode = Some(mode);
            tuning.mode_comment = found.mode_comment;
            changed = true;
        }
        rounds -= 1;
        if changed && rounds > 0 {
            println!(
                "Tuning: replaying again with {} seed(s) exempted{}",
                tuning.exempt.len(),
                tuning
                    .mode
                    .map(|m| format!(" and replay.mode {}", m.as_str()))
                    .unwrap_or_default()
            );
        }
        if !changed || rounds == 0 {
            break replayed;
        }
        replayed.server.shutdown().await;
    };
    let text = render_config(&project, &tuning);
    if let Err(source) = writes.write(&path, text.as_bytes()) {
        replayed.server.shutdown().await;
        return Err(InitError::Write { path, source });
    }
    println!("Wrote {}", path.display());
    for (file, what) in &tuning.exempt {
        println!(
            "FLAGGED: {file} is not re-runnable ({what}); db-ci.yaml exempts it from pass 2 \
             with a reason to confirm"
        );
    }
    if let Some(mode) = tuning.mode {
        println!(
            "FLAGGED: replay.mode: {} ({})",
            mode.as_str(),
            tuning.mode_comment
        );
    }
    let written = write_matrices(dir, &replayed, &matrices, options, writes).await;
    replayed.server.shutdown().await;
    written
}

/// Where init writes the matrix of `schema`.
fn matrix_path(project: &Project, schema: &str) -> PathBuf {
    project.policy_tests.join(format!("{schema}.yaml"))
}

/// Generates a matrix per exposed schema that has tables or views on the replayed database,
/// writes it, and records its expectations there.
async fn write_matrices(
    dir: &Path,
    replayed: &Replayed,
    matrices: &[(String, PathBuf)],
    options: &RunOptions,
    writes: &mut Writes,
) -> Result<(), InitError> {
    let environment = InitError::from;
    let client = replayed
        .server
        .connect(&replayed.database)
        .await
        .map_err(environment)?;
    let schemas: Vec<String> = matrices.iter().map(|(s, _)| s.clone()).collect();
    let (relations, reads) = model::read(&client, &schemas).await.map_err(environment)?;
    let read = reads.clone();
    let mut reads = reads;
    // The users every matrix creates, tried first: a sign-up trigger that rejects them is
    // the project's to answer, not a matrix to write that fails on its first line. A NOT
    // NULL column the trigger fills from metadata init could not read is tried with the
    // column's name as the key, flagged as the guess it is (the database is the judge).
    let mut guessed = Vec::new();
    let (actor_lines, actors) = loop {
        let actor_lines = matrix::actors(&reads, &relations);
        let actors =
            matrix::resolve_actors(&actor_lines).map_err(|e| InitError::Actors(e.to_string()))?;
        let tried = client
            .batch_execute(&format!("begin;\n{}", actors.create_users_sql()))
            .await;
        let _ = client.batch_execute("rollback").await;
        let Err(e) = tried else {
            break (actor_lines, actors);
        };
        let error = crate::sql::db_error_text(&e);
        let error = error.lines().next().unwrap_or_default().to_owned();
        match matrix::guessed_key(&reads, &error) {
            Some(key) if guessed.len() < 8 => {
                guessed.push((key.key.clone(), error));
                if let Some(trigger) = reads.sign_up.last_mut() {
                    trigger.keys.push(key);
                }
            }
            _ => {
                // Said from what the triggers read: a guess that failed is no key to name.
                let tried = if guessed.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (tried keys named after the columns: {})",
                        guessed
                            .iter()
                            .map(|(k, _)| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                println!(
                    "FLAGGED: no matrix written: {}{tried}",
                    matrix::sign_up_failure(&read, &error)
                );
                return Ok(());
            }
        }
    };
    for (key, error) in &guessed {
        println!(
            "FLAGGED: the sign-up trigger needs metadata db-ci could not read ({error}): the \
             users carry `user_metadata: {{ {key}: … }}`, a guess from the column's name that \
             the database accepted; check it is the key your app sends"
        );
    }
    let mut written = Vec::new();
    for (schema, path) in matrices {
        if !relations.iter().any(|r| &r.schema == schema) {
            continue;
        }
        let draft = matrix::draft(&client, schema, &relations, actor_lines.clone(), &actors)
            .await
            .map_err(environment)?;
        if draft.cases.is_empty() {
            println!(
                "FLAGGED: no matrix for schema `{schema}`: none of its tables and views could be given a case"
            );
            for why in &draft.left_out {
                println!("FLAGGED: {why}");
            }
            continue;
        }
        if let Err(source) = writes.write(path, matrix::render(&draft).as_bytes()) {
            return Err(InitError::Write {
                path: path.clone(),
                source,
            });
        }
        for why in &draft.left_out {
            println!("FLAGGED: {} has no case for {why}", path.display());
        }
        written.push((path.clone(), draft));
    }
    drop(client);
    if written.is_empty() {
        println!(
            "No matrix written: the exposed schemas ({}) hold no table or view",
            schemas.join(", ")
        );
        return Ok(());
    }

    // Recorded on the same replayed database, into the generated files only.
    let project = Project::find(dir).map_err(environment)?;
    let files: Vec<PolicyFile> = crate::stage::Stages::load(&project)
        .map_err(environment)?
        .policy_files
        .into_iter()
        .filter(|f| written.iter().any(|(p, _)| *p == f.path))
        .collect();
    let mut record_options = RunOptions {
        only: Some(vec![StageId::Rls]),
        ..options.clone()
    };
    record_options.stages.edit(|rls: &mut RlsOptions| {
        rls.record = Some(Recording::Init);
        rls.min_coverage = Some(0.0);
    });
    let ctx = StageContext {
        project: &project,
        options: &record_options,
        server: &replayed.server,
        database: &replayed.database,
        policy_files: &files,
    };
    let stage = crate::rls::stage(&ctx, &mut Silent)
        .await
        .map_err(environment)?;
    for (path, draft) in &written {
        let rel = path
            .strip_prefix(&project.root)
            .unwrap_or(path)
            .display()
            .to_string();
        let recorded = stage
            .detail::<RlsDetail>()
            .map_or(0, |d| d.recorded.iter().filter(|r| r.file == rel).count());
        println!(
            "Wrote {}: {} case(s), {recorded} expectation(s) recorded from what the database does now, all unreviewed",
            path.display(),
            draft.cases.len()
        );
        // What looks like a leak first, with its policies; then what the next CI run does.
        for line in review::lines(&stage, &rel) {
            println!("{line}");
        }
        for failure in stage.failures.iter().filter(|f| f.file == rel) {
            println!("FLAGGED: {rel}:{}: {}", failure.line, failure.message);
        }
    }
    Ok(())
}

/// The options of the run that checks what init just recorded: its unreviewed cells are
/// reported and counted, not failed in CI (the next run fails them).
pub fn checking_what_it_recorded(options: &mut crate::stage::StageOptions) {
    options.edit(|rls: &mut RlsOptions| rls.just_recorded = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    #[test]
    fn written_config_parses_and_carries_the_flagged_exemption() {
        let dir = project_with(&[
            (
                "supabase/config.toml",
                "[api]\nschemas = ['public', 'api']\n[db]\nmajor_version = 15\n",
            ),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
            ("supabase/seed.sql", "select 1;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        let tuning = Tuning {
            mode: None,
            mode_comment: "ledger replay: auto".to_owned(),
            exempt: vec![(
                "supabase/seed.sql".to_owned(),
                "duplicate key value violates unique constraint \"users_pkey\"".to_owned(),
            )],
        };
        let text = render_config(&project, &tuning);
        std::fs::write(dir.path().join("db-ci.yaml"), &text).unwrap();
        let reread = Project::discover(dir.path()).unwrap();
        assert_eq!(reread.replay_mode(), ReplayMode::Ledger, "{text}");
        assert_eq!(crate::rls::exposed_schemas(&reread), ["public", "api"]);
        let exempt = reread.seeds[0].exempt.as_deref().unwrap();
        assert!(exempt.starts_with(CONFIRM), "{exempt}");
        assert!(exempt.contains("users_pkey"), "{exempt}");
    }

    #[test]
    fn undone_writes_leave_the_project_as_it_was() {
        let dir = project_with(&[
            ("db-ci.yaml", "replay: {mode: strict}\n"),
            ("policy-tests/public.yaml", "old matrix"),
        ]);
        let root = dir.path();
        let mut writes = Writes::default();
        writes.write(&root.join("db-ci.yaml"), b"new").unwrap();
        writes
            .remove(&root.join("policy-tests/public.yaml"))
            .unwrap();
        writes
            .write(&root.join("policy-tests/public.yaml"), b"new matrix")
            .unwrap();
        writes
            .write(&root.join("tests/rls/api.yaml"), b"new")
            .unwrap();
        assert_eq!(writes.written().len(), 3);
        writes.undo();
        assert_eq!(
            std::fs::read_to_string(root.join("db-ci.yaml")).unwrap(),
            "replay: {mode: strict}\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("policy-tests/public.yaml")).unwrap(),
            "old matrix"
        );
        // The folders it made are gone, the ones it found stay.
        assert!(!root.join("tests").exists());
        assert!(root.join("policy-tests").is_dir());
    }

    #[test]
    fn hint_only_without_a_config() {
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        let project = Project::discover(dir.path()).unwrap();
        assert!(next_step_hint(&project).unwrap().contains("db-ci init"));
        std::fs::write(dir.path().join("db-ci.yaml"), "").unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert!(next_step_hint(&project).is_none());
    }
}
