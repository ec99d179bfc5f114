//! The wire format: a planned cell as the JSON the batch function reads, with the identities
//! it runs as and is probed as.

use serde_json::{json, Value};

use super::{Cell, OpKind};
use crate::actors::Actor;
use crate::policy_tests::cases::Operation;

/// The cell as the JSON the batch function reads.
pub fn cell_json(index: usize, cell: &Cell) -> Value {
    let actor = &cell.actor;
    let (claims, legacy) = identity(actor, cell.now);
    let mut value = json!({
        "i": index,
        "role": actor.db_role,
        "claims": claims,
        "legacy": legacy,
        "may_bypass": actor.may_bypass_rls(),
        "kind": match (cell.op_kind, &cell.returns) {
            (_, Some(_)) => "json",
            (OpKind::Count, None) => "count",
            (OpKind::Rows, None) => "rows",
        },
        "op": cell.op,
    });
    if let Some(now) = cell.now {
        value["now"] = Value::String(now.sql_text());
    }
    if !cell.probe_actors().is_empty() {
        value["probes"] = probes_json(cell);
        // A step's probes run after other steps set their clocks: each names its own, and
        // its case's ("" is the real time).
        if cell.scenario().is_some() {
            let text =
                |now: Option<crate::clock::Frozen>| now.map(|n| n.sql_text()).unwrap_or_default();
            let mut nows = vec![text(cell.now)];
            if cell.base_now != cell.now {
                nows.push(text(cell.base_now));
            }
            value["probe_nows"] = json!(nows);
        }
    }
    if let Some(before) = cell.before() {
        value["before"] = Value::String(before.to_owned());
    }
    if !cell.then.is_empty() {
        value["then"] = json!(cell.then);
    }
    if let Some(after) = cell.after() {
        value["after"] = Value::String(after.to_owned());
        // Update and delete read the rows back by the keys captured before.
        value["keys"] = Value::Bool(matches!(
            cell.operation,
            Operation::Update | Operation::Delete
        ));
    }
    value
}

/// An actor's claims (as JSON text) and legacy per-claim settings. Under a frozen clock the
/// token was issued at that instant and expires an hour later, as GoTrue's default does: a
/// policy comparing `exp` with `now()` sees a live token.
fn identity(
    actor: &Actor,
    now: Option<crate::clock::Frozen>,
) -> (String, serde_json::Map<String, Value>) {
    let mut legacy: serde_json::Map<String, Value> = actor
        .legacy_claims()
        .into_iter()
        .map(|(key, text)| (key, Value::String(text)))
        .collect();
    let mut claims = actor.claims.clone();
    if let Some(now) = now {
        for (key, value) in [("iat", now.epoch()), ("exp", now.epoch() + 3600)] {
            if let Some(object) = claims.as_object_mut() {
                if object.contains_key(key) {
                    object.insert(key.to_owned(), json!(value));
                    legacy.insert(key.to_owned(), Value::String(value.to_string()));
                }
            }
        }
    }
    (claims.to_string(), legacy)
}

/// The identities a probed cell's statement runs again as: admin (the session's role, RLS
/// bypassed) with no claims and with the actor's, then every actor of the file. Each sets
/// every legacy claim any of them has, blank where it has none, so no claim of the acting
/// actor lingers.
fn probes_json(cell: &Cell) -> Value {
    let identities: Vec<(String, String, String, serde_json::Map<String, Value>)> = {
        let (claims, legacy) = identity(&cell.actor, cell.now);
        let mut all = vec![
            (
                "admin".to_owned(),
                "none".to_owned(),
                String::new(),
                serde_json::Map::new(),
            ),
            (
                format!("admin with {}'s claims", cell.actor.name),
                "none".to_owned(),
                claims,
                legacy,
            ),
        ];
        for actor in cell.probe_actors() {
            let (claims, legacy) = identity(actor, cell.now);
            all.push((actor.name.clone(), actor.db_role.clone(), claims, legacy));
        }
        all
    };
    let keys: std::collections::BTreeSet<String> = identities
        .iter()
        .flat_map(|(_, _, _, legacy)| legacy.keys().cloned())
        .collect();
    Value::Array(
        identities
            .into_iter()
            .map(|(who, role, claims, own)| {
                let mut legacy: serde_json::Map<String, Value> = keys
                    .iter()
                    .map(|k| (k.clone(), Value::String(String::new())))
                    .collect();
                legacy.extend(own);
                json!({ "who": who, "role": role, "claims": claims, "legacy": legacy })
            })
            .collect(),
    )
}
