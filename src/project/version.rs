//! Migration versions and their order: the numeric prefix of a file name compared as numbers,
//! the Supabase CLI's own reading of its folder, and the checks that no two files share one.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use super::SqlFile;
use crate::error::{Error, Result};

/// The numeric version prefix of a file name: `0001_`, `20251212_001_`, `20240101120000_`.
/// Equal when numerically equal: `0002_` and `2_` are the same version.
#[derive(Debug, Clone)]
pub struct Version(Vec<String>);

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Version {
    pub fn parse(file_name: &str) -> Option<Version> {
        static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let pattern = PATTERN.get_or_init(|| Regex::new(r"^(\d+(?:_\d+)*)(?:[_.\-]|$)").unwrap());
        let prefix = pattern.captures(file_name)?.get(1)?.as_str();
        Some(Version(prefix.split('_').map(str::to_owned).collect()))
    }

    /// The version the Supabase CLI reads from a migration's file name (`^([0-9]+)_(.*)\.sql$`):
    /// the leading digits only, and the rest of the name. `None` for a name the CLI skips.
    pub fn supabase_cli(file_name: &str) -> Option<(Version, String)> {
        static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let pattern = PATTERN.get_or_init(|| Regex::new(r"^([0-9]+)_(.*)\.sql$").unwrap());
        let captures = pattern.captures(file_name)?;
        Some((
            Version(vec![captures[1].to_owned()]),
            captures[2].to_owned(),
        ))
    }

    /// The version as written in the file name (`0002`, `20251212_001`).
    pub fn as_written(&self) -> String {
        self.0.join("_")
    }

    fn numeric(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|group| {
            let trimmed = group.trim_start_matches('0');
            if trimmed.is_empty() {
                "0"
            } else {
                trimmed
            }
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // Compare group by group as numbers of any length.
        self.numeric()
            .map(|g| (g.len(), g))
            .cmp(other.numeric().map(|g| (g.len(), g)))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("_"))
    }
}

/// Orders migrations by version; a file with no version, or two files sharing one, is an
/// input error naming the files.
pub(super) fn check_versions(files: &mut [SqlFile]) -> Result<()> {
    let unversioned: Vec<&str> = files
        .iter()
        .filter(|f| f.version.is_none())
        .map(|f| f.rel.as_str())
        .collect();
    if !unversioned.is_empty() {
        return Err(Error::input(format!(
            "order migrations: {} {} no numeric version prefix (like 0001_ or 20240101120000_)",
            unversioned.join(", "),
            if unversioned.len() == 1 {
                "has"
            } else {
                "have"
            }
        )));
    }
    files.sort_by(|a, b| a.version.cmp(&b.version).then_with(|| a.rel.cmp(&b.rel)));
    let mut by_version: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for pair in files.windows(2) {
        if pair[0].version == pair[1].version {
            let list = by_version
                .entry(pair[0].version.as_ref().unwrap().to_string())
                .or_default();
            for f in [&pair[0], &pair[1]] {
                if !list.contains(&f.rel.as_str()) {
                    list.push(&f.rel);
                }
            }
        }
    }
    if let Some((version, names)) = by_version.into_iter().next() {
        return Err(Error::input(format!(
            "order migrations: duplicate version {version}: {}",
            names.join(" and ")
        )));
    }
    Ok(())
}

/// The Supabase CLI's reading of its migrations folder (files already in name order): a
/// first `<14 digits>_init.sql` older than 2021-12-09 is skipped (its old layout), as is every
/// name not matching `<digits>_<name>.sql`; the rest keep file-name order and get the CLI's
/// version and name.
pub(super) fn supabase_cli_migrations(
    files: Vec<SqlFile>,
) -> (Vec<SqlFile>, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut skipped = Vec::new();
    for (i, mut file) in files.into_iter().enumerate() {
        let name = file
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if i == 0 && is_legacy_init(&name) {
            skipped.push((
                file.rel,
                "the Supabase CLI skips a first `<timestamp>_init.sql` older than 2021-12-09"
                    .to_owned(),
            ));
            continue;
        }
        match Version::supabase_cli(&name) {
            Some((version, cli_name)) => {
                file.version = Some(version);
                file.cli_name = Some(cli_name);
                kept.push(file);
            }
            None => skipped.push((
                file.rel,
                "the Supabase CLI skips it: a migration's name must match `<timestamp>_name.sql`"
                    .to_owned(),
            )),
        }
    }
    (kept, skipped)
}

fn is_legacy_init(name: &str) -> bool {
    let Some(stamp) = name.strip_suffix("_init.sql") else {
        return false;
    };
    stamp.len() == 14
        && stamp.bytes().all(|b| b.is_ascii_digit())
        && stamp.parse::<u64>().is_ok_and(|t| t < 20211209000000)
}

/// Two files with one version as written: the CLI applies the first and its push fails on the
/// second's ledger row (`schema_migrations.version` is the key).
pub(super) fn check_cli_versions(files: &[SqlFile]) -> Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for file in files {
        let version = file
            .version
            .as_ref()
            .map(Version::as_written)
            .unwrap_or_default();
        if let Some(first) = seen.insert(version.clone(), &file.rel) {
            return Err(Error::input(format!(
                "order migrations: duplicate version {version}: {first} and {}; `supabase db \
                 push` would fail recording the second in supabase_migrations.schema_migrations",
                file.rel
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str) -> Version {
        Version::parse(name).unwrap()
    }

    #[test]
    fn versions_parse_the_prefixes_real_projects_use() {
        assert_eq!(v("0001_init.sql").to_string(), "0001");
        assert_eq!(v("000_base_core.sql").to_string(), "000");
        assert_eq!(
            v("20251212_001_social_tables.sql").to_string(),
            "20251212_001"
        );
        assert_eq!(v("20240101120000_init.sql").to_string(), "20240101120000");
        assert_eq!(v("0001_2fa.sql").to_string(), "0001");
        assert!(Version::parse("init.sql").is_none());
        assert!(Version::parse("v1_init.sql").is_none());
    }

    #[test]
    fn versions_order_numerically() {
        assert!(v("9_a.sql") < v("10_a.sql"));
        assert!(v("0002_a.sql") == v("2_b.sql"));
        assert!(v("20251212_001_a.sql") < v("20251212_002_a.sql"));
        assert!(v("20251212_002_a.sql") < v("20251213_001_a.sql"));
    }
}
