//! The JSON reporter: writes the report atomically, so a reader never sees half a file.

use std::path::Path;

use super::Report;

pub fn write(report: &Report, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, text.as_bytes())?;
    std::io::Write::write_all(&mut temp, b"\n")?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
