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
/// `view`, `function`, `policy`, `index`, `extension`, `trigger`…): its file, line and column —
/// where `needle` first matches inside that statement (a clock reader in a function's body),
/// else where the statement starts.
pub(crate) fn creating_statement_at(
    project: &Project,
    kind: &str,
    name: &str,
    needle: Option<&regex::Regex>,
) -> Option<(String, usize, usize)> {
    Creations::new(project).find_at(kind, name, needle)
}

/// Every `CREATE` statement of the project, split once and indexed by the words of its head
/// (the text before its first parenthesis): a caller that locates one object per finding
/// (lint, on a project of a thousand tables and thousands of findings) would otherwise split
/// every file again for each, which grew with the square of the project.
pub(crate) struct Creations<'p> {
    /// In replay order: (file, offset of the code after leading comments, the code).
    statements: Vec<(&'p crate::project::SqlFile, usize, &'p str)>,
    /// Lowercased word → the statements whose head holds it, in replay order.
    by_word: std::collections::HashMap<String, Vec<usize>>,
    /// Per kind, the pattern of a statement creating an object of that kind, its name
    /// captured: compiled once per kind, not once per finding (a regex compiled per finding
    /// was most of the lint stage's time on a thousand-table project, in a stretch that also
    /// kept a signal from being seen).
    by_kind: std::cell::RefCell<std::collections::HashMap<String, regex::Regex>>,
}

/// How far into a statement its head may reach: the name follows a few keywords.
const HEAD: usize = 400;

impl<'p> Creations<'p> {
    pub(crate) fn new(project: &'p Project) -> Creations<'p> {
        let create = regex::Regex::new(r"(?i)^create\b").unwrap();
        let mut statements = Vec::new();
        let mut by_word: std::collections::HashMap<String, Vec<usize>> = Default::default();
        for file in project.files() {
            for statement in crate::sql::split(&file.text) {
                let text = statement.text(&file.text);
                let code = strip_leading_comments(text);
                if !create.is_match(code) {
                    continue;
                }
                let index = statements.len();
                statements.push((file, statement.start + (text.len() - code.len()), code));
                for word in words(head(code)) {
                    let list = by_word.entry(word).or_default();
                    if list.last() != Some(&index) {
                        list.push(index);
                    }
                }
            }
        }
        Creations {
            statements,
            by_word,
            by_kind: Default::default(),
        }
    }

    /// As [`creating_statement_at`], without a needle: the file and line.
    pub(crate) fn find(&self, kind: &str, name: &str) -> Option<(String, usize)> {
        self.find_at(kind, name, None)
            .map(|(file, line, _)| (file, line))
    }

    /// As [`creating_statement_at`], on the index.
    pub(crate) fn find_at(
        &self,
        kind: &str,
        name: &str,
        needle: Option<&regex::Regex>,
    ) -> Option<(String, usize, usize)> {
        let kind_pattern = kind
            .split(' ')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join(r"\s+");
        let head = format!(
            r#"(?is)^\s*create\s+(?:or\s+replace\s+)?(?:[a-z_]+\s+)*?{kind_pattern}\s+(?:if\s+not\s+exists\s+)?(?:(?:"[^"]+"|[\w$]+)\.)?"#
        );
        // A plain name (no quote, dot or parenthesis of its own) is compared with the name the
        // kind's pattern captures; any other name gets a pattern of its own.
        let plain = !name.is_empty() && !name.contains(['"', '.', '(']);
        let pattern = if plain {
            self.by_kind
                .borrow_mut()
                .entry(kind.to_owned())
                .or_insert_with(|| {
                    regex::Regex::new(&format!(r#"{head}(?:"([^"]+)"|([\w$]+))(?:[\s(;]|$)"#))
                        .expect("an escaped kind makes a valid pattern")
                })
                .clone()
        } else {
            regex::Regex::new(&format!(r#"{head}"?{}"?(?:[\s(;]|$)"#, regex::escape(name))).ok()?
        };
        let matches = |code: &str| match plain {
            true => pattern.captures(code).is_some_and(|c| {
                c.get(1)
                    .or_else(|| c.get(2))
                    .is_some_and(|found| found.as_str().eq_ignore_ascii_case(name))
            }),
            false => pattern.is_match(code),
        };
        // A statement that creates `name` holds its first word in its head, unless the name
        // itself holds a parenthesis or no word at all: then every statement is a candidate.
        let first_word = words(name).next().filter(|_| !name.contains('('));
        let all: Vec<usize>;
        let candidates: &[usize] = match &first_word {
            Some(word) => self.by_word.get(word).map_or(&[], Vec::as_slice),
            None => {
                all = (0..self.statements.len()).collect();
                &all
            }
        };
        candidates.iter().find_map(|&i| {
            let (file, start, code) = self.statements[i];
            if !matches(code) {
                return None;
            }
            let offset = needle
                .and_then(|n| n.find(code))
                .map_or(start, |m| start + m.start());
            let (line, column) = crate::sql::line_col(&file.text, offset);
            Some((file.rel.clone(), line, column))
        })
    }
}

/// A statement's head: up to its first parenthesis, at most [`HEAD`] bytes.
fn head(code: &str) -> &str {
    let end = code.find('(').unwrap_or(code.len()).min(HEAD);
    let mut end = end.min(code.len());
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    &code[..end]
}

/// The lowercased words of `text` (letters, digits, `_`, `$`).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
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
    // Most runs have no pending files: no pattern to build per finding.
    if files.is_empty() {
        return None;
    }
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
    fn the_creating_statement_is_the_first_in_replay_order_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| write_file(dir.path(), path, text);
        write(
            "migrations/0001_a.sql",
            "-- notes\ncreate table public.notes (id uuid);\n\
             create policy \"owners read their notes\" on notes for select using (true);\n\
             create unique index if not exists notes_id_idx on notes (id);\n",
        );
        write(
            "migrations/0002_b.sql",
            "select 1;\ncreate or replace function public.is_admin(uid uuid) returns bool\n\
             language sql as $$ select now() > now() $$;\ncreate table notes_archive (id uuid);\n\
             create table \"Odd (name)\" (id int);\n",
        );
        let project = Project::discover(dir.path()).unwrap();
        let index = Creations::new(&project);
        let at = |kind, name| index.find(kind, name);
        let a = Some(("migrations/0001_a.sql".to_string(), 2));
        assert_eq!(at("table", "notes"), a);
        assert_eq!(
            at("policy", "owners read their notes"),
            Some(("migrations/0001_a.sql".into(), 3))
        );
        assert_eq!(
            at("index", "notes_id_idx"),
            Some(("migrations/0001_a.sql".into(), 4))
        );
        assert_eq!(
            at("function", "is_admin"),
            Some(("migrations/0002_b.sql".into(), 2))
        );
        assert_eq!(
            at("table", "notes_archive"),
            Some(("migrations/0002_b.sql".into(), 4))
        );
        assert_eq!(
            at("table", "Odd (name)"),
            Some(("migrations/0002_b.sql".into(), 5))
        );
        assert_eq!(at("view", "notes"), None);
        assert_eq!(at("table", "tags"), None);
        let reader = regex::Regex::new(r"now\(\)").unwrap();
        assert_eq!(
            creating_statement_at(&project, "function", "is_admin", Some(&reader)),
            Some(("migrations/0002_b.sql".into(), 3, 27))
        );
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
