//! The catalog model: every object of the project's schemas, read from `pg_catalog` into
//! plain sorted structs without OIDs or volatile values. The snapshot renders it; the lints
//! read it.

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::sql::catalog::not_extension_member;
use crate::sql::db_error_text;
pub use crate::sql::kinds::{
    ConstraintKind, PolicyCommand, RoutineKind, TableKind, TriggerState, TypeKind, Volatility,
};

/// Schemas the platform (the shim, or real Supabase) owns. Their objects are not the
/// project's and are left out, except what migrations add to platform tables: policies
/// (`storage.objects`) and triggers calling project functions (`on_auth_user_created`).
pub const PLATFORM_SCHEMAS: &[&str] = &[
    "_analytics",
    "_realtime",
    "auth",
    "cron",
    "extensions",
    "graphql",
    "graphql_public",
    "net",
    "pgbouncer",
    "pgsodium",
    "pgsodium_masks",
    "pgtle",
    "realtime",
    "storage",
    "supabase_functions",
    "supabase_migrations",
    "vault",
];

/// Privileges that exist on one PostgreSQL version only (MAINTAIN, PostgreSQL 17): left out
/// so that snapshots are identical across server versions.
const VERSION_SPECIFIC_PRIVILEGES: &[&str] = &["MAINTAIN"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub schemas: Vec<Schema>,
    pub extensions: Vec<Extension>,
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    pub functions: Vec<Function>,
    pub types: Vec<TypeDef>,
    pub sequences: Vec<Sequence>,
    pub default_privileges: Vec<DefaultPrivileges>,
    pub publications: Vec<Publication>,
}

/// Privileges of one grantee on one object; `PUBLIC` is everyone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    pub grantee: String,
    /// Sorted privilege names; `SELECT (grantable)` when held WITH GRANT OPTION.
    pub privileges: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    pub name: String,
    pub owner: String,
    pub comment: Option<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    pub name: String,
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub schema: String,
    pub name: String,
    pub kind: TableKind,
    /// A platform table (e.g. `storage.objects`) listed only for the policies and triggers
    /// the project put on it.
    pub platform: bool,
    pub owner: String,
    pub rls: bool,
    pub force_rls: bool,
    pub comment: Option<String>,
    pub partition_of: Option<String>,
    pub columns: Vec<Column>,
    pub constraints: Vec<Constraint>,
    pub indexes: Vec<Index>,
    pub policies: Vec<Policy>,
    pub triggers: Vec<Trigger>,
    pub grants: Vec<Grant>,
}

impl Table {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// Position among the live columns (1-based); not rendered, used to match index keys.
    pub number: i16,
    pub data_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    pub identity: Option<String>,
    pub generated: Option<String>,
    pub comment: Option<String>,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
    pub definition: String,
    /// Attribute numbers of the constrained columns.
    pub columns: Vec<i16>,
    /// For a foreign key: the referenced table, `schema.name`.
    pub references: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    pub definition: String,
    /// Attribute numbers of the key columns; 0 for an expression.
    pub columns: Vec<i16>,
    pub partial: bool,
    /// The definition without the index's own name: equal for duplicates.
    pub shape: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub command: PolicyCommand,
    pub permissive: bool,
    /// Role names, sorted; `public` for everyone.
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub name: String,
    pub definition: String,
    pub enabled: TriggerState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    pub owner: String,
    /// `security_invoker = true`: the view runs with the caller's rights; otherwise with
    /// its owner's, bypassing the RLS of the tables it reads when the owner does.
    pub security_invoker: bool,
    pub definition: String,
    pub comment: Option<String>,
    pub grants: Vec<Grant>,
    /// Relations the view reads, `schema.name`, with their RLS flag; not rendered (the
    /// definition shows them), used by the lints.
    pub reads: Vec<(String, bool)>,
}

impl View {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub schema: String,
    pub name: String,
    pub arguments: String,
    pub kind: RoutineKind,
    pub returns: Option<String>,
    pub language: String,
    pub volatility: Volatility,
    pub strict: bool,
    pub security_definer: bool,
    pub leakproof: bool,
    /// `proconfig`: `search_path=…` and other settings pinned on the function.
    pub config: Vec<String>,
    pub owner: String,
    pub comment: Option<String>,
    pub grants: Vec<Grant>,
    pub body: String,
}

