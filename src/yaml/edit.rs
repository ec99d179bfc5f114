//! YAML nodes with their byte ranges in the text, and edits that set a mapping's values while
//! every other byte (comments, layout, quoting) stays as the user wrote it.

use std::ops::Range;

use granit_parser::{Event, Parser, StructureStyle};

/// One node of a parsed document and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Scalar {
        range: Range<usize>,
        value: String,
    },
    Seq {
        range: Range<usize>,
        flow: bool,
        items: Vec<Node>,
    },
    Map {
        range: Range<usize>,
        flow: bool,
        entries: Vec<Entry>,
    },
}

/// One `key: value` of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_range: Range<usize>,
    pub value: Node,
}

impl Node {
    /// Where the node is written. A block collection ends where its last item does (the
    /// parser's own end marker sits at the next token, past comments and blank lines).
    pub fn range(&self) -> Range<usize> {
        match self {
            Node::Scalar { range, .. } | Node::Seq { range, .. } | Node::Map { range, .. } => {
                range.clone()
            }
        }
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map { entries, .. } => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// Item `index` of a sequence.
    pub fn item(&self, index: usize) -> Option<&Node> {
        match self {
            Node::Seq { items, .. } => items.get(index),
            _ => None,
        }
    }
}

/// Why a file could not be edited. Callers have parsed the same text before, so every one of
/// these is a fault of db-ci's, not of the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Parse(#[from] granit_parser::ScanError),
    #[error("the parser gave no byte offsets")]
    NoOffsets,
    #[error("no YAML document")]
    NoDocument,
    #[error("the document ends early")]
    EndsEarly,
    #[error("a sequence is not closed")]
    OpenSequence,
    #[error("a mapping is not closed")]
    OpenMapping,
    #[error("unexpected YAML event")]
    Unexpected,
    #[error("two edits overlap at bytes {0:?} and {1:?}")]
    Overlap(Range<usize>, Range<usize>),
}

/// The first document of `text` as a tree.
pub fn parse_tree(text: &str) -> Result<Node, EditError> {
    let mut events = Vec::new();
    for event in Parser::new_from_str(text) {
        let (event, span) = event?;
        // Comments and directives are not nodes: the edits leave their bytes alone.
        if !matches!(
            event,
            Event::DocumentStart(..)
                | Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd
                | Event::Alias(_)
                | Event::UnresolvedAlias(_)
                | Event::Anchor(..)
        ) {
            continue;
        }
        let range = span.byte_range().ok_or(EditError::NoOffsets)?;
        events.push((event, range));
    }
    let mut position = events
        .iter()
        .position(|(e, _)| matches!(e, Event::DocumentStart(..)))
        .ok_or(EditError::NoDocument)?
        + 1;
    node(&events, &mut position)
}

