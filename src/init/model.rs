//! What `db-ci init` reads of the replayed catalog to write matrices: the exposed tables and
//! views, their columns, keys and foreign keys, and which columns policies compare with
//! `auth.uid()`.

use tokio_postgres::Client;

use super::values::{parse_check, Rules};
use crate::catalog::QualifiedName;
use crate::error::{Error, Result};
use crate::sql::quote::quote_ident_if_needed as quote_ident;

/// A table or view in an exposed schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub schema: String,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<Column>,
    /// Primary key columns (empty: none).
    pub primary_key: Vec<String>,
    /// Column sets under a unique constraint (the primary key included).
    pub unique: Vec<Vec<String>>,
    pub foreign_keys: Vec<ForeignKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column (of a domain: its base type).
    pub data_type: String,
    pub not_null: bool,
    /// A default, an identity or a generation expression: the server fills it.
    pub has_default: bool,
    /// `GENERATED ALWAYS AS IDENTITY` or a generated column: never written.
    pub always_generated: bool,
    /// Labels of an enum type, in order.
    pub labels: Vec<String>,
    /// A uuid column policies compare with `auth.uid()`, or a foreign key to `auth.users`:
    /// whose row it is.
    pub owner: bool,
    /// Its CHECK conditions (the table's on this column alone, its domain's) and declared
    /// length: what a generated value must satisfy.
    pub rules: Rules,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    pub columns: Vec<String>,
    /// The referenced table.
    pub references: QualifiedName,
    pub referenced_columns: Vec<String>,
}

impl Relation {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The foreign key a column belongs to, with the referenced column it carries.
    pub fn reference_of(&self, column: &str) -> Option<(&ForeignKey, &str)> {
        self.foreign_keys.iter().find_map(|fk| {
            fk.columns
                .iter()
                .position(|c| c == column)
                .map(|i| (fk, fk.referenced_columns[i].as_str()))
        })
    }

    /// Whether `column` is, alone or with others, under a unique constraint.
    pub fn in_unique(&self, column: &str) -> bool {
        self.unique
            .iter()
            .any(|set| set.iter().any(|c| c == column))
    }
}

/// What policies read beyond `auth.uid()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyReads {
    /// A policy (or a function in the project) reads `app_metadata`: an admin actor is worth
    /// having. The claim and value compared, when one comparison is written out.
    pub app_metadata: Option<(String, String)>,
    /// The functions triggers on `auth.users` run (sign-up), with the `raw_user_meta_data`
    /// keys each reads: a new user needs them to be created at all.
    pub sign_up: Vec<SignUpTrigger>,
}

/// A function a trigger on `auth.users` runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignUpTrigger {
    /// `schema.name` of the function.
    pub function: String,
    pub keys: Vec<MetadataKey>,
}

/// A key of `raw_user_meta_data` a sign-up trigger reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataKey {
    pub key: String,
    /// The type it is cast to (`(… ->> 'age')::int`), when it is.
    pub cast: Option<String>,
    /// The table (as written) and column an `insert … values` puts it in.
    pub target: Option<(String, String)>,
}

