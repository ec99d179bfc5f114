//! A frozen clock for policy tests (`now:` per matrix file or case): the instant type, and
//! installing it in a policy-test database so that `now()`, `current_timestamp` and their
//! kin in the project's functions, policies, views and column defaults read it.
//!
//! PostgreSQL cannot be told what time it is, and `now()` in a policy or a function with its
//! own search_path is bound to `pg_catalog.now()` for good. So the clone of the replayed
//! database a file runs in (never the replayed database itself) has those objects rewritten
//! to call `db_ci_clock.now()`, which answers the `db_ci.now` setting when one is set and
//! the real time otherwise; each cell sets it in its own transaction.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio_postgres::Client;

use crate::sql::{db_error_text, quote_ident};

/// The setting a cell sets to freeze the clock.
pub const SETTING: &str = "db_ci.now";

/// An instant written `2025-01-01T00:00:00Z` (RFC 3339; a date alone means its midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frozen(OffsetDateTime);

impl Frozen {
    pub fn parse(text: &str) -> Result<Frozen, String> {
        let text = text.trim();
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        OffsetDateTime::parse(&full, &Rfc3339).map(Frozen).map_err(|_| {
            format!(
                "`{text}` is not an instant: write it as RFC 3339, e.g. 2025-01-01T00:00:00Z (or a date, 2025-01-01)"
            )
        })
    }

    /// Seconds since the epoch: the JWT's `iat`.
    pub fn epoch(&self) -> i64 {
        self.0.unix_timestamp()
    }

    /// As PostgreSQL reads a timestamptz.
    pub fn sql_text(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }
}

impl fmt::Display for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.sql_text())
    }
}

impl<'de> Deserialize<'de> for Frozen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Frozen::parse(&text).map_err(de::Error::custom)
    }
}

/// What reads the clock, as PostgreSQL deparses it: `now()`, `CURRENT_TIMESTAMP`, ….
fn readers() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(?:\bpg_catalog\s*\.\s*)?\b(now|transaction_timestamp|statement_timestamp)\s*\(\s*\)|\b(current_timestamp|localtimestamp|current_date)\b(?:\s*\(\s*\d*\s*\))?",
        )
        .unwrap()
    })
}

/// `text` with every clock reading replaced by the frozen clock's.
pub fn rewrite(text: &str) -> String {
    readers()
        .replace_all(text, |caps: &regex::Captures| {
            match caps
                .get(2)
                .map(|m| m.as_str().to_ascii_lowercase())
                .as_deref()
            {
                Some("current_date") => "(db_ci_clock.now())::date".to_owned(),
                Some("localtimestamp") => "(db_ci_clock.now())::timestamp".to_owned(),
                _ => "db_ci_clock.now()".to_owned(),
            }
        })
        .into_owned()
}

/// The regular expression (PostgreSQL's) that finds candidates server-side.
const CANDIDATE: &str = r"now\s*\(|current_timestamp|localtimestamp|current_date|transaction_timestamp|statement_timestamp";

const PROJECT_SCHEMAS: &str =
    "n.nspname not in ('pg_catalog', 'information_schema', 'db_ci_clock') \
     and n.nspname not like 'pg\\_%'";

/// How long a [`freeze`] lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Until the session ends, or a transaction sets its own.
    Session,
    /// Until the current transaction ends.
    Transaction,
}

/// Makes the installed clock read `now` on `client` for `scope`.
pub async fn freeze(client: &Client, now: Frozen, scope: Scope) -> Result<(), String> {
    client
        .execute(
            "select pg_catalog.set_config($1, $2, $3)",
            &[&SETTING, &now.sql_text(), &(scope == Scope::Transaction)],
        )
        .await
        .map(drop)
        .map_err(|e| db_error_text(&e))
}

