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

use crate::sql::error::QueryFailed;
use crate::sql::quote_ident;

mod unfrozen;

pub use unfrozen::{Unreached, COUNTERS_SETTING};

/// The setting a cell sets to freeze the clock.
pub const SETTING: &str = "db_ci.now";

/// Text that is no instant.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not an instant: write it as RFC 3339, e.g. 2025-01-01T00:00:00Z (or a date, 2025-01-01)"
)]
pub struct NotAnInstant(pub String);

/// An instant written `2025-01-01T00:00:00Z` (RFC 3339; a date alone means its midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frozen(OffsetDateTime);

impl Frozen {
    pub fn parse(text: &str) -> Result<Frozen, NotAnInstant> {
        let text = text.trim();
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        OffsetDateTime::parse(&full, &Rfc3339)
            .map(Frozen)
            .map_err(|_| NotAnInstant(text.to_owned()))
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

/// What reads the clock, as PostgreSQL deparses it or a person writes it: `now()`,
/// `CURRENT_TIMESTAMP`, `current_time`, `localtime`, `age(x)` (one argument: from today),
/// and the literals `'now'`/`'today'` cast at run time (`'now'::timestamptz`, `date 'today'`).
fn readers() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(concat!(
            r"(?i)(?:\bpg_catalog\s*\.\s*)?\b(now|transaction_timestamp|statement_timestamp)\s*\(\s*\)",
            r"|\b(current_timestamp|current_time|localtimestamp|localtime|current_date)\b(?:\s*\(\s*\d*\s*\))?",
            r"|(?:\bpg_catalog\s*\.\s*)?\b(age)\s*\(",
            r"|'(now|today)'\s*::\s*(timestamptz|timestamp\s+with\s+time\s+zone|timestamp\s+without\s+time\s+zone|timestamp|date)\b",
            r"|\b(timestamptz|timestamp\s+with\s+time\s+zone|timestamp\s+without\s+time\s+zone|timestamp|date)\s+'(now|today)'",
        ))
        .unwrap()
    })
}

/// `text` with every clock reading replaced by the frozen clock's. `age(` becomes
/// `db_ci_clock.age(`, whose overloads mirror `pg_catalog.age` (so `age(xid)` and the
/// two-argument forms mean what they did) and read the frozen clock for one timestamp.
pub fn rewrite(text: &str) -> String {
    readers()
        .replace_all(text, |caps: &regex::Captures| {
            let whole = caps.get(0).expect("a match");
            // `x.now()` or `x.age(` is some schema's own function, not the clock.
            let qualified = text[..whole.start()].trim_end().ends_with('.');
            if qualified {
                return whole.as_str().to_owned();
            }
            let lower = |i: usize| caps.get(i).map(|m| m.as_str().to_ascii_lowercase());
            if lower(3).is_some() {
                return "db_ci_clock.age(".to_owned();
            }
            if let Some((word, cast)) = lower(4).zip(lower(5)).or(lower(7).zip(lower(6))) {
                let at = if word == "today" {
                    "(db_ci_clock.now())::date"
                } else {
                    "(db_ci_clock.now())"
                };
                return format!("({at}::{cast})");
            }
            match lower(2).as_deref() {
                Some("current_date") => "(db_ci_clock.now())::date".to_owned(),
                Some("localtimestamp") => "(db_ci_clock.now())::timestamp".to_owned(),
                Some("current_time") => "(db_ci_clock.now())::timetz".to_owned(),
                Some("localtime") => "(db_ci_clock.now())::time".to_owned(),
                _ => "db_ci_clock.now()".to_owned(),
            }
        })
        .into_owned()
}

/// The regular expression (PostgreSQL's) that finds candidates server-side.
pub(crate) const CANDIDATE: &str = r"now\s*\(|current_timestamp|current_time|localtime|current_date|transaction_timestamp|statement_timestamp|\mage\s*\(|'(now|today)'|\m(timestamptz|timestamp|date)\s+'";

pub(crate) const PROJECT_SCHEMAS: &str =
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
pub async fn freeze(client: &Client, now: Frozen, scope: Scope) -> Result<(), QueryFailed> {
    client
        .execute(
            "select pg_catalog.set_config($1, $2, $3)",
            &[&SETTING, &now.sql_text(), &(scope == Scope::Transaction)],
        )
        .await
        .map(drop)
        .map_err(QueryFailed::to("freeze the clock"))
}