/// The `raw_user_meta_data` keys `body` reads, in order, each once: `->>`, `->`, a subscript
/// or `jsonb_extract_path(_text)`, with the cast applied and the column an
/// `insert into t (…) values (…)` of the body puts it in.
pub fn metadata_keys(body: &str) -> Vec<MetadataKey> {
    static READ: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    static INSERT: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let read = READ.get_or_init(|| {
        regex::Regex::new(
            r#"(?i)(?:raw_user_meta_data\s*(?:->>|->|\[)\s*'((?:[^']|'')+)'|jsonb?_extract_path(?:_text)?\s*\(\s*(?:\w+\.)?raw_user_meta_data\s*,\s*'((?:[^']|'')+)')(?:\s*\]?\s*\)?\s*::\s*(double precision|timestamp with(?:out)? time zone|character varying|\w+))?"#,
        )
        .unwrap()
    });
    let insert = INSERT.get_or_init(|| {
        regex::Regex::new(r#"(?is)insert\s+into\s+([\w."]+)\s*\(([^)]*)\)\s*values\s*\("#).unwrap()
    });
    let keys_in = |text: &str| -> Vec<MetadataKey> {
        read.captures_iter(text)
            .map(|c| MetadataKey {
                key: c
                    .get(1)
                    .or_else(|| c.get(2))
                    .map(|m| m.as_str().replace("''", "'"))
                    .unwrap_or_default(),
                cast: c.get(3).map(|m| m.as_str().trim().to_lowercase()),
                target: None,
            })
            .collect()
    };
    let mut keys: Vec<MetadataKey> = Vec::new();
    for key in keys_in(body) {
        if !keys.iter().any(|k| k.key == key.key) {
            keys.push(key);
        }
    }
    for found in insert.captures_iter(body) {
        let table = found[1].to_owned();
        let columns: Vec<String> = found[2]
            .split(',')
            .map(|c| c.trim().trim_matches('"').to_owned())
            .collect();
        let open = found.get(0).expect("whole match").end() - 1;
        let Some(close) = super::values::closing(body, open) else {
            continue;
        };
        let expressions = super::values::split_top(&body[open + 1..close], ",");
        for (column, expression) in columns.iter().zip(expressions) {
            for read in keys_in(expression) {
                if let Some(key) = keys
                    .iter_mut()
                    .find(|k| k.key == read.key && k.target.is_none())
                {
                    key.target = Some((table.clone(), column.clone()));
                }
            }
        }
    }
    keys
}

/// Reads the relations of `schemas`, and of the schemas their foreign keys reach, in name
/// order: extension members and the storage platform's own bookkeeping (all of `storage` but
/// `buckets` and `objects`) left out.
pub async fn read(client: &Client, schemas: &[String]) -> Result<(Vec<Relation>, PolicyReads)> {
    let failed = |what: &str, e: tokio_postgres::Error| {
        Error::Environment(format!(
            "read the {what} of the exposed schemas: {}",
            crate::sql::db_error_text(&e)
        ))
    };
    // The schemas the exposed tables reference, transitively (a document's storage object,
    // a private schema's tenant): their rows are generated too, as support for the cases.
    // auth stays out: its users are the actors.
    let reached = client
        .query(
            "with recursive reached(oid) as ( \
               select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace \
               where n.nspname = any($1) \
               union \
               select k.confrelid from pg_constraint k join reached r on k.conrelid = r.oid \
               where k.contype = 'f') \
             select distinct n.nspname::text from reached r \
             join pg_class c on c.oid = r.oid join pg_namespace n on n.oid = c.relnamespace",
            &[&schemas],
        )
        .await
        .map_err(|e| failed("referenced schemas", e))?;
    let mut all: Vec<String> = schemas.to_vec();
    for row in reached {
        let schema: String = row.get(0);
        if schema != "auth" && !all.contains(&schema) {
            all.push(schema);
        }
    }
    let schemas = &all[..];
    let not_member = crate::sql::catalog::not_extension_member("pg_class", "c.oid");
    let rows = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text, c.relkind::text, a.attname::text, \
                   format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid), \
                               case when t.typtype = 'd' then t.typtypmod else a.atttypmod end), \
                   a.attnotnull, \
                   a.atthasdef or a.attidentity <> '' or a.attgenerated <> '', \
                   a.attidentity = 'a' or a.attgenerated <> '', \
                   coalesce((select array_agg(e.enumlabel::text order by e.enumsortorder) \
                             from pg_enum e where e.enumtypid = a.atttypid), '{{}}') \
                 from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped \
                 join pg_type t on t.oid = a.atttypid \
                 where n.nspname = any($1) and c.relkind in ('r', 'p', 'v', 'm') \
                   and not c.relispartition and {not_member} \
                   and (n.nspname <> 'storage' or c.relname in ('buckets', 'objects')) \
                 order by 1, 2, a.attnum"
            ),
            &[&schemas],
        )
        .await
        .map_err(|e| failed("columns", e))?;
    let mut relations: Vec<Relation> = Vec::new();
    for row in rows {
        let (schema, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if relations
            .last()
            .is_none_or(|r| r.schema != schema || r.name != name)
        {
            relations.push(Relation {
                schema,
                name,
                kind: if matches!(kind.as_str(), "r" | "p") {
                    RelationKind::Table
                } else {
                    RelationKind::View
                },
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique: Vec::new(),
                foreign_keys: Vec::new(),
            });
        }
        let relation = relations.last_mut().expect("pushed above");
        relation.columns.push(Column {
            name: row.get(3),
            data_type: row.get(4),
            not_null: row.get(5),
            has_default: row.get(6),
            always_generated: row.get(7),
            labels: row.get(8),
            owner: false,
            rules: Rules {
                checks: Vec::new(),
                max_length: declared_length(&row.get::<_, String>(4)),
            },
        });
    }

    // CHECKs on one column, the table's own and its domain's (`VALUE` for the column).
    let checks = client
        .query(
            "select n.nspname::text, c.relname::text, a.attname::text, pg_get_constraintdef(k.oid) \
             from pg_constraint k \
             join pg_class c on c.oid = k.conrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = k.conkey[1] \
             where n.nspname = any($1) and k.contype = 'c' and cardinality(k.conkey) = 1 \
             union all \
             select n.nspname::text, c.relname::text, a.attname::text, pg_get_constraintdef(k.oid) \
             from pg_attribute a \
             join pg_class c on c.oid = a.attrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             join pg_constraint k on k.contypid = a.atttypid and k.contype = 'c' \
             where n.nspname = any($1) and a.attnum > 0 and not a.attisdropped",
            &[&schemas],
        )
        .await
        .map_err(|e| failed("check constraints", e))?;
    for row in checks {
        let (schema, name, column, definition): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if let Some(column) = relations
            .iter_mut()
            .find(|r| r.schema == schema && r.name == name)
            .and_then(|r| r.columns.iter_mut().find(|c| c.name == column))
        {
            let parsed = parse_check(&definition, &column.name);
            column.rules.checks.extend(parsed);
        }
    }

    let keys = client
        .query(
            "select n.nspname::text, c.relname::text, k.contype::text, \
               array(select a.attname::text from unnest(k.conkey) with ordinality u(num, ord) \
                     join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num \
                     order by u.ord), \
               coalesce(rn.nspname::text, ''), coalesce(rc.relname::text, ''), \
               coalesce(array(select a.attname::text from unnest(k.confkey) with ordinality u(num, ord) \
                     join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.num \
                     order by u.ord), '{}') \
             from pg_constraint k \
             join pg_class c on c.oid = k.conrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             left join pg_class rc on rc.oid = k.confrelid \
             left join pg_namespace rn on rn.oid = rc.relnamespace \
             where n.nspname = any($1) and k.contype in ('p', 'u', 'f') \
             order by 1, 2, k.conname",
            &[&schemas],
        )
        .await
        .map_err(|e| failed("keys", e))?;
    for row in keys {
        let (schema, name, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let Some(relation) = relations
            .iter_mut()
            .find(|r| r.schema == schema && r.name == name)
        else {
            continue;
        };
        let columns: Vec<String> = row.get(3);
        match kind.as_str() {
            "p" => {
                relation.primary_key = columns.clone();
                relation.unique.push(columns);
            }
            "u" => relation.unique.push(columns),
            _ => relation.foreign_keys.push(ForeignKey {
                columns,
                references: QualifiedName::new(row.get::<_, String>(4), row.get::<_, String>(5)),
                referenced_columns: row.get(6),
            }),
        }
    }
    // Unique indexes count as unique constraints for collisions.
    let indexes = client
        .query(
            "select n.nspname::text, c.relname::text, \
               array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality u(num, ord) \
                     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.num \
                     order by u.ord) \
             from pg_index i \
             join pg_class c on c.oid = i.indrelid \
             join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = any($1) and i.indisunique and not i.indisprimary",
            &[&schemas],
        )
        .await
        .map_err(|e| failed("unique indexes", e))?;
    for row in indexes {
        let (schema, name, columns): (String, String, Vec<String>) =
            (row.get(0), row.get(1), row.get(2));
        if let Some(relation) = relations
            .iter_mut()
            .find(|r| r.schema == schema && r.name == name)
        {
            if !columns.is_empty() && !relation.unique.contains(&columns) {
                relation.unique.push(columns);
            }
        }
    }

    let policies = client
        .query(
            "select schemaname::text, tablename::text, \
               coalesce(qual, '') || ' ' || coalesce(with_check, '') \
             from pg_policies where schemaname = any($1)",
            &[&schemas],
        )
        .await
        .map_err(|e| failed("policies", e))?;
    let mut texts = Vec::new();
    for row in policies {
        let (schema, name, text): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        mark_owners(&mut relations, &schema, &name, &text);
        texts.push(text);
    }
    for relation in &mut relations {
        for fk in &relation.foreign_keys {
            if fk.references.is_auth_users() {
                for column in &fk.columns {
                    if let Some(c) = relation.columns.iter_mut().find(|c| &c.name == column) {
                        c.owner = true;
                    }
                }
            }
        }
    }
    // Functions policies call read claims too (`is_admin()`).
    let bodies = client
        .query(
            "select p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace \
             where n.nspname not in ('pg_catalog', 'information_schema', 'auth', 'storage', \
               'extensions', 'graphql', 'graphql_public', 'realtime', 'supabase_functions', \
               'vault', 'pgsodium', 'net', 'cron', 'pgbouncer') \
               and p.prosrc like '%app_metadata%'",
            &[],
        )
        .await
        .map_err(|e| failed("functions", e))?;
    texts.extend(bodies.iter().map(|r| r.get::<_, String>(0)));
    let mut reads = policy_reads(&texts);
    // What the sign-up triggers read of a new user's metadata.
    let triggers = client
        .query(
            "select distinct n.nspname::text || '.' || p.proname::text, p.prosrc \
             from pg_trigger t join pg_proc p on p.oid = t.tgfoid \
             join pg_namespace n on n.oid = p.pronamespace \
             where t.tgrelid = 'auth.users'::regclass and not t.tgisinternal \
             order by 1",
            &[],
        )
        .await
        .map_err(|e| failed("sign-up triggers", e))?;
    reads.sign_up = triggers
        .iter()
        .map(|row| SignUpTrigger {
            function: row.get(0),
            keys: metadata_keys(row.get(1)),
        })
        .collect();
    Ok((relations, reads))
}

/// The length `character(n)` and `character varying(n)` allow.
fn declared_length(data_type: &str) -> Option<usize> {
    let (base, rest) = data_type.split_once('(')?;
    if !matches!(base.trim(), "character" | "character varying") {
        return None;
    }
    rest.trim_end_matches(')').trim().parse().ok()
}

/// Marks the uuid columns of `schema.name` that `policy` compares with `auth.uid()`.
fn mark_owners(relations: &mut [Relation], schema: &str, name: &str, policy: &str) {
    if !policy.contains("auth.uid()") {
        return;
    }
    let Some(relation) = relations
        .iter_mut()
        .find(|r| r.schema == schema && r.name == name)
    else {
        return;
    };
    for column in &mut relation.columns {
        if column.data_type == "uuid" && mentions(policy, &column.name) {
            column.owner = true;
        }
    }
}

/// Whether `text` names `word` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    text.match_indices(word).any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + word.len()).copied();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Reads how policies use `app_metadata`: `(… -> 'app_metadata') ->> 'role') = 'admin'`.
pub fn policy_reads(texts: &[String]) -> PolicyReads {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        regex::Regex::new(
            r"app_metadata'(?:::text)?\)?\s*->>\s*'(\w+)'(?:::text)?\)?\s*=\s*'([^']+)'",
        )
        .unwrap()
    });
    let mentioning: Vec<&String> = texts
        .iter()
        .filter(|t| t.contains("app_metadata"))
        .collect();
    if mentioning.is_empty() {
        return PolicyReads::default();
    }
    let written = mentioning
        .iter()
        .find_map(|t| pattern.captures(t))
        .map(|c| (c[1].to_owned(), c[2].to_owned()));
    PolicyReads {
        app_metadata: Some(written.unwrap_or_else(|| ("role".to_owned(), "admin".to_owned()))),
        sign_up: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_columns_are_whole_words_in_policies_reading_auth_uid() {
        assert!(mentions(
            "(( SELECT auth.uid() AS uid) = user_id)",
            "user_id"
        ));
        assert!(!mentions(
            "(( SELECT auth.uid() AS uid) = other_user_id)",
            "user_id"
        ));
        assert!(!mentions("user_idx = 1", "user_id"));
    }

    #[test]
    fn sign_up_triggers_metadata_keys_are_read_with_their_cast_and_column() {
        let body = "begin
            insert into public.profiles (id, handle, username, age)
            values (new.id, new.raw_user_meta_data->>'handle',
                    coalesce(NEW.raw_user_meta_data ->> 'username', split_part(new.email, '@', 1)),
                    (new.raw_user_meta_data->>'age')::int);
            perform public.track(jsonb_extract_path_text(new.raw_user_meta_data, 'source'));
            if new.raw_user_meta_data->>'handle' is null then raise 'no handle'; end if;
            return new;
          end";
        let keys = metadata_keys(body);
        type Summary<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);
        let summary: Vec<Summary> = keys
            .iter()
            .map(|k| {
                (
                    k.key.as_str(),
                    k.cast.as_deref(),
                    k.target.as_ref().map(|(t, c)| (t.as_str(), c.as_str())),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("handle", None, Some(("public.profiles", "handle"))),
                ("username", None, Some(("public.profiles", "username"))),
                ("age", Some("int"), Some(("public.profiles", "age"))),
                ("source", None, None),
            ]
        );
        assert!(metadata_keys("begin insert into p (id) values (new.id); end").is_empty());
    }

    #[test]
    fn the_admin_claim_is_read_from_the_comparison() {
        let texts = vec![
            "true".to_owned(),
            "(((auth.jwt() -> 'app_metadata'::text) ->> 'user_role'::text) = 'owner'::text)"
                .to_owned(),
        ];
        assert_eq!(
            policy_reads(&texts).app_metadata,
            Some(("user_role".to_owned(), "owner".to_owned()))
        );
        let texts = vec!["select coalesce(auth.jwt() -> 'app_metadata', '{}')".to_owned()];
        assert_eq!(
            policy_reads(&texts).app_metadata,
            Some(("role".to_owned(), "admin".to_owned()))
        );
        assert_eq!(policy_reads(&["true".to_owned()]).app_metadata, None);
    }
}