/// Installs `db_ci_clock.now()` and points the project's functions, policies, views and
/// column defaults at it. Run as admin on a policy-test clone only. The error names the
/// object that could not be rewritten.
pub async fn install(client: &Client) -> Result<(), String> {
    let failed = |what: &str, e: tokio_postgres::Error| format!("{what}: {}", db_error_text(&e));
    client
        .batch_execute(&format!(
            "create schema if not exists db_ci_clock;
             create or replace function db_ci_clock.now() returns timestamptz
               language sql stable parallel safe
               as $$ select coalesce(nullif(pg_catalog.current_setting('{SETTING}', true), '')::timestamptz,
                                     pg_catalog.now()) $$;
             grant usage on schema db_ci_clock to public;
             grant execute on function db_ci_clock.now() to public;"
        ))
        .await
        .map_err(|e| failed("install the frozen clock", e))?;

    let not_member = crate::sql::catalog::not_extension_member("pg_proc", "p.oid");
    // SQL-standard bodies (`begin atomic`, PostgreSQL 14+) keep no source text to search.
    let version: i32 = client
        .query_one("select current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| failed("read the server version", e))?
        .get(0);
    let body = if version >= 140_000 {
        "(p.prosrc ~* $1 or coalesce(pg_get_function_sqlbody(p.oid), '') ~* $1)"
    } else {
        "p.prosrc ~* $1"
    };
    let functions = client
        .query(
            &format!(
                "select p.oid::regprocedure::text, pg_get_functiondef(p.oid) from pg_proc p \
                 join pg_namespace n on n.oid = p.pronamespace \
                 join pg_language l on l.oid = p.prolang \
                 where {PROJECT_SCHEMAS} and p.prokind in ('f', 'p') and l.lanname in ('sql', 'plpgsql') \
                   and {not_member} and {body}"
            ),
            &[&CANDIDATE],
        )
        .await
        .map_err(|e| failed("read the functions that read the clock", e))?;
    for row in functions {
        let (name, definition): (String, String) = (row.get(0), row.get(1));
        client
            .batch_execute(&rewrite(&definition))
            .await
            .map_err(|e| failed(&format!("freeze the clock in function {name}"), e))?;
    }

    let policies = client
        .query(
            "select schemaname::text, tablename::text, policyname::text, qual, with_check \
             from pg_policies where qual ~* $1 or with_check ~* $1",
            &[&CANDIDATE],
        )
        .await
        .map_err(|e| failed("read the policies that read the clock", e))?;
    for row in policies {
        let (schema, table, name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (using, check): (Option<String>, Option<String>) = (row.get(3), row.get(4));
        let mut sql = format!(
            "alter policy {} on {}.{}",
            quote_ident(&name),
            quote_ident(&schema),
            quote_ident(&table)
        );
        if let Some(using) = using {
            sql.push_str(&format!(" using ({})", rewrite(&using)));
        }
        if let Some(check) = check {
            sql.push_str(&format!(" with check ({})", rewrite(&check)));
        }
        client.batch_execute(&sql).await.map_err(|e| {
            failed(
                &format!("freeze the clock in policy \"{name}\" on {schema}.{table}"),
                e,
            )
        })?;
    }

    let defaults = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text, a.attname::text, pg_get_expr(d.adbin, d.adrelid) \
                 from pg_attrdef d \
                 join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum \
                 join pg_class c on c.oid = d.adrelid \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where {PROJECT_SCHEMAS} and a.attgenerated = '' and c.relkind in ('r', 'p') \
                   and pg_get_expr(d.adbin, d.adrelid) ~* $1"
            ),
            &[&CANDIDATE],
        )
        .await
        .map_err(|e| failed("read the column defaults that read the clock", e))?;
    for row in defaults {
        let (schema, table, column, default): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        client
            .batch_execute(&format!(
                "alter table {}.{} alter column {} set default {}",
                quote_ident(&schema),
                quote_ident(&table),
                quote_ident(&column),
                rewrite(&default)
            ))
            .await
            .map_err(|e| {
                failed(
                    &format!("freeze the clock in the default of {schema}.{table}.{column}"),
                    e,
                )
            })?;
    }

    let views = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text, pg_get_viewdef(c.oid) from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where {PROJECT_SCHEMAS} and c.relkind = 'v' and pg_get_viewdef(c.oid) ~* $1"
            ),
            &[&CANDIDATE],
        )
        .await
        .map_err(|e| failed("read the views that read the clock", e))?;
    for row in views {
        let (schema, name, definition): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        client
            .batch_execute(&format!(
                "create or replace view {}.{} as {}",
                quote_ident(&schema),
                quote_ident(&name),
                rewrite(definition.trim_end_matches(';'))
            ))
            .await
            .map_err(|e| failed(&format!("freeze the clock in view {schema}.{name}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_rfc3339_or_a_date() {
        assert_eq!(
            Frozen::parse("2025-01-01T00:00:00Z").unwrap().epoch(),
            1_735_689_600
        );
        assert_eq!(Frozen::parse("2025-01-01").unwrap().epoch(), 1_735_689_600);
        assert_eq!(
            Frozen::parse("2025-01-01T01:00:00+01:00").unwrap().epoch(),
            1_735_689_600
        );
        let error = Frozen::parse("next tuesday").unwrap_err();
        assert!(error.contains("RFC 3339"), "{error}");
    }

    #[test]
    fn every_clock_reading_is_rewritten_and_nothing_else() {
        assert_eq!(
            rewrite("(expires_at > now())"),
            "(expires_at > db_ci_clock.now())"
        );
        assert_eq!(
            rewrite("select pg_catalog.now(), CURRENT_TIMESTAMP, current_date, LOCALTIMESTAMP(0)"),
            "select db_ci_clock.now(), db_ci_clock.now(), (db_ci_clock.now())::date, (db_ci_clock.now())::timestamp"
        );
        assert_eq!(rewrite("transaction_timestamp ( )"), "db_ci_clock.now()");
        // Names that merely contain the words stay.
        assert_eq!(
            rewrite("snow() + known_now(x) + now_ts"),
            "snow() + known_now(x) + now_ts"
        );
        assert_eq!(rewrite("clock_timestamp()"), "clock_timestamp()");
    }
}
