//! Recorded expectations (`db-ci rls --record`, `db-ci init`): what a run observed for cells
//! that had no expectation or contradicted theirs, written into the matrix in place (comments
//! and layout kept), and the diff of who can do what that a reviewer reads.

use std::collections::{BTreeMap, BTreeSet};

use crate::policy_tests::cases::{resolve, CaseSpec, Expect, Operation, Who};
use crate::policy_tests::PolicyFileSpec;
use crate::yaml::edit::{self, Node};

/// Suffix of a matrix's pending recording.
pub const PENDING: &str = ".pending";

/// Where `matrix`'s pending recording is written: beside it, `<name>.yaml.pending`.
pub fn pending_path(matrix: &std::path::Path) -> std::path::PathBuf {
    let mut name = matrix.as_os_str().to_owned();
    name.push(PENDING);
    std::path::PathBuf::from(name)
}

/// The first line of a pending recording: what it was made from (the matrix's SHA-256) and
/// what it says (the SHA-256 of the rest), so `--accept` can refuse a stale or edited one.
const PENDING_HEADER: &str = "# db-ci pending recording:";

fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pending file for `recorded` (the matrix rewritten) made from `matrix`.
pub fn pending_text(matrix: &str, recorded: &str) -> String {
    format!(
        "{PENDING_HEADER} matrix sha256:{} recording sha256:{} (review, then `db-ci rls --accept`; edit the matrix, not this file)\n{recorded}",
        sha256(matrix),
        sha256(recorded)
    )
}

/// Why a pending recording cannot be accepted, as a fragment after "nothing accepted:".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unacceptable {
    #[error("it does not say which matrix it was recorded from (written by hand, or by an older db-ci): record again with `db-ci rls --record`")]
    Unlabelled,
    #[error("it was edited after it was recorded: accepting it would apply changes nobody recorded; edit the matrix itself, then record again with `db-ci rls --record`")]
    Edited,
    #[error("the matrix changed since it was recorded (a case added or edited after `--record` would be lost): record again with `db-ci rls --record`")]
    MatrixChanged,
}

/// Why a recording could not be written into its matrix. The matrix parsed when it was
/// loaded, so each is a fault of the rewrite, never of the user's input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("{0}")]
    Edit(crate::yaml::edit::EditError),
    #[error("case {0} is not in the file")]
    NoCase(usize),
    #[error("case `{case}` has no {operation}")]
    NoOperation { case: String, operation: Operation },
    /// The expectations as written do not resolve.
    #[error("{0}")]
    Expectations(String),
    #[error("case `{0}` is not where the file was read")]
    Moved(String),
    #[error("case `{case}`: `{operation}:` is not a mapping; write it as `{operation}: {{}}` to record into it")]
    NotAMapping { case: String, operation: Operation },
    #[error("the recorded file does not parse: {0}")]
    Reread(String),
    #[error("an operation vanished")]
    Vanished,
    #[error("the recorded file does not say {0}")]
    NotRecorded(String),
}

/// The recording a pending file holds, if it was made from `matrix` as it is now and was not
/// edited since; else why it cannot be accepted.
pub fn read_pending(pending: &str, matrix: &str) -> Result<String, Unacceptable> {
    let (header, body) = pending.split_once('\n').unwrap_or((pending, ""));
    let rest = header.strip_prefix(PENDING_HEADER);
    // `matrix sha256:<hex>` and `recording sha256:<hex>`, in the header's words.
    let value = |key: &str| -> Option<&str> {
        let mut words = rest?.split_whitespace();
        while let Some(word) = words.next() {
            if word == key {
                return words.next()?.strip_prefix("sha256:");
            }
        }
        None
    };
    let (Some(made_from), Some(says)) = (value("matrix"), value("recording")) else {
        return Err(Unacceptable::Unlabelled);
    };
    if says != sha256(body) {
        return Err(Unacceptable::Edited);
    }
    if made_from != sha256(matrix) {
        return Err(Unacceptable::MatrixChanged);
    }
    Ok(body.to_owned())
}

/// One cell whose observation becomes its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub case_index: usize,
    pub case: String,
    pub line: usize,
    /// `schema.table`, or `sql`.
    pub target: String,
    pub operation: Operation,
    pub actor: String,
    /// `None`: the cell had no expectation (a new recording, marked unreviewed).
    pub from: Option<Expect>,
    pub to: Expect,
}

