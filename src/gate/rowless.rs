//! Statements that cannot fail on the rows a table holds, whatever they are: a table only such
//! statements touch needs no copy of production's rows for the data checks (and no "not
//! checked" when it is over the copy budget). Conservative by construction: anything not
//! recognised here needs the rows. Pure logic.

use std::sync::OnceLock;

use regex::Regex;

use super::shape::NAME;
use crate::sql::without_comments;

/// A type of PostgreSQL's own whose values any row accepts (a domain could carry a CHECK or
/// NOT NULL the existing rows violate, so named types are not in the list).
const BUILT_IN_TYPE: &str = r"(?:pg_catalog\.)?(?:text|varchar|character\s+varying|char|character|int|integer|int2|int4|int8|smallint|bigint|boolean|bool|numeric|decimal|real|float4|float8|double\s+precision|date|time|timetz|timestamp|timestamptz|interval|uuid|json|jsonb|bytea|inet|cidr|macaddr|money|tsvector)(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\s+with(?:out)?\s+time\s+zone)?(?:\s*\[\s*\])*";

/// Whether `statement` succeeds or fails the same whatever rows its tables hold: settings,
/// comments, grants, policies, RLS switches, a column of a built-in type added without a
/// default or constraint, a column or table dropped.
pub fn cannot_fail_on_rows(statement: &str) -> bool {
    static PATTERNS: OnceLock<Vec<Regex>> = OnceLock::new();
    let patterns = PATTERNS.get_or_init(|| {
        let table = format!(r"alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?{NAME}\s+");
        [
            // One statement each (the trace records them one by one): its words run to its end.
            r"(?:set|reset|comment\s+on|grant|revoke|security\s+label)\s.*".to_owned(),
            r"(?:create|alter|drop)\s+policy\s.*".to_owned(),
            format!(r"{table}(?:enable|disable|force|no\s+force)\s+row\s+level\s+security"),
            format!(
                r#"{table}add\s+(?:column\s+)?(?:if\s+not\s+exists\s+)?(?:"[^"]+"|[A-Za-z_][\w$]*)\s+{BUILT_IN_TYPE}"#
            ),
            format!(
                r#"{table}drop\s+(?:column\s+)?(?:if\s+exists\s+)?(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\s+(?:restrict|cascade))?"#
            ),
            format!(r"drop\s+table\s+(?:if\s+exists\s+)?{NAME}(?:\s+(?:restrict|cascade))?"),
        ]
        .iter()
        .map(|p| Regex::new(&format!(r"(?is)^(?:{p})\s*;?\s*$")).expect("a valid pattern"))
        .collect()
    });
    let text = without_comments(statement);
    patterns.iter().any(|p| p.is_match(text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_whose_outcome_no_row_changes() {
        for statement in [
            "set lock_timeout = '5s'",
            "-- why\ncomment on table public.messages is 'x'",
            "grant select on public.messages to authenticated",
            "create policy \"anon read\" on public.messages for select to anon using (true)",
            "alter table public.messages disable row level security",
            "alter table public.messages add column edited_at timestamptz",
            "ALTER TABLE messages ADD COLUMN score numeric(10,2)",
            "alter table public.messages add column tags text[];",
            "alter table public.messages drop column note",
            "drop table public.messages",
        ] {
            assert!(cannot_fail_on_rows(statement), "{statement}");
        }
    }

    #[test]
    fn statements_that_can_fail_on_some_row_need_the_rows() {
        for statement in [
            "alter table public.messages add column flagged boolean not null default false",
            "alter table public.messages add column ref uuid default gen_random_uuid()",
            "alter table public.messages add column n int check (n > 0)",
            "alter table public.messages add column email my_domain",
            "alter table public.messages add column a int, add column b int not null",
            "alter table public.messages alter column note set not null",
            "alter table public.messages validate constraint c",
            "alter table public.messages alter column id type bigint",
            "create index concurrently on public.messages (body)",
            "create unique index on public.messages (body)",
            "update public.messages set note = 'n' where note is null",
            "delete from public.messages",
            "do $$ begin alter table public.messages drop column note; end $$",
            "select public.backfill()",
            "drop table public.a, public.b",
        ] {
            assert!(!cannot_fail_on_rows(statement), "{statement}");
        }
    }
}
