//! The cache folder's lifetime: a run marks each entry it uses, and the sweep at every start
//! removes the entries no run has used for [`UNUSED_FOR`] (older builds' clusters, seeds of
//! images since rebuilt), so the folder does not grow with every db-ci or image version.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long an entry may go unused before the sweep removes it: long enough that a project
/// worked on now and then keeps its warm starts, short enough that a superseded build's
/// ~100 MB do not stay for good.
pub const UNUSED_FOR: Duration = Duration::from_secs(14 * 24 * 3600);

/// The entries the cache holds, by name: a local cluster and installation tree, a container
/// seed, the stub extensions a container is given, and an image's first-start and
/// no-seed markers. Staging folders are the half-built-entry sweep's; any other name is left
/// alone.
const KINDS: [&str; 5] = [
    "pg-",
    "container-seed-",
    "container-stubs-",
    "container-seen-",
    "container-unseeded-",
];

/// Marks the cache entry `path` (a folder or a file at the top of the cache) as used now.
/// Best effort: an entry that cannot be marked only risks being rebuilt after
/// [`UNUSED_FOR`].
pub fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Whether the cache entry named `name`, last used at `last_used`, is to be removed `now`.
fn unused(name: &str, last_used: SystemTime, now: SystemTime) -> bool {
    KINDS.iter().any(|kind| name.starts_with(kind))
        && now
            .duration_since(last_used)
            .is_ok_and(|idle| idle > UNUSED_FOR)
}

/// Removes the entries of the cache `root` no run has used for [`UNUSED_FOR`]. Each is first
/// renamed into a staging folder of this process: a removal cut short leaves no entry that
/// looks whole (a cluster missing files would be copied by the next run), and the sweep of
/// half-built entries finishes it. Returns the entries removed.
pub fn remove_unused(root: &Path) -> Vec<PathBuf> {
    let now = SystemTime::now();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(last_used) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if !unused(&name, last_used, now) {
            continue;
        }
        let Ok(trash) = super::local::cache_staging(root, "staging-unused-") else {
            continue;
        };
        if std::fs::rename(entry.path(), trash.path().join(&name)).is_ok() {
            removed.push(entry.path());
        }
        // Dropping the staging folder removes it with what was moved in.
        drop(trash);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[test]
    fn only_known_entries_unused_for_the_whole_period_are_removed() {
        let now = SystemTime::now();
        let long_ago = now - UNUSED_FOR - DAY;
        let lately = now - UNUSED_FOR + DAY;
        for kind in KINDS {
            let name = format!("{kind}0123456789abcdef");
            assert!(unused(&name, long_ago, now), "{name}");
            assert!(!unused(&name, lately, now), "{name}");
            assert!(!unused(&name, now, now), "{name}");
        }
        // Half-built entries are the staging sweep's (it asks whether their builder lives);
        // a name db-ci does not make is not ours to remove.
        for name in ["staging-pg-1234", "notes.txt", "pgdata", "container-other"] {
            assert!(!unused(name, long_ago, now), "{name}");
        }
        // A clock set back (last use "in the future") removes nothing.
        assert!(!unused("pg-0123", now + DAY, now));
    }

    #[test]
    fn unused_entries_are_removed_whole_and_used_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - UNUSED_FOR - DAY;
        let make = |name: &str, folder: bool| {
            let path = root.path().join(name);
            if folder {
                std::fs::create_dir_all(path.join("data/base")).unwrap();
                std::fs::write(path.join("ready"), "15").unwrap();
                std::fs::write(path.join("data/base/1"), "page").unwrap();
            } else {
                std::fs::write(&path, "image").unwrap();
            }
            std::fs::File::open(&path)
                .unwrap()
                .set_modified(old)
                .unwrap();
            path
        };
        let stale_cluster = make("pg-aaaaaaaaaaaaaaaa", true);
        let stale_marker = make("container-seen-bbbbbbbbbbbbbbbb", false);
        let used_cluster = make("pg-cccccccccccccccc", true);
        let other = make("someone-elses", true);
        mark_used(&used_cluster);

        let mut removed = remove_unused(root.path());
        removed.sort();
        assert_eq!(removed, vec![stale_marker.clone(), stale_cluster.clone()]);
        assert!(!stale_cluster.exists() && !stale_marker.exists());
        assert!(used_cluster.join("data/base/1").is_file());
        assert!(other.join("ready").is_file());
        // Nothing left of the removal itself.
        let left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("staging-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
