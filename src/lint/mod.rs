//! The lint stage: security and performance rules over the catalog model, modelled on
//! Supabase's splinter (ids and default levels) and pgspot (SECURITY DEFINER hygiene).
//! One file per rule; each finding has an id, level, object, why and remediation.

mod auth_rls_initplan;
mod auth_users_exposed;
pub mod config;
mod duplicate_index;
mod extension_in_public;
mod function_search_path_mutable;
mod materialized_view_in_api;
mod multiple_permissive_policies;
mod no_primary_key;
mod policy_exists_rls_disabled;
mod rls_disabled_in_public;
mod rls_enabled_no_policy;
mod rls_policy_always_true;
mod rls_references_user_metadata;
mod security_definer_function_executable;
mod security_definer_search_path;
mod security_definer_view;
mod unindexed_foreign_keys;
mod view;

pub use self::view::{LintDetail, LintOptions};

use std::collections::BTreeMap;
use std::time::Instant;

use crate::error::Result;
use crate::report::events::Reporter;
use crate::report::level::Level;
use crate::report::{Case, CaseVerdict, Failure, StageReport, StageVerdict};
use crate::snapshot::model::{Catalog, Grant};
use crate::stage::StageContext;
use crate::stage_id::StageId;

pub use self::config::{Allowance, LintConfig, RuleLevel};

/// Where a finding's object was made, to point the failure at the migration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// The statement kind that creates it: `table`, `view`, `function`, `policy`…
    pub kind: &'static str,
    /// Its unqualified name.
    pub name: String,
}

/// One thing a rule found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is about, as users write it in `allow:` (`public.profiles`,
    /// `public.handle_new_user()`, `policy "x" on public.t`).
    pub object: String,
    /// What exactly is wrong with this object.
    pub detail: String,
    pub anchor: Anchor,
}

/// What the rules need besides the catalog.
pub struct Scope<'a> {
    /// Schemas PostgREST serves (`rls.exposed_schemas`).
    pub exposed_schemas: &'a [String],
}

impl Scope<'_> {
    pub fn exposed(&self, schema: &str) -> bool {
        self.exposed_schemas.iter().any(|s| s == schema)
    }
}

pub struct Rule {
    pub id: &'static str,
    pub level: Level,
    /// Why it matters.
    pub why: &'static str,
    pub remediation: &'static str,
    pub check: fn(&Catalog, &Scope<'_>) -> Vec<Finding>,
}

/// Every rule, in report order.
pub fn rules() -> Vec<&'static Rule> {
    vec![
        &rls_disabled_in_public::RULE,
        &policy_exists_rls_disabled::RULE,
        &rls_enabled_no_policy::RULE,
        &security_definer_view::RULE,
        &materialized_view_in_api::RULE,
        &auth_users_exposed::RULE,
        &rls_references_user_metadata::RULE,
        &rls_policy_always_true::RULE,
        &security_definer_search_path::RULE,
        &function_search_path_mutable::RULE,
        &security_definer_function_executable::ANON,
        &security_definer_function_executable::AUTHENTICATED,
        &auth_rls_initplan::RULE,
        &multiple_permissive_policies::RULE,
        &unindexed_foreign_keys::RULE,
        &no_primary_key::RULE,
        &duplicate_index::RULE,
        &extension_in_public::RULE,
    ]
}

/// The roles PostgREST switches to for API requests.
pub const API_ROLES: &[&str] = &["anon", "authenticated"];

/// Whether `role` (or PUBLIC) holds any of `privileges` (any privilege when empty).
pub fn granted(grants: &[Grant], role: &str, privileges: &[&str]) -> bool {
    grants.iter().any(|g| {
        (g.grantee == role || g.grantee == "PUBLIC")
            && g.privileges.iter().any(|p| {
                let bare = p.split(' ').next().unwrap_or(p);
                privileges.is_empty() || privileges.contains(&bare)
            })
    })
}

/// Whether an API role can reach the object through `grants`.
pub fn api_reachable(grants: &[Grant], privileges: &[&str]) -> bool {
    API_ROLES.iter().any(|r| granted(grants, r, privileges))
}

/// One finding per policy (on any table) for which `problem` names what is wrong.
pub fn per_policy(
    catalog: &Catalog,
    problem: impl Fn(&crate::snapshot::model::Policy) -> Option<String>,
) -> Vec<Finding> {
    let mut found = Vec::new();
    for table in &catalog.tables {
        for policy in &table.policies {
            if let Some(detail) = problem(policy) {
                found.push(Finding {
                    object: format!("policy {:?} on {}", policy.name, table.qualified()),
                    detail,
                    anchor: Anchor {
                        kind: "policy",
                        name: policy.name.clone(),
                    },
                });
            }
        }
    }
    found
}

