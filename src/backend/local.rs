//! The local backend: a private PostgreSQL cluster from server binaries on this machine,
//! initialised once per version, copied per run, reached over a private unix socket.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{BackendKind, Connection, Handle, Host, Server};
use crate::error::{Error, Result};

/// Settings that make a throwaway server fast: nothing it writes needs to survive a crash.
pub const FAST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "100"),
    ("shared_buffers", "128MB"),
    ("max_wal_size", "1GB"),
    ("checkpoint_timeout", "1h"),
];

/// For a server whose cluster is kept and copied at every start (the cache's, a container
/// seed's): old WAL segments are removed rather than kept as spares for reuse, so the
/// cluster left after its shutdown holds one segment, not a dozen (a fifth of what every
/// boot copies).
pub const NO_SPARE_WAL: &str = "wal_recycle=off";

/// Where the server binaries are and what they say about themselves.
#[derive(Debug, Clone)]
pub struct Install {
    pub bindir: PathBuf,
    pub sharedir: PathBuf,
    pub pkglibdir: PathBuf,
    /// `postgres --version` output, e.g. `postgres (PostgreSQL) 15.18 (Debian …)`.
    pub version_line: String,
}

/// The OS user to run the server as: ourselves, or `postgres` when we are root (the server
/// refuses to run as root).
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
    drop_privileges: bool,
}

impl RunAs {
    fn detect() -> Result<RunAs> {
        let uid = nix::unistd::geteuid();
        if !uid.is_root() {
            return Ok(RunAs {
                uid: uid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                drop_privileges: false,
            });
        }
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or_else(|| {
                Error::environment(
                    "run PostgreSQL as root: it refuses to, and there is no `postgres` OS user \
                     to run it as (create one, or run db-ci as a normal user)",
                )
            })?;
        Ok(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            drop_privileges: true,
        })
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if self.drop_privileges {
            let (uid, gid) = (self.uid, self.gid);
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        command
    }

