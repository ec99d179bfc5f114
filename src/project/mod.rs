//! Project discovery: which migration and seed files a directory holds, and in what order.
//! Discovery is here; `files` reads the SQL from disk, `version` orders migrations and
//! `supabase` reads the Supabase CLI's config.

mod files;
mod supabase;
mod version;

use std::path::{Path, PathBuf};

use regex::Regex;

use crate::config::{Config, ReplayMode};
use crate::error::{Error, Result};

use files::{read_migration_dir, read_seed_pattern};
use supabase::SupabaseCliConfig;
use version::{check_cli_versions, check_versions, supabase_cli_migrations};

pub use version::Version;

/// Folders searched, in this order, when neither `db-ci.yaml` nor `supabase/config.toml` says
/// where migrations live: the layouts real Supabase teams use. Each is (migrations, seeds).
const KNOWN_LAYOUTS: &[(&str, &[&str])] = &[
    ("ops/supabase/migrations", &["ops/supabase/seeds/*.sql"]),
    (
        "server-layer/supabase/migrations",
        &["server-layer/supabase/seed.sql"],
    ),
    ("supabase/migrations", &["supabase/seed.sql"]),
    (
        "database/schema",
        &["database/seeds/*.sql", "database/seed.sql"],
    ),
    ("migrations", &["seeds/*.sql", "seed.sql"]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Migration,
    Seed,
}

/// One SQL file the replay runs.
#[derive(Debug, Clone)]
pub struct SqlFile {
    /// Path relative to the project root, with `/` separators: what reports print.
    pub rel: String,
    pub path: PathBuf,
    pub kind: FileKind,
    pub version: Option<Version>,
    pub text: String,
    /// Run statement by statement rather than as one transaction.
    pub no_transaction: bool,
    /// Run in pass 1 only, with this reason.
    pub exempt: Option<String>,
    /// The name the Supabase CLI records for a migration of its layout (the file name after
    /// the version and `_`, without `.sql`).
    pub cli_name: Option<String>,
}

impl SqlFile {
    /// The name recorded in the Supabase ledger: the file name without version and extension.
    pub fn ledger_name(&self) -> String {
        if let Some(name) = &self.cli_name {
            return name.clone();
        }
        let stem = self
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match &self.version {
            Some(v) => stem
                .strip_prefix(&v.as_written())
                .map(|rest| rest.trim_start_matches(['_', '-', '.']).to_owned())
                .unwrap_or(stem),
            None => stem,
        }
    }
}

/// A discovered project.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    /// How the layout was recognised, for the console.
    pub layout: String,
    pub config: Config,
    pub migrations: Vec<SqlFile>,
    pub seeds: Vec<SqlFile>,
    pub policy_tests: PathBuf,
    /// What `supabase/config.toml` says about the server and the API (defaults without one).
    pub supabase: SupabaseSettings,
    /// The replay mode in effect (`auto` resolved) and why, for the header line.
    pub mode: ReplayMode,
    pub mode_reason: String,
    /// How migrations are named and ordered: the Supabase CLI's rules for its own layout.
    pub naming: Naming,
    /// Files in the migrations folder the Supabase CLI skips, and why: not replayed, since
    /// `supabase db push` does not apply them either.
    pub skipped: Vec<(String, String)>,
}

/// How migration files are versioned and ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// The Supabase CLI's rules (its layout, `supabase/migrations`): files named
    /// `<digits>_<name>.sql` in file-name order (a 12-digit version sorts among 14-digit ones
    /// by its characters), versions compared as written, other names skipped.
    SupabaseCli,
    /// The numeric version prefix of the other layouts (`0001_`, `20251212_001_`), compared
    /// as numbers group by group.
    VersionPrefix,
}

/// The parts of `supabase/config.toml` beyond where SQL lives.
#[derive(Debug, Clone, Default)]
pub struct SupabaseSettings {
    /// Whether the project has a `supabase/config.toml` (the Supabase CLI layout).
    pub cli_layout: bool,
    /// `[db] major_version`: the PostgreSQL major version the project runs on.
    pub major_version: Option<u32>,
    /// `[api] schemas` when the API is enabled: the schemas PostgREST serves.
    pub api_schemas: Option<Vec<String>>,
}

impl Project {
    pub fn files(&self) -> impl Iterator<Item = &SqlFile> {
        self.migrations.iter().chain(self.seeds.iter())
    }

    /// The replay mode in effect: `strict` or `ledger` (`auto` is resolved at discovery).
    pub fn replay_mode(&self) -> ReplayMode {
        self.mode
    }

