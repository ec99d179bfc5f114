//! Recordings as a reviewer should read them: those that look like leaks first (an actor
//! reaching rows another user owns, anon writing, a policy `using (true)`), each with the
//! policies that let it through, by name and USING/WITH CHECK text.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::Client;

use super::record::Recorded;
use crate::actors::{Actor, ActorKind};
use crate::error::{Error, Result};
use crate::policy_tests::cases::{Case, CaseKind, Expect, Operation, RowAction};
use crate::sql::db_error_text;

/// One policy of a table, as `pg_policies` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    pub roles: Vec<String>,
    pub permissive: bool,
    pub using: Option<String>,
    pub check: Option<String>,
}

impl Policy {
    /// `policy "owners" for update to authenticated: using (…) with check (…)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "policy \"{}\"{} for {} to {}:",
            self.name,
            if self.permissive {
                ""
            } else {
                " (restrictive)"
            },
            self.command.to_lowercase(),
            self.roles.join(", ")
        );
        // pg_policies deparses most conditions in parentheses already, `true` bare.
        let wrapped = |t: &str| {
            if t.starts_with('(') && t.ends_with(')') {
                t.to_owned()
            } else {
                format!("({t})")
            }
        };
        if let Some(using) = &self.using {
            text.push_str(&format!(" using {}", wrapped(using)));
        }
        if let Some(check) = &self.check {
            text.push_str(&format!(" with check {}", wrapped(check)));
        }
        text
    }

    fn applies(&self, operation: Operation, role: &str) -> bool {
        let command = self.command.to_lowercase();
        (command == "all" || command == operation.as_str())
            && self.roles.iter().any(|r| r == role || r == "public")
    }

    /// A permissive policy whose condition holds for every row.
    fn always_true(&self) -> bool {
        let holds = |text: &Option<String>| {
            text.as_deref().is_some_and(|t| {
                t.trim()
                    .trim_matches(['(', ')'])
                    .eq_ignore_ascii_case("true")
            })
        };
        self.permissive && (holds(&self.using) || holds(&self.check))
    }
}

/// The policies of the tables `targets` (`schema.table`), by target.
pub async fn read(
    client: &Client,
    targets: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Policy>>> {
    let wanted: Vec<String> = targets.iter().cloned().collect();
    let rows = client
        .query(
            "select schemaname || '.' || tablename, policyname::text, cmd, roles::text[], \
                    permissive = 'PERMISSIVE', qual, with_check \
             from pg_policies where schemaname || '.' || tablename = any($1) \
             order by policyname",
            &[&wanted],
        )
        .await
        .map_err(|e| {
            Error::environment(format!(
                "read the policies of the recorded tables: {}",
                db_error_text(&e)
            ))
        })?;
    let mut policies: BTreeMap<String, Vec<Policy>> = BTreeMap::new();
    for row in rows {
        policies.entry(row.get(0)).or_default().push(Policy {
            name: row.get(1),
            command: row.get(2),
            roles: row.get(3),
            permissive: row.get(4),
            using: row.get(5),
            check: row.get(6),
        });
    }
    Ok(policies)
}

/// What a reviewer is told about one recording.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewed {
    /// Why it looks like a leak, when it does.
    pub leak: Option<String>,
    /// The policies of its table that apply to its actor's role and operation.
    pub policies: Vec<String>,
}

/// Reviews `r` (of `case`, by `actor`) against its table's `policies`. service_role
/// bypasses RLS by design: what it reaches is never a leak of the policies.
pub fn review(
    r: &Recorded,
    case: Option<&Case>,
    actor: Option<&Actor>,
    policies: &[Policy],
) -> Reviewed {
    let role = actor.map_or("", |a| a.db_role.as_str());
    let is_anon = actor.is_some_and(|a| a.kind == ActorKind::Anon);
    let applying: Vec<&Policy> = policies
        .iter()
        .filter(|p| r.operation != Operation::Sql && p.applies(r.operation, role))
        .collect();
    let leak = (r.to == Expect::Allow && !actor.is_some_and(Actor::may_bypass_rls))
        .then(|| {
            case.and_then(|c| looks_like_leak(r, c, is_anon))
                .or_else(|| {
                    applying
                        .iter()
                        .find(|p| p.always_true())
                        .map(|p| format!("policy \"{}\" holds for every row", p.name))
                })
        })
        .flatten();
    Reviewed {
        leak,
        policies: applying.iter().map(|p| p.describe()).collect(),
    }
}

/// Why a recording looks like a leak, when it does: an allowed write by anon, or an actor
/// allowed on rows the case picks by another actor (`{{alice.id}}` in bob's cell).
fn looks_like_leak(r: &Recorded, case: &Case, is_anon: bool) -> Option<String> {
    if is_anon && r.operation != Operation::Select {
        return Some(format!("anon may {}", r.operation.as_str()));
    }
    let mut texts: Vec<String> = Vec::new();
    match &case.kind {
        CaseKind::Table { rows, .. } | CaseKind::Bucket { rows, .. } => {
            texts.extend(rows.filter.iter().cloned());
            for op in &rows.ops {
                match &op.action {
                    RowAction::Insert { values } => {
                        texts.extend(values.values().map(ToString::to_string))
                    }
                    RowAction::Update { set } => {
                        texts.extend(set.values().map(ToString::to_string))
                    }
                    RowAction::Select { .. } | RowAction::Delete => {}
                }
            }
        }
        CaseKind::Sql(sql) => texts.push(sql.sql.clone()),
        CaseKind::Steps(_) => {}
    }
    static OTHER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let other =
        OTHER.get_or_init(|| regex::Regex::new(r"\{\{\s*([A-Za-z0-9_-]+)\.id\s*\}\}").unwrap());
    let owner = texts.iter().find_map(|text| {
        other
            .captures_iter(text)
            .map(|c| c[1].to_owned())
            .find(|name| name != "me" && *name != r.actor)
    })?;
    Some(format!("{} reaches rows of {owner}", r.actor))
}

