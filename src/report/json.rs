//! The JSON reporter: the contract of docs/contract.md (`verdict`, `stages[].name/verdict/failures`…),
//! written atomically so a reader never sees half a file.

use std::path::Path;

use super::Report;

pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::files::write_atomically(path, &crate::redact::scrub_bytes(text))
}
