//! Renders the catalog model as the snapshot's YAML: one object per key, sorted, one line
//! per column, constraint, index and trigger so that a schema change reads as a small diff.

use super::model::{Catalog, Function, Grant, Table, View};
use crate::sql::kinds::TriggerState;

/// The first lines of every snapshot file.
pub const HEADER: &str = "# db-ci catalog snapshot: the schemas the migrations make, read back from the \
database after replay.\n# Review changes like code; accept them with `db-ci run --update-snapshot`.\n";

/// A YAML node: what the snapshot is built from.
enum Node {
    Scalar(String),
    /// A flow list of scalars: `[a, b]`.
    List(Vec<String>),
    Map(Vec<(String, Node)>),
}

#[derive(Default)]
struct MapBuilder(Vec<(String, Node)>);

impl MapBuilder {
    fn text(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.push((key.to_owned(), Node::Scalar(value.into())));
        self
    }

    fn maybe(self, key: &str, value: Option<&String>) -> Self {
        match value {
            Some(v) => self.text(key, v.clone()),
            None => self,
        }
    }

    fn flag(self, key: &str, value: bool) -> Self {
        self.text(key, if value { "true" } else { "false" })
    }

    fn list(mut self, key: &str, items: &[String]) -> Self {
        self.0.push((key.to_owned(), Node::List(items.to_vec())));
        self
    }

    fn list_if_any(self, key: &str, items: &[String]) -> Self {
        if items.is_empty() {
            self
        } else {
            self.list(key, items)
        }
    }

    fn map(mut self, key: &str, node: Node) -> Self {
        self.0.push((key.to_owned(), node));
        self
    }

    fn map_if_any(self, key: &str, node: Node) -> Self {
        match &node {
            Node::Map(entries) if entries.is_empty() => self,
            _ => self.map(key, node),
        }
    }

    fn build(self) -> Node {
        Node::Map(self.0)
    }
}

fn grants_node(grants: &[Grant]) -> Node {
    Node::Map(
        grants
            .iter()
            .map(|g| (g.grantee.clone(), Node::List(g.privileges.clone())))
            .collect(),
    )
}

fn column_line(column: &super::model::Column) -> String {
    let mut line = column.data_type.clone();
    if column.not_null {
        line.push_str(" not null");
    }
    if let Some(default) = &column.default {
        line.push_str(&format!(" default {default}"));
    }
    if let Some(identity) = &column.identity {
        line.push_str(&format!(" generated {identity} as identity"));
    }
    if let Some(expression) = &column.generated {
        line.push_str(&format!(" generated always as ({expression}) stored"));
    }
    line
}

fn table_node(table: &Table) -> Node {
    let mut node = MapBuilder::default();
    if table.platform {
        // Only what the project added to a platform table.
        node = node.text(
            "platform",
            "true (only the project's policies and triggers)",
        );
    } else {
        node = node
            .text("kind", table.kind.as_str())
            .text("owner", table.owner.clone())
            .maybe("comment", table.comment.as_ref())
            .maybe("partition_of", table.partition_of.as_ref());
    }
    node = node
        .flag("rls", table.rls)
        .flag("force_rls", table.force_rls);
    if !table.platform {
        node = node.map(
            "columns",
            Node::Map(
                table
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), Node::Scalar(column_line(c))))
                    .collect(),
            ),
        );
        let comments: Vec<(String, Node)> = table
            .columns
            .iter()
            .filter_map(|c| Some((c.name.clone(), Node::Scalar(c.comment.clone()?))))
            .collect();
        node = node.map_if_any("column_comments", Node::Map(comments));
        node = node.map_if_any(
            "constraints",
            Node::Map(
                table
                    .constraints
                    .iter()
                    .map(|c| (c.name.clone(), Node::Scalar(c.definition.clone())))
                    .collect(),
            ),
        );
        node = node.map_if_any(
            "indexes",
            Node::Map(
                table
                    .indexes
                    .iter()
                    .map(|i| (i.name.clone(), Node::Scalar(i.definition.clone())))
                    .collect(),
            ),
        );
    }
    let policies = table
        .policies
        .iter()
        .map(|p| {
            let policy = MapBuilder::default()
                .text("command", p.command.as_str())
                .flag("permissive", p.permissive)
                .list("roles", &p.roles)
                .maybe("using", p.using.as_ref())
                .maybe("with_check", p.with_check.as_ref())
                .build();
            (p.name.clone(), policy)
        })
        .collect();
    node = node.map_if_any("policies", Node::Map(policies));
    node = node.map_if_any(
        "triggers",
        Node::Map(
            table
                .triggers
                .iter()
                .map(|t| {
                    let state = match t.enabled {
                        TriggerState::Enabled => String::new(),
                        other => format!(" ({other})"),
                    };
                    (
                        t.name.clone(),
                        Node::Scalar(format!("{}{state}", t.definition)),
                    )
                })
                .collect(),
        ),
    );
    if !table.platform {
        node = node.map_if_any("grants", grants_node(&table.grants));
        let column_grants: Vec<(String, Node)> = table
            .columns
            .iter()
            .filter(|c| !c.grants.is_empty())
            .map(|c| (c.name.clone(), grants_node(&c.grants)))
            .collect();
        node = node.map_if_any("column_grants", Node::Map(column_grants));
    }
    node.build()
}

