//! The JUnit reporter: a testsuite per stage, a testcase per check (issue 6 builds it).

use std::path::Path;

use super::Report;

/// Writes the JUnit XML of `report` to `path`, atomically.
pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let _ = (report, path);
    Err(std::io::Error::other("the JUnit reporter is not built yet"))
}