impl Function {
    pub fn signature(&self) -> String {
        format!("{}.{}({})", self.schema, self.name, self.arguments)
    }

    pub fn pins_search_path(&self) -> bool {
        self.config.iter().any(|c| c.starts_with("search_path="))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDef {
    pub schema: String,
    pub name: String,
    pub kind: TypeKind,
    pub owner: String,
    /// Enum labels in order, a domain's base type, default and checks, a composite's
    /// attributes, a range's subtype.
    pub definition: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub schema: String,
    pub name: String,
    pub definition: String,
    pub owned_by: Option<String>,
    pub owner: String,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPrivileges {
    pub role: String,
    pub schema: Option<String>,
    /// `tables`, `sequences`, `functions`, `types` or `schemas`.
    pub object_type: String,
    pub grants: Vec<Grant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    pub name: String,
    pub all_tables: bool,
    pub operations: Vec<String>,
    /// Tables of the project's schemas in the publication, sorted.
    pub tables: Vec<String>,
}

/// `acl` as `grantee=privileges` lines (aclexplode), grouped per grantee.
const ACL_EXPLODE: &str = "(select array_agg(case when a.grantee = 0 then 'PUBLIC' \
       else pg_get_userbyid(a.grantee)::text end || '=' || a.privilege_type \
       || case when a.is_grantable then ' (grantable)' else '' end) from aclexplode({acl}) a)";

fn acl(expr: &str) -> String {
    ACL_EXPLODE.replace("{acl}", expr)
}

/// Turns `grantee=PRIV` lines into sorted [`Grant`]s, dropping version-specific privileges.
fn grants(lines: Option<Vec<String>>) -> Vec<Grant> {
    let mut by_grantee: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in lines.unwrap_or_default() {
        let Some((grantee, privilege)) = line.split_once('=') else {
            continue;
        };
        let bare = privilege.split(' ').next().unwrap_or(privilege);
        if VERSION_SPECIFIC_PRIVILEGES.contains(&bare) {
            continue;
        }
        let grantee = if grantee == "0" { "PUBLIC" } else { grantee };
        by_grantee
            .entry(grantee.to_owned())
            .or_default()
            .push(privilege.to_owned());
    }
    by_grantee
        .into_iter()
        .map(|(grantee, mut privileges)| {
            privileges.sort();
            privileges.dedup();
            Grant {
                grantee,
                privileges,
            }
        })
        .collect()
}

/// The schemas whose objects are the project's: not PostgreSQL's, not the platform's.
fn project_schema(alias: &str) -> String {
    format!(
        "{alias}.nspname not in ('pg_catalog', 'information_schema') \
         and {alias}.nspname not like 'pg\\_toast%' and {alias}.nspname not like 'pg\\_temp%' \
         and {alias}.nspname <> all($1::text[])"
    )
}

async fn rows(client: &Client, what: &str, sql: &str) -> Result<Vec<tokio_postgres::Row>> {
    let platform: Vec<String> = PLATFORM_SCHEMAS.iter().map(|s| s.to_string()).collect();
    let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] = if sql.contains("$1") {
        &[&platform]
    } else {
        &[]
    };
    client.query(sql, params).await.map_err(|e| {
        Error::environment(format!("read the catalog ({what}): {}", db_error_text(&e)))
    })
}

/// Normalises text the server stores verbatim (function bodies, comments): no trailing
/// whitespace on any line, no carriage returns, no leading or trailing blank lines.
pub fn tidy(text: &str) -> String {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.trim_end_matches([' ', '\t', '\r']))
        .collect();
    let first = lines.iter().position(|l| !l.is_empty()).unwrap_or(0);
    let last = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(0, |i| i + 1);
    lines[first..last.max(first)].join("\n")
}

impl Catalog {
    /// Reads the catalog of the database `client` is connected to. The caller decides the
    /// transaction (the snapshot stage and drift read inside a read-only one); names print
    /// schema-qualified because the search path is pinned to `pg_catalog` meanwhile.
    pub async fn read(client: &Client) -> Result<Catalog> {
        client
            .batch_execute("set local search_path = pg_catalog")
            .await
            .map_err(|e| Error::environment(format!("pin the search path: {e}")))?;
        let major: i32 = client
            .query_one(
                "select current_setting('server_version_num')::int / 10000",
                &[],
            )
            .await
            .map_err(|e| Error::environment(format!("read the server version: {e}")))?
            .get(0);
        let mut catalog = Catalog {
            schemas: read_schemas(client).await?,
            extensions: read_extensions(client).await?,
            tables: read_tables(client).await?,
            views: read_views(client, major as u32).await?,
            functions: read_functions(client).await?,
            types: read_types(client).await?,
            sequences: read_sequences(client).await?,
            default_privileges: read_default_privileges(client).await?,
            publications: read_publications(client).await?,
        };
        catalog.tables.sort_by(|a, b| {
            (a.platform, &a.schema, &a.name).cmp(&(b.platform, &b.schema, &b.name))
        });
        Ok(catalog)
    }

