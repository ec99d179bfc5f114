//! The trial of a schema's matrix: every generated row and every operation run as admin in
//! one transaction rolled back, keeping what succeeds and the reason for what does not.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::super::model::{Relation, RelationKind};
use super::as_admin::{
    attempt, existing_owned_row, insert_sql, resolve, spare, target_of, view_target, Refused,
};
use super::rows::{order, row, updates_of, Generated, NoRow, BOB};
use super::{CaseDraft, Draft};
use crate::actors::Actors;
use crate::sql::db_error_text;
use crate::sql::quote::quote_ident_if_needed as quote_ident;
use crate::sql::quote_literal;

/// Builds `schema`'s matrix by trying every row and operation as admin, in one transaction
/// rolled back: what fails there is left out with the reason.
pub async fn draft(
    client: &Client,
    schema: &str,
    relations: &[Relation],
    actor_lines: Vec<(String, String)>,
    actors: &Actors,
) -> crate::error::Result<Draft> {
    let environment = |what: &str, e: tokio_postgres::Error| {
        crate::error::Error::Environment(format!("{what}: {}", db_error_text(&e)))
    };
    let mut draft = Draft {
        schema: schema.to_owned(),
        actors: actor_lines,
        ..Draft::default()
    };
    let mine: Vec<&Relation> = relations.iter().filter(|r| r.schema == schema).collect();
    if mine.is_empty() {
        return Ok(draft);
    }
    client
        .batch_execute("begin")
        .await
        .map_err(|e| environment("begin the trial of the generated rows", e))?;
    // Tables outside the schema that its tables reference (transitively): rows for them
    // are generated too, so that a document can point at its storage object.
    let mut support: Vec<&Relation> = Vec::new();
    let mut queue: Vec<String> = mine
        .iter()
        .flat_map(|r| r.foreign_keys.iter().map(|fk| fk.references.to_string()))
        .collect();
    while let Some(name) = queue.pop() {
        let Some(relation) = relations.iter().find(|r| r.qualified() == name) else {
            continue;
        };
        if relation.schema == schema || support.iter().any(|r| r.qualified() == name) {
            continue;
        }
        support.push(relation);
        queue.extend(
            relation
                .foreign_keys
                .iter()
                .map(|fk| fk.references.to_string()),
        );
    }
    let result = trial(client, &mine, &support, actors, &mut draft).await;
    let _ = client.batch_execute("rollback").await;
    result?;
    Ok(draft)
}

