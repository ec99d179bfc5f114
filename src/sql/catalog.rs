//! Catalog filters shared by every reader of the catalog, so that "what the project made"
//! means the same thing to the snapshot, the fingerprints, coverage and lints.

/// Schemas that belong to PostgreSQL itself (`n` is `pg_namespace`).
pub const SYSTEM_SCHEMA_FILTER: &str = "n.nspname not in ('pg_catalog', 'information_schema') \
     and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'";

/// A condition true when the object `oid` of catalog `class` (e.g. `pg_class`, `c.oid`) is not
/// a member of an extension: extension members are the extension's business, not the
/// project's.
pub fn not_extension_member(class: &str, oid: &str) -> String {
    format!(
        "not exists (select 1 from pg_catalog.pg_depend d \
         where d.classid = 'pg_catalog.{class}'::regclass and d.objid = {oid} and d.deptype = 'e')"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_member_filter_names_class_and_object() {
        let sql = not_extension_member("pg_proc", "p.oid");
        assert!(sql.contains("'pg_catalog.pg_proc'::regclass"), "{sql}");
        assert!(sql.contains("d.objid = p.oid and d.deptype = 'e'"), "{sql}");
    }
}
