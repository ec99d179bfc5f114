//! The clock readers the frozen clock cannot reach: `clock_timestamp()` and `timeofday()`
//! (the wall clock mid-statement, which no setting can freeze), functions in languages other
//! than SQL and PL/pgSQL, and C functions. Each is named; where its SQL can be edited, its
//! reads are counted, so a cell that read the real clock is not judged as passed.
//!
//! The count is a sequence per object: `nextval` is not rolled back with the cell's
//! transaction, so the cell's run can read it afterwards, whatever the statement did.

use tokio_postgres::Client;

use super::{rewrite_objects, ObjectKind, PROJECT_SCHEMAS};
use crate::sql::error::QueryFailed;

/// A session setting that tells the cell-running functions to read the counters around
/// each cell: set on a worker whose database has any.
pub const COUNTERS_SETTING: &str = "db_ci.unfrozen_counters";

/// The PostgreSQL regular expression that finds the readers [`wrap`] counts.
const UNREACHABLE: &str = r"clock_timestamp\s*\(|timeofday\s*\(";

/// One object that reads a clock the frozen clock cannot reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreached {
    pub kind: ObjectKind,
    /// As [`rewrite_objects`] names it: `public.audit(integer)`, `"p" on public.t`…
    pub name: String,
    /// What it reads: `clock_timestamp()`, or why its readings cannot be rewritten.
    pub reader: String,
    /// The sequence (in `db_ci_clock`) counting its reads; `None` when its code cannot be
    /// edited (another language): then no cell can be told to depend on it.
    pub counter: Option<String>,
}

impl Unreached {
    /// "clock_timestamp() in function public.audit(integer)".
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            ObjectKind::Function => "function",
            ObjectKind::Policy => "policy",
            ObjectKind::Default => "the default of",
            ObjectKind::Check => "check constraint",
            ObjectKind::View => "view",
        };
        format!("{} in {kind} {}", self.reader, self.name)
    }
}

fn pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| {
        regex::Regex::new(r"(?i)(?:\bpg_catalog\s*\.\s*)?\b(clock_timestamp|timeofday)\s*\(\s*\)")
            .unwrap()
    })
}

/// Whether the match at `start` of `text` is another schema's function of the same name.
fn qualified(text: &str, start: usize) -> bool {
    text[..start].trim_end().ends_with('.')
}

/// The unreachable readers `text` calls, each once, as `clock_timestamp()`.
pub fn readers_in(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for caps in pattern().captures_iter(text) {
        let whole = caps.get(0).expect("a match");
        let name = format!("{}()", caps[1].to_ascii_lowercase());
        if !qualified(text, whole.start()) && !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// `text` with each unreachable reader replaced by db-ci's counting one (the same clock,
/// read through `counter`).
pub fn wrap(text: &str, counter: &str) -> String {
    pattern()
        .replace_all(text, |caps: &regex::Captures| {
            let whole = caps.get(0).expect("a match");
            if qualified(text, whole.start()) {
                return whole.as_str().to_owned();
            }
            format!("db_ci_clock.{}('{counter}')", caps[1].to_ascii_lowercase())
        })
        .into_owned()
}

/// Installs the counting readers and points the project's objects that read
/// `clock_timestamp()`/`timeofday()` at them; names the functions whose code cannot be
/// edited. Run after the frozen clock's own install, on the same clone.
pub(super) async fn install(client: &Client) -> Result<Vec<Unreached>, QueryFailed> {
    client
        .batch_execute(
            "create or replace function db_ci_clock.clock_timestamp(counter text) returns timestamptz
               language plpgsql volatile security definer set search_path = '' as $$
             begin
               perform pg_catalog.nextval(pg_catalog.format('db_ci_clock.%I', counter)::regclass);
               return pg_catalog.clock_timestamp();
             end $$;
             create or replace function db_ci_clock.timeofday(counter text) returns text
               language plpgsql volatile security definer set search_path = '' as $$
             begin
               perform pg_catalog.nextval(pg_catalog.format('db_ci_clock.%I', counter)::regclass);
               return pg_catalog.timeofday();
             end $$;
             grant execute on all functions in schema db_ci_clock to public;",
        )
        .await
        .map_err(QueryFailed::to("install the frozen clock's counted readers"))?;

    let mut found: Vec<Unreached> = Vec::new();
    rewrite_objects(client, UNREACHABLE, &mut |kind, name, text| {
        let readers = readers_in(text);
        if readers.is_empty() {
            return text.to_owned();
        }
        // A policy's USING and WITH CHECK share one counter: they are one object.
        let counter = match found.iter().find(|u| u.kind == kind && u.name == name) {
            Some(known) => known.counter.clone().unwrap_or_default(),
            None => {
                let counter = format!("read_{}", found.len() + 1);
                found.push(Unreached {
                    kind,
                    name: name.to_owned(),
                    reader: readers.join(", "),
                    counter: Some(counter.clone()),
                });
                counter
            }
        };
        wrap(text, &counter)
    })
    .await?;
    for counter in found.iter().filter_map(|u| u.counter.as_deref()) {
        client
            .batch_execute(&format!("create sequence db_ci_clock.{counter}"))
            .await
            .map_err(QueryFailed::to("count the reads of the real clock"))?;
    }

    // Code db-ci cannot edit: other languages whose source reads a clock, and C functions
    // (which may read one: nothing says).
    let not_member = crate::sql::catalog::not_extension_member("pg_proc", "p.oid");
    let others = client
        .query(
            &format!(
                "select p.oid::regprocedure::text, l.lanname::text from pg_proc p \
                 join pg_namespace n on n.oid = p.pronamespace \
                 join pg_language l on l.oid = p.prolang \
                 where {PROJECT_SCHEMAS} and {not_member} \
                   and l.lanname not in ('sql', 'plpgsql', 'internal') \
                   and (l.lanname = 'c' or p.prosrc ~* $1)"
            ),
            &[&format!("{UNREACHABLE}|{}", super::CANDIDATE)],
        )
        .await
        .map_err(QueryFailed::to(
            "read the functions whose clock cannot be frozen",
        ))?;
    for row in others {
        let (name, language): (String, String) = (row.get(0), row.get(1));
        let reader = if language == "c" {
            "whatever clock a C function reads".to_owned()
        } else {
            format!("the real clock (language {language}, whose code db-ci does not rewrite)")
        };
        found.push(Unreached {
            kind: ObjectKind::Function,
            name,
            reader,
            counter: None,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_readers_are_counted_and_nothing_else() {
        assert_eq!(
            wrap(
                "select pg_catalog.clock_timestamp(), TIMEOFDAY ( ), app.clock_timestamp()",
                "read_1"
            ),
            "select db_ci_clock.clock_timestamp('read_1'), db_ci_clock.timeofday('read_1'), app.clock_timestamp()"
        );
        assert_eq!(
            wrap("my_clock_timestamp()", "read_1"),
            "my_clock_timestamp()"
        );
        assert_eq!(
            readers_in("clock_timestamp() - clock_timestamp() + timeofday()::timestamptz"),
            vec!["clock_timestamp()", "timeofday()"]
        );
        assert!(readers_in("now() + app.clock_timestamp()").is_empty());
    }

    #[test]
    fn an_unreached_reader_is_described_by_its_object() {
        let unreached = Unreached {
            kind: ObjectKind::Default,
            name: "public.t.at".to_owned(),
            reader: "clock_timestamp()".to_owned(),
            counter: None,
        };
        assert_eq!(
            unreached.describe(),
            "clock_timestamp() in the default of public.t.at"
        );
    }
}
