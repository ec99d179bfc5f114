//! What production has applied, against the repository: pending versions, and the ledger
//! states that must block a release (diverged, edited after apply, out of order). Pure logic.

use super::cli_split;
use crate::project::Version;

/// One row of production's `supabase_migrations.schema_migrations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRow {
    pub version: String,
    pub name: Option<String>,
    /// The statements recorded when it was applied (NULL for old Supabase CLIs).
    pub statements: Option<Vec<String>>,
}

/// One migration of the repository: its version, file and text.
#[derive(Debug, Clone)]
pub struct RepoMigration {
    pub version: Version,
    pub file: String,
    pub text: String,
}

/// A ledger state that blocks the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerProblem {
    /// Production applied versions the repository does not have.
    Diverged { versions: Vec<String> },
    /// An applied migration whose file no longer matches the statements production ran:
    /// `statement` is the first that differs (1-based, as the CLI splits the file) and its
    /// text now.
    EditedAfterApply {
        version: String,
        file: String,
        statement: usize,
        now: String,
    },
    /// A pending migration older than the newest one production applied.
    OutOfOrder {
        version: String,
        file: String,
        newest_applied: String,
    },
}

impl LedgerProblem {
    pub fn message(&self) -> String {
        match self {
            LedgerProblem::Diverged { versions } => format!(
                "production has applied {} the repository does not have: {}",
                plural(versions.len(), "migration"),
                versions.join(", ")
            ),
            LedgerProblem::EditedAfterApply {
                version,
                file,
                statement,
                now,
            } => format!(
                "migration {version} ({file}) was edited after production applied it: its \
                 statements differ from the ones production recorded, from statement \
                 {statement} on (now `{}`)",
                crate::sql::excerpt(now, 1)
            ),
            LedgerProblem::OutOfOrder {
                version,
                newest_applied,
                ..
            } => format!(
                "pending migration {version} is older than {newest_applied}, the newest one \
                 production has applied: it would run out of order"
            ),
        }
    }

    pub fn advice(&self) -> &'static str {
        match self {
            LedgerProblem::Diverged { .. } => {
                "bring those migrations into the repository (`supabase db pull` or \
                 `supabase migration fetch`), or repair the ledger if they were never meant to ship"
            }
            LedgerProblem::EditedAfterApply { .. } => {
                "never edit an applied migration: revert the file and put the change in a new \
                 migration"
            }
            LedgerProblem::OutOfOrder { .. } => {
                "rename the migration with a version newer than production's newest (a merge \
                 landed out of order)"
            }
        }
    }

    /// The repository file the problem is about, when there is one.
    pub fn file(&self) -> Option<&str> {
        match self {
            LedgerProblem::Diverged { .. } => None,
            LedgerProblem::EditedAfterApply { file, .. }
            | LedgerProblem::OutOfOrder { file, .. } => Some(file),
        }
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The comparison of the repository with production's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Indexes into the repository's migrations production has applied.
    pub applied: Vec<usize>,
    /// Indexes into the repository's migrations production lacks, in order.
    pub pending: Vec<usize>,
    pub problems: Vec<LedgerProblem>,
    /// Applied migrations whose statements could not be compared (the ledger stored none).
    pub not_compared: Vec<String>,
}

/// Compares `repo` (in apply order) with production's ledger rows.
pub fn analyse(repo: &[RepoMigration], prod: &[AppliedRow]) -> Analysis {
    let mut analysis = Analysis::default();
    let prod_versions: Vec<(Option<Version>, &AppliedRow)> = prod
        .iter()
        .map(|row| (Version::parse(&row.version), row))
        .collect();
    let diverged: Vec<String> = prod_versions
        .iter()
        .filter(|(version, _)| {
            version
                .as_ref()
                .is_none_or(|v| !repo.iter().any(|m| &m.version == v))
        })
        .map(|(_, row)| match &row.name {
            Some(name) if !name.is_empty() => format!("{} ({name})", row.version),
            _ => row.version.clone(),
        })
        .collect();
    if !diverged.is_empty() {
        analysis
            .problems
            .push(LedgerProblem::Diverged { versions: diverged });
    }
    let newest = prod_versions
        .iter()
        .filter_map(|(v, row)| v.as_ref().map(|v| (v, row)))
        .max_by(|a, b| a.0.cmp(b.0));
    for (index, migration) in repo.iter().enumerate() {
        let row = prod_versions
            .iter()
            .find(|(v, _)| v.as_ref() == Some(&migration.version))
            .map(|(_, row)| *row);
        match row {
            Some(row) => {
                analysis.applied.push(index);
                match &row.statements {
                    None => analysis.not_compared.push(row.version.clone()),
                    Some(recorded) => {
                        if let Some((statement, now)) = difference(recorded, &migration.text) {
                            analysis.problems.push(LedgerProblem::EditedAfterApply {
                                version: row.version.clone(),
                                file: migration.file.clone(),
                                statement,
                                now,
                            });
                        }
                    }
                }
            }
            None => {
                analysis.pending.push(index);
                if let Some((newest, newest_row)) = newest {
                    if &migration.version < newest {
                        analysis.problems.push(LedgerProblem::OutOfOrder {
                            version: migration.version.to_string(),
                            file: migration.file.clone(),
                            newest_applied: newest_row.version.clone(),
                        });
                    }
                }
            }
        }
    }
    analysis
}

