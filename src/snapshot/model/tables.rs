//! Reading the project's tables with their columns, constraints, indexes, policies and
//! triggers, and the platform tables that carry project policies or triggers.

use tokio_postgres::Client;

use super::query::{acl, grants, project_schema, rows, tidy};
use super::{Column, Constraint, Index, Policy, Table, Trigger};
use crate::error::Result;
use crate::sql::catalog::not_extension_member;
use crate::sql::kinds::{ConstraintKind, PolicyCommand, TableKind, TriggerState};

pub(super) async fn read_tables(client: &Client) -> Result<Vec<Table>> {
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