/// Installs `db_ci_clock.now()` and points the project's functions, policies, views,
/// column defaults and CHECK constraints at it. Run as admin on a policy-test clone only.
/// Returns the readers it could not freeze (see [`unfrozen`]); the error names the object
/// that could not be rewritten.
pub async fn install(client: &Client) -> Result<Vec<Unreached>, QueryFailed> {
    client
        .batch_execute(&format!(
            "create schema if not exists db_ci_clock;
             create or replace function db_ci_clock.now() returns timestamptz
               language sql stable parallel safe
               as $$ select coalesce(nullif(pg_catalog.current_setting('{SETTING}', true), '')::timestamptz,
                                     pg_catalog.now()) $$;
             create or replace function db_ci_clock.age(timestamptz) returns interval
               language sql stable parallel safe
               as $$ select pg_catalog.age(db_ci_clock.now()::date::timestamptz, $1) $$;
             create or replace function db_ci_clock.age(timestamp) returns interval
               language sql stable parallel safe
               as $$ select pg_catalog.age(db_ci_clock.now()::date::timestamp, $1) $$;
             create or replace function db_ci_clock.age(timestamptz, timestamptz) returns interval
               language sql immutable parallel safe as $$ select pg_catalog.age($1, $2) $$;
             create or replace function db_ci_clock.age(timestamp, timestamp) returns interval
               language sql immutable parallel safe as $$ select pg_catalog.age($1, $2) $$;
             create or replace function db_ci_clock.age(xid) returns integer
               language sql stable parallel safe as $$ select pg_catalog.age($1) $$;
             grant usage on schema db_ci_clock to public;
             grant execute on all functions in schema db_ci_clock to public;"
        ))
        .await
        .map_err(QueryFailed::to("install the frozen clock"))?;

    rewrite_objects(client, CANDIDATE, &mut |_, _, text| rewrite(text)).await?;
    unfrozen::install(client).await
}

/// What kind of object reads the clock, and its name as [`rewrite_objects`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `schema.name(argument types)`.
    Function,
    /// `"policy" on schema.table`.
    Policy,
    /// `schema.table.column`.
    Default,
    /// `constraint on schema.table`.
    Check,
    /// `schema.view`.
    View,
}