/// A finding that survived levels and allowances.
struct Reported<'a> {
    rule: &'a Rule,
    level: Level,
    finding: Finding,
    allowed: Option<&'a Allowance>,
}

/// Runs every rule over `catalog` with `config`'s levels and allowances.
fn evaluate<'a>(
    catalog: &Catalog,
    scope: &Scope<'_>,
    config: &'a LintConfig,
    rules: &[&'a Rule],
) -> (Vec<Reported<'a>>, Vec<&'a Rule>) {
    let mut reported = Vec::new();
    let mut clean = Vec::new();
    for rule in rules {
        let level = match config.levels.get(rule.id) {
            Some(RuleLevel::Off) => continue,
            Some(RuleLevel::Info) => Level::Info,
            Some(RuleLevel::Warn) => Level::Warn,
            Some(RuleLevel::Error) => Level::Error,
            None => rule.level,
        };
        let findings = (rule.check)(catalog, scope);
        if findings.is_empty() {
            clean.push(*rule);
        }
        for finding in findings {
            let allowed = config
                .allow
                .iter()
                .find(|a| a.rule == rule.id && a.object == finding.object);
            reported.push(Reported {
                rule,
                level,
                finding,
                allowed,
            });
        }
    }
    (reported, clean)
}

inventory::submit!(crate::stage::Registration {
    id: StageId::Lint,
    load: |_| Ok(Box::new(stage)),
    // The RLS-related lints of what a release changes.
    on_rehearsal: true,
    cli: view::CLI,
});

