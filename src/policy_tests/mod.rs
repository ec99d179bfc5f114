//! Policy-test files (`policy-tests/*.yaml`): reading them, and preparing a database in which
//! their actors exist and their setup has run. RLS matrices (`cases:`) and counter properties
//! (`properties:`) share one format so a file can hold both over the same actors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokio_postgres::Client;

use crate::actors::{ActorSpec, Actors, Existing, SeededUser};
use crate::backend::Server;
use crate::error::{Error, Result};
use crate::project::Project;
use crate::sql::db_error_text;

pub mod cases;
pub mod properties;

use cases::{Case, CaseError, CaseSpec};
use properties::PropertySpec;

/// One `policy-tests/*.yaml` file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFileSpec {
    /// Who the cases and properties run as.
    #[serde(default)]
    pub actors: BTreeMap<String, ActorSpec>,
    /// SQL run as admin after the actors' `auth.users` rows exist; `{{actor.id}}` templates.
    pub setup: Option<String>,
    /// SQL files (relative to this file's folder) run before `setup:`, after the folder's
    /// `setup.sql`: setup shared by several files.
    #[serde(default)]
    pub include: Vec<serde_saphyr::Spanned<String>>,
    /// A frozen clock for every cell of the file (and its setup): `now()` and its kin in
    /// the project's functions, policies, views and defaults read it, and so do the JWT's
    /// `iat`/`exp`.
    pub now: Option<crate::clock::Frozen>,
    /// RLS matrix cases as written; [`PolicyFile::cases`] holds them parsed.
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
    /// The folder's `setup.sql` and the `include:` files, in the order they run.
    pub shared: Vec<SharedSql>,
    /// The RLS cases, parsed: what the rls stage plans.
    pub cases: Vec<Case>,
}

/// The setup every policy-test file of a folder runs first, when the folder has one.
pub const FOLDER_SETUP: &str = "setup.sql";

/// SQL shared by several policy-test files, run before a file's own `setup:` with the
/// file's actors filled in.
#[derive(Debug, Clone)]
pub struct SharedSql {
    /// The SQL file, relative to the project root.
    pub rel: String,
    pub text: String,
    /// The line of the policy-test file that brings it in (its `include:` item; 1 for the
    /// folder's `setup.sql`), where a failure is reported.
    pub line: usize,
}

impl PolicyFile {
    /// The file `rel` (at `path`) whose `text` parsed as `spec` with `actors`, its cases
    /// parsed, no shared setup yet; with the error of each case that does not parse, in file
    /// order (for a loaded file, the first is an input error).
    pub fn parse(
        rel: String,
        path: PathBuf,
        text: String,
        spec: PolicyFileSpec,
        actors: Actors,
    ) -> (PolicyFile, Vec<CaseError>) {
        let actors_line = key_line(&text, "actors").unwrap_or(1);
        let (cases, errors) = cases::parse_cases(&spec.cases, &actors, actors_line);
        let file = PolicyFile {
            rel,
            path,
            setup_line: key_line(&text, "setup").map_or(1, |l| l + 1),
            text,
            spec,
            actors,
            shared: Vec::new(),
            cases,
        };
        (file, errors)
    }

    /// `file:line` text for messages about this file.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.rel)
    }

    /// An input error at `line` of this file.
    pub fn error(&self, line: usize, message: impl Into<String>) -> Error {
        Error::at(&self.rel, line, None, message)
    }
}

