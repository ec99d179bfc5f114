//! Function bodies against the schema after the release: every SQL and PL/pgSQL function the
//! project owns is validated on the rehearsal before and after the pending migrations (SQL
//! bodies by PostgreSQL's own validator, PL/pgSQL bodies by plpgsql_check where the server
//! has it); a body that breaks only after them (a column, table or function it names is gone)
//! fails at its next call in production. PostgreSQL tracks what views and policies use, not
//! what a body reads.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::trace::RehearsalError;

/// Functions whose bodies do not validate: signature → the error.
pub type Invalid = BTreeMap<String, String>;
use crate::snapshot::model::PLATFORM_SCHEMAS;
use crate::sql::error::QueryFailed;
use crate::sql::{quote_ident, quote_literal};

/// The schema plpgsql_check is installed in, when it is.
async fn installed_in(client: &Client) -> Option<String> {
    client
        .query_opt(
            "select extnamespace::regnamespace::text from pg_catalog.pg_extension \
             where extname = 'plpgsql_check'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .map(|row| row.get::<_, String>(0))
}

/// Whether the rehearsal can check PL/pgSQL bodies, and whether the gate installed the
/// checker (and removes it again). It is installed the first time the project has a PL/pgSQL
/// function to check.
#[derive(Default)]
pub struct Checker {
    schema: Option<String>,
    installed_here: bool,
    tried: bool,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// Installs plpgsql_check on the rehearsal when the server has it.
    async fn prepare(&mut self, client: &Client) {
        self.tried = true;
        if let Some(schema) = installed_in(client).await {
            self.schema = Some(schema);
            return;
        }
        self.installed_here = client
            .batch_execute("create extension plpgsql_check with schema extensions")
            .await
            .is_ok();
        if self.installed_here {
            self.schema = installed_in(client).await;
        }
    }

    /// Whether PL/pgSQL bodies were there to check and the server had no plpgsql_check.
    pub fn lacked_plpgsql_check(&self) -> bool {
        self.tried && self.schema.is_none()
    }

    /// Leaves the rehearsal as the migrations made it.
    pub async fn remove(self, client: &Client) {
        if self.installed_here {
            let _ = client.batch_execute("drop extension plpgsql_check").await;
        }
    }

    /// The project's functions whose bodies do not validate now.
    pub async fn invalid(&mut self, client: &Client) -> Result<Invalid, RehearsalError> {
        let platform = PLATFORM_SCHEMAS
            .iter()
            .map(|s| quote_literal(s))
            .collect::<Vec<_>>()
            .join(", ");
        if !self.tried {
            let plpgsql = client
                .query_one(
                    &format!(
                        "select exists (select 1 from pg_catalog.pg_proc p \
                         join pg_catalog.pg_namespace n on n.oid = p.pronamespace \
                         join pg_catalog.pg_language l on l.oid = p.prolang \
                         where l.lanname = 'plpgsql' \
                         and n.nspname not in ('pg_catalog', 'information_schema', {platform}) \
                         and n.nspname not like 'pg\\_%')"
                    ),
                    &[],
                )
                .await
                .map_err(QueryFailed::to("list the functions to check"))?
                .get::<_, bool>(0);
            if plpgsql {
                self.prepare(client).await;
            }
        }
        let plpgsql = match &self.schema {
            Some(schema) => format!(
                "elsif r.lanname = 'plpgsql' then \
                   if r.trigger_table is null and r.is_trigger then continue; end if; \
                   select string_agg(t.message, '; ') into m \
                   from {}.plpgsql_check_function_tb(r.oid, coalesce(r.trigger_table, 0::pg_catalog.oid)) t \
                   where t.level = 'error'; \
                   if m is not null then function := r.name; message := m; return next; end if;",
                quote_ident(schema)
            ),
            None => String::new(),
        };
        let create = format!(
            "create or replace function pg_temp.db_ci_invalid_bodies() \
             returns table (function text, message text) language plpgsql as $db_ci$ \
             declare r record; m text; \
             begin \
               for r in select p.oid, n.nspname || '.' || p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' as name, l.lanname, \
                   p.prorettype = 'pg_catalog.trigger'::pg_catalog.regtype as is_trigger, \
                   (select t.tgrelid from pg_catalog.pg_trigger t where t.tgfoid = p.oid limit 1) \
                     as trigger_table \
                 from pg_catalog.pg_proc p \
                 join pg_catalog.pg_namespace n on n.oid = p.pronamespace \
                 join pg_catalog.pg_language l on l.oid = p.prolang \
                 where n.nspname not in ('pg_catalog', 'information_schema', {platform}) \
                   and n.nspname not like 'pg\\_%' and p.prokind in ('f', 'p') \
                   and l.lanname in ('sql', 'plpgsql') \
                   and not exists (select 1 from pg_catalog.pg_depend d \
                     where d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass \
                     and d.objid = p.oid and d.deptype = 'e') \
               loop \
                 begin \
                   if r.lanname = 'sql' then \
                     perform pg_catalog.fmgr_sql_validator(r.oid); \
                   {plpgsql} \
                   end if; \
                 exception when others then \
                   function := r.name; message := sqlerrm; return next; \
                 end; \
               end loop; \
             end $db_ci$"
        );
        client
            .batch_execute(&format!("set check_function_bodies = on; {create}"))
            .await
            .map_err(QueryFailed::to("prepare the body check"))?;
        let rows = client
            .query(
                "select function, message from pg_temp.db_ci_invalid_bodies()",
                &[],
            )
            .await
            .map_err(QueryFailed::to("check function bodies"))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }
}

/// The names an error message quotes (`column "label" does not exist` → `label`), to find the
/// pending statement that removed them.
pub fn quoted_names(message: &str) -> Vec<String> {
    message
        .split('"')
        .skip(1)
        .step_by(2)
        .flat_map(|name| name.rsplit('.').next())
        .map(|name| name.trim_end_matches("()").to_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_names_an_error_quotes() {
        assert_eq!(quoted_names("column \"label\" does not exist"), ["label"]);
        assert_eq!(
            quoted_names("relation \"public.tags\" does not exist"),
            ["tags"]
        );
        assert!(quoted_names("syntax error at end of input").is_empty());
    }
}