    /// Finds the project `dir` belongs to, like the Supabase CLI: the nearest enclosing folder
    /// (`dir` itself first) holding `db-ci.yaml` or `supabase/config.toml`; `dir` itself when
    /// none does. So a run from `supabase/` or `supabase/migrations/` checks the whole project,
    /// never the half of it below.
    pub fn find(dir: &Path) -> Result<Project> {
        Project::discover(&project_root(dir))
    }

    /// Discovers the project at `root`: `db-ci.yaml`, else `supabase/config.toml`, else the
    /// layouts the seed documents use.
    pub fn discover(root: &Path) -> Result<Project> {
        if !root.is_dir() {
            return Err(Error::input(format!(
                "read project directory {}: not a directory",
                root.display()
            )));
        }
        let config = Config::load(root)?;
        let has_config = config.is_some();
        let config = config.unwrap_or_default();
        let cli_config = SupabaseCliConfig::load(root)?;

        let (layout, migration_dirs, seed_patterns, seeds_explicit) =
            if has_config && !config.migrations.is_empty() {
                (
                    crate::config::FILE_NAME.to_owned(),
                    config.migrations.clone(),
                    config.seeds.clone(),
                    true,
                )
            } else if let Some(cli) = &cli_config {
                let seeds = if has_config && !config.seeds.is_empty() {
                    config.seeds.clone()
                } else {
                    cli.seed_patterns()
                };
                (
                    "supabase/config.toml".to_owned(),
                    vec!["supabase/migrations".to_owned()],
                    seeds,
                    has_config && !config.seeds.is_empty(),
                )
            } else if let Some((dir, seeds)) = KNOWN_LAYOUTS
                .iter()
                .find(|(dir, _)| root.join(dir).is_dir())
            {
                let (seeds, explicit) = if has_config && !config.seeds.is_empty() {
                    (config.seeds.clone(), true)
                } else {
                    (seeds.iter().map(|s| s.to_string()).collect(), false)
                };
                (format!("{dir}/"), vec![dir.to_string()], seeds, explicit)
            } else {
                let looked: Vec<&str> = KNOWN_LAYOUTS.iter().map(|(d, _)| *d).collect();
                return Err(Error::input(format!(
                    "find migrations in {}: no db-ci.yaml `migrations`, no supabase/config.toml, \
                 and none of {} exists",
                    root.display(),
                    looked.join(", ")
                )));
            };

        let naming = if cli_config.is_some()
            && migration_dirs
                .iter()
                .all(|d| d.trim_end_matches('/') == "supabase/migrations")
        {
            Naming::SupabaseCli
        } else {
            Naming::VersionPrefix
        };
        let mut migrations = Vec::new();
        let mut skipped = Vec::new();
        for dir in &migration_dirs {
            let found = read_migration_dir(root, dir)?;
            match naming {
                Naming::SupabaseCli => {
                    let (kept, left) = supabase_cli_migrations(found);
                    migrations.extend(kept);
                    skipped.extend(left);
                }
                Naming::VersionPrefix => migrations.extend(found),
            }
        }
        if migrations.is_empty() {
            return Err(no_migrations(root, &layout, &migration_dirs));
        }
        match naming {
            Naming::SupabaseCli => check_cli_versions(&migrations)?,
            Naming::VersionPrefix => check_versions(&mut migrations)?,
        }

        let mut seeds = Vec::new();
        for pattern in &seed_patterns {
            let found = read_seed_pattern(root, pattern, seeds_explicit, naming)?;
            for file in found {
                if !seeds.iter().any(|s: &SqlFile| s.path == file.path) {
                    seeds.push(file);
                }
            }
        }

        let supabase = cli_config
            .as_ref()
            .map(SupabaseCliConfig::settings)
            .unwrap_or_default();
        let (mode, mode_reason) = resolve_mode(config.replay.mode, &supabase, &migration_dirs);
        let mut project = Project {
            root: root.to_path_buf(),
            layout,
            policy_tests: root.join(config.policy_tests.as_deref().unwrap_or("policy-tests")),
            config,
            migrations,
            seeds,
            supabase,
            mode,
            mode_reason,
            naming,
            skipped,
        };
        project.apply_file_settings()?;
        Ok(project)
    }