    pub fn table(&self, qualified: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.qualified() == qualified)
    }

    /// The project's own tables (not the platform tables listed for their policies).
    pub fn project_tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.iter().filter(|t| !t.platform)
    }
}

async fn read_schemas(client: &Client) -> Result<Vec<Schema>> {
    let sql = format!(
        "select n.nspname::text, pg_get_userbyid(n.nspowner)::text, obj_description(n.oid, 'pg_namespace'), \
                {} \
         from pg_namespace n where {} and {} order by 1",
        acl("coalesce(n.nspacl, acldefault('n', n.nspowner))"),
        project_schema("n"),
        not_extension_member("pg_namespace", "n.oid")
    );
    Ok(rows(client, "schemas", &sql)
        .await?
        .iter()
        .map(|r| Schema {
            name: r.get(0),
            owner: r.get(1),
            comment: r.get::<_, Option<String>>(2).map(|c| tidy(&c)),
            grants: grants(r.get(3)),
        })
        .collect())
}

async fn read_extensions(client: &Client) -> Result<Vec<Extension>> {
    // Versions differ between server builds; the name and schema are what the project chose.
    let sql = "select e.extname::text, e.extnamespace::regnamespace::text from pg_extension e \
               where e.extname <> 'plpgsql' order by 1";
    Ok(rows(client, "extensions", sql)
        .await?
        .iter()
        .map(|r| Extension {
            name: r.get(0),
            schema: r.get(1),
        })
        .collect())
}