/// Reads every `*.yaml`/`*.yml` in the project's policy-tests folder, sorted by name. A
/// missing folder is no files; a file that does not parse is an input error at file:line:col.
/// What only a stage knows (an RLS case's shape, a property's templates) each stage checks
/// when it is loaded, before boot (`stage::Stages::load`).
pub fn load(project: &Project) -> Result<Vec<PolicyFile>> {
    let dir = &project.policy_tests;
    // A policy-tests folder that is a broken link would make the rls stage "skipped".
    if let Err(what) = crate::files::dir_if_present(dir) {
        return Err(Error::input(format!(
            "read {}: {what}, where the policy-tests folder is expected",
            relative(project, dir)
        )));
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml") | Some("yml")
            )
        })
        .collect();
    paths.sort();
    // Whatever is named like a policy-test file must be one: a folder, a broken symlink or a
    // loop skipped in silence would turn a failing project green.
    for path in &paths {
        if let Some(what) = crate::files::not_a_file(path) {
            return Err(Error::input(format!(
                "read {}: {what}, where a policy-test file is expected",
                relative(project, path)
            )));
        }
    }
    let folder_setup = dir.join(FOLDER_SETUP);
    let present = crate::files::file_if_present(&folder_setup).map_err(|what| {
        Error::input(format!(
            "read {}: {what}, where the folder's shared setup SQL is expected",
            relative(project, &folder_setup)
        ))
    })?;
    let folder_setup = if present {
        Some(SharedSql {
            rel: relative(project, &folder_setup),
            text: std::fs::read_to_string(&folder_setup)
                .map_err(|e| Error::input(format!("read {}: {e}", folder_setup.display())))?,
            line: 1,
        })
    } else {
        None
    };
    paths
        .into_iter()
        .map(|path| load_file(project, &path, folder_setup.as_ref()))
        .collect()
}

fn relative(project: &Project, path: &Path) -> String {
    path.strip_prefix(&project.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn load_file(
    project: &Project,
    path: &Path,
    folder_setup: Option<&SharedSql>,
) -> Result<PolicyFile> {
    let rel = relative(project, path);
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(format!("read {}: {e}", path.display())))?;
    let spec: PolicyFileSpec = if text.trim().is_empty() {
        return Err(Error::at(
            &rel,
            1,
            None,
            "empty policy-test file: give `cases:` or `properties:`",
        ));
    } else {
        crate::yaml::parse_yaml(&text, Path::new(&rel))?
    };
    let actors = Actors::resolve(&spec.actors).map_err(|e| {
        Error::at(
            &rel,
            key_line(&text, "actors").unwrap_or(1),
            None,
            e.to_string(),
        )
    })?;
    if spec.cases.is_empty() && spec.properties.is_empty() {
        return Err(Error::at(
            &rel,
            1,
            None,
            "no `cases:` and no `properties:`: nothing to check",
        ));
    }
    let mut shared: Vec<SharedSql> = folder_setup.cloned().into_iter().collect();
    let folder = path.parent().unwrap_or(Path::new("."));
    for include in &spec.include {
        let included = folder.join(&include.value);
        let text = std::fs::read_to_string(&included).map_err(|e| {
            Error::at(
                &rel,
                include.referenced.line() as usize,
                Some(include.referenced.column() as usize),
                format!(
                    "include `{}`: read {}: {e}",
                    include.value,
                    included.display()
                ),
            )
        })?;
        shared.push(SharedSql {
            rel: relative(project, &included),
            text,
            line: include.referenced.line() as usize,
        });
    }
    let (mut file, errors) = PolicyFile::parse(rel, path.to_path_buf(), text, spec, actors);
    file.shared = shared;
    for sql in &file.shared {
        file.actors.render(&sql.text).map_err(|e| {
            file.error(
                sql.line,
                format!("{}: {e} (filled in with this file's actors)", sql.rel),
            )
        })?;
    }
    if let Some(setup) = &file.spec.setup {
        file.actors
            .render(setup)
            .map_err(|e| file.error(file.setup_line, format!("setup: {e}")))?;
    }
    // A case that does not parse is the file's input error, whichever stage would read it.
    if let Some(error) = errors.into_iter().next() {
        return Err(Error::input(format!(
            "{}: {}",
            error.pos.at(&file.rel),
            error.message
        )));
    }
    Ok(file)
}

/// Why a stage that reads policy-test files has none to read: the reason it is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoWork {
    #[error("no policy tests in {folder}")]
    NoFiles { folder: String },
    #[error("no {what} in the {files} policy-test file(s) of {folder}")]
    NoneWith {
        what: String,
        files: usize,
        folder: String,
    },
}