    fn own(&self, path: &Path) -> Result<()> {
        if self.drop_privileges {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| Error::environment(format!("chown {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// Finds server binaries: `PG_BIN`, then `pg_config` on PATH, then `postgres`/`initdb` on
/// PATH, then the distributions' usual places (newest version first).
pub fn find_install() -> Result<Install> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        if !dir.join("postgres").is_file() {
            return Err(Error::environment(format!(
                "use PG_BIN={}: it has no `postgres` binary",
                dir.display()
            )));
        }
        candidates.push(dir);
    } else {
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            if out.status.success() {
                candidates.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
            }
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                if dir.join("postgres").is_file() && dir.join("initdb").is_file() {
                    candidates.push(dir);
                }
            }
        }
        let mut distro: Vec<PathBuf> = [
            "/usr/lib/postgresql/*/bin",
            "/usr/pgsql-*/bin",
            "/opt/homebrew/opt/postgresql@*/bin",
            "/usr/local/opt/postgresql@*/bin",
        ]
        .iter()
        .flat_map(|p| glob::glob(p).into_iter().flatten().flatten())
        .collect();
        distro.sort_by_key(|p| std::cmp::Reverse(major_in_path(p)));
        candidates.extend(distro);
    }
    let bindir = candidates
        .into_iter()
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
        .ok_or_else(|| {
            Error::environment(
                "find PostgreSQL server binaries (postgres, initdb): none in PG_BIN, pg_config, \
                 PATH or /usr/lib/postgresql/*/bin",
            )
        })?;
    install_at(bindir)
}

/// Server binaries of PostgreSQL `major`: those [`find_install`] picks when they are that
/// version, else the distributions' usual place for it (`/usr/lib/postgresql/MAJOR/bin`, …).
pub fn find_install_major(major: u32) -> Option<Install> {
    if let Ok(install) = find_install() {
        if install.major() == Some(major) {
            return Some(install);
        }
    }
    [
        format!("/usr/lib/postgresql/{major}/bin"),
        format!("/usr/pgsql-{major}/bin"),
        format!("/opt/homebrew/opt/postgresql@{major}/bin"),
        format!("/usr/local/opt/postgresql@{major}/bin"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .filter(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
    .filter_map(|dir| install_at(dir).ok())
    .find(|install| install.major() == Some(major))
}

impl Install {
    /// The major version in `postgres --version` (`postgres (PostgreSQL) 15.18 …` is 15).
    pub fn major(&self) -> Option<u32> {
        let rest = self.version_line.split(')').nth(1)?.trim_start();
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    }
}

fn install_at(bindir: PathBuf) -> Result<Install> {
    let version_line = run_text(&bindir.join("postgres"), &["--version"])?;
    let pg_config = bindir.join("pg_config");
    let (sharedir, pkglibdir) = if pg_config.is_file() {
        (
            PathBuf::from(run_text(&pg_config, &["--sharedir"])?),
            PathBuf::from(run_text(&pg_config, &["--pkglibdir"])?),
        )
    } else {
        let prefix = bindir.parent().unwrap_or(&bindir);
        (
            prefix.join("share/postgresql"),
            prefix.join("lib/postgresql"),
        )
    };
    Ok(Install {
        bindir,
        sharedir,
        pkglibdir,
        version_line,
    })
}

fn major_in_path(path: &Path) -> u32 {
    path.to_string_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .next()
        .unwrap_or(0)
}

fn run_text(program: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| Error::environment(format!("run {}: {e}", program.display())))?;
    if !out.status.success() {
        return Err(Error::environment(format!(
            "run {} {}: {}",
            program.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Where initialised clusters and private installation trees are cached.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("DB_CI_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if nix::unistd::geteuid().is_root() {
        // Must be reachable by the `postgres` user the server runs as.
        return PathBuf::from("/var/tmp/db-ci-cache");
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("db-ci");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache/db-ci");
    }
    std::env::temp_dir().join("db-ci-cache")
}

/// A staging folder (its name starts with `prefix`, which starts with `staging-`) in the
/// cache `root`, created if need be: an entry is built there and renamed into place, so a
/// parallel run never sees half of one. Its owner is named first thing, so a run killed
/// mid-build leaves a folder the next run sweeps.
pub(super) fn cache_staging(root: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    std::fs::create_dir_all(root)
        .map_err(|e| Error::environment(format!("create cache {}: {e}", root.display())))?;
    let _ = std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755));
    let staging = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .map_err(|e| Error::environment(format!("create cache entry: {e}")))?;
    super::owner::write_owner_file(&staging.path().join(super::sweep::OWNER_FILE));
    let _ = std::fs::set_permissions(staging.path(), std::fs::Permissions::from_mode(0o755));
    Ok(staging)
}

/// Where per-run clusters live: memory-backed when the machine has it (a throwaway cluster
/// needs no disk, and copying the template there is several times faster).
pub(crate) fn run_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("DB_CI_RUN_DIR") {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = shm.is_dir() && nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// A cached, initialised data directory and a private installation tree whose extension
/// directory also holds the shim's stub extensions.
struct Prepared {
    postgres: PathBuf,
    template_data: PathBuf,
    /// The same cluster with the shimmed templates (and so the shim's roles) in it.
    shimmed_data: PathBuf,
}

fn prepare(install: &Install, run_as: RunAs) -> Result<Prepared> {
    let stubs = crate::shim::stub_extension_files();
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    // Bump when build_tree changes what it puts in the tree.
    hasher.update(b"tree layout 5");
    // The shimmed templates in the cached cluster are the shim's SQL of this build.
    for mode in [
        crate::shim::GrantMode::Classic,
        crate::shim::GrantMode::NoExpose,
    ] {
        hasher.update(crate::shim::template_name(mode));
    }
    // The cluster's bootstrap superuser (initdb -U) is part of the cached data directory.
    hasher.update(super::BOOTSTRAP_SUPERUSER);
    hasher.update(install.bindir.to_string_lossy().as_bytes());
    hasher.update(install.version_line.as_bytes());
    hasher.update(run_as.uid.to_le_bytes());
    for (name, bytes) in &stubs {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    // Extensions installed (or removed) since the tree was built need a new tree.
    let mut installed: Vec<(String, u64)> = std::fs::read_dir(install.sharedir.join("extension"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            (e.file_name().to_string_lossy().into_owned(), size)
        })
        .collect();
    installed.sort();
    for (name, size) in installed {
        hasher.update(name.as_bytes());
        hasher.update(size.to_le_bytes());
    }
    let key = hex::encode(&hasher.finalize()[..8]);
    let root = cache_root();
    let entry = root.join(format!("pg-{key}"));
    let prepared = Prepared {
        postgres: mirror(&entry.join("tree"), &install.bindir).join("postgres"),
        template_data: entry.join("data"),
        shimmed_data: entry.join("data-shimmed"),
    };
    if entry.join("ready").is_file() {
        super::cache::mark_used(&entry);
        return Ok(prepared);
    }

    let staging = cache_staging(&root, &format!("staging-{key}-"))?;
    build_tree(install, &staging.path().join("tree"), &stubs)?;

    let data = staging.path().join("data");
    std::fs::create_dir(&data).map_err(|e| Error::environment(format!("create data dir: {e}")))?;
    run_as.own(&data)?;
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::environment(format!("chmod data dir: {e}")))?;
    let out = run_as
        .command(&install.bindir.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            super::BOOTSTRAP_SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
            "--wal-segsize=1",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::environment(format!("run initdb: {e}")))?;
    if !out.status.success() {
        return Err(Error::environment(format!(
            "initialise a cluster with {}: {}",
            install.bindir.join("initdb").display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // A copy of the bare cluster, with the shimmed templates made in it.
    let shimmed = staging.path().join("data-shimmed");
    copy_cluster(&data, &shimmed)?;
    let postgres = mirror(&staging.path().join("tree"), &install.bindir).join("postgres");
    add_shimmed_templates(run_as, &postgres, &shimmed, staging.path())?;
    std::fs::write(staging.path().join("ready"), &install.version_line)
        .map_err(|e| Error::environment(format!("write cache marker: {e}")))?;
    let staging = staging.keep();
    if std::fs::rename(&staging, &entry).is_err() {
        // Another run finished first; theirs is as good as ours.
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(prepared)
}

/// The command that starts a private server of `data`, reached only over a unix socket in
/// `socket_dir`, logging to `log`.
fn server_command(
    run_as: RunAs,
    postgres: &Path,
    data: &Path,
    socket_dir: &Path,
    log: std::fs::File,
) -> Result<Command> {
    let mut command = run_as.command(postgres);
    command
        .arg("-D")
        .arg(data)
        .arg("-k")
        .arg(socket_dir)
        .args(["-p", "5432", "-c", "listen_addresses="])
        // Segments in the data dir, not /dev/shm: an immediate shutdown leaves none behind.
        .args(["-c", "dynamic_shared_memory_type=mmap"])
        .stdin(Stdio::null())
        .stdout(
            log.try_clone()
                .map_err(|e| Error::environment(e.to_string()))?,
        )
        .stderr(log);
    for (name, value) in FAST_SETTINGS {
        command.arg("-c").arg(format!("{name}={value}"));
    }
    // Its own process group: a terminal's Ctrl-C reaches us, and we stop it in order.
    command.process_group(0);
    Ok(command)
}

/// How to reach a private server over its socket in `socket_dir`, as the bootstrap superuser.
fn socket_connection(socket_dir: &Path) -> Connection {
    Connection {
        host: Host::Socket(socket_dir.to_path_buf()),
        port: 5432,
        user: super::BOOTSTRAP_SUPERUSER.to_owned(),
        password: None,
        maintenance_db: "postgres".to_owned(),
    }
}

/// Copies the cluster `from` to `to`, keeping owners and modes.
fn copy_cluster(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| Error::environment(format!("copy the cached cluster: {e}")))?;
    if !status.success() {
        return Err(Error::environment("copy the cached cluster: cp failed"));
    }
    Ok(())
}

/// Starts the cluster just initialised in `data` once, makes the shimmed templates in it
/// ([`super::make_shimmed_templates`]) and stops it with a fast shutdown: every run copies
/// them instead of applying the shim. Called from a blocking task of the runtime. A run
/// killed meanwhile leaves the server in the staging folder, which the next run's sweep
/// stops and removes with the folder.
fn add_shimmed_templates(
    run_as: RunAs,
    postgres: &Path,
    data: &Path,
    staging: &Path,
) -> Result<()> {
    let socket_dir = staging.join("socket");
    std::fs::create_dir(&socket_dir)
        .map_err(|e| Error::environment(format!("create the cache server's socket dir: {e}")))?;
    run_as.own(&socket_dir)?;
    let log_path = staging.join("templates.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::environment(format!("create the cache server's log: {e}")))?;
    let child = server_command(run_as, postgres, data, &socket_dir, log)?
        .args(["-c", NO_SPARE_WAL])
        .spawn()
        .map_err(|e| Error::environment(format!("start {}: {e}", postgres.display())))?;
    // Stopped on every way out of here, a panic included.
    struct Stopping(Child);
    impl Drop for Stopping {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let _ = self.0.wait();
        }
    }
    let mut server = Stopping(child);
    let connection = socket_connection(&socket_dir);
    let mut exited = || {
        let status = server.0.try_wait().ok()??;
        Some(format!(
            "the server exited at start ({status}); the end of its log:\n{}",
            log_tail(&log_path)
        ))
    };
    let made = tokio::runtime::Handle::current().block_on(async {
        super::wait_until_ready(
            &connection.config("postgres"),
            Duration::from_secs(30),
            "the cache's server",
            &mut exited,
        )
        .await?;
        super::make_shimmed_templates(&connection).await
    });
    drop(server);
    made?;
    let _ = std::fs::remove_dir_all(&socket_dir);
    let _ = std::fs::remove_file(&log_path);
    Ok(())
}

/// `tree` + the absolute `path`: the same place relative to the tree as `path` is to `/`.
fn mirror(tree: &Path, path: &Path) -> PathBuf {
    tree.join(path.strip_prefix("/").unwrap_or(path))
}

/// PostgreSQL finds its share and library directories relative to its own executable, so a
/// copy of the binary in a tree that mirrors the installation uses the tree's `extension/`
/// folder, where the stub extensions sit beside symlinks to the real ones.
fn build_tree(
    install: &Install,
    tree: &Path,
    stubs: &[(&'static str, &'static [u8])],
) -> Result<()> {
    let io = |what: &str, e: std::io::Error| Error::environment(format!("{what}: {e}"));
    let bindir = mirror(tree, &install.bindir);
    std::fs::create_dir_all(&bindir).map_err(|e| io("create private tree", e))?;
    std::fs::copy(install.bindir.join("postgres"), bindir.join("postgres"))
        .map_err(|e| io("copy the postgres binary", e))?;

    let pkglibdir = mirror(tree, &install.pkglibdir);
    if !pkglibdir.exists() {
        std::fs::create_dir_all(pkglibdir.parent().unwrap()).map_err(|e| io("create tree", e))?;
        symlink(&install.pkglibdir, &pkglibdir).map_err(|e| io("link pkglibdir", e))?;
    }

    let sharedir = mirror(tree, &install.sharedir);
    std::fs::create_dir_all(&sharedir).map_err(|e| io("create tree", e))?;
    let entries = std::fs::read_dir(&install.sharedir)
        .map_err(|e| io(&format!("read {}", install.sharedir.display()), e))?;
    for entry in entries.flatten() {
        if entry.file_name() != "extension" {
            let _ = symlink(entry.path(), sharedir.join(entry.file_name()));
        }
    }
    let extdir = sharedir.join("extension");
    std::fs::create_dir_all(&extdir).map_err(|e| io("create tree", e))?;
    if let Ok(entries) = std::fs::read_dir(install.sharedir.join("extension")) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            // The platform's privileged extensions, created by postgres (not a superuser)
            // also where no statement routing reaches (DO blocks, test files): a trusted
            // copy of the control file, so PostgreSQL runs the script as the superuser.
            if let Some(trusted) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".control"))
                .filter(|n| crate::shim::platform::PRIVILEGED_EXTENSIONS.contains(n))
                .and_then(|_| std::fs::read_to_string(entry.path()).ok())
                .map(|text| crate::shim::platform::trusted_control(&text))
            {
                std::fs::write(extdir.join(&name), trusted)
                    .map_err(|e| io("write a trusted control file", e))?;
                continue;
            }
            let _ = symlink(entry.path(), extdir.join(name));
        }
    }
    for (name, bytes) in stubs {
        let target = extdir.join(name);
        // A real extension of the same name wins over our stub, except where the real one
        // cannot work in a throwaway database (pg_cron needs preloading).
        if crate::shim::stub_overrides_real(name) {
            let _ = std::fs::remove_file(&target);
        } else if target.symlink_metadata().is_ok() {
            continue;
        }
        std::fs::write(&target, bytes).map_err(|e| io("write stub extension", e))?;
    }
    // Everything in the tree must be readable by the server's OS user.
    let _ = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(tree)
        .status();
    Ok(())
}

/// A running private cluster. Stopping it kills the server and removes its directory.
pub struct Cluster {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl Cluster {
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Immediate shutdown: the data is thrown away, no checkpoint needed.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGQUIT,
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if std::time::Instant::now() > deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Boots a private cluster from the cached template (its shimmed copy when `shimmed`).
pub async fn start(shimmed: bool) -> Result<Server> {
    start_install(find_install()?, shimmed).await
}

/// Boots a private cluster of the binaries in `install` (from the cache's shimmed copy of
/// the cluster when `shimmed`).
pub async fn start_install(install: Install, shimmed: bool) -> Result<Server> {
    let run_as = RunAs::detect()?;
    let prepared =
        tokio::task::spawn_blocking(move || prepare(&install, run_as).map(|p| (p, install)))
            .await
            .map_err(|e| Error::environment(format!("prepare the local cluster: {e}")))??;
    let (prepared, install) = prepared;

    // The owner in the name too: a run killed before it wrote the owner file is still known.
    let prefix = match super::owner::Owner::current() {
        Some(me) => format!("db-ci-local-{}-{}-", me.pid, me.start),
        None => "db-ci-local-".to_owned(),
    };
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(run_root())
        .map_err(|e| Error::environment(format!("create a temp dir: {e}")))?;
    // Who owns this cluster: a later run removes it (and stops its server) once we are gone.
    super::owner::write_owner_file(&dir.path().join(super::sweep::OWNER_FILE));
    run_as.own(dir.path())?;
    let data = dir.path().join("data");
    let template = match shimmed {
        true => &prepared.shimmed_data,
        false => &prepared.template_data,
    };
    copy_cluster(template, &data)?;
    let socket_dir = dir.path().to_path_buf();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path)
        .map_err(|e| Error::environment(format!("create server log: {e}")))?;
    run_as.own(&log_path)?;

    let child = server_command(run_as, &prepared.postgres, &data, &socket_dir, log)?
        .spawn()
        .map_err(|e| Error::environment(format!("start {}: {e}", prepared.postgres.display())))?;
    let mut cluster = Cluster {
        child: Some(child),
        dir: Some(dir),
    };

    let connection = socket_connection(&socket_dir);
    let mut exited = || {
        let status = cluster.child.as_mut()?.try_wait().ok()??;
        Some(format!(
            "the server exited at start ({status}); the end of its log:\n{}",
            log_tail(&log_path)
        ))
    };
    let ready = super::wait_until_ready(
        &connection.config("postgres"),
        Duration::from_secs(30),
        "the local server",
        &mut exited,
    )
    .await;
    if let Err(e) = ready {
        // `try_wait` keeps the status it reaped: the server is gone and its log already quoted.
        let exited_already = cluster
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_some()));
        cluster.stop_now();
        if exited_already {
            return Err(e);
        }
        return Err(Error::environment(format!(
            "{e}\nthe end of the server's log:\n{}",
            log_tail(&log_path)
        )));
    }
    let description = format!(
        "local {} ({})",
        install
            .version_line
            .trim_start_matches("postgres (PostgreSQL) "),
        install.bindir.display()
    );
    Server::new(
        BackendKind::Local,
        connection,
        description,
        true,
        Handle::Local(cluster),
    )
    .identify()
    .await
}

/// The last lines of the server's log, indented: what a failed start says about itself.
fn log_tail(path: &Path) -> String {
    tail_of(&std::fs::read_to_string(path).unwrap_or_default())
}

/// The last lines of a server's log, indented to be quoted under an error.
pub(super) fn tail_of(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    if tail.is_empty() {
        return "  (empty)".to_owned();
    }
    tail.iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many lines of a failed server's log are quoted.
const LOG_TAIL: usize = 12;