async fn trial(
    client: &Client,
    relations: &[&Relation],
    support: &[&Relation],
    actors: &Actors,
    draft: &mut Draft,
) -> crate::error::Result<()> {
    client
        .batch_execute(&actors.create_users_sql())
        .await
        .map_err(|e| {
            crate::error::Error::Environment(format!(
                "create the matrix's users as the rls stage does: {}",
                db_error_text(&e)
            ))
        })?;
    // Actor ids in values read back become templates again.
    let ids: Vec<(String, String)> = ["alice", "bob", "admin"]
        .iter()
        .filter_map(|name| {
            let id = actors.render(&format!("{{{{{name}.id}}}}")).ok()?;
            Some((id, format!("{{{{{name}.id}}}}")))
        })
        .collect();
    let templated = |text: String| {
        ids.iter()
            .find(|(id, _)| *id == text)
            .map_or(text, |(_, template)| template.clone())
    };
    let tables: Vec<&Relation> = relations
        .iter()
        .chain(support)
        .copied()
        .filter(|r| r.kind == RelationKind::Table)
        .collect();
    let mut generated: BTreeMap<String, Generated> = BTreeMap::new();
    let mut left_out: BTreeMap<String, String> = BTreeMap::new();
    for index in order(&tables) {
        let relation = tables[index];
        let qualified = relation.qualified();
        let values = match row(relation, index, 0, &generated) {
            Ok(values) => values,
            Err(why) => {
                left_out.insert(qualified, why.to_string());
                continue;
            }
        };
        let values = match resolve(client, relation, values, &templated).await {
            Ok(values) => values,
            Err(why) => {
                // The referenced table's own row failed: that is the reason to show.
                let parent = match &why {
                    NoRow::NothingReferenced { table, .. } => {
                        left_out.get(table).map(|parent| (table, parent))
                    }
                    NoRow::SelfReference { .. } | NoRow::NoSample { .. } => None,
                };
                let why = match parent {
                    Some((table, parent)) => {
                        format!("{why}; a generated {table} row fails: {parent}")
                    }
                    None => why.to_string(),
                };
                left_out.insert(qualified, why);
                continue;
            }
        };
        let sql = insert_sql(relation, &values);
        match attempt(client, actors, &sql, true).await {
            Ok(_) => {
                let target = target_of(relation, &values);
                draft.setup.push(format!("{sql};"));
                generated.insert(
                    qualified,
                    Generated {
                        values: values.into_iter().collect(),
                        target,
                    },
                );
            }
            Err(why) => {
                // A row a trigger already made for alice (her profile on sign-up): that row
                // is the target.
                match existing_owned_row(client, relation, actors, &templated).await {
                    Some(found) => {
                        generated.insert(qualified, found);
                    }
                    None => {
                        left_out.insert(
                            qualified,
                            format!("its generated row fails as admin: {why}"),
                        );
                    }
                }
            }
        }
    }

    let mut spares = BTreeMap::new();
    for (index, relation) in relations.iter().enumerate() {
        let qualified = relation.qualified();
        if relation.kind == RelationKind::View {
            match view_target(client, relation, &templated).await {
                Some(target) => draft.cases.push(CaseDraft {
                    relation: qualified,
                    target: Some(target),
                    select: true,
                    ..CaseDraft::default()
                }),
                None => draft.left_out.push(format!(
                    "{qualified}: the view shows no row to admin that a `where:` picks alone"
                )),
            }
            continue;
        }
        let Some(row0) = generated.get(&qualified) else {
            if let Some(why) = left_out.get(&qualified) {
                draft.left_out.push(format!("{qualified}: {why}"));
            }
            continue;
        };
        let mut case = CaseDraft {
            relation: qualified.clone(),
            target: Some(row0.target.clone()),
            select: true,
            ..CaseDraft::default()
        };
        // insert: a second row of the same world.
        let insert = match row(relation, index, 1, &generated) {
            Ok(values) => resolve(client, relation, values, &templated).await,
            Err(why) => Err(why),
        };
        match insert {
            Ok(mut values) if !values.is_empty() => {
                let sql = insert_sql(relation, &values);
                let mut result = attempt(client, actors, &sql, false).await.map(|_| ());
                // A link table keyed by its references (assistant × workspace) already links
                // the setup's parents: the new row links spare ones.
                if result.as_ref().is_err_and(Refused::duplicate_key) {
                    let mut spared = false;
                    for fk in &relation.foreign_keys {
                        if !fk.columns.iter().any(|c| relation.in_unique(c)) {
                            continue;
                        }
                        let Some(parent) = spare(
                            client,
                            actors,
                            relations,
                            &fk.references.to_string(),
                            &generated,
                            &mut spares,
                            &mut draft.setup,
                            &templated,
                        )
                        .await
                        else {
                            continue;
                        };
                        for (column, referenced) in fk.columns.iter().zip(&fk.referenced_columns) {
                            if let (Some(slot), Some(value)) = (
                                values.iter_mut().find(|(n, _)| n == column),
                                parent.get(referenced),
                            ) {
                                slot.1 = value.clone();
                                spared = true;
                            }
                        }
                    }
                    if spared {
                        let sql = insert_sql(relation, &values);
                        result = attempt(client, actors, &sql, false).await.map(|_| ());
                    }
                }
                // A row keyed by its owner that bob already has (a sign-up trigger made his
                // profile): the setup removes his, so the insert shows who may create one.
                if result.as_ref().is_err_and(Refused::duplicate_key) {
                    if let Some(owner) = relation
                        .columns
                        .iter()
                        .find(|c| c.owner && relation.in_unique(&c.name))
                    {
                        let clear = format!(
                            "delete from {} where {} = {}",
                            relation.quoted(),
                            quote_ident(&owner.name),
                            quote_literal(BOB)
                        );
                        if attempt(client, actors, &clear, true).await == Ok(1) {
                            draft.setup.push(format!("{clear};"));
                            let sql = insert_sql(relation, &values);
                            result = attempt(client, actors, &sql, false).await.map(|_| ());
                        }
                    }
                }
                match result {
                    Ok(()) => case.insert = Some(values),
                    Err(why) => case
                        .left_out
                        .push(format!("insert: as admin it fails: {why}")),
                }
            }
            Ok(_) => case.left_out.push("insert: no column to write".to_owned()),
            Err(why) => case.left_out.push(format!("insert: {why}")),
        }
        // The first plain column the update really changes (a default may already hold
        // the sample value).
        let mut update_failed = None;
        for (column, value) in updates_of(relation, index) {
            let sql = format!(
                "update {} set {col} = {value} where {} and {col} is distinct from {value}",
                relation.quoted(),
                row0.target,
                col = quote_ident(&column),
                value = quote_literal(&value),
            );
            match attempt(client, actors, &sql, false).await {
                Ok(1) => {
                    case.update = Some((column, value));
                    break;
                }
                Ok(_) => {}
                Err(why) => {
                    update_failed.get_or_insert(why);
                }
            }
        }
        if case.update.is_none() {
            case.left_out.push(match update_failed {
                Some(why) => format!("update: as admin it fails: {why}"),
                None => "update: no plain column to change".to_owned(),
            });
        }
        let sql = format!("delete from {} where {}", relation.quoted(), row0.target);
        let mut delete_spare = None;
        match attempt(client, actors, &sql, false).await {
            Ok(_) => case.delete = true,
            // Rows of other tables point at the target and forbid its deletion: a spare row
            // nothing points at is deleted instead, in a case of its own.
            Err(why) => {
                let spared = match spare(
                    client,
                    actors,
                    relations,
                    &qualified,
                    &generated,
                    &mut spares,
                    &mut draft.setup,
                    &templated,
                )
                .await
                {
                    Some(values) => {
                        let values: Vec<(String, String)> = values.into_iter().collect();
                        let target = target_of(relation, &values);
                        let sql = format!("delete from {} where {target}", relation.quoted());
                        attempt(client, actors, &sql, false)
                            .await
                            .ok()
                            .map(|_| target)
                    }
                    None => None,
                };
                match spared {
                    Some(target) => delete_spare = Some(target),
                    None => case
                        .left_out
                        .push(format!("delete: as admin it fails: {why}")),
                }
            }
        }
        draft.cases.push(case);
        if let Some(target) = delete_spare {
            draft.cases.push(CaseDraft {
                relation: qualified.clone(),
                name: Some(format!("{qualified}, a row nothing references")),
                target: Some(target),
                select: false,
                delete: true,
                ..CaseDraft::default()
            });
        }
    }
    Ok(())
}