async fn read_tables(client: &Client) -> Result<Vec<Table>> {
    let tables_sql = format!(
        "select n.nspname::text, c.relname::text, \
                c.relkind::text, \
                pg_get_userbyid(c.relowner)::text, c.relrowsecurity, c.relforcerowsecurity, \
                obj_description(c.oid, 'pg_class'), \
                case when c.relispartition then (select i.inhparent::regclass::text from pg_inherits i where i.inhrelid = c.oid) \
                     || ' ' || pg_get_expr(c.relpartbound, c.oid) end, \
                {} \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind in ('r', 'p', 'f') and {} and {} order by 1, 2",
        acl("coalesce(c.relacl, acldefault('r', c.relowner))"),
        project_schema("n"),
        not_extension_member("pg_class", "c.oid")
    );
    let mut tables: Vec<Table> = rows(client, "tables", &tables_sql)
        .await?
        .iter()
        .map(|r| Table {
            schema: r.get(0),
            name: r.get(1),
            kind: TableKind::from_code(r.get(2)),
            platform: false,
            owner: r.get(3),
            rls: r.get(4),
            force_rls: r.get(5),
            comment: r.get::<_, Option<String>>(6).map(|c| tidy(&c)),
            partition_of: r.get(7),
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            policies: Vec::new(),
            triggers: Vec::new(),
            grants: grants(r.get(8)),
        })
        .collect();
    let index_of = |tables: &Vec<Table>, schema: &str, name: &str| {
        tables
            .binary_search_by(|t| (t.schema.as_str(), t.name.as_str()).cmp(&(schema, name)))
            .ok()
    };

    let columns_sql = format!(
        "select n.nspname::text, c.relname::text, a.attname::text, \
                (rank() over (partition by c.oid order by a.attnum))::int2, a.attnum, \
                format_type(a.atttypid, a.atttypmod) \
                  || case when a.attcollation <> 0 and a.attcollation <> t.typcollation \
                          then ' collate ' || a.attcollation::regcollation::text else '' end, \
                a.attnotnull, \
                case when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end, \
                case a.attidentity when 'a' then 'always' when 'd' then 'by default' end, \
                case when a.attgenerated = 's' then pg_get_expr(d.adbin, d.adrelid) end, \
                col_description(c.oid, a.attnum), \
                case when a.attacl is not null then {} end \
         from pg_attribute a join pg_class c on c.oid = a.attrelid \
         join pg_namespace n on n.oid = c.relnamespace join pg_type t on t.oid = a.atttypid \
         left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum \
         where a.attnum > 0 and not a.attisdropped and c.relkind in ('r', 'p', 'f') and {} \
         order by 1, 2, a.attnum",
        acl("a.attacl"),
        project_schema("n")
    );
    // Index keys and constraint columns use attnum; map them to live positions.
    let mut attnum_maps: std::collections::HashMap<(String, String), Vec<(i16, i16)>> =
        Default::default();
    for r in rows(client, "columns", &columns_sql).await? {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let Some(i) = index_of(&tables, &schema, &table) else {
            continue;
        };
        let position: i16 = r.get(3);
        attnum_maps
            .entry((schema, table))
            .or_default()
            .push((r.get(4), position));
        tables[i].columns.push(Column {
            name: r.get(2),
            number: position,
            data_type: r.get(5),
            not_null: r.get(6),
            default: r.get(7),
            identity: r.get(8),
            generated: r.get(9),
            comment: r.get::<_, Option<String>>(10).map(|c| tidy(&c)),
            grants: grants(r.get(11)),
        });
    }
    let position = |maps: &std::collections::HashMap<(String, String), Vec<(i16, i16)>>,
                    schema: &str,
                    table: &str,
                    attnum: i16| {
        maps.get(&(schema.to_owned(), table.to_owned()))
            .and_then(|m| m.iter().find(|(a, _)| *a == attnum))
            .map_or(0, |(_, p)| *p)
    };

    let constraints_sql = format!(
        "select n.nspname::text, c.relname::text, k.conname::text, k.contype::text, \
                pg_get_constraintdef(k.oid) || case when k.convalidated then '' else ' NOT VALID' end, \
                coalesce(k.conkey, '{{}}'::int2[]), \
                case when k.contype = 'f' then k.confrelid::regclass::text end \
         from pg_constraint k join pg_class c on c.oid = k.conrelid \
         join pg_namespace n on n.oid = c.relnamespace \
         where {} order by 1, 2, 3",
        project_schema("n")
    );
    for r in rows(client, "constraints", &constraints_sql).await? {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let Some(i) = index_of(&tables, &schema, &table) else {
            continue;
        };
        let keys: Vec<i16> = r.get(5);
        let references: Option<String> = r.get(6);
        tables[i].constraints.push(Constraint {
            name: r.get(2),
            kind: ConstraintKind::from_code(r.get(3)),
            definition: r.get(4),
            columns: keys
                .iter()
                .map(|a| position(&attnum_maps, &schema, &table, *a))
                .collect(),
            references: references.map(|r| qualify(&r)),
        });
    }

    let indexes_sql = format!(
        "select n.nspname::text, c.relname::text, ic.relname::text, pg_get_indexdef(i.indexrelid), \
                i.indkey::int2[], i.indpred is not null \
         from pg_index i join pg_class c on c.oid = i.indrelid \
         join pg_class ic on ic.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace \
         where {} order by 1, 2, 3",
        project_schema("n")
    );
    for r in rows(client, "indexes", &indexes_sql).await? {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let Some(i) = index_of(&tables, &schema, &table) else {
            continue;
        };
        let name: String = r.get(2);
        let definition: String = r.get(3);
        let keys: Vec<i16> = r.get(4);
        let shape = definition.replacen(&format!(" {} ON ", quote_if_needed(&name)), " ON ", 1);
        tables[i].indexes.push(Index {
            name,
            definition,
            columns: keys
                .iter()
                .map(|a| {
                    if *a == 0 {
                        0
                    } else {
                        position(&attnum_maps, &schema, &table, *a)
                    }
                })
                .collect(),
            partial: r.get(5),
            shape,
        });
    }

    // Policies and triggers also on platform tables: those are the project's additions.
    let policies_sql = "select n.nspname::text, c.relname::text, p.polname::text, \
                p.polcmd::text, \
                p.polpermissive, \
                (select array_agg(case when r = 0 then 'public' else pg_get_userbyid(r)::text end order by 1) \
                   from unnest(p.polroles) r), \
                pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid), \
                c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)::text \
         from pg_policy p join pg_class c on c.oid = p.polrelid join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2, 3";
    for r in rows(client, "policies", policies_sql).await? {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let i = match index_of(&tables, &schema, &table) {
            Some(i) => i,
            None => platform_table(&mut tables, &schema, &table, r.get(8), r.get(9), r.get(10)),
        };
        tables[i].policies.push(Policy {
            name: r.get(2),
            command: PolicyCommand::from_code(r.get(3)),
            permissive: r.get(4),
            roles: r.get::<_, Option<Vec<String>>>(5).unwrap_or_default(),
            using: r.get(6),
            with_check: r.get(7),
        });
    }

    let triggers_sql = format!(
        "select n.nspname::text, c.relname::text, t.tgname::text, pg_get_triggerdef(t.oid), \
                t.tgenabled::text, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)::text, \
                {} as project_table, {} as project_function \
         from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace \
         join pg_proc p on p.oid = t.tgfoid join pg_namespace fn on fn.oid = p.pronamespace \
         where not t.tgisinternal and n.nspname not in ('pg_catalog', 'information_schema') \
         order by 1, 2, 3",
        project_schema("n"),
        project_schema("fn")
    );
    for r in rows(client, "triggers", &triggers_sql).await? {
        let (schema, table): (String, String) = (r.get(0), r.get(1));
        let (project_table, project_function): (bool, bool) = (r.get(8), r.get(9));
        if !project_table && !project_function {
            continue; // the platform's own trigger on its own table
        }
        let i = match index_of(&tables, &schema, &table) {
            Some(i) => i,
            None => platform_table(&mut tables, &schema, &table, r.get(5), r.get(6), r.get(7)),
        };
        tables[i].triggers.push(Trigger {
            name: r.get(2),
            definition: r.get(3),
            enabled: TriggerState::from_code(r.get(4)),
        });
    }
    Ok(tables)
}