/// Where `text` no longer means what production recorded: the first statement (1-based, as
/// the CLI splits it) whose tokens differ, and its text now (empty when the file lost it).
/// Compared token by token (see [`cli_split::tokens`]): literals, quoted identifiers and
/// dollar-quoted bodies exactly; comments, layout, keyword case and how the recording tool
/// split the statements do not count (the Supabase CLI records comments, db-ci's replay
/// does not).
fn difference(recorded: &[String], text: &str) -> Option<(usize, String)> {
    let now = cli_split::statements(text);
    if cli_split::tokens(recorded) == cli_split::tokens(&now) {
        return None;
    }
    let recorded = cli_split::tokens(recorded);
    // The first statement whose tokens leave the recorded sequence.
    let mut at = 0;
    for (index, statement) in now.iter().enumerate() {
        let tokens = cli_split::tokens(std::slice::from_ref(statement));
        if recorded.get(at..at + tokens.len()) != Some(tokens.as_slice()) {
            return Some((index + 1, statement.clone()));
        }
        at += tokens.len();
    }
    Some((now.len() + 1, String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(items: &[(&str, &str)]) -> Vec<RepoMigration> {
        items
            .iter()
            .map(|(version, sql)| RepoMigration {
                version: Version::parse(version).unwrap(),
                file: format!("migrations/{version}_m.sql"),
                text: sql.to_string(),
            })
            .collect()
    }

    fn row(version: &str, sql: Option<&str>) -> AppliedRow {
        AppliedRow {
            version: version.to_owned(),
            name: Some("m".to_owned()),
            statements: sql.map(|s| vec![s.to_owned()]),
        }
    }

    #[test]
    fn pending_is_what_prod_lacks() {
        let repo = repo(&[("0001", "create table a ()"), ("0002", "create table b ()")]);
        let analysis = analyse(&repo, &[row("1", Some("create table a ();"))]);
        assert_eq!(analysis.applied, vec![0]);
        assert_eq!(analysis.pending, vec![1]);
        assert!(analysis.problems.is_empty(), "{:?}", analysis.problems);
    }

    #[test]
    fn diverged_names_the_versions() {
        let repo = repo(&[("0001", "x")]);
        let analysis = analyse(&repo, &[row("0001", Some("x")), row("0007", Some("y"))]);
        assert_eq!(
            analysis.problems,
            vec![LedgerProblem::Diverged {
                versions: vec!["0007 (m)".to_owned()]
            }]
        );
        assert!(analysis.problems[0].message().contains("0007"));
    }

    #[test]
    fn edited_after_apply_is_caught_and_formatting_is_not() {
        let repo = repo(&[("0001", "create table a (id int)")]);
        let same = analyse(&repo, &[row("0001", Some("create  table a (id int);\n"))]);
        assert!(same.problems.is_empty());
        let edited = analyse(&repo, &[row("0001", Some("create table a (id bigint)"))]);
        assert!(matches!(
            edited.problems.as_slice(),
            [LedgerProblem::EditedAfterApply { version, statement: 1, .. }] if version == "0001"
        ));
        let unknown = analyse(&repo, &[row("0001", None)]);
        assert!(unknown.problems.is_empty());
        assert_eq!(unknown.not_compared, vec!["0001"]);
    }

    /// As `supabase db push` records a file: its splitter's statements, comments kept.
    fn cli_row(version: &str, text: &str) -> AppliedRow {
        AppliedRow {
            version: version.to_owned(),
            name: Some("m".to_owned()),
            statements: Some(cli_split::statements(text)),
        }
    }

    #[test]
    fn a_ledger_written_by_the_cli_matches_its_untouched_file() {
        let text = "-- plans and prices\ncreate table plans (name text default 'pro plan');\n\
                    /* seed */ insert into plans values ('pro plan');\n";
        let repo = [RepoMigration {
            version: Version::parse("0001").unwrap(),
            file: "migrations/0001_plans.sql".to_owned(),
            text: text.to_owned(),
        }];
        assert!(analyse(&repo, &[cli_row("0001", text)]).problems.is_empty());
        // Recorded as db-ci's replay records it (comments dropped, `;` kept): the same.
        let replayed = AppliedRow {
            statements: Some(vec![
                "create table plans (name text default 'pro plan');".to_owned(),
                "insert into plans values ('pro plan');".to_owned(),
            ]),
            ..cli_row("0001", text)
        };
        assert!(analyse(&repo, &[replayed]).problems.is_empty());
        // An edit inside a literal is an edit, named by statement.
        let edited = text.replace("values ('pro plan')", "values ('proplan')");
        let edited = [RepoMigration {
            text: edited,
            ..repo[0].clone()
        }];
        let problems = analyse(&edited, &[cli_row("0001", text)]).problems;
        assert!(
            matches!(
                problems.as_slice(),
                [LedgerProblem::EditedAfterApply { statement: 2, now, .. }] if now.contains("'proplan'")
            ),
            "{problems:?}"
        );
        assert!(problems[0].message().contains("from statement 2 on"));
    }

    #[test]
    fn out_of_order_names_both_versions() {
        let repo = repo(&[("0001", "a"), ("0002", "b"), ("0003", "c")]);
        let analysis = analyse(&repo, &[row("0001", Some("a")), row("0003", Some("c"))]);
        assert_eq!(analysis.pending, vec![1]);
        assert_eq!(
            analysis.problems,
            vec![LedgerProblem::OutOfOrder {
                version: "0002".to_owned(),
                file: "migrations/0002_m.sql".to_owned(),
                newest_applied: "0003".to_owned()
            }]
        );
    }

    #[test]
    fn an_empty_ledger_makes_everything_pending() {
        let repo = repo(&[("0001", "a"), ("0002", "b")]);
        let analysis = analyse(&repo, &[]);
        assert_eq!(analysis.pending, vec![0, 1]);
        assert!(analysis.problems.is_empty());
    }
}
