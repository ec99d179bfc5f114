//! View definitions made to print alike across server versions: the single relation's
//! qualifier PostgreSQL 15 prints and 16 drops, stripped.

/// PostgreSQL 16 dropped the OLD/NEW placeholders from stored view rules, so a view reading
/// one relation prints its columns unqualified (`user_id`) where 15 printed `s.user_id`.
/// On servers before 16 the same qualification is removed, giving one text for both.
pub fn normalise_view_definition(definition: &str, server_major: u32) -> String {
    if server_major >= 16 {
        return definition.to_owned();
    }
    match single_relation_alias(definition) {
        Some(alias) => strip_qualifier(definition, &alias),
        None => definition.to_owned(),
    }
}

/// Byte ranges of `text` at parenthesis depth 0 and outside quotes, as (index, char) pairs.
fn top_level_chars(text: &str) -> Vec<(usize, char)> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                _ if depth == 0 => out.push((i, c)),
                _ => {}
            },
        }
    }
    out
}

/// The alias of the only relation in the top-level FROM, when there is exactly one.
fn single_relation_alias(definition: &str) -> Option<String> {
    let top: String = {
        let chars = top_level_chars(definition);
        let mut s = String::new();
        let mut last = None;
        for (i, c) in chars {
            if last.is_some_and(|l: usize| i != l + 1) {
                s.push(' ');
            }
            s.push(c);
            last = Some(i + c.len_utf8() - 1);
        }
        s
    };
    let upper = top.to_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    if ["UNION", "INTERSECT", "EXCEPT", "JOIN"]
        .iter()
        .any(|k| words.contains(k))
        || words.iter().filter(|w| **w == "FROM").count() != 1
    {
        return None;
    }
    let original: Vec<&str> = top.split_whitespace().collect();
    let from = words.iter().position(|w| *w == "FROM")?;
    let stops = [
        "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "WINDOW", "FETCH", "FOR",
    ];
    let items: Vec<&str> = original[from + 1..]
        .iter()
        .zip(&words[from + 1..])
        .take_while(|(_, w)| !stops.contains(&w.trim_end_matches(';')))
        .map(|(o, _)| o.trim_end_matches(';'))
        .filter(|o| !o.is_empty())
        .collect();
    if items.iter().any(|i| i.contains(',')) {
        return None;
    }
    match items.as_slice() {
        [relation] => Some(relation.rsplit('.').next()?.to_owned()),
        [_, alias] => Some((*alias).to_owned()),
        _ => None,
    }
}

/// Removes `alias.` before column names, outside quotes.
fn strip_qualifier(definition: &str, alias: &str) -> String {
    let prefix = format!("{alias}.");
    let mut out = String::with_capacity(definition.len());
    let mut quote: Option<char> = None;
    let mut i = 0;
    let bytes = definition.as_bytes();
    while i < definition.len() {
        let c = definition[i..].chars().next().unwrap_or(' ');
        if quote.is_none() && definition[i..].starts_with(&prefix) {
            let before_ok = i == 0 || {
                let b = bytes[i - 1] as char;
                !(b.is_alphanumeric() || b == '_' || b == '.' || b == '"')
            };
            if before_ok {
                i += prefix.len();
                continue;
            }
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || (c == '"' && !alias.starts_with('"')) => quote = Some(c),
            _ => {}
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_relation_views_print_alike_on_15_and_17() {
        let pg15 = " SELECT s.user_id,\n    count(DISTINCT s.drill_id) AS n\n   FROM public.sessions s\n  WHERE s.status = 'a.b'::text\n  GROUP BY s.user_id;";
        let pg17 = " SELECT user_id,\n    count(DISTINCT drill_id) AS n\n   FROM public.sessions s\n  WHERE status = 'a.b'::text\n  GROUP BY user_id;";
        assert_eq!(normalise_view_definition(pg15, 15), pg17);
        assert_eq!(normalise_view_definition(pg17, 17), pg17);
        let unaliased = " SELECT profiles.id\n   FROM public.profiles;";
        assert_eq!(
            normalise_view_definition(unaliased, 15),
            " SELECT id\n   FROM public.profiles;"
        );
    }

    #[test]
    fn joins_keep_their_qualifiers() {
        let join = " SELECT p.id, u.email\n   FROM public.profiles p\n     JOIN auth.users u ON u.id = p.id;";
        assert_eq!(normalise_view_definition(join, 15), join);
    }
}