pub async fn stage(ctx: &StageContext<'_>, reporter: &mut dyn Reporter) -> Result<StageReport> {
    let _ = reporter;
    let started = Instant::now();
    let project = ctx.project;
    let config = project.config.section::<LintConfig>();
    let all_rules = rules();
    // db-ci's own read, not SQL under test: the project's statement time limit is not its.
    let client = ctx.server.connect_unwatched(ctx.database).await?;
    let catalog = crate::snapshot::read_catalog(&client).await?;
    drop(client);
    if catalog.tables.is_empty()
        && catalog.views.is_empty()
        && catalog.functions.is_empty()
        && catalog.extensions.is_empty()
    {
        return Ok(StageReport::skipped(
            StageId::Lint,
            "the database holds no tables, views, functions or extensions to lint",
        ));
    }
    let exposed_schemas = crate::rls::exposed_schemas(project);
    let scope = Scope {
        exposed_schemas: &exposed_schemas,
    };
    let fail_level = match ctx.options.stages.get::<LintOptions>().fail_on {
        Some(fail_on) => fail_on.level(),
        None => Some(config.fail_level.unwrap_or(Level::Error)),
    };
    let (reported, clean) = evaluate(&catalog, &scope, config, &all_rules);
    let snapshot_rel = project
        .config
        .section::<crate::snapshot::SnapshotConfig>()
        .relative_path();
    let snapshot_text =
        std::fs::read_to_string(crate::snapshot::snapshot_path(project)).unwrap_or_default();

    let creations = crate::locate::Creations::new(project);
    let mut report = StageReport::new(StageId::Lint, StageVerdict::Pass);
    report.detail = crate::report::detail::Detail::new(LintDetail);
    let mut per_level: BTreeMap<Level, usize> = BTreeMap::new();
    let mut allowed = 0;
    for item in &reported {
        // On the gate's rehearsal: the pending migration that changed the object, if one did.
        let table = item
            .finding
            .object
            .rsplit_once(" on ")
            .map(|(_, t)| t.rsplit('.').next().unwrap_or(t).trim_matches('"'));
        let (file, line) = crate::locate::changing_statement(
            project,
            &ctx.options.changed_by,
            &item.finding.anchor.name,
            table,
        )
        .or_else(|| creations.find(item.finding.anchor.kind, &item.finding.anchor.name))
        .unwrap_or_else(|| {
            (
                snapshot_rel.clone(),
                snapshot_line(&snapshot_text, &item.finding.object),
            )
        });
        let message = format!(
            "{} {}: {}: {}",
            item.level.as_str(),
            item.rule.id,
            item.finding.object,
            item.finding.detail
        );
        let verdict = if let Some(allowance) = item.allowed {
            allowed += 1;
            let _ = allowance;
            CaseVerdict::Skipped
        } else {
            *per_level.entry(item.level).or_default() += 1;
            if fail_level.is_some_and(|fail_level| item.level >= fail_level) {
                report.failures.push(Failure {
                    file: file.clone(),
                    line,
                    column: None,
                    message: message.clone(),
                    notes: vec![
                        format!("why: {}", item.rule.why),
                        format!("fix: {}", item.rule.remediation),
                        format!(
                            "or accept it in db-ci.yaml: lint.allow: [{{rule: {}, object: {:?}, reason: …}}]",
                            item.rule.id, item.finding.object
                        ),
                    ],
                    statement: None,
                });
                CaseVerdict::Fail
            } else {
                CaseVerdict::Pass
            }
        };
        report.cases.push(Case {
            name: format!("{}: {}", item.rule.id, item.finding.object),
            group: item.rule.id.to_owned(),
            verdict,
            file: Some(file),
            line: Some(line),
            duration_ms: 0,
            message: Some(match item.allowed {
                Some(a) => format!("{message} (allowed: {})", a.reason),
                None => message,
            }),
            cell: None,
        });
    }
    for rule in &clean {
        report.cases.push(Case {
            name: format!("{}: no findings", rule.id),
            group: rule.id.to_owned(),
            verdict: CaseVerdict::Pass,
            file: None,
            line: None,
            duration_ms: 0,
            message: None,
            cell: None,
        });
    }
    let count = |l| per_level.get(&l).copied().unwrap_or(0);
    report.checks = report.cases.len();
    report.reason = Some(format!(
        "{} rules over {} tables, {} views, {} functions: {} error, {} warn, {} info, {allowed} allowed (fail level {})",
        all_rules.len() - config.levels.values().filter(|l| **l == RuleLevel::Off).count(),
        catalog.project_tables().count(),
        catalog.views.len(),
        catalog.functions.len(),
        count(Level::Error),
        count(Level::Warn),
        count(Level::Info),
        fail_level.map_or(
            format!("never ({})", ctx.options.caller.fail_on_lint_never()),
            |level| level.as_str().to_owned()
        )
    ));
    if !report.failures.is_empty() {
        report.verdict = StageVerdict::Fail;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// The line of `object`'s key in the snapshot text, else 1. The key is the whole name (a
/// function's argument list aside): `public.notes` is not `public.notes_archive`.
fn snapshot_line(snapshot: &str, object: &str) -> usize {
    let key = object.split('(').next().unwrap_or(object);
    snapshot
        .lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix('"').unwrap_or(l);
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with([':', '(', '"']))
        })
        .map_or(1, |i| i + 1)
}

/// Builders for the rules' unit tests.
#[cfg(test)]
pub(crate) mod build {
    use crate::snapshot::model::*;
    use crate::sql::kinds::{ConstraintKind, PolicyCommand, RoutineKind, TableKind, Volatility};

