//! Project discovery: which migration and seed files a directory holds, and in what order.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;

use crate::config::{Config, ReplayMode};
use crate::error::{Error, Result};

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

/// The numeric version prefix of a file name: `0001_`, `20251212_001_`, `20240101120000_`.
/// Equal when numerically equal: `0002_` and `2_` are the same version.
#[derive(Debug, Clone)]
pub struct Version(Vec<String>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Version {
    pub fn parse(file_name: &str) -> Option<Version> {
        static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let pattern = PATTERN.get_or_init(|| Regex::new(r"^(\d+(?:_\d+)*)(?:[_.\-]|$)").unwrap());
        let prefix = pattern.captures(file_name)?.get(1)?.as_str();
        Some(Version(prefix.split('_').map(str::to_owned).collect()))
    }

    /// The version the Supabase CLI reads from a migration's file name (`^([0-9]+)_(.*)\.sql$`):
    /// the leading digits only, and the rest of the name. `None` for a name the CLI skips.
    pub fn supabase_cli(file_name: &str) -> Option<(Version, String)> {
        static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let pattern = PATTERN.get_or_init(|| Regex::new(r"^([0-9]+)_(.*)\.sql$").unwrap());
        let captures = pattern.captures(file_name)?;
        Some((
            Version(vec![captures[1].to_owned()]),
            captures[2].to_owned(),
        ))
    }

    /// The version as written in the file name (`0002`, `20251212_001`).
    pub fn as_written(&self) -> String {
        self.0.join("_")
    }

    fn numeric(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|group| {
            let trimmed = group.trim_start_matches('0');
            if trimmed.is_empty() {
                "0"
            } else {
                trimmed
            }
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // Compare group by group as numbers of any length.
        self.numeric()
            .map(|g| (g.len(), g))
            .cmp(other.numeric().map(|g| (g.len(), g)))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("_"))
    }
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
                .strip_prefix(&v.0.join("_"))
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

/// A `.sql` entry that is a symlink to nothing: a file the user meant to run, missing.
fn broken_symlink(root: &Path, path: &Path) -> Option<Error> {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    // A loop does not resolve either, but is no missing file: `not_a_file` names it.
    let missing = std::fs::metadata(path).is_err_and(|e| e.raw_os_error() != Some(40));
    (is_link && missing).then(|| {
        let target = std::fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_default();
        Error::input(format!(
            "read {}: a symlink to {target}, which does not exist",
            rel_path(root, path)
        ))
    })
}

/// A path named like SQL that is not a regular file: an input error naming what it is, never
/// a file silently skipped or a read that blocks.
fn not_a_file(rel: &str, path: &Path) -> Option<Error> {
    crate::files::not_a_file(path)
        .map(|what| Error::input(format!("read {rel}: {what}, where a SQL file is expected")))
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

fn rel_path(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn read_sql(root: &Path, path: &Path, kind: FileKind) -> Result<SqlFile> {
    let rel = rel_path(root, path);
    if let Some(error) = not_a_file(&rel, path) {
        return Err(error);
    }
    let bytes = std::fs::read(path).map_err(|e| Error::input(format!("read {rel}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        // Where the bad byte is, as the user's editor counts: the line and column of the
        // valid text before it.
        let valid = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = String::from_utf8_lossy(&bytes[..valid]);
        let (line, column) = crate::sql::line_col(&before, before.len());
        Error::at(
            rel.as_str(),
            line,
            Some(column),
            format!(
                "not UTF-8 (byte 0x{:02x}); PostgreSQL projects are UTF-8 text: re-save the \
                 file as UTF-8",
                bytes[valid]
            ),
        )
    })?;
    // PostgreSQL cannot receive a NUL byte in a query: it is the file's defect, not a check's.
    if let Some(offset) = text.find('\0') {
        let (line, column) = crate::sql::line_col(&text, offset);
        return Err(Error::at(
            rel.as_str(),
            line,
            Some(column),
            "a NUL byte (\\0) in SQL, which PostgreSQL cannot receive",
        ));
    }
    let version = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(Version::parse);
    Ok(SqlFile {
        rel,
        path: path.to_path_buf(),
        kind,
        version,
        text,
        no_transaction: false,
        exempt: None,
        cli_name: None,
    })
}

fn sql_files_in(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::input(format!("read directory {}: {e}", dir.display())))?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::input(format!("read {}: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".sql") && !name.starts_with('.') {
            if let Some(error) = broken_symlink(root, &path) {
                return Err(error);
            }
            if let Some(error) = not_a_file(&rel_path(root, &path), &path) {
                return Err(error);
            }
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

fn read_migration_dir(root: &Path, dir: &str) -> Result<Vec<SqlFile>> {
    let path = root.join(dir);
    if !path.is_dir() {
        return Err(Error::input(format!(
            "read migrations: {dir} is not a directory in {}",
            root.display()
        )));
    }
    sql_files_in(root, &path)?
        .iter()
        .map(|p| read_sql(root, p, FileKind::Migration))
        .collect()
}

/// Orders migrations by version; a file with no version, or two files sharing one, is an
/// input error naming the files.
fn check_versions(files: &mut [SqlFile]) -> Result<()> {
    let unversioned: Vec<&str> = files
        .iter()
        .filter(|f| f.version.is_none())
        .map(|f| f.rel.as_str())
        .collect();
    if !unversioned.is_empty() {
        return Err(Error::input(format!(
            "order migrations: {} {} no numeric version prefix (like 0001_ or 20240101120000_)",
            unversioned.join(", "),
            if unversioned.len() == 1 {
                "has"
            } else {
                "have"
            }
        )));
    }
    files.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.rel.cmp(&b.rel)));
    let mut by_version: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for pair in files.windows(2) {
        if pair[0].version == pair[1].version {
            let list = by_version
                .entry(pair[0].version.as_ref().unwrap().to_string())
                .or_default();
            for f in [&pair[0], &pair[1]] {
                if !list.contains(&f.rel.as_str()) {
                    list.push(&f.rel);
                }
            }
        }
    }
    if let Some((version, names)) = by_version.into_iter().next() {
        return Err(Error::input(format!(
            "order migrations: duplicate version {version}: {}",
            names.join(" and ")
        )));
    }
    Ok(())
}

/// The Supabase CLI's reading of its migrations folder (files already in name order): a
/// first `<14 digits>_init.sql` older than 2021-12-09 is skipped (its old layout), as is every
/// name not matching `<digits>_<name>.sql`; the rest keep file-name order and get the CLI's
/// version and name.
fn supabase_cli_migrations(files: Vec<SqlFile>) -> (Vec<SqlFile>, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for (i, mut file) in files.into_iter().enumerate() {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if i == 0 && is_legacy_init(&name) {
            skipped.push((
                file.rel,
                "the Supabase CLI skips a first `<timestamp>_init.sql` older than 2021-12-09"
                    .to_owned(),
            ));
            continue;
        }
        match Version::supabase_cli(&name) {
            Some((version, cli_name)) => {
                file.version = Some(version);
                file.cli_name = Some(cli_name);
                kept.push(file);
            }
            None => skipped.push((
                file.rel,
                "the Supabase CLI skips it: a migration's name must match `<timestamp>_name.sql`"
                    .to_owned(),
            )),
        }
    }
    (kept, skipped)
}

fn is_legacy_init(name: &str) -> bool {
    let Some(stamp) = name.strip_suffix("_init.sql") else {
        return false;
    };
    stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && stamp.parse::<u64>().is_ok_and(|t| t < 20211209000000)
}

/// Two files with one version as written: the CLI applies the first and its push fails on the
/// second's ledger row (`schema_migrations.version` is the key).
fn check_cli_versions(files: &[SqlFile]) -> Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for file in files {
        let version = file
            .version
            .as_ref()
            .map(Version::as_written)
            .unwrap_or_default();
        if let Some(first) = seen.insert(version.clone(), &file.rel) {
            return Err(Error::input(format!(
                "order migrations: duplicate version {version}: {first} and {}; `supabase db \
                 push` would fail recording the second in supabase_migrations.schema_migrations",
                file.rel
            )));
        }
    }
    Ok(())
}

fn read_seed_pattern(
    root: &Path,
    pattern: &str,
    explicit: bool,
    naming: Naming,
) -> Result<Vec<SqlFile>> {
    let is_glob = pattern.contains(['*', '?', '[']);
    let full = root.join(pattern);
    if !is_glob {
        if let Some(error) = broken_symlink(root, &full) {
            return Err(error);
        }
        // Anything at the path is read as SQL: a folder, FIFO or symlink loop there is an
        // input error, not a seed silently missing.
        if std::fs::symlink_metadata(&full).is_ok() {
            return Ok(vec![read_sql(root, &full, FileKind::Seed)?]);
        }
        if explicit {
            return Err(Error::input(format!(
                "read seeds: {pattern} does not exist in {}",
                root.display()
            )));
        }
        return Ok(Vec::new());
    }
    let paths = glob::glob(&full.to_string_lossy())
        .map_err(|e| Error::input(format!("read seeds: invalid glob `{pattern}`: {e}")))?;
    let mut files = Vec::new();
    for path in paths {
        let path = path.map_err(|e| {
            Error::input(format!(
                "read seeds: {}: {}",
                rel_path(root, e.path()),
                e.error()
            ))
        })?;
        if let Some(error) = broken_symlink(root, &path) {
            return Err(error);
        }
        // A `**` glob follows links: one back to a folder above would run its seeds again
        // and again.
        if let Some(link) = crate::files::looping_link(root, &path) {
            return Err(Error::input(format!(
                "read {}: a symlink loop (it leads back to a folder above it); seeds would run \
                 more than once",
                rel_path(root, &link)
            )));
        }
        // A glob naming folders (`seeds/*`) may match a folder beside the files: only what
        // is named like SQL must be a file.
        if path.is_dir() && !path.to_string_lossy().ends_with(".sql") {
            continue;
        }
        files.push(read_sql(root, &path, FileKind::Seed)?);
    }
    // The CLI runs a glob's matches in name order; elsewhere numbered seeds run in version
    // order, others by name.
    if naming == Naming::VersionPrefix && files.iter().all(|f| f.version.is_some()) {
        files.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.rel.cmp(&b.rel)));
    } else {
        files.sort_by(|a, b| a.rel.cmp(&b.rel));
    }
    Ok(files)
}

/// The parts of the Supabase CLI's `supabase/config.toml` that say where SQL lives.
#[derive(Debug, Deserialize, Default)]
struct SupabaseCliConfig {
    #[serde(default)]
    db: SupabaseDb,
    #[serde(default)]
    api: SupabaseApi,
}

/// `[api]`: what PostgREST serves. `extra_search_path` schemas go on the request
/// search_path but get no endpoints, so they are not exposed.
#[derive(Debug, Deserialize)]
struct SupabaseApi {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_api_schemas")]
    schemas: Vec<String>,
}

impl Default for SupabaseApi {
    fn default() -> Self {
        SupabaseApi {
            enabled: true,
            schemas: default_api_schemas(),
        }
    }
}

fn default_api_schemas() -> Vec<String> {
    vec!["public".to_owned(), "graphql_public".to_owned()]
}

#[derive(Debug, Deserialize, Default)]
struct SupabaseDb {
    major_version: Option<u32>,
    #[serde(default)]
    seed: SupabaseSeed,
}

#[derive(Debug, Deserialize)]
struct SupabaseSeed {
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default = "default_sql_paths")]
    sql_paths: Vec<String>,
}