/// Adds (keeping the order) a platform table that carries project policies or triggers.
fn platform_table(
    tables: &mut Vec<Table>,
    schema: &str,
    name: &str,
    rls: bool,
    force_rls: bool,
    owner: String,
) -> usize {
    let at = tables
        .binary_search_by(|t| (t.schema.as_str(), t.name.as_str()).cmp(&(schema, name)))
        .unwrap_or_else(|at| at);
    tables.insert(
        at,
        Table {
            schema: schema.to_owned(),
            name: name.to_owned(),
            kind: TableKind::Table,
            platform: true,
            owner,
            rls,
            force_rls,
            comment: None,
            partition_of: None,
            columns: Vec::new(),
            constraints: Vec::new(),
            indexes: Vec::new(),
            policies: Vec::new(),
            triggers: Vec::new(),
            grants: Vec::new(),
        },
    );
    at
}

/// `regclass` text prints unqualified names in the search path (here only pg_catalog).
fn qualify(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("pg_catalog.{name}")
    }
}

fn quote_if_needed(name: &str) -> String {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if plain {
        name.to_owned()
    } else {
        crate::sql::quote_ident(name)
    }
}

async fn read_views(client: &Client, server_major: u32) -> Result<Vec<View>> {
    let sql = format!(
        "select n.nspname::text, c.relname::text, c.relkind = 'm', pg_get_userbyid(c.relowner)::text, \
                coalesce(c.reloptions::text[] && array['security_invoker=true', 'security_invoker=on', \
                  'security_invoker=1', 'security_invoker=yes'], false), \
                pg_get_viewdef(c.oid, true), obj_description(c.oid, 'pg_class'), {}, \
                (select array_agg(distinct rn.nspname || '.' || rc.relname || '=' || rc.relrowsecurity) \
                   from pg_rewrite rw join pg_depend d on d.classid = 'pg_rewrite'::regclass and d.objid = rw.oid \
                   join pg_class rc on rc.oid = d.refobjid and d.refclassid = 'pg_class'::regclass \
                   join pg_namespace rn on rn.oid = rc.relnamespace \
                   where rw.ev_class = c.oid and rc.oid <> c.oid) \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind in ('v', 'm') and {} and {} order by 1, 2",
        acl("coalesce(c.relacl, acldefault('r', c.relowner))"),
        project_schema("n"),
        not_extension_member("pg_class", "c.oid")
    );
    Ok(rows(client, "views", &sql)
        .await?
        .iter()
        .map(|r| {
            let mut reads: Vec<(String, bool)> = r
                .get::<_, Option<Vec<String>>>(8)
                .unwrap_or_default()
                .iter()
                .filter_map(|line| {
                    let (name, rls) = line.rsplit_once('=')?;
                    Some((name.to_owned(), rls == "true"))
                })
                .collect();
            reads.sort();
            View {
                schema: r.get(0),
                name: r.get(1),
                materialized: r.get(2),
                owner: r.get(3),
                security_invoker: r.get(4),
                definition: normalise_view_definition(&tidy(&r.get::<_, String>(5)), server_major),
                comment: r.get::<_, Option<String>>(6).map(|c| tidy(&c)),
                grants: grants(r.get(7)),
                reads,
            }
        })
        .collect())
}