impl Recorded {
    /// A new expectation, or one loosened (deny → allow), is unreviewed until a person says
    /// otherwise: accepting a recording is not reviewing what it lets through.
    pub fn needs_review(&self) -> bool {
        matches!(
            (self.from, self.to),
            (None, _) | (Some(Expect::Deny), Expect::Allow)
        )
    }

    /// "anon: select public.profiles deny → allow".
    pub fn describe(&self) -> String {
        let what = if self.operation == Operation::Sql {
            format!("sql `{}`", self.case)
        } else {
            format!("{} {}", self.operation.as_str(), self.target)
        };
        format!(
            "{}: {what} {} → {}",
            self.actor,
            self.from.map_or("(none)", Expect::as_str),
            self.to.as_str()
        )
    }
}

/// The expectations and marks of one operation of a case, as written.
struct Written<'a> {
    allow: &'a Who,
    deny: &'a Who,
    unreviewed: Vec<&'a str>,
}

fn written(case: &CaseSpec, operation: Operation) -> Option<Written<'_>> {
    const NOBODY: &Who = &Who::Nobody;
    let op = match operation {
        Operation::Sql => {
            return Some(Written {
                allow: case.allow.as_ref().unwrap_or(NOBODY),
                deny: case.deny.as_ref().unwrap_or(NOBODY),
                unreviewed: case.unreviewed.iter().map(|n| n.value.as_str()).collect(),
            })
        }
        Operation::Select => case.select.as_ref()?.expect(),
        Operation::Insert => case.insert.as_ref()?.expect(),
        Operation::Update => case.update.as_ref()?.expect(),
        Operation::Delete => case.delete.as_ref()?.expect(),
    };
    Some(Written {
        allow: op.allow,
        deny: op.deny,
        unreviewed: op.unreviewed.iter().map(|n| n.value.as_str()).collect(),
    })
}

/// The matrix `text` (parsed as `spec`) with every recording written in: per operation its
/// `allow:`/`deny:` as lists (a side written `others` stays `others`), and the actor of each
/// new or loosened recording added to `unreviewed:` ([`Recorded::needs_review`]). Everything else in the file is kept byte for byte.
pub fn rewrite(
    text: &str,
    spec: &PolicyFileSpec,
    recorded: &[Recorded],
) -> Result<String, RewriteError> {
    let tree = edit::parse_tree(text).map_err(RewriteError::Edit)?;
    // Actors in the order the file lists them, so lists read like the file.
    let actors: Vec<String> = match tree.get("actors") {
        Some(Node::Map { entries, .. }) => entries.iter().map(|e| e.key.clone()).collect(),
        _ => spec.actors.keys().cloned().collect(),
    };
    let names: Vec<&str> = actors.iter().map(String::as_str).collect();
    let mut groups: BTreeMap<(usize, Operation), Vec<&Recorded>> = BTreeMap::new();
    for r in recorded {
        groups
            .entry((r.case_index, r.operation))
            .or_default()
            .push(r);
    }
    let mut edits = Vec::new();
    for ((index, operation), records) in &groups {
        let case = &spec
            .cases
            .get(*index)
            .ok_or(RewriteError::NoCase(*index))?
            .value;
        let no_operation = || RewriteError::NoOperation {
            case: case.name.clone(),
            operation: *operation,
        };
        let now = written(case, *operation).ok_or_else(no_operation)?;
        let mut cells = resolve(now.allow, now.deny, &names)
            .map_err(|(_, message)| RewriteError::Expectations(message))?
            .cells;
        let mut unreviewed: Vec<&str> = now.unreviewed.clone();
        for r in records {
            cells.insert(r.actor.clone(), r.to);
            if r.needs_review() && !unreviewed.contains(&r.actor.as_str()) {
                unreviewed.push(&r.actor);
            }
        }
        let side = |who: &Who, expect: Expect| -> Option<String> {
            if *who == Who::Others {
                return None;
            }
            let want: Vec<&str> = names
                .iter()
                .copied()
                .filter(|a| cells.get(*a) == Some(&expect))
                .collect();
            let have: BTreeSet<&str> = match who {
                Who::Actors(list) => list.iter().map(|n| n.value.as_str()).collect(),
                _ => BTreeSet::new(),
            };
            (want.iter().copied().collect::<BTreeSet<_>>() != have || *who == Who::Nobody)
                .then(|| edit::flow_list(want))
        };
        let mut values = Vec::new();
        if let Some(list) = side(now.allow, Expect::Allow) {
            values.push(("allow", list));
        }
        if let Some(list) = side(now.deny, Expect::Deny) {
            values.push(("deny", list));
        }
        if unreviewed.len() != now.unreviewed.len() {
            let ordered: Vec<&str> = names
                .iter()
                .copied()
                .filter(|a| unreviewed.contains(a))
                .collect();
            values.push(("unreviewed", edit::flow_list(ordered)));
        }
        let case_node = tree
            .get("cases")
            .and_then(|c| c.item(*index))
            .ok_or_else(|| RewriteError::Moved(case.name.clone()))?;
        let container = if *operation == Operation::Sql {
            case_node
        } else {
            case_node.get(operation.as_str()).ok_or_else(no_operation)?
        };
        edits.extend(edit::set_entries(text, container, &values).ok_or_else(|| {
            RewriteError::NotAMapping {
                case: case.name.clone(),
                operation: *operation,
            }
        })?);
    }
    let out = edit::apply(text, edits).map_err(RewriteError::Edit)?;
    // The rewritten file must read back with exactly the recorded expectations.
    let reread: PolicyFileSpec = crate::yaml::parse_yaml(&out, std::path::Path::new("recorded"))
        .map_err(|e| RewriteError::Reread(e.to_string()))?;
    for r in recorded {
        let case = &reread.cases[r.case_index].value;
        let now = written(case, r.operation).ok_or(RewriteError::Vanished)?;
        let cells = resolve(now.allow, now.deny, &names)
            .map_err(|(_, m)| RewriteError::Expectations(m))?
            .cells;
        if cells.get(&r.actor) != Some(&r.to) {
            return Err(RewriteError::NotRecorded(r.describe()));
        }
    }
    Ok(out)
}