/// The recordings as a reviewer reads them (`reviewed[i]` is `recorded[i]`'s): those that
/// look like leaks first, each saying why and followed by its policies, then the rest.
pub fn for_review(recorded: &[Recorded], reviewed: &[Reviewed]) -> Vec<String> {
    let (mut leaks, mut rest) = (Vec::new(), Vec::new());
    for (r, review) in recorded.iter().zip(reviewed) {
        match &review.leak {
            Some(why) => {
                leaks.push(format!("LOOKS LIKE A LEAK ({why}): {}", r.describe()));
                if review.policies.is_empty() && r.operation != Operation::Sql {
                    leaks.push(format!(
                        "  no policy of {} applies to it (a view, or RLS off?)",
                        r.target
                    ));
                }
                leaks.extend(review.policies.iter().map(|p| format!("  {p}")));
            }
            None => rest.push(r.describe()),
        }
    }
    leaks.extend(rest);
    leaks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy_tests::PolicyFileSpec;
    use crate::rls::test_support::actor;

    const MATRIX: &str = "actors:\n  anon: anon\n  alice: { user: a@x.io }\n  bob: { user: b@x.io }\ncases:\n  - name: notes\n    table: notes\n    where: owner_id = '{{alice.id}}'\n    select: { allow: [alice], deny: others }\n    update:\n      set: { body: edited }\n  - name: posts\n    table: posts\n    select: { deny: others }\n";

    fn case(index: usize) -> Case {
        let spec: PolicyFileSpec =
            crate::yaml::parse_yaml(MATRIX, std::path::Path::new("m.yaml")).unwrap();
        let actors = crate::actors::Actors::resolve(&spec.actors).unwrap();
        let (cases, errors) = crate::policy_tests::cases::parse_cases(&spec.cases, &actors, 1);
        assert_eq!(errors, Vec::new());
        cases[index].clone()
    }

    fn rec(target: &str, operation: Operation, actor: &str, to: Expect) -> Recorded {
        Recorded {
            case_index: 0,
            case: "notes".to_owned(),
            line: 1,
            target: target.to_owned(),
            operation,
            actor: actor.to_owned(),
            from: None,
            to,
        }
    }

    fn policy(name: &str, command: &str, using: &str) -> Policy {
        Policy {
            name: name.to_owned(),
            command: command.to_owned(),
            roles: vec!["authenticated".to_owned()],
            permissive: true,
            using: Some(using.to_owned()),
            check: None,
        }
    }

    #[test]
    fn leaks_come_first_each_with_the_policies_that_let_it_through() {
        let notes = [
            policy("owners edit", "UPDATE", "(owner_id = auth.uid())"),
            policy("owners read", "SELECT", "(owner_id = auth.uid())"),
        ];
        let posts = [policy("anyone reads", "ALL", "true")];
        let recorded = [
            rec("public.notes", Operation::Update, "alice", Expect::Allow),
            rec("public.notes", Operation::Update, "bob", Expect::Allow),
            rec("public.notes", Operation::Update, "anon", Expect::Allow),
            rec("public.posts", Operation::Select, "bob", Expect::Allow),
            rec("public.notes", Operation::Select, "anon", Expect::Deny),
        ];
        let user = |name: &str| actor(name, "{ user: x@example.com }");
        let anon = actor("anon", "anon");
        let reviewed: Vec<Reviewed> = [
            review(&recorded[0], Some(&case(0)), Some(&user("alice")), &notes),
            review(&recorded[1], Some(&case(0)), Some(&user("bob")), &notes),
            review(&recorded[2], Some(&case(0)), Some(&anon), &notes),
            review(&recorded[3], Some(&case(1)), Some(&user("bob")), &posts),
            review(&recorded[4], Some(&case(0)), Some(&anon), &notes),
        ]
        .into();
        assert_eq!(
            for_review(&recorded, &reviewed),
            [
                "LOOKS LIKE A LEAK (bob reaches rows of alice): bob: update public.notes (none) → allow",
                "  policy \"owners edit\" for update to authenticated: using (owner_id = auth.uid())",
                "LOOKS LIKE A LEAK (anon may update): anon: update public.notes (none) → allow",
                "  no policy of public.notes applies to it (a view, or RLS off?)",
                "LOOKS LIKE A LEAK (policy \"anyone reads\" holds for every row): bob: select public.posts (none) → allow",
                "  policy \"anyone reads\" for all to authenticated: using (true)",
                "alice: update public.notes (none) → allow",
                "anon: select public.notes (none) → deny",
            ]
        );
        // A denial never looks like a leak, whatever its policies say.
        let denied = rec("public.posts", Operation::Select, "bob", Expect::Deny);
        assert_eq!(
            review(&denied, Some(&case(1)), Some(&user("bob")), &posts).leak,
            None
        );
        // service_role bypasses RLS by design: what it reaches is no leak of the policies.
        let service = actor("service", "service_role");
        let reached = rec("public.notes", Operation::Update, "service", Expect::Allow);
        assert_eq!(
            review(&reached, Some(&case(0)), Some(&service), &notes).leak,
            None
        );
    }
}
