//! The SQL the RLS planner generates, pinned: each matrix under `tests/planner_sql/` planned
//! against one fixed description of the catalog (no database), its cells written as the
//! batch function reads them (less the actors' claims), with what only the planner keeps,
//! its holes and input errors.

use std::collections::BTreeMap;
use std::path::Path;

use db_ci::actors::Actors;
use db_ci::catalog::QualifiedName;
use db_ci::policy_tests::cases::CaseError;
use db_ci::policy_tests::{PolicyFile, PolicyFileSpec};
use db_ci::rls::plan::{self, Catalog, Plan, TargetInfo};
use serde_json::json;

/// The catalog every matrix is planned against: schema, table, primary key, and whether its
/// rows carry `xmin` (a table; a view does not). A target not listed does not exist.
const CATALOG: &[(&str, &str, &[&str], bool)] = &[
    ("public", "notes", &["id"], true),
    ("public", "profile_cards", &[], false),
    ("public", "events", &[], true),
    ("storage", "objects", &["id"], true),
];

/// The matrix at `path`, with the error of each case that does not parse (in file order).
fn file_of(path: &Path) -> (PolicyFile, Vec<CaseError>) {
    let text = std::fs::read_to_string(path).unwrap();
    let spec: PolicyFileSpec = db_ci::yaml::parse_yaml(&text, path).unwrap();
    let actors = Actors::resolve(&spec.actors).unwrap();
    let rel = format!(
        "planner_sql/{}",
        path.file_name().unwrap().to_string_lossy()
    );
    PolicyFile::parse(rel, path.to_owned(), text, spec, actors)
}

/// What the rls stage reads of the catalog for `file`'s targets, taken from [`CATALOG`].
fn targets(file: &PolicyFile) -> BTreeMap<QualifiedName, TargetInfo> {
    let mut targets = BTreeMap::new();
    for case in &file.cases {
        let Some(relation) = case.relation() else {
            continue;
        };
        let info = CATALOG
            .iter()
            .find(|(s, t, _, _)| *s == relation.schema && *t == relation.name)
            .map_or_else(TargetInfo::default, |(_, _, key, has_xmin)| TargetInfo {
                qualified: relation.to_string(),
                exists: true,
                key: key.iter().map(|k| k.to_string()).collect(),
                has_xmin: *has_xmin,
            });
        targets.insert(relation, info);
    }
    targets
}

/// `wire` without the actors' claims, which the actors' own tests pin: here they would only
/// repeat in every cell and every probe.
fn without_claims(mut wire: serde_json::Value) -> serde_json::Value {
    let strip = |object: &mut serde_json::Value| {
        if let Some(map) = object.as_object_mut() {
            map.remove("claims");
            map.remove("legacy");
        }
    };
    strip(&mut wire);
    if let Some(probes) = wire.get_mut("probes").and_then(|p| p.as_array_mut()) {
        probes.iter_mut().for_each(strip);
    }
    wire
}

/// The plan as text: each cell's wire JSON beside what stays with the planner, then the
/// holes and the input errors at their positions (the cases' that do not parse, then the
/// planner's).
fn render(file: &PolicyFile, parse_errors: &[CaseError], plan: &Plan) -> String {
    let cells: Vec<_> = plan
        .cells
        .iter()
        .enumerate()
        .map(|(index, cell)| {
            json!({
                "cell": format!(
                    "{} / {} as {}",
                    cell.case,
                    cell.operation.as_str(),
                    cell.actor.name
                ),
                "line": cell.case_line,
                "target": cell.target,
                "expect": cell.expect.map(|e| e.as_str()),
                "unreviewed": cell.unreviewed,
                "deny_sqlstates": cell.deny_sqlstates,
                "deny_on_error": cell.deny_on_error,
                "filter": cell.filter(),
                "broken": cell.broken(),
                "returns": cell.returns.as_ref().map(|r| json!({ "want": r.want, "ordered": r.ordered })),
                "scenario": cell.scenario(),
                "wire": without_claims(plan::cell_json(index, cell)),
            })
        })
        .collect();
    let holes: Vec<String> = plan
        .holes
        .iter()
        .map(|h| format!("line {}: {}", h.line, h.message))
        .collect();
    let errors: Vec<String> = parse_errors
        .iter()
        .chain(&plan.errors)
        .map(|e| format!("{}: {}", e.pos.at(&file.rel), e.message))
        .collect();
    serde_json::to_string_pretty(&json!({ "cells": cells, "holes": holes, "errors": errors }))
        .unwrap()
}

#[test]
fn the_planned_sql_of_each_matrix_is_pinned() {
    insta::glob!("planner_sql/*.yaml", |path| {
        let (file, parse_errors) = file_of(path);
        let targets = targets(&file);
        let record = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("record-"));
        let planned = plan::plan(&file, Catalog::Read(&targets), record);
        insta::assert_snapshot!(render(&file, &parse_errors, &planned));
    });
}
