//! Case text made concrete for one actor: `{{me.…}}` and `{{actor.…}}` filled in, YAML values
//! as SQL literals, and a statement wrapped to return its rows as JSON.

use serde_json::Value;

use crate::actors::Actor;
use crate::policy_tests::PolicyFile;
use crate::sql::quote_literal;
use crate::yaml::Pos;

/// `sql` wrapped so that it yields its row count and its rows as JSON text, each row as
/// `[column, value]` pairs in column order (an object would lose the order and duplicate
/// names, which a single value's "one column" check needs).
pub fn returning_rows(sql: &str) -> String {
    format!(
        "select count(*), coalesce(json_agg((select json_agg(json_build_array(e.key, e.value) order by e.n) \
         from json_each(row_to_json(dbci_r)) with ordinality e(key, value, n))), '[]')::text \
         from ({}) dbci_r",
        sql.trim().trim_end_matches(';')
    )
}

/// A template (`{{actor.field}}`) that names no actor of the file or no field of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub crate::actors::ActorError);

/// `want` with `{{me.field}}` and `{{actor.field}}` filled in every string.
pub(super) fn render_value(
    file: &PolicyFile,
    actor: &Actor,
    want: &Value,
) -> Result<Value, TemplateError> {
    Ok(match want {
        Value::String(s) => Value::String(render_for(file, actor, s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(file, actor, v))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(file, actor, v)?)))
                .collect::<Result<_, TemplateError>>()?,
        ),
        other => other.clone(),
    })
}

/// A YAML value as a SQL literal.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote_literal(s),
        other => quote_literal(&other.to_string()),
    }
}

/// Replaces `{{me.field}}` by the acting actor's fields, then every `{{actor.field}}`.
pub(super) fn render_for(
    file: &PolicyFile,
    actor: &Actor,
    text: &str,
) -> Result<String, TemplateError> {
    static ME: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let me = ME.get_or_init(|| regex::Regex::new(r"\{\{\s*me\.").unwrap());
    let text = me.replace_all(text, format!("{{{{{}.", actor.name).as_str());
    file.actors.render(&text).map_err(TemplateError)
}

/// The `then:` queries rendered for `actor`; the error carries the line of `then:`.
pub(super) fn render_then(
    file: &PolicyFile,
    actor: &Actor,
    then: Option<&serde_saphyr::Spanned<crate::policy_tests::cases::Then>>,
) -> Result<Vec<String>, (Pos, TemplateError)> {
    let Some(then) = then else {
        return Ok(Vec::new());
    };
    then.value
        .0
        .iter()
        .map(|query| render_for(file, actor, query).map_err(|e| (Pos::of(then), e)))
        .collect()
}