    pub fn grant(grantee: &str, privileges: &[&str]) -> Grant {
        Grant {
            grantee: grantee.into(),
            privileges: privileges.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// The classic Supabase grants: everything to the API roles.
    pub fn classic_grants() -> Vec<Grant> {
        ["anon", "authenticated", "service_role"]
            .iter()
            .map(|r| grant(r, &["DELETE", "INSERT", "SELECT", "UPDATE"]))
            .collect()
    }

    pub fn table(name: &str) -> Table {
        Table {
            schema: "public".into(),
            name: name.into(),
            kind: TableKind::Table,
            platform: false,
            owner: "postgres".into(),
            rls: true,
            force_rls: false,
            comment: None,
            partition_of: None,
            columns: vec![],
            constraints: vec![Constraint {
                name: format!("{name}_pkey"),
                kind: ConstraintKind::PrimaryKey,
                definition: "PRIMARY KEY (id)".into(),
                columns: vec![1],
                references: None,
            }],
            indexes: vec![],
            policies: vec![],
            triggers: vec![],
            grants: classic_grants(),
        }
    }

    pub fn policy(name: &str, command: &str, roles: &[&str], using: Option<&str>) -> Policy {
        Policy {
            name: name.into(),
            command: PolicyCommand::from_word(command).expect("a policy command"),
            permissive: true,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            using: using.map(Into::into),
            with_check: None,
        }
    }

    pub fn function(name: &str, definer: bool, config: &[&str]) -> Function {
        Function {
            schema: "public".into(),
            name: name.into(),
            arguments: String::new(),
            kind: RoutineKind::Function,
            returns: Some("void".into()),
            language: "plpgsql".into(),
            volatility: Volatility::Volatile,
            strict: false,
            security_definer: definer,
            leakproof: false,
            config: config.iter().map(|c| c.to_string()).collect(),
            owner: "postgres".into(),
            comment: None,
            grants: vec![
                grant("PUBLIC", &["EXECUTE"]),
                grant("postgres", &["EXECUTE"]),
            ],
            body: "begin end".into(),
        }
    }

    pub fn view(name: &str, invoker: bool, reads: &[(&str, bool)]) -> View {
        View {
            schema: "public".into(),
            name: name.into(),
            materialized: false,
            owner: "postgres".into(),
            security_invoker: invoker,
            definition: "SELECT 1".into(),
            comment: None,
            grants: classic_grants(),
            reads: reads.iter().map(|(n, r)| (n.to_string(), *r)).collect(),
        }
    }

    pub fn catalog(tables: Vec<Table>) -> Catalog {
        Catalog {
            tables,
            ..Catalog::default()
        }
    }

    /// The default exposed schemas.
    pub fn exposed() -> Vec<String> {
        vec!["public".to_owned()]
    }

    /// A rule's findings with `public` exposed, as by default.
    pub fn findings(
        check: fn(&Catalog, &super::Scope<'_>) -> Vec<super::Finding>,
        catalog: &Catalog,
    ) -> Vec<super::Finding> {
        check(
            catalog,
            &super::Scope {
                exposed_schemas: &exposed(),
            },
        )
    }

    /// A rule's findings with no schema exposed to the API.
    pub fn findings_with_nothing_exposed(
        check: fn(&Catalog, &super::Scope<'_>) -> Vec<super::Finding>,
        catalog: &Catalog,
    ) -> Vec<super::Finding> {
        check(
            catalog,
            &super::Scope {
                exposed_schemas: &[],
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lines_match_the_whole_key() {
        let snapshot = "tables:\n  public.notes_archive:\n    kind: table\n  public.notes:\n    kind: table\nfunctions:\n  public.f(uuid):\n    kind: function\n  \"public.Odd\":\n    kind: table\n";
        assert_eq!(super::snapshot_line(snapshot, "public.notes"), 4);
        assert_eq!(super::snapshot_line(snapshot, "public.notes_archive"), 2);
        assert_eq!(super::snapshot_line(snapshot, "public.f(uuid)"), 7);
        assert_eq!(super::snapshot_line(snapshot, "public.Odd"), 9);
        assert_eq!(super::snapshot_line(snapshot, "public.missing"), 1);
    }

    #[test]
    fn unknown_rules_and_blank_reasons_are_rejected_where_written() {
        for (yaml, line, needle) in [
            ("lint:\n  levels:\n    no_such_rule: off\n", 3, "unknown rule `no_such_rule`"),
            ("lint:\n  allow:\n    - rule: nope\n      object: public.t\n      reason: x\n", 3, "unknown rule `nope`"),
            ("lint:\n  allow:\n    - rule: no_primary_key\n      object: public.t\n      reason: ' '\n", 5, "needs a reason"),
        ] {
            let err = crate::config::Config::parse(yaml, std::path::Path::new("db-ci.yaml"))
                .unwrap_err();
            let message = err.to_string();
            assert!(message.starts_with(&format!("db-ci.yaml:{line}:")), "{yaml}: {message}");
            assert!(message.contains(needle), "{yaml}: {message}");
        }
    }

    #[test]
    fn levels_and_allowances_shape_what_is_reported() {
        let mut table = build::table("t");
        table.rls = false;
        let catalog = build::catalog(vec![table]);
        let exposed = build::exposed();
        let scope = Scope {
            exposed_schemas: &exposed,
        };
        let config: LintConfig = crate::yaml::parse_yaml(
            "levels: {no_primary_key: off}\nallow: [{rule: rls_disabled_in_public, object: public.t, reason: demo}]\n",
            std::path::Path::new("db-ci.yaml"),
        )
        .unwrap();
        let rules = rules();
        let (reported, _) = evaluate(&catalog, &scope, &config, &rules);
        let hit = reported
            .iter()
            .find(|r| r.rule.id == "rls_disabled_in_public")
            .unwrap();
        assert!(hit.allowed.is_some());
        assert!(reported.iter().all(|r| r.rule.id != "no_primary_key"));
    }
}
