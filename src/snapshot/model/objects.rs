//! Reading the catalog's objects besides tables: schemas, extensions, views, functions,
//! types, sequences, default privileges and publications.

use tokio_postgres::Client;

use super::query::{acl, grants, project_schema, rows, tidy};
use super::view_text::normalise_view_definition;
use super::{DefaultPrivileges, Extension, Function, Publication, Schema, Sequence, TypeDef, View};
use crate::error::Result;
use crate::sql::catalog::not_extension_member;
use crate::sql::kinds::{RoutineKind, TypeKind, Volatility};

pub(super) async fn read_schemas(client: &Client) -> Result<Vec<Schema>> {
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

pub(super) async fn read_extensions(client: &Client) -> Result<Vec<Extension>> {
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

pub(super) async fn read_views(client: &Client, server_major: u32) -> Result<Vec<View>> {
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

pub(super) async fn read_functions(client: &Client) -> Result<Vec<Function>> {
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

pub(super) async fn read_types(client: &Client) -> Result<Vec<TypeDef>> {
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

pub(super) async fn read_sequences(client: &Client) -> Result<Vec<Sequence>> {
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

pub(super) async fn read_default_privileges(client: &Client) -> Result<Vec<DefaultPrivileges>> {
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

pub(super) async fn read_publications(client: &Client) -> Result<Vec<Publication>> {
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
