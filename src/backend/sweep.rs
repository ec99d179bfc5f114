//! Sweeping what dead runs left: local cluster directories (and their orphaned servers),
//! half-built cache staging directories, labelled containers and url-backend databases.
//!
//! A run killed without a chance to clean up (SIGKILL, a crash, power loss) leaves these
//! behind; every run removes the ones whose owner is provably gone and says so. Anything whose
//! owner may still run is left alone, whatever it looks like: other runs on the same machine
//! or server are normal.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::owner::{self, Liveness, Owner};

/// Owner-less leftovers (written by a db-ci that predates owner files, or caught in the
/// instant before the owner file is written) are removed only once this old, and only when no
/// process still uses them.
const OWNERLESS_AGE: Duration = Duration::from_secs(600);

/// The file naming the process that owns a run or staging directory.
pub const OWNER_FILE: &str = "db-ci-owner";

/// One thing removed, said on stderr.
fn say(what: &str) {
    eprintln!("db-ci: removed {what}");
}

/// What to do with one leftover directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Remove,
}

/// Pure decision for a directory from its owner (if recorded), whether a process still uses
/// it and whether that process is an orphan (re-parented to init), and its age.
fn judge(
    owner: Option<Liveness>,
    used: bool,
    orphan_server: bool,
    age: Option<Duration>,
) -> Verdict {
    match owner {
        Some(Liveness::Gone) => Verdict::Remove,
        Some(Liveness::Alive) | Some(Liveness::Unknown) => Verdict::Keep,
        None if orphan_server => Verdict::Remove,
        None if !used && age.is_some_and(|a| a > OWNERLESS_AGE) => Verdict::Remove,
        None => Verdict::Keep,
    }
}

fn age(path: &Path) -> Option<Duration> {
    path.metadata().ok()?.modified().ok()?.elapsed().ok()
}

