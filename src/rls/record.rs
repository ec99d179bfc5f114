//! Recorded expectations (`db-ci rls --record`, `db-ci init`): what a run observed for cells
//! that had no expectation or contradicted theirs, written into the matrix in place (comments
//! and layout kept), and the diff of who can do what that a reviewer reads.

use std::collections::{BTreeMap, BTreeSet};

use super::spec::{resolve, CaseSpec, Expect, Operation, Who};
use crate::policy_tests::PolicyFileSpec;
use crate::yaml::edit::{self, Node};

pub use crate::stage::Recording;

/// Suffix of a matrix's pending recording.
pub const PENDING: &str = ".pending";

/// Where `matrix`'s pending recording is written: beside it, `<name>.yaml.pending`.
pub fn pending_path(matrix: &std::path::Path) -> std::path::PathBuf {
    let mut name = matrix.as_os_str().to_owned();
    name.push(PENDING);
    std::path::PathBuf::from(name)
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
/// `allow:`/`deny:` as lists (a side written `others` stays `others`), and each new recording's
/// actor added to `unreviewed:`. Everything else in the file is kept byte for byte.
pub fn rewrite(text: &str, spec: &PolicyFileSpec, recorded: &[Recorded]) -> Result<String, String> {
    let tree = edit::parse_tree(text)?;
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
            .ok_or_else(|| format!("case {index} is not in the file"))?
            .value;
        let now = written(case, *operation)
            .ok_or_else(|| format!("case `{}` has no {}", case.name, operation.as_str()))?;
        let mut cells = resolve(now.allow, now.deny, &names)
            .map_err(|(_, message)| message)?
            .cells;
        let mut unreviewed: Vec<&str> = now.unreviewed.clone();
        for r in records {
            cells.insert(r.actor.clone(), r.to);
            if r.from.is_none() && !unreviewed.contains(&r.actor.as_str()) {
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
            .ok_or_else(|| format!("case `{}` is not where the file was read", case.name))?;
        let container = if *operation == Operation::Sql {
            case_node
        } else {
            case_node
                .get(operation.as_str())
                .ok_or_else(|| format!("case `{}` has no {}", case.name, operation.as_str()))?
        };
        edits.extend(edit::set_entries(text, container, &values).ok_or_else(|| {
            format!(
                "case `{}`: `{}:` is not a mapping; write it as `{}: {{}}` to record into it",
                case.name,
                operation.as_str(),
                operation.as_str()
            )
        })?);
    }
    let out = edit::apply(text, edits)?;
    // The rewritten file must read back with exactly the recorded expectations.
    let reread: PolicyFileSpec = crate::yaml::parse_yaml(&out, std::path::Path::new("recorded"))
        .map_err(|e| format!("the recorded file does not parse: {e}"))?;
    for r in recorded {
        let case = &reread.cases[r.case_index].value;
        let now = written(case, r.operation).ok_or("an operation vanished")?;
        let cells = resolve(now.allow, now.deny, &names)
            .map_err(|(_, m)| m)?
            .cells;
        if cells.get(&r.actor) != Some(&r.to) {
            return Err(format!("the recorded file does not say {}", r.describe()));
        }
    }
    Ok(out)
}

/// Who can do what that differs between two versions of a matrix, one line per cell
/// ("anon: select public.profiles deny → allow"): what `rls --accept` shows it applies.
pub fn diff(old: &PolicyFileSpec, new: &PolicyFileSpec) -> Vec<String> {
    let actors: Vec<&str> = new.actors.keys().map(String::as_str).collect();
    let mut lines = Vec::new();
    for (index, case) in new.cases.iter().enumerate() {
        let case = &case.value;
        let before = old.cases.get(index).map(|c| &c.value);
        let target = super::plan::case_target(case)
            .map_or_else(|| "sql".to_owned(), |(s, t)| format!("{s}.{t}"));
        for operation in Operation::TABLE_OPERATIONS
            .into_iter()
            .chain([Operation::Sql])
        {
            let Some(now) = written(case, operation) else {
                continue;
            };
            let Ok(after) = resolve(now.allow, now.deny, &actors) else {
                continue;
            };
            let was = before
                .and_then(|b| written(b, operation))
                .and_then(|w| resolve(w.allow, w.deny, &actors).ok())
                .map(|e| e.cells)
                .unwrap_or_default();
            for actor in &actors {
                let from = was.get(*actor).copied();
                if let Some(to) = after
                    .cells
                    .get(*actor)
                    .copied()
                    .filter(|to| from != Some(*to))
                {
                    lines.push(
                        Recorded {
                            case_index: index,
                            case: case.name.clone(),
                            line: 0,
                            target: target.clone(),
                            operation,
                            actor: (*actor).to_owned(),
                            from,
                            to,
                        }
                        .describe(),
                    );
                }
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

/// Applies every `<matrix>.pending` of the project's policy-tests folder: each is parsed
/// (a broken one is an input error at its line and nothing is applied), then renamed over its
/// matrix.
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
            std::fs::read_to_string(p)
                .map_err(|e| Error::input(format!("read {}: {e}", p.display())))
        };
        let new: PolicyFileSpec =
            crate::yaml::parse_yaml(&read(path)?, std::path::Path::new(&rel(path)))?;
        let old: PolicyFileSpec = match matrix.is_file() {
            true => crate::yaml::parse_yaml(&read(&matrix)?, std::path::Path::new(&rel(&matrix)))?,
            false => crate::yaml::parse_yaml("{}", std::path::Path::new(&rel(&matrix)))?,
        };
        planned.push((path, matrix, diff(&old, &new)));
    }
    let mut accepted = Vec::new();
    for (path, matrix, changes) in planned {
        std::fs::rename(path, &matrix).map_err(|e| {
            Error::environment(format!(
                "rename {} over {}: {e}",
                path.display(),
                matrix.display()
            ))
        })?;
        accepted.push(Accepted {
            rel: rel(&matrix),
            changes,
        });
    }
    Ok(accepted)
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
        assert!(
            out.contains("select: { allow: [anon, alice], deny: others }   # reviewed by Ana"),
            "{out}"
        );
        // A change is reviewed by accepting it: no unreviewed mark.
        assert!(!out.contains("unreviewed"), "{out}");
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
}
