//! `db-ci init`: what an unconfigured project is told to do next, and writing a `db-ci.yaml`
//! tuned to the project from what a replay of it shows, and a recorded matrix per exposed
//! schema.

mod matrix;
mod model;

use crate::config::ReplayMode;
use crate::error::exit;
use crate::events::Reporter;
use crate::policy_tests::PolicyFile;
use crate::project::{FileKind, Project};
use crate::report::events::Silent;
use crate::report::human::Human;
use crate::report::{StageReport, StageVerdict, Verdict};
use crate::rls::record::Recording;
use crate::run::{run, run_keeping, Replayed, RunOptions};
use crate::stage::StageContext;
use crate::stage_id::StageId;
use std::path::PathBuf;

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

/// `db-ci init DIR`: replay, tune and write `db-ci.yaml`; generate a matrix per exposed
/// schema on the replayed database and record its expectations; then run everything with
/// what was written to show the result. Returns the exit code.
pub async fn command(dir: &std::path::Path, force: bool, options: &RunOptions) -> i32 {
    let mut project = match Project::find(dir) {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: {}", error.render());
            return error.exit_code();
        }
    };
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
            eprintln!(
                "error: write {}: it exists (pass --force to regenerate)",
                existing.join(", ")
            );
            return exit::INPUT;
        }
    }
    // Regenerated from scratch: the old matrices are not read (one that no longer parses
    // would stop the run before anything is regenerated).
    for (_, matrix) in &matrices {
        if force && matrix.is_file() {
            if let Err(e) = std::fs::remove_file(matrix) {
                eprintln!("error: remove {} to regenerate it: {e}", matrix.display());
                return exit::ENVIRONMENT;
            }
        }
    }
    let mut human = Human::stdout();
    // The first replay shows what to tune; the later stages run at the end, with what init
    // wrote.
    let first_options = RunOptions {
        only: Some(vec![StageId::Idempotence]),
        ..options.clone()
    };
    let (report, replayed) =
        run_keeping(&project, &first_options, &mut human as &mut dyn Reporter).await;
    if let Some(error) = &report.error {
        eprintln!("error: {}", error.message);
        if let Some(replayed) = replayed {
            replayed.server.shutdown().await;
        }
        return report.exit_code();
    }
    let Some(replayed) = replayed
        .filter(|_| report.stage(StageId::Replay).map(|s| s.verdict) == Some(StageVerdict::Pass))
    else {
        eprintln!(
            "error: tune {}: the first replay fails; fix the failure above, then run db-ci init again",
            path.display()
        );
        return exit::FAIL;
    };
    let tuning = tune(&project, report.stage(StageId::Idempotence));
    if let Err(e) =
        crate::files::write_atomically(&path, render_config(&project, &tuning).as_bytes())
    {
        eprintln!("error: write {}: {e}", path.display());
        replayed.server.shutdown().await;
        return exit::ENVIRONMENT;
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
    let written = write_matrices(dir, &replayed, &matrices, options).await;
    replayed.server.shutdown().await;
    if let Err(code) = written {
        return code;
    }

    // What was written, checked: every stage with it.
    let project = match Project::find(dir) {
        Ok(project) => project,
        Err(error) => {
            eprintln!("error: {}", error.render());
            return error.exit_code();
        }
    };
    let again = run(
        &project,
        &RunOptions {
            just_recorded: true,
            ..options.clone()
        },
        &mut human as &mut dyn Reporter,
    )
    .await;
    if again.verdict != Verdict::Pass {
        eprintln!("error: run with what init wrote: it fails (see above)");
    }
    again.exit_code()
}

/// Where init writes the matrix of `schema`.
fn matrix_path(project: &Project, schema: &str) -> PathBuf {
    project.policy_tests.join(format!("{schema}.yaml"))
}

/// Generates a matrix per exposed schema that has tables or views on the replayed database,
/// writes it, and records its expectations there. `Err` is the exit code.
async fn write_matrices(
    dir: &std::path::Path,
    replayed: &Replayed,
    matrices: &[(String, PathBuf)],
    options: &RunOptions,
) -> Result<(), i32> {
    let environment = |e: crate::error::Error| {
        eprintln!("error: {}", e.render());
        e.exit_code()
    };
    let client = replayed
        .server
        .connect(&replayed.database)
        .await
        .map_err(environment)?;
    let schemas: Vec<String> = matrices.iter().map(|(s, _)| s.clone()).collect();
    let (relations, reads) = model::read(&client, &schemas).await.map_err(environment)?;
    let actor_lines = matrix::actors(&reads);
    let actors = matrix::resolve_actors(&actor_lines).map_err(|e| {
        eprintln!("error: resolve the generated actors: {e}");
        exit::ENVIRONMENT
    })?;
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
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = crate::files::write_atomically(path, matrix::render(&draft).as_bytes()) {
            eprintln!("error: write {}: {e}", path.display());
            return Err(exit::ENVIRONMENT);
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
    let record_options = RunOptions {
        only: Some(vec![StageId::Rls]),
        record: Some(Recording::Init),
        min_coverage: Some(0.0),
        ..options.clone()
    };
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
        let recorded = stage.recorded.iter().filter(|r| r.file == rel).count();
        println!(
            "Wrote {}: {} case(s), {recorded} expectation(s) recorded from what the database does now, all unreviewed",
            path.display(),
            draft.cases.len()
        );
        for failure in stage.failures.iter().filter(|f| f.file == rel) {
            println!("FLAGGED: {rel}:{}: {}", failure.line, failure.message);
        }
    }
    Ok(())
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
    fn hint_only_without_a_config() {
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        let project = Project::discover(dir.path()).unwrap();
        assert!(next_step_hint(&project).unwrap().contains("db-ci init"));
        std::fs::write(dir.path().join("db-ci.yaml"), "").unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert!(next_step_hint(&project).is_none());
    }
}