/// The policy-test files a stage has work in (`has` says which), or why the stage is
/// skipped: no policy tests at all, or none with `what` (e.g. "RLS cases (`cases:`)").
pub fn files_for<'a>(
    project: &Project,
    files: &'a [PolicyFile],
    has: impl Fn(&PolicyFile) -> bool,
    what: &str,
) -> std::result::Result<Vec<&'a PolicyFile>, NoWork> {
    let folder = project
        .policy_tests
        .strip_prefix(&project.root)
        .unwrap_or(&project.policy_tests)
        .display()
        .to_string();
    let chosen: Vec<&PolicyFile> = files.iter().filter(|f| has(f)).collect();
    match (files.is_empty(), chosen.is_empty()) {
        (true, _) => Err(NoWork::NoFiles { folder }),
        (false, true) => Err(NoWork::NoneWith {
            what: what.to_owned(),
            files: files.len(),
            folder,
        }),
        (false, false) => Ok(chosen),
    }
}

/// The 1-based line of the actor `name` under the top-level `actors:` key (else of `actors:`).
pub fn actor_line(text: &str, name: &str) -> usize {
    crate::yaml::key_line(text, &["actors", name])
        .or_else(|| crate::yaml::key_line(text, &["actors"]))
        .unwrap_or(1)
}