    fn apply_file_settings(&mut self) -> Result<()> {
        let mut no_transaction = Vec::new();
        for pattern in &self.config.replay.no_transaction {
            no_transaction.push(glob::Pattern::new(pattern).map_err(|e| {
                Error::input(format!(
                    "{}: replay.no_transaction: invalid glob `{pattern}`: {e}",
                    crate::config::FILE_NAME
                ))
            })?);
        }
        let exempt = self.config.replay.exempt.clone();
        let mut used = vec![false; exempt.len()];
        let files = self.migrations.iter_mut().chain(self.seeds.iter_mut());
        for file in files {
            file.no_transaction = no_transaction.iter().any(|p| p.matches(&file.rel))
                || has_no_transaction_marker(&file.text)
                || mentions_concurrently(&file.text);
            if let Some(i) = exempt.iter().position(|e| e.file == file.rel) {
                used[i] = true;
                file.exempt = Some(exempt[i].reason.clone());
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(Error::input(format!(
                "{}: replay.exempt: `{}` is not a migration or seed of this project",
                crate::config::FILE_NAME,
                exempt[i].file
            )));
        }
        Ok(())
    }
}

/// A layout with no migration in it would replay nothing and pass: say where db-ci looked.
fn no_migrations(root: &Path, layout: &str, dirs: &[String]) -> Error {
    Error::input(format!(
        "find migrations in {}: no .sql file in {}{}: nothing to check; \
         point db-ci.yaml `migrations:` at the folder that holds them",
        root.display(),
        dirs.iter()
            .map(|d| format!("{}/", d.trim_end_matches('/')))
            .collect::<Vec<_>>()
            .join(", "),
        // A known layout is named by its folder already; a config file is worth naming.
        if layout.ends_with('/') {
            String::new()
        } else {
            format!(" (as {layout} says)")
        }
    ))
}

/// The nearest folder from `dir` upwards that holds `db-ci.yaml` or `supabase/config.toml`;
/// `dir` when none does.
pub fn project_root(dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for candidate in absolute.ancestors() {
        if candidate.join(crate::config::FILE_NAME).is_file()
            || candidate.join("supabase/config.toml").is_file()
        {
            return if candidate == absolute {
                dir.to_path_buf()
            } else {
                candidate.to_path_buf()
            };
        }
    }
    dir.to_path_buf()
}

/// `auto` is `ledger` for a Supabase CLI project (`supabase/config.toml`, migrations in
/// `supabase/migrations`): the CLI applies each migration once and records it, so a second
/// deploy must be a no-op; `strict` elsewhere.
fn resolve_mode(
    declared: ReplayMode,
    supabase: &SupabaseSettings,
    migration_dirs: &[String],
) -> (ReplayMode, String) {
    match declared {
        ReplayMode::Strict => (ReplayMode::Strict, "set in db-ci.yaml".to_owned()),
        ReplayMode::Ledger => (ReplayMode::Ledger, "set in db-ci.yaml".to_owned()),
        ReplayMode::Auto => {
            let cli_migrations = migration_dirs
                .iter()
                .all(|d| d.trim_end_matches('/') == "supabase/migrations");
            if supabase.cli_layout && cli_migrations {
                (
                    ReplayMode::Ledger,
                    "auto: a Supabase CLI project applies each migration once; \
                     `replay: {mode: strict}` in db-ci.yaml re-runs them all"
                        .to_owned(),
                )
            } else {
                (
                    ReplayMode::Strict,
                    "auto: not a Supabase CLI layout, so every file must be re-runnable".to_owned(),
                )
            }
        }
    }
}

fn has_no_transaction_marker(text: &str) -> bool {
    text.lines()
        .any(|line| line.trim().eq_ignore_ascii_case("-- db-ci: no-transaction"))
}

fn mentions_concurrently(text: &str) -> bool {
    static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(r"(?i)\bconcurrently\b").unwrap())
        .is_match(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn project_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        dir
    }