/// Re-creates every project function (SQL or PL/pgSQL), policy, column default, CHECK
/// constraint and view whose text matches `pattern` (a PostgreSQL regular expression) with
/// the text `edit` returns for it. The error names the object that could not be rewritten.
pub(crate) async fn rewrite_objects(
    client: &Client,
    pattern: &str,
    edit: &mut dyn FnMut(ObjectKind, &str, &str) -> String,
) -> Result<(), QueryFailed> {
    let not_member = crate::sql::catalog::not_extension_member("pg_proc", "p.oid");
    // SQL-standard bodies (`begin atomic`, PostgreSQL 14+) keep no source text to search.
    let version: i32 = client
        .query_one("select current_setting('server_version_num')::int", &[])
        .await
        .map_err(QueryFailed::to("read the server version"))?
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
            &[&pattern],
        )
        .await
        .map_err(QueryFailed::to("read the functions that read the clock"))?;
    for row in functions {
        let (name, definition): (String, String) = (row.get(0), row.get(1));
        client
            .batch_execute(&edit(ObjectKind::Function, &name, &definition))
            .await
            .map_err(QueryFailed::to(format!(
                "freeze the clock in function {name}"
            )))?;
    }

    let policies = client
        .query(
            "select schemaname::text, tablename::text, policyname::text, qual, with_check \
             from pg_policies where qual ~* $1 or with_check ~* $1",
            &[&pattern],
        )
        .await
        .map_err(QueryFailed::to("read the policies that read the clock"))?;
    for row in policies {
        let (schema, table, name): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let (using, check): (Option<String>, Option<String>) = (row.get(3), row.get(4));
        let object = format!("\"{name}\" on {schema}.{table}");
        let mut sql = format!(
            "alter policy {} on {}.{}",
            quote_ident(&name),
            quote_ident(&schema),
            quote_ident(&table)
        );
        if let Some(using) = using {
            sql.push_str(&format!(
                " using ({})",
                edit(ObjectKind::Policy, &object, &using)
            ));
        }
        if let Some(check) = check {
            sql.push_str(&format!(
                " with check ({})",
                edit(ObjectKind::Policy, &object, &check)
            ));
        }
        client
            .batch_execute(&sql)
            .await
            .map_err(QueryFailed::to(format!(
                "freeze the clock in policy {object}"
            )))?;
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
            &[&pattern],
        )
        .await
        .map_err(QueryFailed::to("read the column defaults that read the clock"))?;
    for row in defaults {
        let (schema, table, column, default): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let object = format!("{schema}.{table}.{column}");
        client
            .batch_execute(&format!(
                "alter table {}.{} alter column {} set default {}",
                quote_ident(&schema),
                quote_ident(&table),
                quote_ident(&column),
                edit(ObjectKind::Default, &object, &default)
            ))
            .await
            .map_err(QueryFailed::to(format!(
                "freeze the clock in the default of {object}"
            )))?;
    }

    // CHECK constraints of tables: re-added reading the frozen clock, NOT VALID so rows
    // written before the frozen instant are not judged by it.
    let checks = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text, k.conname::text, pg_get_constraintdef(k.oid) \
                 from pg_constraint k \
                 join pg_class c on c.oid = k.conrelid \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where {PROJECT_SCHEMAS} and k.contype = 'c' and pg_get_constraintdef(k.oid) ~* $1"
            ),
            &[&pattern],
        )
        .await
        .map_err(QueryFailed::to("read the check constraints that read the clock"))?;
    for row in checks {
        let (schema, table, name, definition): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let object = format!("{name} on {schema}.{table}");
        let rewritten = edit(ObjectKind::Check, &object, &definition);
        if rewritten == definition {
            continue;
        }
        let not_valid = if rewritten.to_ascii_uppercase().ends_with("NOT VALID") {
            ""
        } else {
            " not valid"
        };
        client
            .batch_execute(&format!(
                "alter table {schema_table} drop constraint {constraint}, add constraint {constraint} {rewritten}{not_valid}",
                schema_table = format_args!("{}.{}", quote_ident(&schema), quote_ident(&table)),
                constraint = quote_ident(&name),
            ))
            .await
            .map_err(QueryFailed::to(format!("freeze the clock in check constraint {object}")))?;
    }

    let views = client
        .query(
            &format!(
                "select n.nspname::text, c.relname::text, pg_get_viewdef(c.oid), \
                        coalesce(array_to_string(c.reloptions, ', '), '') from pg_class c \
                 join pg_namespace n on n.oid = c.relnamespace \
                 where {PROJECT_SCHEMAS} and c.relkind = 'v' and pg_get_viewdef(c.oid) ~* $1"
            ),
            &[&pattern],
        )
        .await
        .map_err(QueryFailed::to("read the views that read the clock"))?;
    for row in views {
        let (schema, name, definition, options): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let object = format!("{schema}.{name}");
        // CREATE OR REPLACE keeps the owner and the grants but resets the options
        // (security_invoker, security_barrier, check_option) to what it is given: give
        // them all back.
        client
            .batch_execute(&format!(
                "create or replace view {}.{}{} as {}",
                quote_ident(&schema),
                quote_ident(&name),
                view_options(&options),
                edit(ObjectKind::View, &object, definition.trim_end_matches(';'))
            ))
            .await
            .map_err(QueryFailed::to(format!(
                "freeze the clock in view {object}"
            )))?;
    }
    Ok(())
}

/// ` with (…)` for a view's stored options (`security_invoker=true, check_option=local`), or
/// nothing for none.
fn view_options(options: &str) -> String {
    if options.trim().is_empty() {
        String::new()
    } else {
        format!(" with ({options})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_its_options() {
        assert_eq!(view_options(""), "");
        assert_eq!(
            view_options("security_invoker=true, check_option=local"),
            " with (security_invoker=true, check_option=local)"
        );
    }

    #[test]
    fn every_kind_of_clock_reader_is_rewritten() {
        // One-argument age() counts from today; qualified calls of other schemas stay.
        assert_eq!(
            rewrite("age(born_at) > interval '18 years'"),
            "db_ci_clock.age(born_at) > interval '18 years'"
        );
        assert_eq!(rewrite("pg_catalog.age(x, y)"), "db_ci_clock.age(x, y)");
        assert_eq!(
            rewrite("app.age(x) + page(y) + my_age(z)"),
            "app.age(x) + page(y) + my_age(z)"
        );
        assert_eq!(rewrite("app.now()"), "app.now()");
        // Literals cast at run time, in both spellings.
        assert_eq!(
            rewrite("v := 'now'::timestamptz; d := 'today'::date; t := timestamp with time zone 'now'"),
            "v := ((db_ci_clock.now())::timestamptz); d := ((db_ci_clock.now())::date::date); t := ((db_ci_clock.now())::timestamp with time zone)"
        );
        assert_eq!(
            rewrite("CURRENT_TIME, localtime(0), localtimestamp"),
            "(db_ci_clock.now())::timetz, (db_ci_clock.now())::time, (db_ci_clock.now())::timestamp"
        );
        // A word that is no reader.
        assert_eq!(rewrite("'nowhere'::text, today"), "'nowhere'::text, today");
    }

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
        let error = Frozen::parse("next tuesday").unwrap_err().to_string();
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
