//! Where in the user's files an object comes from: the line of the statement that names it,
//! or that creates it, so that failures point at `file:line` of a migration.

use crate::project::Project;

/// The line of the first statement in `file` that names the object of `key` (e.g.
/// `index public.t_x_idx1`, `rows public.t`), trying its own name, then its table's; else 1.
pub(crate) fn line_mentioning(project: &Project, file: &str, key: &str, definition: &str) -> usize {
    let Some(sql_file) = project.files().find(|f| f.rel == file) else {
        return 1;
    };
    let path = key.split_once(' ').map_or(key, |(_, rest)| rest);
    let path = path.split('(').next().unwrap_or(path);
    let parts: Vec<String> = path
        .split('.')
        .map(|p| p.trim_matches('"').to_lowercase())
        .collect();
    // Its own name, its table's (never the schema's), then the table an index is ON.
    let mut names: Vec<String> = parts.iter().skip(1).rev().take(2).cloned().collect();
    let on_table = regex::Regex::new(r#"(?i) ON (?:[\w"]+\.)?"?(\w+)"?"#).unwrap();
    if let Some(table) = on_table.captures(definition).and_then(|c| c.get(1)) {
        names.push(table.as_str().to_lowercase());
    }
    let statements = crate::sql::split(&sql_file.text);
    let kind = key.split(' ').next().unwrap_or_default();
    let kind = regex::Regex::new(&format!(r"(?i)\b{}\b", regex::escape(kind))).unwrap();
    // Statements of the object's kind first (`create index … on comments`), then any.
    for same_kind in [true, false] {
        for name in &names {
            let pattern = regex::Regex::new(&format!(r"(?i)\b{}\b", regex::escape(name))).unwrap();
            let found = statements.iter().find(|s| {
                let text = s.text(&sql_file.text);
                pattern.is_match(text) && (!same_kind || kind.is_match(text))
            });
            if let Some(statement) = found {
                return crate::sql::line_col(&sql_file.text, statement.start).0;
            }
        }
    }
    1
}

/// The first statement, in replay order, that creates the object `name` of `kind` (`table`,
/// `view`, `function`, `policy`, `index`, `extension`, `trigger`…): its file and line.
pub(crate) fn creating_statement(
    project: &Project,
    kind: &str,
    name: &str,
) -> Option<(String, usize)> {
    creating_statement_at(project, kind, name, None).map(|(file, line, _)| (file, line))
}

/// As [`creating_statement`], with a column: where `needle` first matches inside that
/// statement (a clock reader in a function's body), else where the statement starts.
pub(crate) fn creating_statement_at(
    project: &Project,
    kind: &str,
    name: &str,
    needle: Option<&regex::Regex>,
) -> Option<(String, usize, usize)> {
    let kind_pattern = kind
        .split(' ')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(r"\s+");
    let pattern = regex::Regex::new(&format!(
        r#"(?is)^\s*create\s+(?:or\s+replace\s+)?(?:[a-z_]+\s+)*?{kind_pattern}\s+(?:if\s+not\s+exists\s+)?(?:(?:"[^"]+"|[\w$]+)\.)?"?{}"?(?:[\s(;]|$)"#,
        regex::escape(name)
    ))
    .ok()?;
    for file in project.files() {
        for statement in crate::sql::split(&file.text) {
            let text = statement.text(&file.text);
            let code = strip_leading_comments(text);
            if pattern.is_match(code) {
                let start = statement.start + (text.len() - code.len());
                let offset = needle
                    .and_then(|n| n.find(code))
                    .map_or(start, |m| start + m.start());
                let (line, column) = crate::sql::line_col(&file.text, offset);
                return Some((file.rel.clone(), line, column));
            }
        }
    }
    None
}

/// The last statement of `files` (in their order; the gate's pending migrations) that changes
/// the object `name` or its table `table`: a statement that alters, creates, drops, grants,
/// revokes or comments and names either as a word, or a DO block naming it. A finding on the
/// schema after those files points there, not at the migration that first created the object.
pub(crate) fn changing_statement(
    project: &Project,
    files: &[String],
    name: &str,
    table: Option<&str>,
) -> Option<(String, usize)> {
    let changes =
        regex::Regex::new(r"(?i)^(?:alter|create|drop|grant|revoke|comment|do|security)\b").ok()?;
    let names: Vec<regex::Regex> = std::iter::once(name)
        .chain(table)
        .filter_map(|n| regex::Regex::new(&format!(r"(?i)\b{}\b", regex::escape(n))).ok())
        .collect();
    let mut found = None;
    for file in project.files().filter(|f| files.contains(&f.rel)) {
        for statement in crate::sql::split(&file.text) {
            let text = statement.text(&file.text);
            let code = strip_leading_comments(text);
            if changes.is_match(code) && names.iter().any(|n| n.is_match(code)) {
                let offset = statement.start + (text.len() - code.len());
                found = Some((file.rel.clone(), crate::sql::line_col(&file.text, offset).0));
            }
        }
    }
    found
}

/// `text` without the comment lines and blank lines it starts with.
fn strip_leading_comments(text: &str) -> &str {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(comment) = trimmed.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(block) = trimmed.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return trimmed;
        }
    }
}