/// Who can do what that differs between two versions of a matrix, one line per cell
/// ("anon: select public.profiles deny → allow", "(none)" where a side has no expectation),
/// and each case added or removed: what `rls --accept` shows it applies. Cases are matched
/// by name.
pub fn diff(old: &PolicyFileSpec, new: &PolicyFileSpec) -> Vec<String> {
    let mut actors: Vec<&str> = new.actors.keys().map(String::as_str).collect();
    for name in old.actors.keys() {
        if !actors.contains(&name.as_str()) {
            actors.push(name);
        }
    }
    let cells = |case: Option<&CaseSpec>, operation: Operation| {
        case.and_then(|c| written(c, operation))
            .and_then(|w| resolve(w.allow, w.deny, &actors).ok())
            .map(|e| e.cells)
            .unwrap_or_default()
    };
    let mut lines = Vec::new();
    for case in &old.cases {
        if !new.cases.iter().any(|c| c.value.name == case.value.name) {
            lines.push(format!("case `{}` removed", case.value.name));
        }
    }
    for case in &new.cases {
        let case = &case.value;
        let before = old
            .cases
            .iter()
            .find(|c| c.value.name == case.name)
            .map(|c| &c.value);
        if before.is_none() {
            lines.push(format!("case `{}` added", case.name));
        }
        let target = case
            .relation()
            .map_or_else(|| "sql".to_owned(), |relation| relation.to_string());
        for operation in Operation::TABLE_OPERATIONS
            .into_iter()
            .chain([Operation::Sql])
        {
            let was = cells(before, operation);
            let now = cells(Some(case), operation);
            for actor in &actors {
                let (from, to) = (was.get(*actor).copied(), now.get(*actor).copied());
                if from == to {
                    continue;
                }
                let what = if operation == Operation::Sql {
                    format!("sql `{}`", case.name)
                } else {
                    format!("{} {target}", operation.as_str())
                };
                lines.push(format!(
                    "{actor}: {what} {} → {}",
                    from.map_or("(none)", Expect::as_str),
                    to.map_or("(none)", Expect::as_str)
                ));
            }
        }
    }
    lines
}

/// One pending recording applied by [`accept_pending`].
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The matrix, relative to the project root.
    pub rel: String,
    /// Who can do what, changed ([`diff`]).
    pub changes: Vec<String>,
}

