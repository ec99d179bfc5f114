//! What every catalog read shares: privileges exploded into sorted grants, the filter for the
//! project's schemas, the query with its error, and verbatim text tidied.

use tokio_postgres::Client;

use super::{Grant, PLATFORM_SCHEMAS};
use crate::error::{Error, Result};
use crate::sql::db_error_text;

/// Privileges that exist on one PostgreSQL version only (MAINTAIN, PostgreSQL 17): left out
/// so that snapshots are identical across server versions.
const VERSION_SPECIFIC_PRIVILEGES: &[&str] = &["MAINTAIN"];

/// `acl` as `grantee=privileges` lines (aclexplode), grouped per grantee.
const ACL_EXPLODE: &str = "(select array_agg(case when a.grantee = 0 then 'PUBLIC' \
       else pg_get_userbyid(a.grantee)::text end || '=' || a.privilege_type \
       || case when a.is_grantable then ' (grantable)' else '' end) from aclexplode({acl}) a)";

pub(super) fn acl(expr: &str) -> String {
    ACL_EXPLODE.replace("{acl}", expr)
}

/// Turns `grantee=PRIV` lines into sorted [`Grant`]s, dropping version-specific privileges.
pub(super) fn grants(lines: Option<Vec<String>>) -> Vec<Grant> {
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
pub(super) fn project_schema(alias: &str) -> String {
    format!(
        "{alias}.nspname not in ('pg_catalog', 'information_schema') \
         and {alias}.nspname not like 'pg\\_toast%' and {alias}.nspname not like 'pg\\_temp%' \
         and {alias}.nspname <> all($1::text[])"
    )
}

pub(super) async fn rows(
    client: &Client,
    what: &str,
    sql: &str,
) -> Result<Vec<tokio_postgres::Row>> {
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
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_trims_line_ends_and_blank_edges() {
        assert_eq!(tidy("\n  begin  \r\n\n  end;\t\n\n"), "  begin\n\n  end;");
    }
}