/// The file to blame for a pass-2 difference the rebuilt replay did not reproduce (the
/// re-run's effect depended on randomness, the clock or state outside the database): of the
/// files re-run in pass 2 (`rerun`, in order), the last one that writes the table of `key`
/// (`rows public.notes`, `index public.x`), else the last one naming it, else the last one.
pub(crate) fn likely_file<'a>(project: &Project, rerun: &[&'a str], key: &str) -> Option<&'a str> {
    let path = key.split_once(' ').map_or(key, |(_, rest)| rest);
    let path = path.split('(').next().unwrap_or(path);
    let name = path.rsplit('.').next().unwrap_or(path).trim_matches('"');
    let name = regex::escape(&name.to_lowercase());
    let writes = regex::Regex::new(&format!(
        r#"(?is)\b(?:insert\s+into|update|delete\s+from|merge\s+into|copy|truncate(?:\s+table)?)\s+(?:only\s+)?(?:(?:"[^"]+"|\w+)\.)?"?{name}"?(?:[\s(;,]|$)"#
    ))
    .ok()?;
    let names = regex::Regex::new(&format!(r"(?i)\b{name}\b")).ok()?;
    let text = |rel: &str| {
        project
            .files()
            .find(|f| f.rel == rel)
            .map(|f| f.text.as_str())
            .unwrap_or_default()
    };
    let last = |pattern: &regex::Regex| rerun.iter().rev().find(|rel| pattern.is_match(text(rel)));
    last(&writes)
        .or_else(|| last(&names))
        .or_else(|| rerun.last())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(root: &std::path::Path, path: &str, text: &str) {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }

    #[test]
    fn an_unreproduced_difference_is_blamed_on_the_last_file_writing_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| write_file(dir.path(), path, text);
        write("migrations/0001_a.sql", "create table notes (id uuid);\n");
        write("migrations/0002_b.sql", "create table tags (id int);\n");
        write(
            "seed.sql",
            "insert into public.notes values (gen_random_uuid());\n",
        );
        let project = Project::discover(dir.path()).unwrap();
        let rerun = ["migrations/0001_a.sql", "migrations/0002_b.sql", "seed.sql"];
        assert_eq!(
            likely_file(&project, &rerun, "rows public.notes"),
            Some("seed.sql")
        );
        // Named but never written: the last file naming it; named nowhere: the last file.
        assert_eq!(
            likely_file(&project, &rerun, "rows public.tags"),
            Some("migrations/0002_b.sql")
        );
        assert_eq!(
            likely_file(&project, &rerun, "index public.zz_idx"),
            Some("seed.sql")
        );
        assert_eq!(
            likely_file(&project, &rerun[..1], "rows public.notes"),
            Some("migrations/0001_a.sql")
        );
        assert_eq!(likely_file(&project, &[], "rows public.notes"), None);
    }

    #[test]
    fn a_change_is_found_in_the_given_files_only_and_the_last_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| write_file(dir.path(), path, text);
        write(
            "migrations/0001_a.sql",
            "create table public.notes (id int);\nalter table public.notes enable row level security;\n",
        );
        write(
            "migrations/0002_b.sql",
            "-- open it\nselect 1 from public.notes;\nalter table public.notes disable row level security;\n",
        );
        write(
            "migrations/0003_c.sql",
            "create table public.tags (id int);\n",
        );
        let project = Project::discover(dir.path()).unwrap();
        let pending = [
            "migrations/0002_b.sql".to_owned(),
            "migrations/0003_c.sql".to_owned(),
        ];
        assert_eq!(
            changing_statement(&project, &pending, "notes", None),
            Some(("migrations/0002_b.sql".to_owned(), 3))
        );
        // A policy is found by its table too; an object no pending file changes is not found.
        assert_eq!(
            changing_statement(&project, &pending, "read", Some("tags")),
            Some(("migrations/0003_c.sql".to_owned(), 1))
        );
        assert_eq!(
            changing_statement(&project, &pending[1..], "notes", None),
            None
        );
    }
}