/// Applies every `<matrix>.pending` of the project's policy-tests folder: each must have been
/// recorded from its matrix as it is now and not edited since ([`read_pending`]), and parse;
/// else it is an input error and nothing is applied. Then its recording replaces the matrix.
pub fn accept_pending(project: &crate::project::Project) -> crate::error::Result<Vec<Accepted>> {
    use crate::error::Error;
    let dir = &project.policy_tests;
    let mut pending: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let name = p.to_string_lossy();
                    name.ends_with(".yaml.pending") || name.ends_with(".yml.pending")
                })
                .collect()
        })
        .unwrap_or_default();
    pending.sort();
    let rel = |path: &std::path::Path| {
        path.strip_prefix(&project.root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let mut planned = Vec::new();
    for path in &pending {
        let matrix = path.with_extension("");
        let read = |p: &std::path::Path| {
            if let Some(what) = crate::files::not_a_file(p) {
                return Err(Error::input(format!("read {}: {what}", rel(p))));
            }
            std::fs::read_to_string(p).map_err(|e| Error::input(format!("read {}: {e}", rel(p))))
        };
        if !matrix.is_file() {
            return Err(Error::at(
                rel(path),
                1,
                None,
                format!(
                    "nothing accepted: its matrix {} is gone; delete the pending file",
                    rel(&matrix)
                ),
            ));
        }
        let matrix_text = read(&matrix)?;
        // A stale or edited recording is refused whole: accepting it would drop what the
        // matrix gained since, or apply what nobody recorded.
        let body = read_pending(&read(path)?, &matrix_text)
            .map_err(|why| Error::at(rel(path), 1, None, format!("nothing accepted: {why}")))?;
        let new: PolicyFileSpec = crate::yaml::parse_yaml(&body, std::path::Path::new(&rel(path)))?;
        let old: PolicyFileSpec =
            crate::yaml::parse_yaml(&matrix_text, std::path::Path::new(&rel(&matrix)))?;
        planned.push((path, matrix, body, diff(&old, &new)));
    }
    let mut accepted = Vec::new();
    for (path, matrix, body, changes) in planned {
        crate::files::write_atomically(&matrix, body.as_bytes())
            .map_err(|e| Error::environment(format!("write {}: {e}", matrix.display())))?;
        std::fs::remove_file(path)
            .map_err(|e| Error::environment(format!("remove {}: {e}", path.display())))?;
        accepted.push(Accepted {
            rel: rel(&matrix),
            changes,
        });
    }
    Ok(accepted)
}

/// How recorded expectations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recording {
    /// Beside each matrix as `<file>.pending`, for review (`rls --accept` applies it).
    Pending,
    /// Into the matrix itself (`rls --record --accept`).
    Write,
    /// Into matrices `db-ci init` just generated: written even in CI, where init is the
    /// command asked to write files and nothing reviewed is overwritten.
    Init,
}

