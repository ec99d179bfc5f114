//! The catalog model: every object of the project's schemas, read from `pg_catalog` into
//! plain sorted structs without OIDs or volatile values. The snapshot renders it; the lints
//! read it.
//!
//! This module owns the model's types and the read's order; `query` holds what every read
//! shares (privileges, the project's schemas, verbatim text), `tables` reads tables with
//! their columns, constraints, indexes, policies and triggers, `objects` reads the rest, and
//! `view_text` makes view definitions print alike across server versions.

mod objects;
mod query;
mod tables;
mod view_text;

use crate::sql::kinds::{
    ConstraintKind, PolicyCommand, RoutineKind, TableKind, TriggerState, TypeKind, Volatility,
};
use tokio_postgres::Client;

use self::objects::{
    read_default_privileges, read_extensions, read_functions, read_publications, read_schemas,
    read_sequences, read_types, read_views,
};
pub use self::query::tidy;
use self::tables::read_tables;
pub use self::view_text::normalise_view_definition;
use crate::error::{Error, Result};

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
