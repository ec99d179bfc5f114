//! What a migration statement says it does, read from its text: the operations whose cost
//! depends on production's data (scans, rewrites, index builds, drops). Pure logic; the
//! rehearsal's trace says what really happened, this names it and finds the safe rewrite.

use std::sync::OnceLock;

use regex::Regex;

/// One operation a statement asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `CREATE [UNIQUE] INDEX [CONCURRENTLY] … ON table`.
    CreateIndex {
        table: String,
        concurrently: bool,
        unique: bool,
    },
    /// `ADD [CONSTRAINT n] CHECK (…) / UNIQUE (…) / PRIMARY KEY (…) / FOREIGN KEY (…) …`.
    AddConstraint {
        table: String,
        kind: ConstraintKind,
        not_valid: bool,
    },
    /// `ALTER COLUMN c SET NOT NULL`.
    SetNotNull {
        table: String,
        column: String,
    },
    /// `ALTER COLUMN c [SET DATA] TYPE t`.
    AlterType {
        table: String,
        column: String,
        new_type: String,
    },
    /// `ADD COLUMN c … DEFAULT <volatile>` or `… NOT NULL` without a default.
    AddColumn {
        table: String,
        column: String,
        volatile_default: bool,
        not_null_without_default: bool,
    },
    DropTable {
        table: String,
    },
    DropColumn {
        table: String,
        column: String,
    },
    RenameTable {
        table: String,
        to: String,
    },
    RenameColumn {
        table: String,
        column: String,
        to: String,
    },
    /// `TRUNCATE t, …`: one per table.
    Truncate {
        table: String,
    },
    /// `DELETE FROM t` without a WHERE.
    DeleteAll {
        table: String,
    },
    /// `UPDATE t SET …` without a WHERE.
    UpdateAll {
        table: String,
    },
}

impl Operation {
    /// The table the operation is on, `schema.name`.
    pub fn table(&self) -> &str {
        match self {
            Operation::CreateIndex { table, .. }
            | Operation::AddConstraint { table, .. }
            | Operation::SetNotNull { table, .. }
            | Operation::AlterType { table, .. }
            | Operation::AddColumn { table, .. }
            | Operation::DropTable { table }
            | Operation::DropColumn { table, .. }
            | Operation::RenameTable { table, .. }
            | Operation::RenameColumn { table, .. }
            | Operation::Truncate { table }
            | Operation::DeleteAll { table }
            | Operation::UpdateAll { table } => table,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintKind {
    Check(String),
    Unique(Vec<String>),
    PrimaryKey(Vec<String>),
    ForeignKey {
        columns: Vec<String>,
        references: String,
        referenced: Vec<String>,
    },
}

impl ConstraintKind {
    pub fn describe(&self) -> &'static str {
        match self {
            ConstraintKind::Check(_) => "CHECK",
            ConstraintKind::Unique(_) => "UNIQUE",
            ConstraintKind::PrimaryKey(_) => "PRIMARY KEY",
            ConstraintKind::ForeignKey { .. } => "FOREIGN KEY",
        }
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap())
}

pub(crate) const NAME: &str = r#"((?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?)"#;

/// `public.t`, `"T"`, `t` → `schema.name` as the catalog spells it (unquoted names fold to
/// lower case; an unqualified name is taken as `public`).
pub fn qualify(name: &str) -> String {
    crate::catalog::QualifiedName::parse(name, "public")
        .map_or_else(|_| name.to_owned(), |name| name.to_string())
}

fn fold(part: &str, quoted: bool) -> String {
    if quoted {
        part.to_owned()
    } else {
        part.to_ascii_lowercase()
    }
}

fn column_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|c| fold(c.trim().trim_matches('"'), c.trim().starts_with('"')))
        .filter(|c| !c.is_empty())
        .collect()
}

/// The text up to the parenthesis that closes the one `text` starts after (one inside quotes
/// closes nothing).
fn balanced(text: &str) -> &str {
    let (mut depth, mut quote) = (1, None::<char>);
    for (i, c) in text.char_indices() {
        match c {
            _ if quote == Some(c) => quote = None,
            _ if quote.is_some() => {}
            '\'' | '"' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..i];
                }
            }
            _ => {}
        }
    }
    text
}

