//! The draft written as the matrix's YAML: header, actors, setup, and one case per table or
//! view with every command left for the rls stage to record.

use super::Draft;
use crate::yaml::edit::plain_or_quoted;

/// The matrix as YAML: header, actors, setup, and one case per table or view with every
/// command written `{}` for the rls stage to record.
pub fn render(draft: &Draft) -> String {
    let mut out = format!(
        "# Written by `db-ci init` for the exposed schema `{}`.\n\
         #\n\
         # Every expectation below was RECORDED from what the database did when init ran: it is\n\
         # a baseline, not a verdict on the policies. `unreviewed:` lists the actors whose cell\n\
         # still holds a recording; review each (should this actor be able to do this?), fix\n\
         # the policy or the expectation, then delete the actor from `unreviewed:`. Every run\n\
         # counts the cells still unreviewed.\n\
         #\n\
         # The rows are alice's world: owner columns hold her id, membership rows make her a\n\
         # member; bob is signed in and owns nothing. `db-ci rls --record` records cases you add.\n",
        draft.schema
    );
    out.push_str("actors:\n");
    for (name, spec) in &draft.actors {
        out.push_str(&format!("  {name}: {spec}\n"));
    }
    if draft.setup.is_empty() {
        out.push_str("setup: \"\"\n");
    } else {
        out.push_str("setup: |\n");
        for statement in &draft.setup {
            out.push_str(&format!("  {statement}\n"));
        }
    }
    for why in &draft.left_out {
        out.push_str(&format!("# NOT GENERATED: {why}\n"));
    }
    out.push_str("cases:\n");
    if draft.cases.is_empty() {
        out.push_str("  []\n");
    }
    for case in &draft.cases {
        out.push_str(&format!(
            "  - name: {}\n    table: {}\n",
            plain_or_quoted(case.name.as_deref().unwrap_or(&case.relation)),
            plain_or_quoted(&case.relation)
        ));
        for why in &case.left_out {
            out.push_str(&format!("    # not generated: {why}\n"));
        }
        if let Some(target) = &case.target {
            out.push_str(&format!("    where: {}\n", block_scalar(target)));
        }
        if case.select {
            out.push_str("    select: {}\n");
        }
        if let Some(values) = &case.insert {
            let values = values
                .iter()
                .map(|(k, v)| format!("{}: {}", plain_or_quoted(k), yaml_string(v)))
                .collect::<Vec<_>>()
                .join(", ");
            out.push_str(&format!("    insert: {{ values: {{ {values} }} }}\n"));
        }
        if let Some((column, value)) = &case.update {
            out.push_str(&format!(
                "    update: {{ set: {{ {}: {} }} }}\n",
                plain_or_quoted(column),
                yaml_string(value)
            ));
        }
        if case.delete {
            out.push_str("    delete: {}\n");
        }
    }
    out
}

/// `text` as a block mapping's value: plain when YAML reads it back as the same string.
fn block_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.trim() == text
        && !text.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\n')
        && serde_saphyr::from_str::<String>(text).ok().as_deref() == Some(text);
    if plain {
        text.to_owned()
    } else {
        yaml_string(text)
    }
}

/// A string the matrix reads back as that string (values are text the server casts).
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}
#[cfg(test)]
mod tests {
    use super::super::super::model::PolicyReads;
    use super::super::{actors, resolve_actors, CaseDraft};
    use super::*;

    #[test]
    fn where_clauses_are_plain_when_they_read_back() {
        assert_eq!(block_scalar("id = '1'"), "id = '1'");
        assert_eq!(block_scalar("'x' = id"), "\"'x' = id\"");
        assert_eq!(block_scalar("true"), "true");
        assert_eq!(block_scalar("a: b"), "\"a: b\"");
    }

    #[test]
    fn the_rendered_matrix_parses() {
        let draft = Draft {
            schema: "public".to_owned(),
            actors: actors(
                &PolicyReads {
                    app_metadata: Some(("role".to_owned(), "admin".to_owned())),
                    ..PolicyReads::default()
                },
                &[],
            ),
            setup: vec!["insert into public.notes (id) values ('1');".to_owned()],
            cases: vec![CaseDraft {
                relation: "public.notes".to_owned(),
                name: None,
                select: true,
                target: Some("\"id\" = '1'".to_owned()),
                insert: Some(vec![("id".to_owned(), "2".to_owned())]),
                update: Some(("body".to_owned(), "db-ci edited".to_owned())),
                delete: true,
                left_out: vec![],
            }],
            left_out: vec!["public.x: no value".to_owned()],
        };
        let text = render(&draft);
        let spec: crate::policy_tests::PolicyFileSpec = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(spec.cases.len(), 1);
        assert!(resolve_actors(&draft.actors).is_ok());
    }
}