fn view_node(view: &View) -> Node {
    MapBuilder::default()
        .text(
            "kind",
            if view.materialized {
                "materialized view"
            } else {
                "view"
            },
        )
        .text("owner", view.owner.clone())
        .text(
            "runs_as",
            if view.materialized || !view.security_invoker {
                "owner (security_invoker off: reads bypass RLS when the owner does)"
            } else {
                "invoker (security_invoker on)"
            },
        )
        .maybe("comment", view.comment.as_ref())
        .text("definition", view.definition.clone())
        .map_if_any("grants", grants_node(&view.grants))
        .build()
}

fn function_node(function: &Function) -> Node {
    MapBuilder::default()
        .text("kind", function.kind.as_str())
        .maybe("returns", function.returns.as_ref())
        .text("language", function.language.clone())
        .text("volatility", function.volatility.as_str())
        .text(
            "security",
            if function.security_definer {
                "definer"
            } else {
                "invoker"
            },
        )
        .flag("strict", function.strict)
        .list_if_any(
            "leakproof",
            &if function.leakproof {
                vec!["true".to_owned()]
            } else {
                vec![]
            },
        )
        .list_if_any("config", &function.config)
        .text("owner", function.owner.clone())
        .maybe("comment", function.comment.as_ref())
        .map_if_any("grants", grants_node(&function.grants))
        .text("body", function.body.clone())
        .build()
}

fn catalog_node(catalog: &Catalog) -> Node {
    let schemas = catalog
        .schemas
        .iter()
        .map(|s| {
            let node = MapBuilder::default()
                .text("owner", s.owner.clone())
                .maybe("comment", s.comment.as_ref())
                .map_if_any("grants", grants_node(&s.grants))
                .build();
            (s.name.clone(), node)
        })
        .collect();
    let extensions = catalog
        .extensions
        .iter()
        .map(|e| (e.name.clone(), Node::Scalar(format!("schema {}", e.schema))))
        .collect();
    let tables = catalog
        .tables
        .iter()
        .map(|t| (t.qualified(), table_node(t)))
        .collect();
    let views = catalog
        .views
        .iter()
        .map(|v| (v.qualified(), view_node(v)))
        .collect();
    let functions = catalog
        .functions
        .iter()
        .map(|f| (f.signature(), function_node(f)))
        .collect();
    let types = catalog
        .types
        .iter()
        .map(|t| {
            let node = MapBuilder::default()
                .text("kind", t.kind.as_str())
                .text("owner", t.owner.clone())
                .list("definition", &t.definition)
                .build();
            (format!("{}.{}", t.schema, t.name), node)
        })
        .collect();
    let sequences = catalog
        .sequences
        .iter()
        .map(|s| {
            let node = MapBuilder::default()
                .text("definition", s.definition.clone())
                .maybe("owned_by", s.owned_by.as_ref())
                .text("owner", s.owner.clone())
                .map_if_any("grants", grants_node(&s.grants))
                .build();
            (format!("{}.{}", s.schema, s.name), node)
        })
        .collect();
    let default_privileges = catalog
        .default_privileges
        .iter()
        .map(|d| {
            let key = match &d.schema {
                Some(schema) => format!("{} in {} on {}", d.role, schema, d.object_type),
                None => format!("{} on {}", d.role, d.object_type),
            };
            (key, grants_node(&d.grants))
        })
        .collect();
    let publications = catalog
        .publications
        .iter()
        .map(|p| {
            let node = MapBuilder::default()
                .flag("all_tables", p.all_tables)
                .list("operations", &p.operations)
                .list("tables", &p.tables)
                .build();
            (p.name.clone(), node)
        })
        .collect();
    MapBuilder::default()
        .map("schemas", Node::Map(schemas))
        .map("extensions", Node::Map(extensions))
        .map("tables", Node::Map(tables))
        .map("views", Node::Map(views))
        .map("functions", Node::Map(functions))
        .map("types", Node::Map(types))
        .map("sequences", Node::Map(sequences))
        .map("default_privileges", Node::Map(default_privileges))
        .map("publications", Node::Map(publications))
        .build()
}

/// The snapshot text of `catalog`.
pub fn to_yaml(catalog: &Catalog) -> String {
    let mut out = String::from(HEADER);
    if let Node::Map(entries) = catalog_node(catalog) {
        write_map(&mut out, &entries, 0);
    }
    out
}