/// The operations in one statement, and in the body of a `DO` block the statements of its
/// body (a `SET NOT NULL` there scans and fails as it would outside).
pub fn operations_within(statement: &str) -> Vec<Operation> {
    static DO: OnceLock<Regex> = OnceLock::new();
    let text = crate::sql::without_comments(statement);
    let block = re(
        &DO,
        r"(?is)^\s*do\s+(?:language\s+plpgsql\s+)?(\$[A-Za-z_]*\$)(.*)$",
    );
    let Some(c) = block.captures(&text) else {
        return operations(statement);
    };
    let tag = c[1].to_owned();
    let Some(end) = c[2].find(tag.as_str()) else {
        return Vec::new();
    };
    let body = &c[2][..end];
    let mut ops = Vec::new();
    for piece in crate::sql::split(body) {
        let mut piece = piece.text(body).trim();
        // The block's own words before its first statement.
        for word in ["begin", "declare"] {
            if piece.len() > word.len()
                && piece[..word.len()].eq_ignore_ascii_case(word)
                && piece[word.len()..].starts_with(char::is_whitespace)
            {
                piece = piece[word.len()..].trim_start();
            }
        }
        ops.extend(operations(piece));
    }
    ops
}

/// The operations in one statement (an `ALTER TABLE` may hold several).
pub fn operations(statement: &str) -> Vec<Operation> {
    static INDEX: OnceLock<Regex> = OnceLock::new();
    static ALTER: OnceLock<Regex> = OnceLock::new();
    static DROP_TABLE: OnceLock<Regex> = OnceLock::new();
    let text = crate::sql::without_comments(statement);
    let mut ops = Vec::new();
    let index = re(
        &INDEX,
        &format!(
            r"(?is)^\s*create\s+(unique\s+)?index\s+(concurrently\s+)?(?:if\s+not\s+exists\s+)?(?:{NAME}\s+)?on\s+(?:only\s+)?{NAME}"
        ),
    );
    if let Some(c) = index.captures(&text) {
        ops.push(Operation::CreateIndex {
            table: qualify(&c[4]),
            concurrently: c.get(2).is_some(),
            unique: c.get(1).is_some(),
        });
        return ops;
    }
    let drop = re(
        &DROP_TABLE,
        r"(?is)^\s*drop\s+table\s+(?:if\s+exists\s+)?(.+?)(?:\s+cascade|\s+restrict)?\s*;?\s*$",
    );
    if let Some(c) = drop.captures(&text) {
        for name in c[1].split(',') {
            ops.push(Operation::DropTable {
                table: qualify(name.trim()),
            });
        }
        return ops;
    }
    if let Some(op) = whole_table(&text) {
        ops.extend(op);
        return ops;
    }
    if let Some(parts) = with_parts(&text) {
        ops.extend(parts.into_iter().filter_map(whole_table).flatten());
        if !ops.is_empty() {
            return ops;
        }
    }
    let alter = re(
        &ALTER,
        &format!(r"(?is)^\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?{NAME}\s+(.*)$"),
    );
    let Some(c) = alter.captures(&text) else {
        return ops;
    };
    let table = qualify(&c[1]);
    let body = c[2].trim_end().trim_end_matches(';').to_owned();
    for action in split_actions(&body) {
        if let Some(op) = alter_action(&table, action.trim()) {
            ops.push(op);
        }
    }
    ops
}