    #[test]
    fn duplicate_version_names_both_files() {
        let dir = project_with(&[
            ("migrations/0001_a.sql", "select 1;"),
            ("migrations/0002_b.sql", "select 1;"),
            ("migrations/0002_c.sql", "select 1;"),
        ]);
        let err = Project::discover(dir.path()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("migrations/0002_b.sql"), "{text}");
        assert!(text.contains("migrations/0002_c.sql"), "{text}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn unversioned_migration_is_named() {
        let dir = project_with(&[
            ("migrations/0001_a.sql", "select 1;"),
            ("migrations/init.sql", "select 1;"),
        ]);
        let err = Project::discover(dir.path()).unwrap_err();
        assert!(err.to_string().contains("migrations/init.sql"), "{err}");
    }

    #[test]
    fn supabase_cli_layout_reads_seed_paths() {
        let dir = project_with(&[
            (
                "supabase/config.toml",
                "[db]\nmajor_version = 15\n[db.seed]\nenabled = true\nsql_paths = ['./seeds/*.sql', './seed.sql']\n",
            ),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
            ("supabase/seeds/b.sql", "select 1;"),
            ("supabase/seeds/a.sql", "select 1;"),
            ("supabase/seed.sql", "select 1;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        let seeds: Vec<_> = project.seeds.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(
            seeds,
            [
                "supabase/seeds/a.sql",
                "supabase/seeds/b.sql",
                "supabase/seed.sql"
            ]
        );
        assert_eq!(project.migrations.len(), 1);
    }

    #[test]
    fn concurrently_and_marker_mean_no_transaction() {
        let dir = project_with(&[
            ("migrations/0001_a.sql", "create table t(id int);"),
            (
                "migrations/0002_b.sql",
                "create index concurrently i on t(id);",
            ),
            (
                "migrations/0003_c.sql",
                "-- db-ci: no-transaction\nvacuum t;",
            ),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        let flags: Vec<bool> = project
            .migrations
            .iter()
            .map(|m| m.no_transaction)
            .collect();
        assert_eq!(flags, [false, true, true]);
    }

    #[test]
    fn no_migrations_names_the_folders_looked_at() {
        // A layout found but empty, and a configured folder with no .sql file in it.
        for files in [
            vec![
                ("supabase/migrations/README.md", "x"),
                ("supabase/seed.sql", "select 1;"),
            ],
            vec![
                ("db-ci.yaml", "migrations: [db/a, db/b]\n"),
                ("db/a/notes.txt", "x"),
                ("db/b/x.md", ""),
            ],
        ] {
            let dir = project_with(&files);
            let err = Project::discover(dir.path()).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let text = err.to_string();
            assert!(text.contains("nothing to check"), "{text}");
            let looked = if files[0].0 == "db-ci.yaml" {
                "db/a/, db/b/"
            } else {
                "supabase/migrations/"
            };
            assert!(text.contains(looked), "{text}");
        }
    }

    #[test]
    fn auto_mode_is_ledger_for_a_cli_layout_and_strict_elsewhere() {
        let cli = project_with(&[
            ("supabase/config.toml", "[db]\nmajor_version = 15\n"),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
        ]);
        let project = Project::discover(cli.path()).unwrap();
        assert_eq!(project.replay_mode(), ReplayMode::Ledger);
        assert!(
            project.mode_reason.contains("auto"),
            "{}",
            project.mode_reason
        );
        assert_eq!(project.supabase.major_version, Some(15));

        let plain = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        assert_eq!(
            Project::discover(plain.path()).unwrap().replay_mode(),
            ReplayMode::Strict
        );

        std::fs::write(cli.path().join("db-ci.yaml"), "replay:\n  mode: strict\n").unwrap();
        let project = Project::discover(cli.path()).unwrap();
        assert_eq!(project.replay_mode(), ReplayMode::Strict);
        assert_eq!(project.mode_reason, "set in db-ci.yaml");
    }

    #[test]
    fn api_schemas_are_the_default_exposed_schemas() {
        let dir = project_with(&[
            (
                "supabase/config.toml",
                "[api]\nschemas = ['public', 'api']\nextra_search_path = ['public', 'extensions']\n",
            ),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(crate::rls::exposed_schemas(&project), ["public", "api"]);

        // db-ci.yaml's own list wins.
        std::fs::write(
            dir.path().join("db-ci.yaml"),
            "rls:\n  exposed_schemas: [public]\n",
        )
        .unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(crate::rls::exposed_schemas(&project), ["public"]);

        // The API disabled: nothing is exposed.
        std::fs::remove_file(dir.path().join("db-ci.yaml")).unwrap();
        std::fs::write(
            dir.path().join("supabase/config.toml"),
            "[api]\nenabled = false\n",
        )
        .unwrap();
        let project = Project::discover(dir.path()).unwrap();
        assert!(crate::rls::exposed_schemas(&project).is_empty());
    }

    #[test]
    fn an_empty_api_schema_list_is_the_old_templates_public_and_storage() {
        let dir = project_with(&[
            ("supabase/config.toml", "[api]\nschemas = []\n"),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(
            crate::rls::exposed_schemas(&project),
            ["public", "storage", "graphql_public"]
        );
    }

    fn migration_names(project: &Project) -> Vec<&str> {
        project.migrations.iter().map(|m| m.rel.as_str()).collect()
    }

    #[test]
    fn a_cli_project_applies_migrations_in_file_name_order() {
        // A 12-digit version among 14-digit ones sorts by its characters, as the CLI lists
        // the folder; numerically it would come first.
        let dir = project_with(&[
            ("supabase/config.toml", ""),
            ("supabase/migrations/20230101000000_a.sql", "select 1;"),
            ("supabase/migrations/202401011200_b.sql", "select 2;"),
            ("supabase/migrations/20240101000000_c.sql", "select 3;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(project.naming, Naming::SupabaseCli);
        assert_eq!(
            migration_names(&project),
            [
                "supabase/migrations/20230101000000_a.sql",
                "supabase/migrations/20240101000000_c.sql",
                "supabase/migrations/202401011200_b.sql",
            ]
        );
        assert_eq!(project.migrations[2].ledger_name(), "b");
        assert_eq!(
            project.migrations[2].version.as_ref().unwrap().to_string(),
            "202401011200"
        );
        // Elsewhere the numeric prefix orders them.
        let dir = project_with(&[
            ("migrations/20230101000000_a.sql", "select 1;"),
            ("migrations/202401011200_b.sql", "select 2;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(project.naming, Naming::VersionPrefix);
        assert_eq!(
            migration_names(&project),
            [
                "migrations/202401011200_b.sql",
                "migrations/20230101000000_a.sql"
            ]
        );
    }

    #[test]
    fn a_cli_project_skips_what_the_cli_skips() {
        let dir = project_with(&[
            ("supabase/config.toml", ""),
            ("supabase/migrations/20200101000000_init.sql", "select 0;"),
            ("supabase/migrations/20230101000000_a.sql", "select 1;"),
            ("supabase/migrations/schema.sql", "select 2;"),
            ("supabase/migrations/20230102000000-dash.sql", "select 3;"),
        ]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(
            migration_names(&project),
            ["supabase/migrations/20230101000000_a.sql"]
        );
        let skipped: Vec<&str> = project.skipped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            skipped,
            [
                "supabase/migrations/20200101000000_init.sql",
                "supabase/migrations/20230102000000-dash.sql",
                "supabase/migrations/schema.sql",
            ]
        );
        assert!(project.skipped[0].1.contains("2021-12-09"));
        assert!(project.skipped[1].1.contains("<timestamp>_name.sql"));
    }

    #[test]
    fn a_cli_duplicate_is_the_same_digits_not_the_same_number() {
        // `0002` and `2` are two versions to the CLI (text keys)…
        let dir = project_with(&[
            ("supabase/config.toml", ""),
            ("supabase/migrations/0002_a.sql", "select 1;"),
            ("supabase/migrations/2_b.sql", "select 2;"),
        ]);
        assert_eq!(Project::discover(dir.path()).unwrap().migrations.len(), 2);
        // …and `20251212_001_a` and `20251212_002_b` are one (the digits before the first `_`).
        let dir = project_with(&[
            ("supabase/config.toml", ""),
            ("supabase/migrations/20251212_001_a.sql", "select 1;"),
            ("supabase/migrations/20251212_002_b.sql", "select 2;"),
        ]);
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.contains("duplicate version 20251212"), "{text}");
        assert!(text.contains("20251212_001_a.sql and"), "{text}");
        assert!(text.contains("db push"), "{text}");
    }

    #[test]
    fn a_nested_folder_finds_the_enclosing_project() {
        let dir = project_with(&[
            ("supabase/config.toml", "[db]\nmajor_version = 15\n"),
            ("supabase/migrations/20240101000000_init.sql", "select 1;"),
        ]);
        let root = std::path::absolute(dir.path()).unwrap();
        let from_supabase = Project::find(&dir.path().join("supabase")).unwrap();
        assert_eq!(from_supabase.root, root);
        assert_eq!(from_supabase.layout, "supabase/config.toml");
        let from_migrations = Project::find(&dir.path().join("supabase/migrations")).unwrap();
        assert_eq!(from_migrations.root, root);
        // The project folder itself keeps the path as given.
        assert_eq!(Project::find(dir.path()).unwrap().root, dir.path());
    }

    #[test]
    fn ledger_name_strips_the_version() {
        let dir = project_with(&[("migrations/20251212_001_social_tables.sql", "select 1;")]);
        let project = Project::discover(dir.path()).unwrap();
        assert_eq!(project.migrations[0].ledger_name(), "social_tables");
    }
}
