//! Policy-test files (`policy-tests/*.yaml`): reading them, and preparing a database in which
//! their actors exist and their setup has run. RLS matrices (`cases:`) and counter properties
//! (`properties:`) share one format so a file can hold both over the same actors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio_postgres::Client;

use crate::actors::{ActorSpec, Actors};
use crate::backend::{db_error_text, Server};
use crate::error::{Error, Result};
use crate::project::Project;
use crate::props::spec::PropertySpec;
use crate::rls::spec::CaseSpec;

/// One `policy-tests/*.yaml` file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileSpec {
    /// Who the cases and properties run as.
    #[serde(default)]
    pub actors: BTreeMap<String, ActorSpec>,
    /// SQL run as admin after the actors' `auth.users` rows exist; `{{actor.id}}` templates.
    pub setup: Option<String>,
    /// RLS matrix cases.
    #[serde(default)]
    pub cases: Vec<serde_saphyr::Spanned<CaseSpec>>,
    /// Counter properties.
    #[serde(default)]
    pub properties: Vec<serde_saphyr::Spanned<PropertySpec>>,
}

/// A parsed policy-test file with its resolved actors.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Relative to the project root, for messages.
    pub rel: String,
    pub path: PathBuf,
    pub text: String,
    pub spec: PolicyFileSpec,
    pub actors: Actors,
    /// 1-based line of the `setup:` key's value, for errors in the setup SQL.
    pub setup_line: usize,
}

impl PolicyFile {
    /// `file:line` text for messages about this file.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.rel)
    }
}

/// Reads every `*.yaml`/`*.yml` in the project's policy-tests folder, sorted by name. A
/// missing folder is no files; a file that does not parse is an input error at file:line:col.
pub fn load(project: &Project) -> Result<Vec<PolicyFile>> {
    let dir = &project.policy_tests;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| load_file(project, &path))
        .collect()
}

fn load_file(project: &Project, path: &Path) -> Result<PolicyFile> {
    let rel = path
        .strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(format!("read {}: {e}", path.display())))?;
    let spec: PolicyFileSpec = if text.trim().is_empty() {
        return Err(Error::input(format!(
            "{rel}:1: empty policy-test file: give `cases:` or `properties:`"
        )));
    } else {
        crate::config::parse_yaml(&text, Path::new(&rel))?
    };
    let actors = Actors::resolve(&spec.actors).map_err(|e| {
        Error::input(format!(
            "{rel}:{}: {e}",
            key_line(&text, "actors").unwrap_or(1)
        ))
    })?;
    if spec.cases.is_empty() && spec.properties.is_empty() {
        return Err(Error::input(format!(
            "{rel}:1: no `cases:` and no `properties:`: nothing to check"
        )));
    }
    let setup_line = key_line(&text, "setup").map_or(1, |l| l + 1);
    let file = PolicyFile {
        rel,
        path: path.to_path_buf(),
        text,
        spec,
        actors,
        setup_line,
    };
    if let Some(setup) = &file.spec.setup {
        file.actors
            .render(setup)
            .map_err(|e| Error::input(format!("{}: setup: {e}", file.at(file.setup_line))))?;
    }
    let mut problems = crate::rls::plan::check(&file);
    problems.extend(crate::props::check(&file));
    if let Some((line, message)) = problems.into_iter().next() {
        return Err(Error::input(format!("{}: {message}", file.at(line))));
    }
    Ok(file)
}

/// The policy-test files a stage has work in (`has` says which), or why the stage is
/// skipped: no policy tests at all, or none with `what` (e.g. "RLS cases (`cases:`)").
pub fn files_for<'a>(
    project: &Project,
    files: &'a [PolicyFile],
    has: impl Fn(&PolicyFile) -> bool,
    what: &str,
) -> std::result::Result<Vec<&'a PolicyFile>, String> {
    let folder = project
        .policy_tests
        .strip_prefix(&project.root)
        .unwrap_or(&project.policy_tests)
        .display()
        .to_string();
    let chosen: Vec<&PolicyFile> = files.iter().filter(|f| has(f)).collect();
    match (files.is_empty(), chosen.is_empty()) {
        (true, _) => Err(format!("no policy tests in {folder}")),
        (false, true) => Err(format!(
            "no {what} in the {} policy-test file(s) of {folder}",
            files.len()
        )),
        (false, false) => Ok(chosen),
    }
}

/// The 1-based line of a top-level `key:` in YAML text.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    let prefix = format!("{key}:");
    text.lines()
        .position(|line| line.starts_with(&prefix))
        .map(|i| i + 1)
}

/// A database prepared for one policy-test file: a clone of the replayed database with the
/// actors' users created and the file's setup applied (committed). Dropped by [`Prepared::drop_all`].
pub struct Prepared {
    pub database: String,
    pub client: Client,
}

/// Why a file could not be prepared: its setup failed. Reported as a broken test at the
/// setup's line, never as a pass.
#[derive(Debug, Clone)]
pub struct SetupFailure {
    pub line: usize,
    pub message: String,
}

/// Clones `template` into a fresh database, creates the actors' users and runs the setup.
/// `Ok(Err(_))` is the user's setup failing; `Err(_)` the environment.
pub async fn prepare(
    server: &Server,
    template: &str,
    file: &PolicyFile,
    purpose: &str,
) -> Result<std::result::Result<Prepared, (Prepared, SetupFailure)>> {
    let database = server.unique_name(purpose);
    server.create_database(&database, Some(template)).await?;
    let client = server.connect(&database).await?;
    let prepared = Prepared { database, client };
    let users = file.actors.create_users_sql();
    if !users.is_empty() {
        if let Err(e) = prepared.client.batch_execute(&users).await {
            let line = key_line(&file.text, "actors").unwrap_or(1);
            let failure = SetupFailure {
                line,
                message: format!(
                    "creating the actors' auth.users rows failed (a trigger on auth.users?): {}",
                    db_error_text(&e)
                ),
            };
            return Ok(Err((prepared, failure)));
        }
    }
    if let Some(setup) = &file.spec.setup {
        let sql = file
            .actors
            .render(setup)
            .map_err(|e| Error::input(format!("{}: setup: {e}", file.at(file.setup_line))))?;
        if let Err(e) = prepared.client.batch_execute(&sql).await {
            let line = crate::sql::error_offset(&e, &sql)
                .map(|offset| file.setup_line + crate::sql::line_col(&sql, offset).0 - 1)
                .unwrap_or(file.setup_line);
            let failure = SetupFailure {
                line,
                message: format!("setup failed: {}", db_error_text(&e)),
            };
            return Ok(Err((prepared, failure)));
        }
    }
    Ok(Ok(prepared))
}

impl Prepared {
    /// Closes the connection and drops the database.
    pub async fn drop_all(self, server: &Server) {
        let Prepared { database, client } = self;
        drop(client);
        let _ = server.drop_database(&database).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matrix the README documents is valid input.
    #[test]
    fn readme_matrix_example_is_valid() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("## RLS matrices")
            .nth(1)
            .expect("README has an RLS matrices section");
        let yaml = section
            .split("```yaml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the section has a yaml block");
        let spec: PolicyFileSpec = crate::config::parse_yaml(yaml, Path::new("README.md")).unwrap();
        let actors = Actors::resolve(&spec.actors).unwrap();
        assert_eq!(spec.cases.len(), 6);
        let file = PolicyFile {
            rel: "README.md".to_owned(),
            path: PathBuf::from("README.md"),
            text: yaml.to_owned(),
            spec,
            actors,
            setup_line: 1,
        };
        assert_eq!(crate::rls::plan::check(&file), Vec::new());
    }
}