/// Every actor's database role must exist once the project is replayed: a role the database
/// lacks is the user's input (a misspelt role, a migration that never creates it), exit 2
/// at the actor's line, never an environment problem or a broken cell.
pub async fn check_actor_roles(client: &Client, files: &[&PolicyFile]) -> Result<()> {
    let mut roles: Vec<String> = files
        .iter()
        .flat_map(|f| f.actors.by_name.values().map(|a| a.db_role.clone()))
        .collect();
    roles.sort();
    roles.dedup();
    let rows = client
        .query(
            "select r from unnest($1::text[]) r where not exists \
             (select 1 from pg_catalog.pg_roles where rolname = r)",
            &[&roles],
        )
        .await
        .map_err(|e| {
            Error::environment(format!("read the actors' roles: {}", db_error_text(&e)))
        })?;
    let missing: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for file in files {
        for actor in file.actors.by_name.values() {
            if missing.contains(&actor.db_role) {
                return Err(file.error(
                    actor_line(&file.text, &actor.name),
                    format!(
                        "actor `{}` runs as role `{}`, which the database does not have after \
                         replay (create it in a migration, or map the actor to an existing role)",
                        actor.name, actor.db_role
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The files with every `existing:` actor bound to its seeded `auth.users` row, read after
/// replay (the seed made it). A row that is not there is the user's input, like a missing
/// role: exit 2 at the actor's line.
pub async fn bind_existing_users(
    client: &Client,
    files: &[&PolicyFile],
) -> Result<Vec<PolicyFile>> {
    let mut bound = Vec::with_capacity(files.len());
    for file in files {
        let mut file = (*file).clone();
        let PolicyFile {
            rel, text, actors, ..
        } = &mut file;
        for actor in actors.by_name.values_mut() {
            let Some(existing) = actor.existing.clone() else {
                continue;
            };
            let (condition, value) = match &existing {
                Existing::Id(id) => ("id = $1::text::uuid", id.clone()),
                Existing::Email(email) => ("lower(email) = lower($1)", email.clone()),
            };
            let rows = client
                .query(
                    &format!(
                        "select id::text, email::text, phone::text, \
                         coalesce(raw_app_meta_data, '{{}}')::text, coalesce(raw_user_meta_data, '{{}}')::text, \
                         coalesce(is_anonymous, false) from auth.users where {condition}"
                    ),
                    &[&value],
                )
                .await
                .map_err(|e| {
                    Error::environment(format!("read the seeded users: {}", db_error_text(&e)))
                })?;
            let line = actor_line(text, &actor.name);
            let at = |message: String| Error::at(rel.as_str(), line, None, message);
            let row = match rows.as_slice() {
                [row] => row,
                [] => {
                    return Err(at(format!(
                        "actor `{}` is bound to the seeded user with {existing}, but auth.users has no such row after replay \
                         (is the seed that creates it listed, and the {} right?)",
                        actor.name,
                        if matches!(existing, Existing::Id(_)) { "id" } else { "email" }
                    )))
                }
                _ => {
                    return Err(at(format!(
                        "actor `{}` is bound to the seeded user with {existing}, but {} auth.users rows have it; bind by id: `{{ user: {{ id: <uuid> }} }}`",
                        actor.name,
                        rows.len()
                    )))
                }
            };
            let json = |i: usize| -> serde_json::Value {
                serde_json::from_str(&row.get::<_, String>(i)).unwrap_or(serde_json::Value::Null)
            };
            let seeded = SeededUser {
                id: row.get(0),
                email: row.get(1),
                phone: row.get(2),
                app_metadata: json(3),
                user_metadata: json(4),
                is_anonymous: row.get(5),
            };
            actor.bind(seeded).map_err(|e| at(e.to_string()))?;
        }
        bound.push(file);
    }
    Ok(bound)
}

/// The 1-based line of a top-level `key:` in YAML text.
pub fn key_line(text: &str, key: &str) -> Option<usize> {
    crate::yaml::key_line(text, &[key])
}

/// A database prepared for one policy-test file: a clone of the replayed database with the
/// actors' users created and the file's setup applied (committed). Dropped by [`Prepared::drop_all`].
pub struct Prepared {
    pub database: String,
    pub client: Client,
    /// The clock readers the frozen clock could not reach (empty without `now:`).
    pub unfrozen: Vec<crate::clock::Unreached>,
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
    let mut prepared = Prepared {
        database,
        client,
        unfrozen: Vec::new(),
    };
    if file.freezes_time() {
        prepared.unfrozen = crate::clock::install(&prepared.client)
            .await
            .map_err(|e| Error::environment(e.to_string()))?;
    }
    if let Some(now) = file.spec.now {
        // For the setup, and inherited by nothing else: each cell sets its own.
        let _ = crate::clock::freeze(&prepared.client, now, crate::clock::Scope::Session).await;
    }
    let users = file.actors.create_users_sql();
    if !users.is_empty() {
        if let Err(e) = prepared.client.batch_execute(&users).await {
            let (line, message) = users_failure(file, &e);
            let failure = SetupFailure { line, message };
            return Ok(Err((prepared, failure)));
        }
    }
    for shared in &file.shared {
        let sql = file
            .actors
            .render(&shared.text)
            .map_err(|e| file.error(shared.line, format!("{}: {e}", shared.rel)))?;
        let sql = frozen_text(file, sql);
        if let Err((line, e)) = apply(&prepared.client, &sql).await {
            // Reported at the line that brings the file in, naming the failing line in it.
            let at = line.map(|l| format!(":{l}")).unwrap_or_default();
            let failure = SetupFailure {
                line: shared.line,
                message: format!("setup failed in {}{at}: {}", shared.rel, db_error_text(&e)),
            };
            return Ok(Err((prepared, failure)));
        }
    }
    if let Some(setup) = &file.spec.setup {
        let sql = file
            .actors
            .render(setup)
            .map_err(|e| file.error(file.setup_line, format!("setup: {e}")))?;
        let sql = frozen_text(file, sql);
        if let Err((line, e)) = apply(&prepared.client, &sql).await {
            let failure = SetupFailure {
                line: line.map_or(file.setup_line, |l| file.setup_line + l - 1),
                message: format!("setup failed: {}", db_error_text(&e)),
            };
            return Ok(Err((prepared, failure)));
        }
    }
    Ok(Ok(prepared))
}

/// The setup's SQL under the file's frozen clock: its own clock readings (`now()` in an
/// insert) read the frozen instant too, as the project's objects do. Line for line the same.
fn frozen_text(file: &PolicyFile, sql: String) -> String {
    if file.spec.now.is_some() {
        crate::clock::rewrite(&sql)
    } else {
        sql
    }
}

/// Runs setup SQL as admin; on failure, the 1-based line of `sql` where the failing
/// statement starts (when it can be told) and the error.
async fn apply(
    client: &Client,
    sql: &str,
) -> std::result::Result<(), (Option<usize>, tokio_postgres::Error)> {
    let Err(e) = client.batch_execute(sql).await else {
        return Ok(());
    };
    let offset = match crate::sql::error_offset(&e, sql) {
        Some(offset) => Some(offset),
        // Re-running a statement the time limit stopped would wait for the limit
        // twice: the setup's first line stands for it.
        None if crate::sql::is_timeout(&e) => None,
        // No position (a constraint, a trigger's error): the statement that fails.
        None => failing_statement(client, sql).await,
    };
    Err((offset.map(|offset| crate::sql::line_col(sql, offset).0), e))
}

/// Runs `sql` again statement by statement in a transaction rolled back afterwards, and
/// returns the offset of the first statement that fails.
async fn failing_statement(client: &Client, sql: &str) -> Option<usize> {
    client.batch_execute("begin").await.ok()?;
    let mut found = None;
    for statement in crate::sql::split(sql) {
        let text = statement.text(sql);
        if client.batch_execute(text).await.is_err() {
            // Past the statement's leading blank lines and comments: its first token.
            let code = text.trim_start();
            found = Some(statement.start + (text.len() - code.len()));
            break;
        }
    }
    let _ = client.batch_execute("rollback").await;
    found
}

/// Where and why creating the actors' users failed. A unique violation is a user the
/// project already has (a seed): say which actor collided with what; an error raised
/// inside a function is the project's trigger on auth.users.
fn users_failure(file: &PolicyFile, error: &tokio_postgres::Error) -> (usize, String) {
    let text = db_error_text(error);
    let db = error.as_db_error();
    if let Some(db) = db.filter(|db| db.code().code() == "23505") {
        let detail = db.detail().unwrap_or_default();
        let actor = file.actors.by_name.values().find(|a| {
            [a.id.as_deref(), a.email.as_deref(), a.phone.as_deref()]
                .into_iter()
                .flatten()
                .any(|v| detail.contains(&format!("({v})")) || detail.contains(&format!(", {v})")))
        });
        if let Some(actor) = actor {
            return (
                actor_line(&file.text, &actor.name),
                format!(
                    "actor `{}` collides with a user already in auth.users after replay ({}): a migration \
                     or seed created it; to act as that user, bind the actor to it (`{{ existing: {} }}` or \
                     `{{ user: {{ id: <uuid> }} }}`), or give the actor another email (or `id:`)",
                    actor.name,
                    detail.trim_end_matches('.'),
                    actor.email.as_deref().unwrap_or("<email>")
                ),
            );
        }
        return (
            key_line(&file.text, "actors").unwrap_or(1),
            format!("creating the actors' auth.users rows collided with an existing row: {text}; {detail}"),
        );
    }
    let hint = match db.and_then(|db| db.where_()) {
        Some(context) => format!(" (raised in {})", context.lines().next().unwrap_or(context)),
        None => String::new(),
    };
    (
        key_line(&file.text, "actors").unwrap_or(1),
        format!("creating the actors' auth.users rows failed{hint}: {text}"),
    )
}

impl PolicyFile {
    /// Whether the file or one of its cases sets `now:`: its database gets the frozen clock.
    pub fn freezes_time(&self) -> bool {
        self.spec.now.is_some()
            || self.cases.iter().any(|c| {
                c.now.is_some()
                    || matches!(&c.kind, cases::CaseKind::Steps(steps) if steps.iter().any(|s| s.now.is_some()))
            })
    }
}

impl Prepared {
    /// Closes the connection and drops the database.
    pub async fn drop_all(self, server: &Server) {
        let Prepared {
            database, client, ..
        } = self;
        drop(client);
        let _ = server.drop_database(&database).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_lines_are_found_under_actors() {
        let text = "# x\nsetup: |\n  alice: no\nactors:\n  anon: anon\n  \"alice\": { user: a@b.c }\n  alicia: x\ncases: []\n";
        assert_eq!(actor_line(text, "alice"), 6);
        assert_eq!(actor_line(text, "alicia"), 7);
        assert_eq!(actor_line(text, "bob"), 4);
    }

    /// The matrix docs/rls.md opens with is valid input.
    #[test]
    fn documented_matrix_example_is_valid() {
        let page = include_str!("../../docs/rls.md");
        let yaml = page
            .split("```yaml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("the section has a yaml block");
        let spec: PolicyFileSpec = crate::yaml::parse_yaml(yaml, Path::new("docs/rls.md")).unwrap();
        let actors = Actors::resolve(&spec.actors).unwrap();
        assert_eq!(spec.cases.len(), 11);
        let (file, errors) = PolicyFile::parse(
            "docs/rls.md".to_owned(),
            PathBuf::from("docs/rls.md"),
            yaml.to_owned(),
            spec,
            actors,
        );
        assert_eq!(errors, Vec::new());
        assert_eq!(file.cases.len(), 11);
        assert_eq!(crate::rls::plan::check(&file), Vec::new());
    }
}
