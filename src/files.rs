//! Writing files db-ci produces (reports, snapshots, db-ci.yaml, recorded matrices) so that a
//! reader never sees half of one, knowing when accepting a result into the repository is off
//! (CI), and telling what a path the project names really is before reading it.

use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same folder renamed over it: a
/// reader (a test-report action, a later step, git) sees the old file or the new one, whole.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Whether we run in CI, where a missing snapshot or recording is a failure and nothing is
/// written into the repository (the convention insta follows).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// What a path expected to hold a file is instead (a directory, a FIFO, a device, a socket, a
/// symlink loop, a symlink to nothing), or `None` for a regular file or a path that is absent
/// or unreadable (the read itself reports those). Reading a FIFO would block; skipping a
/// folder would drop a file the user meant to run.
pub fn not_a_file(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_file() {
                None
            } else if kind.is_dir() {
                Some("a directory")
            } else if kind.is_fifo() {
                Some("a FIFO")
            } else if kind.is_block_device() || kind.is_char_device() {
                Some("a device")
            } else if kind.is_socket() {
                Some("a socket")
            } else {
                Some("not a regular file")
            }
        }
        Err(e) if e.raw_os_error() == Some(40) => Some("a symlink loop (ELOOP)"),
        Err(_) if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            Some("a symlink to nothing")
        }
        Err(_) => None,
    }
}

/// Whether a regular file is at `path` (`Ok(false)`: nothing at all, not even a link), or
/// what is there instead: a config or folder the project names that is a broken link, a loop
/// or a FIFO must not read as "absent" (a run without its settings) or block the run.
pub fn file_if_present(path: &Path) -> Result<bool, &'static str> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    match not_a_file(path) {
        Some(what) => Err(what),
        None => Ok(true),
    }
}

/// Whether a directory is at `path` (`Ok(false)`: nothing at all), or what is there instead.
pub fn dir_if_present(path: &Path) -> Result<bool, &'static str> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(false);
    }
    match not_a_file(path) {
        Some("a directory") => Ok(true),
        Some(what) => Err(what),
        None => Err("a file"),
    }
}

/// The first link on the way from `root` to `path` that leads back to a folder above it (so
/// a walk or a `**` glob through it finds the same files again and again, up to the kernel's
/// limit), or `None`.
pub fn looping_link(root: &Path, path: &Path) -> Option<std::path::PathBuf> {
    let rel = path.strip_prefix(root).ok()?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        let is_link = std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        let (Ok(target), Some(Ok(parent))) = (
            std::fs::canonicalize(&at),
            at.parent().map(std::fs::canonicalize),
        ) else {
            continue;
        };
        if parent.starts_with(&target) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_back_to_a_folder_above_is_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("seeds/sub")).unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        std::os::unix::fs::symlink("..", root.join("seeds/sub/up")).unwrap();
        std::os::unix::fs::symlink("../../shared", root.join("seeds/sub/shared")).unwrap();
        assert_eq!(
            looping_link(root, &root.join("seeds/sub/up/sub/a.sql")),
            Some(root.join("seeds/sub/up"))
        );
        assert_eq!(
            looping_link(root, &root.join("seeds/sub/shared/a.sql")),
            None
        );
        assert_eq!(looping_link(root, &root.join("seeds/sub/a.sql")), None);
    }

    #[test]
    fn present_paths_are_read_as_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(at("file"), "x").unwrap();
        std::fs::create_dir(at("dir")).unwrap();
        std::os::unix::fs::symlink("gone", at("broken")).unwrap();
        std::os::unix::fs::symlink("loop", at("loop")).unwrap();
        nix::unistd::mkfifo(&at("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(file_if_present(&at("file")), Ok(true));
        assert_eq!(file_if_present(&at("absent")), Ok(false));
        assert_eq!(file_if_present(&at("dir")), Err("a directory"));
        assert_eq!(file_if_present(&at("broken")), Err("a symlink to nothing"));
        assert_eq!(file_if_present(&at("loop")), Err("a symlink loop (ELOOP)"));
        assert_eq!(file_if_present(&at("fifo")), Err("a FIFO"));
        assert_eq!(dir_if_present(&at("dir")), Ok(true));
        assert_eq!(dir_if_present(&at("absent")), Ok(false));
        assert_eq!(dir_if_present(&at("file")), Err("a file"));
        assert_eq!(dir_if_present(&at("broken")), Err("a symlink to nothing"));
    }

    #[test]
    fn writes_whole_and_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/report.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let entries = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(entries, 1);
    }
}