fn write_map(out: &mut String, entries: &[(String, Node)], indent: usize) {
    let pad = " ".repeat(indent);
    for (key, node) in entries {
        let key = scalar(key, false);
        match node {
            Node::Scalar(text) if text.contains('\n') => {
                // A literal block; the indentation indicator keeps leading spaces content.
                let indicator = if text.starts_with(' ') { "2" } else { "" };
                out.push_str(&format!("{pad}{key}: |{indicator}-\n"));
                for line in text.split('\n') {
                    if line.is_empty() {
                        out.push('\n');
                    } else {
                        out.push_str(&format!("{pad}  {line}\n"));
                    }
                }
            }
            Node::Scalar(text) => out.push_str(&format!("{pad}{key}: {}\n", scalar(text, false))),
            Node::List(items) => {
                let items: Vec<String> = items.iter().map(|i| scalar(i, true)).collect();
                out.push_str(&format!("{pad}{key}: [{}]\n", items.join(", ")));
            }
            Node::Map(children) if children.is_empty() => {
                out.push_str(&format!("{pad}{key}: {{}}\n"))
            }
            Node::Map(children) => {
                out.push_str(&format!("{pad}{key}:\n"));
                write_map(out, children, indent + 2);
            }
        }
    }
}

/// `text` as a YAML scalar: plain when that reads back as the same string, else quoted.
fn scalar(text: &str, in_flow: bool) -> String {
    let plain = !text.is_empty()
        && !text.starts_with(|c: char| c.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        && !text.ends_with(|c: char| c.is_whitespace() || c == ':')
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains(['\n', '\t', '\r', '\\'])
        && !(in_flow && text.contains([',', '[', ']', '{', '}']))
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "null" | "~" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_owned()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::kinds::{PolicyCommand, RoutineKind, TableKind, TypeKind, Volatility};

    #[test]
    fn scalars_quote_only_when_yaml_would_misread_them() {
        assert_eq!(scalar("uuid not null", false), "uuid not null");
        assert_eq!(scalar("a: b", false), "\"a: b\"");
        assert_eq!(scalar("- x", false), "\"- x\"");
        assert_eq!(scalar("a, b", true), "\"a, b\"");
        assert_eq!(scalar("a, b", false), "a, b");
        assert_eq!(scalar("", false), "\"\"");
        assert_eq!(scalar("on", false), "\"on\"");
    }

    #[test]
    fn multi_line_text_is_a_literal_block() {
        let mut out = String::new();
        write_map(
            &mut out,
            &[(
                "body".into(),
                Node::Scalar("begin\n\n  return new;\nend".into()),
            )],
            2,
        );
        assert_eq!(out, "  body: |-\n    begin\n\n      return new;\n    end\n");
        let mut out = String::new();
        write_map(&mut out, &[("b".into(), Node::Scalar("  x\ny".into()))], 0);
        assert_eq!(out, "b: |2-\n    x\n  y\n");
    }
    #[test]
    fn kinds_commands_and_trigger_states_print_as_words() {
        use crate::snapshot::model::*;
        let trigger = |name: &str, code: &str| Trigger {
            name: name.into(),
            definition: format!("CREATE TRIGGER {name} …"),
            enabled: TriggerState::from_code(code),
        };
        let mut catalog = Catalog::default();
        catalog.tables.push(Table {
            schema: "public".into(),
            name: "events".into(),
            kind: TableKind::from_code("p"),
            platform: false,
            owner: "postgres".into(),
            rls: true,
            force_rls: false,
            comment: None,
            partition_of: None,
            columns: vec![],
            constraints: vec![],
            indexes: vec![],
            policies: vec![Policy {
                name: "own".into(),
                command: PolicyCommand::from_code("*"),
                permissive: true,
                roles: vec!["authenticated".into()],
                using: Some("true".into()),
                with_check: None,
            }],
            triggers: ["O", "D", "R", "A"]
                .iter()
                .enumerate()
                .map(|(i, code)| trigger(&format!("t{i}"), code))
                .collect(),
            grants: vec![],
        });
        catalog.functions.push(Function {
            schema: "public".into(),
            name: "tidy".into(),
            arguments: String::new(),
            kind: RoutineKind::from_code("p"),
            returns: None,
            language: "sql".into(),
            volatility: Volatility::from_code("s"),
            strict: false,
            security_definer: false,
            leakproof: false,
            config: vec![],
            owner: "postgres".into(),
            comment: None,
            grants: vec![],
            body: "select 1".into(),
        });
        catalog.types.push(TypeDef {
            schema: "public".into(),
            name: "mood".into(),
            kind: TypeKind::from_code("e"),
            owner: "postgres".into(),
            definition: vec!["sad".into(), "happy".into()],
        });
        let yaml = to_yaml(&catalog);
        for line in [
            "    kind: partitioned table\n",
            "        command: all\n",
            "      t0: CREATE TRIGGER t0 …\n",
            "      t1: CREATE TRIGGER t1 … (disabled)\n",
            "      t2: CREATE TRIGGER t2 … (enabled replica)\n",
            "      t3: CREATE TRIGGER t3 … (enabled always)\n",
            "    kind: procedure\n",
            "    volatility: stable\n",
            "    kind: enum\n",
        ] {
            assert!(yaml.contains(line), "{line:?} in:\n{yaml}");
        }
    }
}