/// A `CREATE POLICY` that lets anyone with the anon key read every row: permissive, for
/// SELECT or ALL, to `anon` or `public` (the default), `USING (true)`. Returns (table,
/// policy).
pub fn opens_to_anon(statement: &str) -> Option<(String, String)> {
    static POLICY: OnceLock<Regex> = OnceLock::new();
    static FOR: OnceLock<Regex> = OnceLock::new();
    static TO: OnceLock<Regex> = OnceLock::new();
    static USING_TRUE: OnceLock<Regex> = OnceLock::new();
    let text = crate::sql::without_comments(statement);
    let policy = re(
        &POLICY,
        &format!(r#"(?is)^\s*create\s+policy\s+("[^"]+"|\w+)\s+on\s+{NAME}(.*)$"#),
    );
    let c = policy.captures(&text)?;
    let rest = c[3].to_ascii_lowercase();
    if rest.contains("restrictive") {
        return None;
    }
    let command = re(&FOR, r"(?is)\bfor\s+(all|select|insert|update|delete)\b");
    if command
        .captures(&rest)
        .is_some_and(|f| !matches!(&f[1], "all" | "select"))
    {
        return None;
    }
    let to = re(&TO, r"(?is)\bto\s+(.+?)\s*(?:\busing\b|\bwith\b|$)");
    let roles_open = match to.captures(&rest) {
        Some(t) => t[1]
            .split(',')
            .any(|r| matches!(r.trim().trim_matches('"'), "anon" | "public")),
        None => true,
    };
    let using = re(&USING_TRUE, r"(?is)\busing\s*\(\s*\(?\s*true\s*\)?\s*\)");
    (roles_open && using.is_match(&rest))
        .then(|| (qualify(&c[2]), c[1].trim_matches('"').to_owned()))
}

/// `TRUNCATE`, and `DELETE`/`UPDATE` without a WHERE: statements that change every row.
fn whole_table(text: &str) -> Option<Vec<Operation>> {
    static TRUNCATE: OnceLock<Regex> = OnceLock::new();
    static DELETE: OnceLock<Regex> = OnceLock::new();
    static UPDATE: OnceLock<Regex> = OnceLock::new();
    let truncate = re(
        &TRUNCATE,
        r"(?is)^\s*truncate\s+(?:table\s+)?(.+?)(?:\s+(?:restart|continue)\s+identity)?(?:\s+cascade|\s+restrict)?\s*;?\s*$",
    );
    if let Some(c) = truncate.captures(text) {
        return Some(
            c[1].split(',')
                .map(|name| {
                    let name = name.trim();
                    let name = match name.get(..5) {
                        Some(only) if only.eq_ignore_ascii_case("only ") => &name[5..],
                        _ => name,
                    };
                    Operation::Truncate {
                        table: qualify(name.trim().trim_end_matches('*').trim()),
                    }
                })
                .collect(),
        );
    }
    let delete = re(
        &DELETE,
        &format!(r"(?is)^\s*delete\s+from\s+(?:only\s+)?{NAME}(.*)$"),
    );
    if let Some(c) = delete.captures(text) {
        return (!has_top_level_where(&c[2])).then(|| {
            vec![Operation::DeleteAll {
                table: qualify(&c[1]),
            }]
        });
    }
    let update = re(
        &UPDATE,
        &format!(r"(?is)^\s*update\s+(?:only\s+)?{NAME}(\s.*)$"),
    );
    if let Some(c) = update.captures(text) {
        return (!has_top_level_where(&c[2])).then(|| {
            vec![Operation::UpdateAll {
                table: qualify(&c[1]),
            }]
        });
    }
    None
}

/// A `WITH` statement's common table expressions and its main statement, each as a statement
/// of its own: `WITH gone AS (DELETE FROM t RETURNING id) SELECT …` deletes every row of `t`,
/// and so does `WITH ids AS (SELECT …) DELETE FROM t`. `None` for a statement without `WITH`.
fn with_parts(text: &str) -> Option<Vec<&str>> {
    static WITH: OnceLock<Regex> = OnceLock::new();
    static BODY: OnceLock<Regex> = OnceLock::new();
    let with = re(&WITH, r"(?is)^\s*with\s+(?:recursive\s+)?");
    let body = re(&BODY, r"(?is)^.*?\bas\s+(?:not\s+)?(?:materialized\s+)?\(");
    let mut rest = &text[with.find(text)?.end()..];
    let mut parts = Vec::new();
    while let Some(open) = body.find(rest) {
        let inner = balanced(&rest[open.end()..]);
        parts.push(inner);
        rest = rest[open.end() + inner.len()..].trim_start();
        rest = rest.strip_prefix(')').unwrap_or(rest).trim_start();
        match rest.strip_prefix(',') {
            Some(next) => rest = next,
            None => break,
        }
    }
    parts.push(rest);
    Some(parts)
}

/// Whether `text` has a `WHERE` outside parentheses and quotes (a subquery's does not limit
/// the statement's rows).
fn has_top_level_where(text: &str) -> bool {
    let (mut depth, mut quote, mut word) = (0i32, None::<char>, String::new());
    for c in text.chars().chain([' ']) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => continue,
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            },
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if depth == 0 && word.eq_ignore_ascii_case("where") {
                return true;
            }
            word.clear();
        }
    }
    false
}