async fn read_functions(client: &Client) -> Result<Vec<Function>> {
    let sql = format!(
        "select n.nspname::text, p.proname::text, pg_get_function_identity_arguments(p.oid), \
                p.prokind::text, \
                pg_get_function_result(p.oid), l.lanname::text, \
                p.provolatile::text, \
                p.proisstrict, p.prosecdef, p.proleakproof, coalesce(p.proconfig, '{{}}'::text[]), \
                pg_get_userbyid(p.proowner)::text, obj_description(p.oid, 'pg_proc'), \
                {}, \
                case when p.prosqlbody is not null then pg_get_function_sqlbody(p.oid) \
                     else coalesce(p.prosrc, '') end \
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang \
         where {} and {} order by 1, 2, 3",
        acl("coalesce(p.proacl, acldefault('f', p.proowner))"),
        project_schema("n"),
        not_extension_member("pg_proc", "p.oid")
    );
    Ok(rows(client, "functions", &sql)
        .await?
        .iter()
        .map(|r| {
            let mut config: Vec<String> = r.get(10);
            config.sort();
            Function {
                schema: r.get(0),
                name: r.get(1),
                arguments: r.get(2),
                kind: RoutineKind::from_code(r.get(3)),
                returns: r.get(4),
                language: r.get(5),
                volatility: Volatility::from_code(r.get(6)),
                strict: r.get(7),
                security_definer: r.get(8),
                leakproof: r.get(9),
                config,
                owner: r.get(11),
                comment: r.get::<_, Option<String>>(12).map(|c| tidy(&c)),
                grants: grants(r.get(13)),
                body: tidy(&r.get::<_, String>(14)),
            }
        })
        .collect())
}

async fn read_types(client: &Client) -> Result<Vec<TypeDef>> {
    let sql = format!(
        "select n.nspname::text, t.typname::text, \
                t.typtype::text, \
                pg_get_userbyid(t.typowner)::text, \
                case t.typtype \
                  when 'e' then (select array_agg(e.enumlabel::text order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid) \
                  when 'd' then array_remove(array[ 'over ' || format_type(t.typbasetype, t.typtypmod), \
                      case when t.typnotnull then 'not null' end, 'default ' || t.typdefault] \
                      || coalesce((select array_agg(k.conname || ': ' || pg_get_constraintdef(k.oid) order by k.conname) \
                                   from pg_constraint k where k.contypid = t.oid), '{{}}'), null) \
                  when 'c' then (select array_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) order by a.attnum) \
                                 from pg_attribute a where a.attrelid = t.typrelid and a.attnum > 0 and not a.attisdropped) \
                  else (select array['subtype ' || format_type(r.rngsubtype, null)] from pg_range r where r.rngtypid = t.oid) \
                end \
         from pg_type t join pg_namespace n on n.oid = t.typnamespace \
         left join pg_class c on c.oid = t.typrelid \
         where t.typtype in ('e', 'd', 'c', 'r') and (c.oid is null or c.relkind = 'c') \
           and {} and {} order by 1, 2",
        project_schema("n"),
        not_extension_member("pg_type", "t.oid")
    );
    Ok(rows(client, "types", &sql)
        .await?
        .iter()
        .map(|r| TypeDef {
            schema: r.get(0),
            name: r.get(1),
            kind: TypeKind::from_code(r.get(2)),
            owner: r.get(3),
            definition: r.get::<_, Option<Vec<String>>>(4).unwrap_or_default(),
        })
        .collect())
}