/// Stops the postmaster of `data` (named by its `postmaster.pid`) if it still runs from
/// there, then every other process still mentioning `dir`.
fn stop_processes(dir: &Path) {
    let needle = dir.display().to_string();
    for pid in owner::processes_mentioning(&needle) {
        // SIGQUIT: a postmaster's immediate shutdown (it takes its children with it); other
        // programs (initdb, a bootstrap backend) end on it too.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGQUIT,
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = owner::processes_mentioning(&needle);
        if left.is_empty() {
            return;
        }
        if std::time::Instant::now() > deadline {
            for pid in left {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(100));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The postmaster recorded in `data/postmaster.pid`, if it runs and still mentions `dir`.
fn live_postmaster(dir: &Path, data: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    owner::processes_mentioning(&dir.display().to_string())
        .contains(&pid)
        .then_some(pid)
}

/// Directories under `root` whose names start with `prefix`.
pub(super) fn candidates(root: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes local cluster directories under `run_root` whose owner is gone, stopping the
/// server still running from one. Returns what it removed.
pub fn local_clusters(run_root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for dir in candidates(run_root, "db-ci-local-") {
        let recorded =
            owner::read_owner_file(&dir.join(OWNER_FILE)).or_else(|| owner_in_name(&dir));
        let liveness = recorded.as_ref().map(Owner::liveness);
        let postmaster = live_postmaster(&dir, &dir.join("data"));
        let orphan = postmaster.is_some_and(|pid| owner::parent_pid(pid) == Some(1));
        let used = !owner::processes_mentioning(&dir.display().to_string()).is_empty();
        if judge(liveness, used, orphan, age(&dir)) == Verdict::Keep {
            continue;
        }
        stop_processes(&dir);
        if std::fs::remove_dir_all(&dir).is_ok() {
            let by = recorded
                .map(|o| format!(" (its run, pid {}, is gone)", o.pid))
                .unwrap_or_else(|| " (its server was orphaned or it was abandoned)".to_owned());
            say(&format!("local cluster {}{by}", dir.display()));
            removed.push(dir);
        }
    }
    removed
}

/// Removes `--keep`'s private directories (`db-ci-keep-<pid>-<start>-…`, holding a pgpass file
/// with the server's password) under `temp` whose run is gone: a SIGKILL gives `--keep` no
/// chance to remove its own, and a password must not stay on disk.
pub fn keep_dirs(temp: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for dir in candidates(temp, KEEP_PREFIX) {
        let recorded = owner_in_name_with(&dir, KEEP_PREFIX);
        let liveness = recorded.as_ref().map(Owner::liveness);
        if judge(liveness, false, false, age(&dir)) == Verdict::Keep {
            continue;
        }
        if std::fs::remove_dir_all(&dir).is_ok() {
            say(&format!(
                "--keep password file {} (its run is gone)",
                dir.display()
            ));
            removed.push(dir);
        }
    }
    removed
}

/// The name prefix of `--keep`'s private directory; the owner's pid and start follow.
pub const KEEP_PREFIX: &str = "db-ci-keep-";

/// The owner a cluster directory's name carries (`db-ci-local-<pid>-<start>-…`), on this
/// boot and in this pid namespace: the name is written atomically with the directory, the
/// owner file an instant later.
fn owner_in_name(dir: &Path) -> Option<Owner> {
    owner_in_name_with(dir, "db-ci-local-")
}

fn owner_in_name_with(dir: &Path, prefix: &str) -> Option<Owner> {
    let name = dir.file_name()?.to_str()?.strip_prefix(prefix)?;
    let mut parts = name.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    parts.next()?;
    let me = Owner::current()?;
    Some(Owner { pid, start, ..me })
}

/// Removes half-built cache entries under `cache_root` whose builder is gone, stopping an
/// initdb still running into one.
pub fn staging_dirs(cache_root: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for dir in candidates(cache_root, "staging-") {
        let recorded = owner::read_owner_file(&dir.join(OWNER_FILE));
        let liveness = recorded.as_ref().map(Owner::liveness);
        let used = !owner::processes_mentioning(&dir.display().to_string()).is_empty();
        if judge(liveness, used, false, age(&dir)) == Verdict::Keep {
            continue;
        }
        stop_processes(&dir);
        if std::fs::remove_dir_all(&dir).is_ok() {
            say(&format!("half-built cache entry {}", dir.display()));
            removed.push(dir);
        }
    }
    removed
}

/// Container label naming the owning process (see [`Owner::render`]).
pub const OWNER_LABEL: &str = "dev.db-ci.owner";

/// Removes containers carrying db-ci's owner label whose owner is gone. Containers started by
/// a db-ci without the owner label are left alone (their pid alone proves nothing).
pub async fn containers(docker: &bollard::Docker) -> Vec<String> {
    remove_containers(docker, |owner| owner.liveness() == Liveness::Gone).await
}

/// Removes every container this process started: for an exit on a signal, where a container
/// still being started belongs to no [`super::Server`] yet and nothing else would remove it.
pub async fn own_containers() {
    let Some(me) = Owner::current() else { return };
    let Ok(docker) = bollard::Docker::connect_with_defaults() else {
        return;
    };
    // The engine may be slow or gone: never hang the exit on it. Until none is listed: a
    // removal the dropped run already started answers "in progress" and may not finish
    // before this process exits, so it is waited for, and retried.
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let (_, left) = remove_containers_counting(&docker, |owner| *owner == me).await;
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

async fn remove_containers(
    docker: &bollard::Docker,
    remove: impl Fn(&Owner) -> bool,
) -> Vec<String> {
    remove_containers_counting(docker, remove).await.0
}

/// Removes the containers `remove` picks: the ids removed, and how many it picked that are
/// not removed (yet), or 0 when the engine cannot be listed.
async fn remove_containers_counting(
    docker: &bollard::Docker,
    remove: impl Fn(&Owner) -> bool,
) -> (Vec<String>, usize) {
    let filters =
        std::collections::HashMap::from([("label".to_owned(), vec![OWNER_LABEL.to_owned()])]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let Ok(list) = docker.list_containers(Some(options)).await else {
        return (Vec::new(), 0);
    };
    let mut removed = Vec::new();
    let mut left = 0;
    for container in list {
        let Some(id) = container.id else { continue };
        let owner = container
            .labels
            .as_ref()
            .and_then(|l| l.get(OWNER_LABEL))
            .and_then(|text| Owner::parse(text));
        let Some(owner) = owner else { continue };
        if !remove(&owner) {
            continue;
        }
        let options = bollard::query_parameters::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        if docker.remove_container(&id, Some(options)).await.is_ok() {
            if owner.pid != std::process::id() {
                say(&format!(
                    "container {} (its run, pid {}, is gone)",
                    &id[..12.min(id.len())],
                    owner.pid
                ));
            }
            removed.push(id);
        } else {
            left += 1;
        }
    }
    (removed, left)
}

/// Databases db-ci names `db_ci_<tag>_…` on a url server, where `<tag>` is the run's 12 hex
/// digits and every session of that run carries `application_name = 'db-ci <tag>'`: a
/// database whose tag no session carries belongs to a run that is gone. The sessions are
/// visible to every role, whichever machine the run was on.
pub const ABANDONED_DATABASES: &str = "select d.datname from pg_database d \
     where d.datname ~ '^db_ci_[0-9a-f]{12}_' \
     and not exists (select 1 from pg_stat_activity a \
                     where a.application_name like 'db-ci ' || substr(d.datname, 7, 12) || '%') \
     order by 1";

/// Drops the databases [`ABANDONED_DATABASES`] finds; returns their names.
pub async fn url_databases(client: &tokio_postgres::Client) -> Vec<String> {
    let Ok(rows) = client.query(ABANDONED_DATABASES, &[]).await else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        let sql = format!(
            "drop database if exists {} with (force)",
            crate::sql::quote_ident(&name)
        );
        match client.batch_execute(&sql).await {
            Ok(()) => {
                say(&format!("database {name} (its run is gone)"));
                removed.push(name);
            }
            Err(e) => eprintln!(
                "db-ci: warning: could not drop {name}, left by a run that is gone: {}",
                crate::sql::db_error_text(&e)
            ),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_runs_keep_dir_goes_and_a_live_ones_stays() {
        let temp = tempfile::tempdir().unwrap();
        let me = Owner::current().unwrap();
        let mine = temp
            .path()
            .join(format!("{KEEP_PREFIX}{}-{}-AbC", me.pid, me.start));
        // A pid that cannot be running with this start time: the run is gone.
        let dead = temp
            .path()
            .join(format!("{KEEP_PREFIX}{}-{}-XyZ", me.pid, me.start + 1));
        for dir in [&mine, &dead] {
            std::fs::create_dir(dir).unwrap();
            std::fs::write(dir.join("pgpass"), "h:1:d:u:secret\n").unwrap();
        }
        let removed = keep_dirs(temp.path());
        assert_eq!(removed, std::slice::from_ref(&dead));
        assert!(mine.exists() && !dead.exists());
    }

    #[test]
    fn a_cluster_dir_names_its_owner() {
        let me = Owner::current().unwrap();
        let dir = PathBuf::from(format!("/x/db-ci-local-{}-{}-AbC123", me.pid, me.start));
        assert_eq!(owner_in_name(&dir), Some(me.clone()));
        assert_eq!(owner_in_name(Path::new("/x/db-ci-local-AbC123")), None);
        assert_eq!(owner_in_name(Path::new("/x/db-ci-local-12-x-AbC")), None);
    }

    #[test]
    fn only_provably_abandoned_dirs_go() {
        let old = Some(Duration::from_secs(3600));
        let young = Some(Duration::from_secs(5));
        assert_eq!(
            judge(Some(Liveness::Gone), true, false, young),
            Verdict::Remove
        );
        assert_eq!(
            judge(Some(Liveness::Alive), false, true, old),
            Verdict::Keep
        );
        assert_eq!(
            judge(Some(Liveness::Unknown), false, false, old),
            Verdict::Keep
        );
        // No owner file: only an orphaned server or an old unused directory.
        assert_eq!(judge(None, true, true, young), Verdict::Remove);
        assert_eq!(judge(None, false, false, old), Verdict::Remove);
        assert_eq!(judge(None, false, false, young), Verdict::Keep);
        assert_eq!(judge(None, true, false, old), Verdict::Keep);
        assert_eq!(judge(None, false, false, None), Verdict::Keep);
    }
}