impl Recording {
    /// Whether recordings are written at all: never in CI (`CI=true`), where a recording is
    /// a failure to record locally, except into matrices init is generating.
    pub fn writes(self) -> bool {
        self == Recording::Init || !crate::files::in_ci()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATRIX: &str = "\
actors:
  anon: anon
  alice: { user: alice@example.com }
  bob: { user: bob@example.com }
cases:
  # the owner reads her notes
  - name: notes
    table: notes
    where: owner_id = '{{alice.id}}'
    select: { allow: [alice], deny: others }   # reviewed by Ana
    update:
      set: { body: edited }
  - name: rpc
    sql: select 1
    allow: [alice]
    deny: [anon]
";

    fn spec(text: &str) -> PolicyFileSpec {
        crate::yaml::parse_yaml(text, std::path::Path::new("m.yaml")).unwrap()
    }

    fn rec(
        index: usize,
        operation: Operation,
        actor: &str,
        from: Option<Expect>,
        to: Expect,
    ) -> Recorded {
        Recorded {
            case_index: index,
            case: if index == 0 { "notes" } else { "rpc" }.to_owned(),
            line: 1,
            target: if index == 0 { "public.notes" } else { "sql" }.to_owned(),
            operation,
            actor: actor.to_owned(),
            from,
            to,
        }
    }

    #[test]
    fn new_recordings_fill_an_operation_and_are_marked_unreviewed() {
        let recorded = [
            rec(0, Operation::Update, "anon", None, Expect::Deny),
            rec(0, Operation::Update, "alice", None, Expect::Allow),
            rec(0, Operation::Update, "bob", None, Expect::Deny),
            rec(1, Operation::Sql, "bob", None, Expect::Deny),
        ];
        let out = rewrite(MATRIX, &spec(MATRIX), &recorded).unwrap();
        assert!(
            out.contains(
                "      set: { body: edited }\n      allow: [alice]\n      deny: [anon, bob]\n      unreviewed: [anon, alice, bob]\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("    deny: [anon, bob]\n    unreviewed: [bob]\n"),
            "{out}"
        );
        // Untouched: the comments and the reviewed select.
        assert!(out.contains("  # the owner reads her notes\n"));
        assert!(out.contains("select: { allow: [alice], deny: others }   # reviewed by Ana"));
    }

    #[test]
    fn a_changed_expectation_moves_sides_and_others_stays_others() {
        let recorded = [rec(
            0,
            Operation::Select,
            "anon",
            Some(Expect::Deny),
            Expect::Allow,
        )];
        let out = rewrite(MATRIX, &spec(MATRIX), &recorded).unwrap();
        assert!(out.contains("# reviewed by Ana"), "{out}");
        // A loosened expectation is unreviewed again: accepting is not reviewing.
        assert!(
            out.contains("    select: { allow: [anon, alice], deny: others, unreviewed: [anon] }"),
            "{out}"
        );
        // A tightened one (allow → deny) is not.
        let tightened = rewrite(
            MATRIX,
            &spec(MATRIX),
            &[rec(
                0,
                Operation::Select,
                "alice",
                Some(Expect::Allow),
                Expect::Deny,
            )],
        )
        .unwrap();
        assert!(!tightened.contains("unreviewed"), "{tightened}");
        assert_eq!(
            diff(&spec(MATRIX), &spec(&out)),
            ["anon: select public.notes deny → allow"]
        );
    }

    #[test]
    fn the_diff_names_new_cells_as_from_none() {
        let recorded = [rec(1, Operation::Sql, "bob", None, Expect::Allow)];
        let out = rewrite(MATRIX, &spec(MATRIX), &recorded).unwrap();
        assert_eq!(
            diff(&spec(MATRIX), &spec(&out)),
            ["bob: sql `rpc` (none) → allow"]
        );
        assert!(diff(&spec(&out), &spec(&out)).is_empty());
    }

    #[test]
    fn an_empty_operation_gets_both_sides_and_the_marks() {
        let text = MATRIX.replace(
            "    update:\n      set: { body: edited }\n",
            "    delete: {}\n",
        );
        let recorded = [
            rec(0, Operation::Delete, "anon", None, Expect::Deny),
            rec(0, Operation::Delete, "alice", None, Expect::Allow),
        ];
        let out = rewrite(&text, &spec(&text), &recorded).unwrap();
        assert!(
            out.contains(
                "    delete: { allow: [alice], deny: [anon], unreviewed: [anon, alice] }\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_pending_recording_is_accepted_only_as_recorded_from_the_matrix_as_it_is() {
        let recorded = rewrite(
            MATRIX,
            &spec(MATRIX),
            &[rec(1, Operation::Sql, "bob", None, Expect::Deny)],
        )
        .unwrap();
        let pending = pending_text(MATRIX, &recorded);
        assert!(pending.starts_with("# db-ci pending recording: matrix sha256:"));
        assert_eq!(read_pending(&pending, MATRIX), Ok(recorded.clone()));
        // A case a reviewer added after `--record`: accepting would delete it.
        let grown =
            format!("{MATRIX}  - name: bob deletes nothing\n    sql: select 2\n    deny: others\n");
        let stale = read_pending(&pending, &grown).unwrap_err().to_string();
        assert!(
            stale.contains("the matrix changed since it was recorded"),
            "{stale}"
        );
        // A pending file edited by hand (a case dropped).
        let cut = recorded.find("  - name: rpc").unwrap();
        let edited = pending_text(MATRIX, &recorded).replace(&recorded[cut..], "");
        let refused = read_pending(&edited, MATRIX).unwrap_err().to_string();
        assert!(
            refused.contains("edited after it was recorded"),
            "{refused}"
        );
        // One without the header (by hand, or an older db-ci).
        let bare = read_pending(&recorded, MATRIX).unwrap_err().to_string();
        assert!(bare.contains("does not say which matrix"), "{bare}");
    }

    #[test]
    fn the_diff_lists_cases_added_and_removed_and_cells_that_lose_their_expectation() {
        let dropped = MATRIX.replace("    deny: [anon]\n", "");
        let renamed = dropped.replace("- name: rpc", "- name: rpc2");
        let lines = diff(&spec(MATRIX), &spec(&renamed));
        assert_eq!(
            lines,
            [
                "case `rpc` removed",
                "case `rpc2` added",
                "alice: sql `rpc2` (none) → allow",
            ]
        );
        let lines = diff(&spec(MATRIX), &spec(&dropped));
        assert_eq!(lines, ["anon: sql `rpc` deny → (none)"]);
    }
}