fn node(events: &[(Event<'_>, Range<usize>)], position: &mut usize) -> Result<Node, EditError> {
    let Some((event, range)) = events.get(*position) else {
        return Err(EditError::EndsEarly);
    };
    *position += 1;
    match event {
        Event::Scalar(value, ..) => Ok(Node::Scalar {
            range: range.clone(),
            value: value.to_string(),
        }),
        Event::Alias(_) | Event::UnresolvedAlias(_) => Ok(Node::Scalar {
            range: range.clone(),
            value: String::new(),
        }),
        Event::SequenceStart(style, ..) => {
            let mut items = Vec::new();
            loop {
                match events.get(*position) {
                    Some((Event::SequenceEnd, end)) => {
                        *position += 1;
                        let flow = *style == StructureStyle::Flow;
                        let end = if flow {
                            end.end
                        } else {
                            items.last().map_or(range.end, |i: &Node| i.range().end)
                        };
                        return Ok(Node::Seq {
                            range: range.start..end,
                            flow,
                            items,
                        });
                    }
                    Some((Event::Anchor(..), _)) => *position += 1,
                    Some(_) => items.push(node(events, position)?),
                    None => return Err(EditError::OpenSequence),
                }
            }
        }
        Event::MappingStart(style, ..) => {
            let mut entries = Vec::new();
            loop {
                match events.get(*position) {
                    Some((Event::MappingEnd, end)) => {
                        *position += 1;
                        let flow = *style == StructureStyle::Flow;
                        let end = if flow {
                            end.end
                        } else {
                            entries
                                .last()
                                .map_or(range.end, |e: &Entry| e.value.range().end)
                        };
                        return Ok(Node::Map {
                            range: range.start..end,
                            flow,
                            entries,
                        });
                    }
                    Some((Event::Anchor(..), _)) => *position += 1,
                    Some(_) => {
                        let key = node(events, position)?;
                        let value = node(events, position)?;
                        let (key, key_range) = match key {
                            Node::Scalar { value, range } => (value, range),
                            other => (String::new(), other.range()),
                        };
                        entries.push(Entry {
                            key,
                            key_range,
                            value,
                        });
                    }
                    None => return Err(EditError::OpenMapping),
                }
            }
        }
        Event::Anchor(..) => node(events, position),
        _ => Err(EditError::Unexpected),
    }
}

/// Replace `range` of the text with `text`.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// `map`'s entries set to the given values (flow-style YAML text): a present key's value is
/// replaced where it is written; missing keys are added after the last entry in the
/// mapping's own style (`, key: value` in a flow mapping, a line at the keys' indentation in
/// a block one). `None` when `map` is not a mapping.
pub fn set_entries(text: &str, map: &Node, values: &[(&str, String)]) -> Option<Vec<Edit>> {
    let Node::Map {
        range,
        flow,
        entries,
    } = map
    else {
        return None;
    };
    let mut edits = Vec::new();
    let mut added = Vec::new();
    for (key, value) in values {
        match entries.iter().find(|e| e.key == *key) {
            Some(entry) => {
                let at = entry.value.range();
                if at.is_empty() {
                    // An empty value (`allow:` and nothing): written after the colon.
                    let colon = text[entry.key_range.end..].find(':')? + entry.key_range.end + 1;
                    edits.push(Edit {
                        range: colon..colon,
                        text: format!(" {value}"),
                    });
                } else {
                    edits.push(Edit {
                        range: at,
                        text: value.clone(),
                    });
                }
            }
            None => added.push(format!("{key}: {value}")),
        }
    }
    if added.is_empty() {
        return Some(edits);
    }
    if *flow {
        match entries.last() {
            Some(last) => {
                let end = last.value.range().end;
                edits.push(Edit {
                    range: end..end,
                    text: format!(", {}", added.join(", ")),
                });
            }
            None => edits.push(Edit {
                range: range.clone(),
                text: format!("{{ {} }}", added.join(", ")),
            }),
        }
        return Some(edits);
    }
    let first = entries.first()?;
    let line_start = text[..first.key_range.start]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let indent = " ".repeat(first.key_range.start - line_start);
    // After the line the mapping's content ends on, so that a trailing comment stays put.
    let end = entries.last()?.value.range().end;
    let end = text[end..].find('\n').map_or(text.len(), |i| end + i);
    let lines: String = added.iter().map(|a| format!("\n{indent}{a}")).collect();
    edits.push(Edit {
        range: end..end,
        text: lines,
    });
    Some(edits)
}

/// `text` with `edits` applied; they must not overlap (two insertions at one point keep
/// their order).
pub fn apply(text: &str, mut edits: Vec<Edit>) -> Result<String, EditError> {
    edits.sort_by_key(|e| (e.range.start, e.range.end));
    for pair in edits.windows(2) {
        if pair[0].range.end > pair[1].range.start {
            return Err(EditError::Overlap(
                pair[0].range.clone(),
                pair[1].range.clone(),
            ));
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for edit in edits {
        out.push_str(&text[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// A flow sequence of plain or quoted scalars: `[anon, "odd name"]`.
pub fn flow_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(plain_or_quoted).collect();
    format!("[{}]", items.join(", "))
}

/// `text` as a plain scalar when it reads back as the same string, else double-quoted.
pub fn plain_or_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
        && !text.starts_with(['-', '.', '@'])
        && !matches!(text, "true" | "false" | "null" | "others")
        && text.parse::<f64>().is_err();
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, path: &[&str], values: &[(&str, &str)]) -> String {
        let tree = parse_tree(text).unwrap();
        let mut node = &tree;
        for step in path {
            node = match step.parse::<usize>() {
                Ok(i) => node.item(i).unwrap(),
                Err(_) => node.get(step).unwrap(),
            };
        }
        let values: Vec<(&str, String)> =
            values.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        apply(text, set_entries(text, node, &values).unwrap()).unwrap()
    }

    const MATRIX: &str = "\
# who reads notes
cases:
  - name: notes   # the main case
    table: notes
    select: { allow: [alice], deny: others }  # reviewed
    update:
      set: { body: x }
      allow:
        - alice
      deny: [bob]   # bob is a stranger
  - name: rpc
    sql: select 1
    allow: [alice]
";

    #[test]
    fn a_flow_value_is_replaced_in_place_and_comments_stay() {
        let out = edit(
            MATRIX,
            &["cases", "0", "select"],
            &[("allow", "[alice, bob]")],
        );
        assert_eq!(
            out,
            MATRIX.replace(
                "{ allow: [alice], deny: others }",
                "{ allow: [alice, bob], deny: others }"
            )
        );
    }

    #[test]
    fn a_missing_key_joins_a_flow_mapping() {
        let out = edit(
            MATRIX,
            &["cases", "0", "select"],
            &[("unreviewed", "[bob]")],
        );
        assert!(
            out.contains("select: { allow: [alice], deny: others, unreviewed: [bob] }  # reviewed"),
            "{out}"
        );
    }

    #[test]
    fn a_block_mapping_gets_a_line_at_its_indentation_after_the_trailing_comment() {
        let out = edit(
            MATRIX,
            &["cases", "0", "update"],
            &[("allow", "[alice, anon]"), ("unreviewed", "[anon]")],
        );
        assert!(
            out.contains(
                "      allow:\n        [alice, anon]\n      deny: [bob]   # bob is a stranger\n      unreviewed: [anon]\n  - name: rpc"
            ),
            "{out}"
        );
        // The result still parses, with the values where they belong.
        let tree = parse_tree(&out).unwrap();
        let update = tree
            .get("cases")
            .unwrap()
            .item(0)
            .unwrap()
            .get("update")
            .unwrap();
        assert!(
            matches!(update.get("unreviewed"), Some(Node::Seq { items, .. }) if items.len() == 1)
        );
    }

    #[test]
    fn an_sql_case_is_its_own_container_and_the_last_line_of_the_file_works() {
        let out = edit(MATRIX, &["cases", "1"], &[("deny", "[bob]")]);
        assert!(
            out.ends_with("    allow: [alice]\n    deny: [bob]\n"),
            "{out}"
        );
    }

    #[test]
    fn an_empty_flow_mapping_and_an_empty_value_are_filled() {
        let text = "select: {}\ninsert:\n  values: { a: 1 }\n  allow:\n";
        let out = edit(text, &["select"], &[("allow", "[anon]"), ("deny", "[bob]")]);
        assert_eq!(
            out,
            "select: { allow: [anon], deny: [bob] }\ninsert:\n  values: { a: 1 }\n  allow:\n"
        );
        let out = edit(text, &["insert"], &[("allow", "[anon]")]);
        let tree = parse_tree(&out).unwrap();
        assert!(
            matches!(tree.get("insert").unwrap().get("allow"), Some(Node::Seq { items, .. }) if items.len() == 1),
            "{out}"
        );
    }

    #[test]
    fn names_are_quoted_only_when_plain_would_read_differently() {
        assert_eq!(
            flow_list(["anon", "user-2", "odd name", "true", "others", "007"]),
            r#"[anon, user-2, "odd name", "true", "others", "007"]"#
        );
    }

    #[test]
    fn overlapping_edits_are_refused() {
        let edits = vec![
            Edit {
                range: 0..4,
                text: "x".into(),
            },
            Edit {
                range: 2..6,
                text: "y".into(),
            },
        ];
        assert!(apply("abcdefg", edits).is_err());
    }

    #[test]
    fn multibyte_text_before_a_value_keeps_byte_offsets_right() {
        let text = "name: \"café ☕\"\nselect: { allow: [a] }\n";
        let out = edit(text, &["select"], &[("allow", "[b]")]);
        assert_eq!(out, "name: \"café ☕\"\nselect: { allow: [b] }\n");
    }
}