/// Splits an ALTER TABLE body at top-level commas.
fn split_actions(body: &str) -> Vec<&str> {
    let mut actions = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0usize, None::<char>);
    for (i, c) in body.char_indices() {
        match c {
            _ if quote == Some(c) => quote = None,
            _ if quote.is_some() => {}
            '\'' | '"' => quote = Some(c),
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                actions.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    actions.push(&body[start..]);
    actions
}

fn alter_action(table: &str, action: &str) -> Option<Operation> {
    static ADD_CONSTRAINT: OnceLock<Regex> = OnceLock::new();
    static NOT_NULL: OnceLock<Regex> = OnceLock::new();
    static TYPE: OnceLock<Regex> = OnceLock::new();
    static ADD_COLUMN: OnceLock<Regex> = OnceLock::new();
    static DROP_COLUMN: OnceLock<Regex> = OnceLock::new();
    static RENAME_COLUMN: OnceLock<Regex> = OnceLock::new();
    static RENAME_TABLE: OnceLock<Regex> = OnceLock::new();
    static FK: OnceLock<Regex> = OnceLock::new();
    static NOT_VALID: OnceLock<Regex> = OnceLock::new();
    static OTHER_CONSTRAINT: OnceLock<Regex> = OnceLock::new();
    let add = re(
        &ADD_CONSTRAINT,
        r#"(?is)^add\s+(?:constraint\s+(?:"[^"]+"|\S+)\s+)?(check|unique|primary\s+key|foreign\s+key)\s*(?:nulls\s+(?:not\s+)?distinct\s*)?\("#,
    );
    if let Some(c) = add.captures(action) {
        let rest = &action[c.get(0).unwrap().end()..];
        let inside = balanced(rest);
        let kind = match c[1].to_ascii_lowercase().split_whitespace().next() {
            Some("check") => ConstraintKind::Check(inside.trim().to_owned()),
            Some("unique") => ConstraintKind::Unique(column_list(inside)),
            Some("primary") => ConstraintKind::PrimaryKey(column_list(inside)),
            _ => {
                let after = &rest[inside.len()..];
                let fk = re(
                    &FK,
                    &format!(r"(?is)^\)\s*references\s+{NAME}\s*(?:\(([^)]*)\))?"),
                );
                let m = fk.captures(after)?;
                ConstraintKind::ForeignKey {
                    columns: column_list(inside),
                    references: qualify(&m[1]),
                    referenced: m
                        .get(2)
                        .map(|r| column_list(r.as_str()))
                        .unwrap_or_default(),
                }
            }
        };
        // NOT VALID ends the action, after the parentheses (text inside them is the
        // constraint's own, `check (note <> 'not valid')`).
        let not_valid = re(&NOT_VALID, r"(?is)\bnot\s+valid\s*$");
        return Some(Operation::AddConstraint {
            table: table.to_owned(),
            kind,
            not_valid: not_valid.is_match(&rest[inside.len()..]),
        });
    }
    // A constraint of another form (`USING INDEX`, `EXCLUDE`): none of the above, and no
    // column either.
    let other = re(
        &OTHER_CONSTRAINT,
        r"(?is)^add\s+(?:constraint|check|unique|primary|foreign|exclude\s*(?:using\b|\())",
    );
    if other.is_match(action) {
        return None;
    }
    let not_null = re(
        &NOT_NULL,
        r#"(?is)^alter\s+(?:column\s+)?("[^"]+"|\w+)\s+set\s+not\s+null"#,
    );
    if let Some(c) = not_null.captures(action) {
        return Some(Operation::SetNotNull {
            table: table.to_owned(),
            column: fold(c[1].trim_matches('"'), c[1].starts_with('"')),
        });
    }
    let ty = re(
        &TYPE,
        r#"(?is)^alter\s+(?:column\s+)?("[^"]+"|\w+)\s+(?:set\s+data\s+)?type\s+(.+?)(?:\s+using\s+.*)?$"#,
    );
    if let Some(c) = ty.captures(action) {
        return Some(Operation::AlterType {
            table: table.to_owned(),
            column: fold(c[1].trim_matches('"'), c[1].starts_with('"')),
            new_type: c[2].trim().to_owned(),
        });
    }
    let add_column = re(
        &ADD_COLUMN,
        r#"(?is)^add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?("[^"]+"|\w+)\s+(.*)$"#,
    );
    if let Some(c) = add_column.captures(action) {
        let definition = c[2].to_ascii_lowercase();
        let default = definition
            .split_once("default")
            .map(|(_, d)| d.trim().to_owned());
        let volatile = default.as_deref().is_some_and(|d| {
            [
                "random(",
                "gen_random_uuid(",
                "uuid_generate_v4(",
                "clock_timestamp(",
                "nextval(",
                "timeofday(",
            ]
            .iter()
            .any(|f| d.contains(f))
        });
        return Some(Operation::AddColumn {
            table: table.to_owned(),
            column: fold(c[1].trim_matches('"'), c[1].starts_with('"')),
            volatile_default: volatile,
            not_null_without_default: definition.contains("not null") && default.is_none(),
        });
    }
    let drop = re(
        &DROP_COLUMN,
        r#"(?is)^drop\s+(?:column\s+)?(?:if\s+exists\s+)?("[^"]+"|\w+)"#,
    );
    if let Some(c) = drop.captures(action) {
        let column = fold(c[1].trim_matches('"'), c[1].starts_with('"'));
        if column != "constraint" {
            return Some(Operation::DropColumn {
                table: table.to_owned(),
                column,
            });
        }
    }
    let rename_column = re(
        &RENAME_COLUMN,
        r#"(?is)^rename\s+(?:column\s+)?("[^"]+"|\w+)\s+to\s+("[^"]+"|\w+)"#,
    );
    let rename_table = re(&RENAME_TABLE, r#"(?is)^rename\s+to\s+("[^"]+"|\w+)"#);
    if let Some(c) = rename_table.captures(action) {
        let schema = table.split('.').next().unwrap_or("public");
        return Some(Operation::RenameTable {
            table: table.to_owned(),
            to: format!(
                "{schema}.{}",
                fold(c[1].trim_matches('"'), c[1].starts_with('"'))
            ),
        });
    }
    if let Some(c) = rename_column.captures(action) {
        if !c[1].eq_ignore_ascii_case("constraint") {
            return Some(Operation::RenameColumn {
                table: table.to_owned(),
                column: fold(c[1].trim_matches('"'), c[1].starts_with('"')),
                to: fold(c[2].trim_matches('"'), c[2].starts_with('"')),
            });
        }
    }
    None
}

/// Whether the statement (or the session before it in its file) set a `lock_timeout`.
pub fn sets_lock_timeout(statement: &str) -> bool {
    static SETS: OnceLock<Regex> = OnceLock::new();
    let sets = re(
        &SETS,
        r"(?is)\bset\s+(?:(?:local|session)\s+)?lock_timeout\b|\bset_config\s*\(\s*'lock_timeout'",
    );
    static ELSEWHERE: OnceLock<Regex> = OnceLock::new();
    // `ALTER ROLE|DATABASE|FUNCTION … SET lock_timeout` and a function created with a `SET`
    // clause store a setting for later sessions or calls: this session has none from them.
    let elsewhere = re(&ELSEWHERE, r"(?is)^\s*(?:alter|create)\b");
    let text = crate::sql::without_comments(statement);
    !elsewhere.is_match(&text) && sets.is_match(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_as_the_catalog_spells_them() {
        assert_eq!(qualify("T"), "public.t");
        assert_eq!(qualify(r#"App."My.Table""#), "app.My.Table");
        assert_eq!(qualify(r#""a""b""#), r#"public.a"b"#);
        // Not a relation name: kept as written.
        assert_eq!(qualify("a.b.c"), "a.b.c");
    }

    #[test]
    fn index_builds() {
        assert_eq!(
            operations("CREATE INDEX messages_room_idx ON public.messages (room_id);"),
            vec![Operation::CreateIndex {
                table: "public.messages".into(),
                concurrently: false,
                unique: false
            }]
        );
        assert_eq!(
            operations("create unique index concurrently if not exists i on \"Msg\" (a)"),
            vec![Operation::CreateIndex {
                table: "public.Msg".into(),
                concurrently: true,
                unique: true
            }]
        );
    }

    #[test]
    fn alter_table_actions() {
        let ops = operations(
            "alter table messages add constraint body_len check (length(body) < 100) not valid, \
             alter column room_id set not null",
        );
        assert_eq!(
            ops,
            vec![
                Operation::AddConstraint {
                    table: "public.messages".into(),
                    kind: ConstraintKind::Check("length(body) < 100".into()),
                    not_valid: true
                },
                Operation::SetNotNull {
                    table: "public.messages".into(),
                    column: "room_id".into()
                }
            ]
        );
        let ops = operations(
            "ALTER TABLE public.messages ADD CONSTRAINT m_fk FOREIGN KEY (room_id) REFERENCES rooms (id);",
        );
        assert_eq!(
            ops,
            vec![Operation::AddConstraint {
                table: "public.messages".into(),
                kind: ConstraintKind::ForeignKey {
                    columns: vec!["room_id".into()],
                    references: "public.rooms".into(),
                    referenced: vec!["id".into()]
                },
                not_valid: false
            }]
        );
        assert!(matches!(
            operations("alter table t alter column n type bigint").as_slice(),
            [Operation::AlterType { column, new_type, .. }] if column == "n" && new_type == "bigint"
        ));
        assert!(matches!(
            operations("alter table t add column c uuid default gen_random_uuid()").as_slice(),
            [Operation::AddColumn {
                volatile_default: true,
                ..
            }]
        ));
        assert!(matches!(
            operations("alter table t add column c int default 0 not null").as_slice(),
            [Operation::AddColumn {
                volatile_default: false,
                not_null_without_default: false,
                ..
            }]
        ));
        assert!(matches!(
            operations("alter table t add unique (a, b)").as_slice(),
            [Operation::AddConstraint { kind: ConstraintKind::Unique(cols), .. }] if cols == &["a", "b"]
        ));
    }

    #[test]
    fn statements_inside_a_do_block() {
        assert_eq!(
            operations_within(
                "do $$\nbegin\n  alter table public.messages alter column note set not null;\nend $$;"
            ),
            vec![Operation::SetNotNull {
                table: "public.messages".into(),
                column: "note".into()
            }]
        );
        assert_eq!(
            operations_within("DO $body$ BEGIN truncate t; END $body$"),
            vec![Operation::Truncate {
                table: "public.t".into()
            }]
        );
        assert_eq!(
            operations_within("alter table t alter column a set not null"),
            operations("alter table t alter column a set not null")
        );
    }

    #[test]
    fn policies_that_open_a_table_to_anon() {
        assert_eq!(
            opens_to_anon(
                "create policy \"anon read\" on public.messages for select to anon using (true);"
            ),
            Some(("public.messages".to_owned(), "anon read".to_owned()))
        );
        assert!(
            opens_to_anon("create policy p on t using (true)").is_some(),
            "public"
        );
        assert!(
            opens_to_anon("create policy p on t for select to authenticated using (true)")
                .is_none()
        );
        assert!(
            opens_to_anon("create policy p on t for insert to anon with check (true)").is_none()
        );
        assert!(opens_to_anon(
            "create policy p on t for select to anon using (owner = auth.uid())"
        )
        .is_none());
        assert!(opens_to_anon(
            "create policy p on t as restrictive for select to anon using (true)"
        )
        .is_none());
    }

    #[test]
    fn statements_that_change_every_row() {
        assert_eq!(
            operations("truncate table public.a, only b restart identity cascade;"),
            vec![
                Operation::Truncate {
                    table: "public.a".into()
                },
                Operation::Truncate {
                    table: "public.b".into()
                }
            ]
        );
        assert_eq!(
            operations("delete from messages;"),
            vec![Operation::DeleteAll {
                table: "public.messages".into()
            }]
        );
        assert!(operations("delete from messages where id < 10").is_empty());
        assert_eq!(
            operations("update public.t set a = (select max(x) from u where u.id = 1)"),
            vec![Operation::UpdateAll {
                table: "public.t".into()
            }]
        );
        assert!(operations("update t set note = 'n' where note is null").is_empty());
        assert!(operations("update t set note = 'where'\nwhere id = 1").is_empty());
    }

    #[test]
    fn destructive_statements() {
        assert_eq!(
            operations("drop table if exists public.a, b cascade;"),
            vec![
                Operation::DropTable {
                    table: "public.a".into()
                },
                Operation::DropTable {
                    table: "public.b".into()
                }
            ]
        );
        assert_eq!(
            operations("alter table t drop column body"),
            vec![Operation::DropColumn {
                table: "public.t".into(),
                column: "body".into()
            }]
        );
        assert!(operations("alter table t drop constraint c").is_empty());
        assert_eq!(
            operations("alter table t rename to u"),
            vec![Operation::RenameTable {
                table: "public.t".into(),
                to: "public.u".into()
            }]
        );
        assert_eq!(
            operations("alter table t rename column a to b"),
            vec![Operation::RenameColumn {
                table: "public.t".into(),
                column: "a".into(),
                to: "b".into()
            }]
        );
    }
}
