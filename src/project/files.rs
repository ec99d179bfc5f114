//! Reading a project's SQL from disk: the `.sql` files of a migrations folder and of seed
//! paths and globs, each a regular UTF-8 file without NUL bytes, or an input error naming it.

use std::path::{Path, PathBuf};

use super::{FileKind, Naming, SqlFile, Version};
use crate::error::{Error, Result};

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

pub(super) fn read_migration_dir(root: &Path, dir: &str) -> Result<Vec<SqlFile>> {
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

pub(super) fn read_seed_pattern(
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

#[cfg(test)]
mod tests {
    use super::super::tests::project_with;
    use super::super::Project;

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
}