impl Default for SupabaseSeed {
    fn default() -> Self {
        SupabaseSeed {
            enabled: true,
            sql_paths: default_sql_paths(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_sql_paths() -> Vec<String> {
    vec!["./seed.sql".to_owned()]
}

impl SupabaseCliConfig {
    fn load(root: &Path) -> Result<Option<SupabaseCliConfig>> {
        let path = root.join("supabase/config.toml");
        match crate::files::file_if_present(&path) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(what) => {
                return Err(Error::input(format!(
                    "read supabase/config.toml: {what}, where the Supabase CLI's config is expected"
                )))
            }
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::input(format!("read supabase/config.toml: {e}")))?;
        let parsed: SupabaseCliConfig = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!(":{line}")
                })
                .unwrap_or_default();
            Error::input(format!("supabase/config.toml{at}: {}", e.message()))
        })?;
        Ok(Some(parsed))
    }

    fn settings(&self) -> SupabaseSettings {
        SupabaseSettings {
            cli_layout: true,
            major_version: self.db.major_version,
            api_schemas: Some(if !self.api.enabled {
                Vec::new()
            } else if self.api.schemas.is_empty() {
                // `schemas = []` is what CLI templates before 2023 wrote, under "public and
                // storage are always included": the CLI of that time served public, storage
                // and graphql_public for it. Read as nothing, it would hide every table.
                ["public", "storage", "graphql_public"]
                    .map(str::to_owned)
                    .to_vec()
            } else {
                self.api.schemas.clone()
            }),
        }
    }

    /// Seed globs relative to the project root (the CLI resolves them against `supabase/`).
    fn seed_patterns(&self) -> Vec<String> {
        if !self.db.seed.enabled {
            return Vec::new();
        }
        self.db
            .seed
            .sql_paths
            .iter()
            .map(|p| format!("supabase/{}", p.trim_start_matches("./")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Version {
        Version::parse(name).unwrap()
    }

    #[test]
    fn versions_parse_the_prefixes_real_projects_use() {
        assert_eq!(v("0001_init.sql").to_string(), "0001");
        assert_eq!(v("000_base_core.sql").to_string(), "000");
        assert_eq!(
            v("20251212_001_social_tables.sql").to_string(),
            "20251212_001"
        );
        assert_eq!(v("20240101120000_init.sql").to_string(), "20240101120000");
        assert_eq!(v("0001_2fa.sql").to_string(), "0001");
        assert!(Version::parse("init.sql").is_none());
        assert!(Version::parse("v1_init.sql").is_none());
    }

    #[test]
    fn versions_order_numerically() {
        assert!(v("9_a.sql") < v("10_a.sql"));
        assert!(v("0002_a.sql") == v("2_b.sql"));
        assert!(v("20251212_001_a.sql") < v("20251212_002_a.sql"));
        assert!(v("20251212_002_a.sql") < v("20251213_001_a.sql"));
    }

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
    fn a_broken_symlink_migration_or_seed_is_input() {
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::os::unix::fs::symlink(
            "../gone/0002_b.sql",
            dir.path().join("migrations/0002_b.sql"),
        )
        .unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("migrations/0002_b.sql: a symlink to ../gone/0002_b.sql"),
            "{err}"
        );
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::os::unix::fs::symlink("nowhere.sql", dir.path().join("seed.sql")).unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert!(err.to_string().contains("seed.sql: a symlink"), "{err}");
    }

    #[test]
    fn what_is_named_like_sql_must_be_a_file() {
        // A folder named like a migration.
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::fs::create_dir(dir.path().join("migrations/0002_b.sql")).unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("read migrations/0002_b.sql: a directory"),
            "{err}"
        );
        // A FIFO (reading it would block).
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        let fifo = dir.path().join("migrations/0002_b.sql");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = Project::discover(dir.path()).unwrap_err();
            assert!(err.to_string().contains("0002_b.sql: a FIFO"), "{err}");
        }
        // A symlink loop as the seed.
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::os::unix::fs::symlink("seed.sql", dir.path().join("seed.sql")).unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("seed.sql: a symlink loop"),
            "{err}"
        );
        // A folder named like a seed.
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::fs::create_dir(dir.path().join("seed.sql")).unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert!(err.to_string().contains("seed.sql: a directory"), "{err}");
    }

    #[test]
    fn non_utf8_is_input_at_its_line_and_column() {
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;")]);
        std::fs::write(
            dir.path().join("migrations/0002_b.sql"),
            b"select 1;\nselect 'caf\xe9';\n",
        )
        .unwrap();
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("migrations/0002_b.sql:2:12: not UTF-8 (byte 0xe9)"),
            "{err}"
        );
        let d = err.diagnostic();
        assert_eq!(
            (d.file.as_deref(), d.line, d.column),
            (Some("migrations/0002_b.sql"), Some(2), Some(12))
        );
    }

    #[test]
    fn a_nul_byte_is_input_at_its_line_and_column() {
        let dir = project_with(&[("migrations/0001_a.sql", "select 1;\nselect 'a\0b';\n")]);
        let err = Project::discover(dir.path()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .contains("migrations/0001_a.sql:2:10: a NUL byte"),
            "{err}"
        );
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