async fn read_sequences(client: &Client) -> Result<Vec<Sequence>> {
    // Identity sequences show as their column's `identity`; positions are volatile.
    let sql = format!(
        "select n.nspname::text, c.relname::text, \
                format('%s start %s increment %s min %s max %s cache %s%s', format_type(s.seqtypid, null), \
                  s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, \
                  case when s.seqcycle then ' cycle' else '' end), \
                (select d.refobjid::regclass::text || '.' || quote_ident(a.attname) from pg_depend d \
                   join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid \
                   where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'a' \
                     and d.refclassid = 'pg_class'::regclass), \
                pg_get_userbyid(c.relowner)::text, {} \
         from pg_class c join pg_namespace n on n.oid = c.relnamespace join pg_sequence s on s.seqrelid = c.oid \
         where c.relkind = 'S' and {} and {} \
           and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass \
                           and d.objid = c.oid and d.deptype = 'i') \
         order by 1, 2",
        acl("coalesce(c.relacl, acldefault('s', c.relowner))"),
        project_schema("n"),
        not_extension_member("pg_class", "c.oid")
    );
    Ok(rows(client, "sequences", &sql)
        .await?
        .iter()
        .map(|r| Sequence {
            schema: r.get(0),
            name: r.get(1),
            definition: r.get(2),
            owned_by: r.get(3),
            owner: r.get(4),
            grants: grants(r.get(5)),
        })
        .collect())
}

async fn read_default_privileges(client: &Client) -> Result<Vec<DefaultPrivileges>> {
    let sql = format!(
        "select pg_get_userbyid(d.defaclrole)::text, n.nspname::text, \
                case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' \
                  when 'T' then 'types' else 'schemas' end, {} \
         from pg_default_acl d left join pg_namespace n on n.oid = d.defaclnamespace \
         where n.oid is null or ({}) order by 1, 2 nulls first, 3",
        acl("d.defaclacl"),
        project_schema("n")
    );
    Ok(rows(client, "default privileges", &sql)
        .await?
        .iter()
        .map(|r| DefaultPrivileges {
            role: r.get(0),
            schema: r.get(1),
            object_type: r.get(2),
            grants: grants(r.get(3)),
        })
        .collect())
}

async fn read_publications(client: &Client) -> Result<Vec<Publication>> {
    let sql = format!(
        "select p.pubname::text, p.puballtables, \
                array_remove(array[case when p.pubinsert then 'insert' end, case when p.pubupdate then 'update' end, \
                  case when p.pubdelete then 'delete' end, case when p.pubtruncate then 'truncate' end], null), \
                coalesce((select array_agg(t.schemaname || '.' || t.tablename order by 1) \
                  from pg_publication_tables t join pg_namespace n on n.nspname = t.schemaname \
                  where t.pubname = p.pubname and {}), '{{}}') \
         from pg_publication p order by 1",
        project_schema("n")
    );
    Ok(rows(client, "publications", &sql)
        .await?
        .iter()
        .map(|r| Publication {
            name: r.get(0),
            all_tables: r.get(1),
            operations: r.get(2),
            tables: r.get(3),
        })
        .collect())
}

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

    #[test]
    fn tidy_trims_line_ends_and_blank_edges() {
        assert_eq!(tidy("\n  begin  \r\n\n  end;\t\n\n"), "  begin\n\n  end;");
    }
}
