//! The container backend: any image with the official `postgres` image's contract, started
//! with testcontainers and removed on every exit path.

use std::time::Duration;

use testcontainers::core::{AccessMode, ContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};

use super::{BackendKind, Connection, Handle, Host, Server};
use crate::error::{Error, Result};

/// Label put on every container db-ci starts, so leftovers can be found (`docker ps -f`).
pub const LABEL: &str = "dev.db-ci.run";

/// Where the cluster lives inside the container (a tmpfs mount).
const DATA_DIR: &str = "/var/lib/postgresql/db-ci-data";

/// A running container; dropping it removes it.
pub struct Container {
    inner: ContainerAsync<GenericImage>,
}

impl Container {
    pub async fn stop(self) {
        let _ = self.inner.rm().await;
    }

    pub fn id(&self) -> &str {
        self.inner.id()
    }

    /// Whether the container still runs (an engine that does not answer: no).
    pub(super) async fn running(&self) -> bool {
        self.inner.is_running().await.unwrap_or(false)
    }

    /// What the container printed so far, both streams.
    pub(super) async fn log(&self) -> String {
        let mut log = self.inner.stdout_to_vec().await.unwrap_or_default();
        log.extend(self.inner.stderr_to_vec().await.unwrap_or_default());
        String::from_utf8_lossy(&log).into_owned()
    }
}

fn split_image(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_owned(), format!("@{digest}").replacen('@', "", 0));
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(colon) => (
            image[..slash + colon].to_owned(),
            image[slash + colon + 1..].to_owned(),
        ),
        None => (image.to_owned(), "latest".to_owned()),
    }
}

/// Why the container backend cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("no Docker engine configured ({0})")]
    NoEngine(bollard::errors::Error),
    #[error("the Docker engine did not answer within 3s")]
    Silent,
    #[error("no Docker engine answers ({0})")]
    NoAnswer(bollard::errors::Error),
    #[error("image {image} is not present and cannot be pulled ({error})")]
    Pull {
        image: String,
        error: bollard::errors::Error,
    },
    #[error("image {0} is not present and pulling it took over 120s")]
    PullTimeout(String),
}

/// Whether a Docker engine answers and has `image` (or can pull it quickly).
pub async fn usable(image: &str) -> std::result::Result<(), Unusable> {
    let docker = bollard::Docker::connect_with_defaults().map_err(Unusable::NoEngine)?;
    tokio::time::timeout(Duration::from_secs(3), docker.ping())
        .await
        .map_err(|_| Unusable::Silent)?
        .map_err(Unusable::NoAnswer)?;
    if docker.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    pull(&docker, image).await
}

async fn pull(docker: &bollard::Docker, image: &str) -> std::result::Result<(), Unusable> {
    use futures_util::StreamExt;
    let (name, tag) = split_image(image);
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_image(&name)
        .tag(&tag)
        .build();
    let pulling = async {
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            item?;
        }
        Ok::<(), bollard::errors::Error>(())
    };
    match tokio::time::timeout(Duration::from_secs(120), pulling).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Unusable::Pull {
            image: image.to_owned(),
            error,
        }),
        Err(_) => Err(Unusable::PullTimeout(image.to_owned())),
    }
}

/// Starts `image`, waits until it accepts connections, installs the stub extensions; when
/// `shimmed`, from the image's seed if the cache holds one (see [`super::seed`]).
pub async fn start(image: &str, shimmed: bool) -> Result<Server> {
    usable(image)
        .await
        .map_err(|problem| Error::environment(format!("use the container backend: {problem}")))?;
    if let Ok(docker) = bollard::Docker::connect_with_defaults() {
        super::sweep::containers(&docker).await;
    }
    let image_facts = inspect(image).await;
    let seed = match &image_facts.id {
        Some(id) if shimmed => super::seed::find_or_build(image, id, &image_facts.entrypoint).await,
        _ => None,
    };
    let password = match &seed {
        Some(seed) => seed.password.clone(),
        None => format!("dbci{:016x}", rand::random::<u64>()),
    };
    let bare = DataDir::Memory { seed: None };
    let started = match &seed {
        Some(kept) => {
            let seeded = DataDir::Memory {
                seed: Some(kept.archive.as_path()),
            };
            match boot(image, &image_facts.entrypoint, &password, seeded).await {
                Ok(started) => started,
                // An engine that cannot mount the seed (a folder it does not share) still
                // runs the image as it would without one.
                Err(e) => {
                    eprintln!("note: the container did not start from its seed ({e}); starting it without one");
                    boot(image, &image_facts.entrypoint, &password, bare).await?
                }
            }
        }
        None => boot(image, &image_facts.entrypoint, &password, bare).await?,
    };
    let description = format!(
        "container {image} ({}{})",
        &started.container.id()[..12.min(started.container.id().len())],
        if started.seeded {
            ", from its seed"
        } else {
            ""
        }
    );
    Server::new(
        BackendKind::Container,
        started.connection,
        description,
        started.stubs_installed,
        Handle::Container(Box::new(started.container)),
    )
    .identify()
    .await
}

/// Whether the Docker engine runs beside us (reached through a local socket), so that a
/// path of ours can be mounted into its containers.
fn engine_is_local() -> bool {
    match std::env::var("DOCKER_HOST") {
        Err(_) => true,
        Ok(host) => host.is_empty() || host.starts_with("unix://"),
    }
}

/// What db-ci reads of an image before starting it.
struct ImageFacts {
    /// Its content's id (`sha256:…`), naming its seed.
    id: Option<String>,
    /// The command its entrypoint runs: `sh -c` execs it after our start script.
    entrypoint: Vec<String>,
}

async fn inspect(image: &str) -> ImageFacts {
    let inspected = match bollard::Docker::connect_with_defaults() {
        Ok(docker) => docker.inspect_image(image).await.ok(),
        Err(_) => None,
    };
    let Some(inspected) = inspected else {
        return ImageFacts {
            id: None,
            entrypoint: Vec::new(),
        };
    };
    ImageFacts {
        id: inspected.id,
        entrypoint: inspected
            .config
            .and_then(|c| c.entrypoint)
            .unwrap_or_default(),
    }
}

/// Where a container's cluster lives.
#[derive(Clone, Copy)]
pub(super) enum DataDir<'a> {
    /// In memory (a tmpfs): a run's throwaway cluster, extracted from `seed` (an archive of
    /// a stopped cluster's data directory) where there is one, else made by the entrypoint.
    Memory { seed: Option<&'a std::path::Path> },
    /// In the container's own file system, at [`SEED_DIR`], where it stays when the container
    /// stops: the seed's builder.
    Kept,
}

/// The data directory of a seed's builder, archived once its server has stopped.
pub(super) const SEED_DIR: &str = "/var/lib/postgresql/db-ci-seed";

/// Where the seed's archive is copied before the container starts.
const SEED_ARCHIVE: &str = "/tmp/db-ci-seed.tar";

/// A started container, its server ready.
pub(super) struct Started {
    pub container: Container,
    pub connection: Connection,
    pub stubs_installed: bool,
    /// Whether its cluster came from a seed.
    pub seeded: bool,
}

/// How db-ci reaches a container's server.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Route {
    /// At the container's own address on the engine's bridge, which this machine reaches:
    /// no port published.
    Bridge,
    /// At a port the engine publishes on this machine (or on the engine's host).
    Published,
}

/// The variable that makes db-ci publish the container's port and connect through it even
/// where the bridge is reachable (`published`; `auto`, the default, takes the bridge where
/// it can): for a firewall between this machine and the bridge that lets the probe through,
/// and for the tests of the published route.
pub const ROUTE_VAR: &str = "DB_CI_CONTAINER_ROUTE";

impl Route {
    /// What the user asked for: the bridge where it is here (`auto`), or the published port.
    fn wanted() -> Result<Route> {
        match std::env::var(ROUTE_VAR).as_deref() {
            Err(_) | Ok("") | Ok("auto") => Ok(Route::Bridge),
            Ok("published") => Ok(Route::Published),
            Ok(other) => Err(Error::input(format!(
                "read {ROUTE_VAR}: `{other}` is neither `auto` nor `published`"
            ))),
        }
    }
}

/// Starts a container of `image` (whose entrypoint is `entrypoint`) with its superuser's
/// `password`, and waits until its server accepts connections.
pub(super) async fn boot(
    image: &str,
    entrypoint: &[String],
    password: &str,
    data: DataDir<'_>,
) -> Result<Started> {
    if Route::wanted()? == Route::Bridge && bridge_is_here().await {
        if let Some(started) = boot_on(image, entrypoint, password, data, Route::Bridge).await? {
            return Ok(started);
        }
    }
    // Only the bridge route can turn out not to reach the container.
    boot_on(image, entrypoint, password, data, Route::Published)
        .await?
        .ok_or_else(|| Error::environment("reach the container through its published port"))
}

/// Starts the container, reached by `route`; `None` when the bridge route turned out not to
/// reach it (the container is removed by then).
async fn boot_on(
    image: &str,
    entrypoint: &[String],
    password: &str,
    data: DataDir<'_>,
    route: Route,
) -> Result<Option<Started>> {
    let (name, tag) = split_image(image);
    // Our script first (it puts the seed and the stub extensions in place), then the image's
    // own entrypoint with the server's command, as `docker run image postgres …` runs it.
    let mut command = vec![
        "-c".to_owned(),
        start_script(STUB_DIR, SEED_ARCHIVE),
        "db-ci-start".to_owned(),
    ];
    command.extend(entrypoint.iter().cloned());
    command.push("postgres".to_owned());
    for (setting, value) in super::local::FAST_SETTINGS {
        command.push("-c".to_owned());
        command.push(format!("{setting}={value}"));
    }
    if let DataDir::Kept = data {
        // A seed is extracted at every start: no spare WAL segments kept for reuse.
        command.extend(["-c".to_owned(), super::local::NO_SPARE_WAL.to_owned()]);
    }
    let pgdata = match data {
        DataDir::Memory { .. } => DATA_DIR,
        DataDir::Kept => SEED_DIR,
    };
    let mut request = GenericImage::new(name, tag)
        .with_entrypoint("sh")
        .with_exposed_port(ContainerPort::Tcp(5432))
        .with_wait_for(WaitFor::message_on_either_std(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_PASSWORD", password)
        .with_env_var("POSTGRES_USER", super::BOOTSTRAP_SUPERUSER)
        .with_env_var("POSTGRES_DB", "postgres")
        .with_env_var("PGDATA", pgdata)
        // A throwaway cluster needs no disk: no fsync in initdb; a seed's cluster small WAL
        // segments (it is kept in the cache, and read at every start).
        .with_env_var(
            "POSTGRES_INITDB_ARGS",
            match data {
                DataDir::Memory { .. } => "--no-sync",
                DataDir::Kept => "--no-sync --wal-segsize=1",
            },
        )
        // With TZ unset, initdb finds the zone by comparing every file under zoneinfo with
        // /etc/localtime: 0.7 s of a 2.3 s boot. The platform runs in UTC, and so do the
        // images we know (the scan found Etc/UTC); named, the result is the same.
        .with_env_var("TZ", "Etc/UTC")
        .with_label(LABEL, std::process::id().to_string())
        .with_label(
            super::sweep::OWNER_LABEL,
            super::owner::Owner::current()
                .map(|o| o.render())
                .unwrap_or_default(),
        )
        .with_cmd(command)
        .with_startup_timeout(Duration::from_secs(120));
    request = from_cache(request, stub_folder()?, STUB_DIR);
    if route == Route::Bridge {
        // testcontainers publishes every port the image exposes: a published port costs the
        // engine a proxy process and firewall rules at every start, for a route not taken.
        request = request.with_host_config_modifier(|host| {
            host.publish_all_ports = Some(false);
            host.port_bindings = None;
        });
    }
    if let DataDir::Memory { seed } = data {
        request = request.with_mount(Mount::tmpfs_mount(DATA_DIR));
        if let Some(archive) = seed {
            request = from_cache(request, archive.to_path_buf(), SEED_ARCHIVE);
        }
    }
    // testcontainers removes a container whose wait fails; what the server said is kept.
    let inner = request.start().await.map_err(|e| {
        use testcontainers::core::error::{TestcontainersError, WaitContainerError};
        use testcontainers::core::logs::WaitLogError;
        match e {
            TestcontainersError::WaitContainer(WaitContainerError::WaitLog(
                WaitLogError::EndOfStream(lines),
            )) => {
                let log: Vec<u8> = lines.concat();
                Error::environment(format!(
                    "start a container from {image}: the container exited at start; \
                     the end of its log:\n{}",
                    super::local::tail_of(&String::from_utf8_lossy(&log))
                ))
            }
            other => Error::environment(format!("start a container from {image}: {other}")),
        }
    })?;
    let container = Container { inner };
    let (host, port) = match route {
        Route::Bridge => match direct_route(&container).await {
            Some(ip) => (ip.to_string(), 5432),
            None => {
                container.stop().await;
                return Ok(None);
            }
        },
        Route::Published => {
            let host = container
                .inner
                .get_host()
                .await
                .map_err(|e| Error::environment(format!("find the container's host: {e}")))?;
            let port = container
                .inner
                .get_host_port_ipv4(5432)
                .await
                .map_err(|e| Error::environment(format!("find the container's port: {e}")))?;
            let host = match host.to_string().as_str() {
                "localhost" => "127.0.0.1".to_owned(),
                other => other.to_owned(),
            };
            (host, port)
        }
    };
    let connection = Connection {
        host: Host::Tcp(host),
        port,
        user: super::BOOTSTRAP_SUPERUSER.to_owned(),
        password: Some(password.to_owned()),
        maintenance_db: "postgres".to_owned(),
    };
    // The official entrypoint logs "ready" once for its init server, then restarts.
    let config = connection.config("postgres");
    let mut not_watched = || None;
    let starting = super::wait_until_ready(
        &config,
        Duration::from_secs(60),
        "the container",
        &mut not_watched,
    );
    // The server that said "ready" may be the entrypoint's setup server: the final one can
    // still fail (a setting or library the setup did not load). Its container then exits, and
    // that is said at once with the log, not after the 60 s wait.
    tokio::select! {
        ready = starting => ready?,
        exited = exited_at_start(&container, image) => return Err(exited),
    };
    let log = container.log().await;
    Ok(Some(Started {
        stubs_installed: stubs_installed(&log),
        seeded: log.lines().any(|line| line.trim() == SEEDED),
        container,
        connection,
    }))
}

/// `request` with the cache entry at `source` (the stub extensions' folder, a seed's archive)
/// at `target` in the container: read where it lies, mounted read-only, when the engine shares
/// our file system (its socket is local); else uploaded. An upload makes the engine untar it
/// from a re-executed copy of itself into the container's file system, mounted once more for
/// it: about a tenth of a second of CPU a start for the stubs' folder, and for a seed's archive
/// as much as the initdb it saves on some storage drivers. One upload of a folder, not a copy
/// per file: each copy cost a request, more than the start.
fn from_cache(
    request: ContainerRequest<GenericImage>,
    source: std::path::PathBuf,
    target: &str,
) -> ContainerRequest<GenericImage> {
    if engine_is_local() {
        request.with_mount(
            Mount::bind_mount(source.display().to_string(), target)
                .with_access_mode(AccessMode::ReadOnly),
        )
    } else {
        request.with_copy_to(target, source)
    }
}

/// Whether the engine's default bridge network is on this machine: its gateway address is
/// one of ours (binding a socket to it works). Then a container's own address is reached
/// directly, with no port published: a published port is served by the engine's userland
/// proxy, which doubled the time of a round trip and cost as much CPU as the server's own
/// work for a one-row query (an RLS matrix or a property test is thousands of round trips),
/// and publishing it cost the engine a sixth of a second of CPU at every start. Elsewhere
/// (Docker Desktop's VM, a rootless engine's own network namespace, a remote engine) the
/// bridge is not here.
async fn bridge_is_here() -> bool {
    if !cfg!(target_os = "linux") || !engine_is_local() {
        return false;
    }
    let Ok(docker) = bollard::Docker::connect_with_defaults() else {
        return false;
    };
    let Ok(network) = docker
        .inspect_network(
            "bridge",
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    else {
        return false;
    };
    network
        .ipam
        .and_then(|ipam| ipam.config)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|config| gateway(config.gateway.as_deref(), config.subnet.as_deref()))
        .any(|gateway| std::net::UdpSocket::bind((gateway, 0)).is_ok())
}

/// A bridge network's gateway: the one its configuration names, else the engine's default,
/// the first address of its IPv4 subnet (the default bridge names none).
fn gateway(named: Option<&str>, subnet: Option<&str>) -> Option<std::net::IpAddr> {
    if let Some(ip) = named.and_then(|g| g.parse().ok()) {
        return Some(ip);
    }
    let (network, _) = subnet?.split_once('/')?;
    let network: std::net::Ipv4Addr = network.parse().ok()?;
    Some(std::net::Ipv4Addr::from(u32::from(network).checked_add(1)?).into())
}

/// The container's address on the bridge, once a connection to its server's port is seen to
/// get there (a firewall may still stand between): `None` sends the run to a published port.
async fn direct_route(container: &Container) -> Option<std::net::IpAddr> {
    let docker = bollard::Docker::connect_with_defaults().ok()?;
    let inspected = docker
        .inspect_container(
            container.id(),
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .ok()?;
    // The network db-ci started it on (the engine's default bridge): its only one.
    let ip: std::net::IpAddr = inspected
        .network_settings?
        .networks?
        .into_values()
        .find_map(|network| network.ip_address.filter(|ip| !ip.is_empty()))?
        .parse()
        .ok()?;
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    // Refused means routed: the server may not listen on TCP yet (the entrypoint's setup
    // server listens on its socket only); a route that leads nowhere times out.
    let probe = tokio::net::TcpStream::connect((ip, 5432));
    match tokio::time::timeout(Duration::from_millis(250), probe).await {
        Ok(Ok(_)) => Some(ip),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Some(ip),
        _ => None,
    }
}

/// Waits until `container` is no longer running, then says so with the end of its log.
async fn exited_at_start(container: &Container, image: &str) -> Error {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(false) = container.inner.is_running().await {
            break;
        }
    }
    let status = match container.inner.exit_code().await {
        Ok(Some(code)) => format!(" (exit status {code})"),
        _ => String::new(),
    };
    let mut log = container.inner.stdout_to_vec().await.unwrap_or_default();
    log.extend(container.inner.stderr_to_vec().await.unwrap_or_default());
    Error::environment(format!(
        "start a container from {image}: the container exited at start{status}; \
         the end of its log:\n{}",
        super::local::tail_of(&String::from_utf8_lossy(&log))
    ))
}

/// Where the stub extensions are copied before the container starts.
const STUB_DIR: &str = "/tmp/db-ci-stubs";

/// What the start script says, on a line of its own, once the stubs are in place.
const STUBS_INSTALLED: &str = "db-ci: stub extensions installed";

/// What the start script says, on a line of its own, once the seed is in the data directory.
const SEEDED: &str = "db-ci: the cluster was extracted from its seed";

/// What the start script says when the image does not let it install the stubs.
const STUBS_NOT_INSTALLED: &str = "db-ci: stub extensions not installed";

/// A folder holding the stub extensions' files, written once into the cache and named by
/// their content, for the container's one upload.
fn stub_folder() -> Result<std::path::PathBuf> {
    use sha2::{Digest, Sha256};
    let files = crate::shim::stub_extension_files();
    let mut hasher = Sha256::new();
    for (name, bytes) in &files {
        hasher.update(name.as_bytes());
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    }
    let key = hex::encode(&hasher.finalize()[..8]);
    let root = super::local::cache_root();
    let folder = root.join(format!("container-stubs-{key}"));
    if folder.is_dir() {
        super::cache::mark_used(&folder);
        return Ok(folder);
    }
    let failed = |e: std::io::Error| {
        Error::environment(format!(
            "write the stub extensions into {}: {e}",
            root.display()
        ))
    };
    let staging = super::local::cache_staging(&root, &format!("staging-stubs-{key}-"))?;
    let stubs = staging.path().join("stubs");
    std::fs::create_dir(&stubs).map_err(failed)?;
    for (name, bytes) in &files {
        std::fs::write(stubs.join(name), bytes).map_err(failed)?;
    }
    if std::fs::rename(&stubs, &folder).is_err() && !folder.is_dir() {
        return Err(Error::environment(format!(
            "write the stub extensions into {}",
            folder.display()
        )));
    }
    Ok(folder)
}

/// The script the container starts with, as the image's user, before the image's own
/// entrypoint (its arguments): extracts the seed at `seed_archive` into the data directory
/// where there is one (else the entrypoint initialises the cluster), moves the stub
/// extensions copied to `stub_dir` into the server's extension directory (a real extension
/// of the same name wins, except where our stub must replace it), marks the platform's
/// privileged extensions trusted, says whether that worked, and execs the entrypoint. Done
/// before the server starts and in the container's first process: a `docker exec` per step
/// cost more than the rest of the container's start.
pub(super) fn start_script(stub_dir: &str, seed_archive: &str) -> String {
    let files = crate::shim::stub_extension_files();
    let replaced: String = files
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| crate::shim::stub_overrides_real(name))
        .map(|name| format!("  cp -f \"{stub_dir}/{name}\" \"$ext/{name}\" || return 1\n"))
        .collect();
    // Few processes: each one started in a container costs milliseconds of its file system
    // (a `cp` and a `grep` per file took 0.4 s of CPU).
    format!(
        r#"install_stubs() {{
  ext="$(pg_config --sharedir)/extension" && [ -d "$ext" ] && [ -w "$ext" ] || return 1
  cp -n "{stub_dir}"/* "$ext"/ 2>/dev/null
{replaced}  for f in "{stub_dir}"/*; do [ -e "$ext/${{f##*/}}" ] || return 1; done
  set --
  for n in {privileged}; do
    [ -f "$ext/$n.control" ] && set -- "$@" "$ext/$n.control"
  done
  [ $# -eq 0 ] && return 0
  grep -L '^[[:space:]]*trusted' "$@" | while IFS= read -r f; do
    printf '\n# db-ci: a privileged extension on the platform\ntrusted = true\n' >> "$f" || exit 1
  done
}}
if [ -f "{seed_archive}" ]; then
  if tar -xf "{seed_archive}" -C "$PGDATA" --strip-components=1; then
    chmod 700 "$PGDATA"
    echo "{SEEDED}" >&2
  else
    echo "db-ci: the seed could not be extracted; the entrypoint initialises the cluster" >&2
    find "$PGDATA" -mindepth 1 -delete
  fi
fi
if install_stubs; then
  echo "{STUBS_INSTALLED}" >&2
else
  echo "{STUBS_NOT_INSTALLED}: cannot write the extension directory as $(id -un 2>/dev/null || id -u)" >&2
fi
exec "$@"
"#,
        privileged = crate::shim::platform::PRIVILEGED_EXTENSIONS.join(" "),
    )
}

/// Whether the start script put the stub extensions in place, read from the container's `log`.
/// When it could not, the shim skips the stubs with a warning, and a migration that creates
/// one fails naming it.
fn stubs_installed(log: &str) -> bool {
    if log.lines().any(|line| line.trim() == STUBS_INSTALLED) {
        return true;
    }
    let why = log
        .lines()
        .find(|line| line.starts_with(STUBS_NOT_INSTALLED))
        .map(|line| {
            line.trim_start_matches(STUBS_NOT_INSTALLED)
                .trim_start_matches(": ")
        })
        .unwrap_or("the container's start script said nothing");
    eprintln!("warning: could not install stub extensions in the container: {why}");
    false
}

#[cfg(test)]
mod tests {
    use super::{split_image, start_script, SEEDED, STUBS_INSTALLED, STUBS_NOT_INSTALLED};
    use std::path::Path;
    use std::process::Command;

    /// Runs the start script (stubs in `stub_dir`, the seed at `seed`, PGDATA `pgdata`) with
    /// `bin` first on PATH and `echo entrypoint "$@"` as the image's entrypoint; returns
    /// (stdout, stderr).
    fn run_script(stub_dir: &Path, seed: &Path, pgdata: &Path, bin: &Path) -> (String, String) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(start_script(
                &stub_dir.display().to_string(),
                &seed.display().to_string(),
            ))
            .args([
                "db-ci-start",
                "echo",
                "entrypoint",
                "postgres",
                "-c",
                "fsync=off",
            ])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("PGDATA", pgdata)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn run_start_script(stub_dir: &Path, bin: &Path) -> (String, String) {
        let none = stub_dir.join("no-seed.tar");
        run_script(stub_dir, &none, &stub_dir.join("no-data"), bin)
    }

    #[test]
    fn the_start_script_extracts_the_seed_into_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("db-ci-seed");
        std::fs::create_dir_all(cluster.join("base")).unwrap();
        std::fs::write(cluster.join("PG_VERSION"), "17\n").unwrap();
        let seed = dir.path().join("cluster.tar");
        let tar = Command::new("tar")
            .arg("-cf")
            .arg(&seed)
            .arg("-C")
            .arg(dir.path())
            .arg("db-ci-seed")
            .status()
            .unwrap();
        assert!(tar.success());
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let none = dir.path().join("none");
        let (stdout, stderr) = run_script(&none, &seed, &data, &none);
        assert_eq!(stdout, "entrypoint postgres -c fsync=off\n", "{stderr}");
        assert!(stderr.lines().any(|l| l == SEEDED), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(data.join("PG_VERSION")).unwrap(),
            "17\n"
        );
        assert!(data.join("base").is_dir());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&data).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o700);

        // A damaged archive: said, nothing half-extracted left, the entrypoint still runs
        // (and initialises the cluster itself).
        let data = dir.path().join("data2");
        std::fs::create_dir(&data).unwrap();
        std::fs::write(&seed, b"not an archive").unwrap();
        let (stdout, stderr) = run_script(&none, &seed, &data, &none);
        assert_eq!(stdout, "entrypoint postgres -c fsync=off\n", "{stderr}");
        assert!(!stderr.lines().any(|l| l == SEEDED), "{stderr}");
        assert!(
            stderr.contains("the seed could not be extracted"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
    }

    #[test]
    fn the_start_script_puts_the_stubs_in_place_then_runs_the_entrypoint() {
        let dir = tempfile::tempdir().unwrap();
        let stubs = dir.path().join("stubs");
        let share = dir.path().join("share");
        let ext = share.join("extension");
        let bin = dir.path().join("bin");
        for d in [&stubs, &ext, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        let files = crate::shim::stub_extension_files();
        for (name, bytes) in &files {
            std::fs::write(stubs.join(name), bytes).unwrap();
        }
        // A real pg_cron (our stub replaces it), a real extension we also stub (it wins over
        // our stub), and a privileged extension not yet trusted.
        let privileged_names = crate::shim::platform::PRIVILEGED_EXTENSIONS;
        let real = files
            .iter()
            .map(|(name, _)| *name)
            .find(|name| {
                name.strip_suffix(".control").is_some_and(|base| {
                    !privileged_names.contains(&base) && *name != "pg_cron.control"
                })
            })
            .expect("a stub of an extension that is not privileged");
        std::fs::write(ext.join("pg_cron.control"), "real pg_cron").unwrap();
        std::fs::write(ext.join(real), "real").unwrap();
        let privileged = privileged_names[0];
        let control = ext.join(format!("{privileged}.control"));
        std::fs::write(&control, "comment = 'real'\n").unwrap();
        let pg_config = bin.join("pg_config");
        std::fs::write(
            &pg_config,
            format!("#!/bin/sh\necho '{}'\n", share.display()),
        )
        .unwrap();
        std::fs::set_permissions(
            &pg_config,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();

        let (stdout, stderr) = run_start_script(&stubs, &bin);
        assert_eq!(stdout, "entrypoint postgres -c fsync=off\n", "{stderr}");
        assert!(stderr.lines().any(|l| l == STUBS_INSTALLED), "{stderr}");
        for (name, bytes) in &files {
            let installed = std::fs::read(ext.join(name)).unwrap();
            match *name {
                _ if *name == real => assert_eq!(installed, b"real"),
                // A privileged stub is marked trusted too, unless it says so already.
                _ => assert!(installed.starts_with(bytes), "{name}"),
            }
        }
        let control = std::fs::read_to_string(&control).unwrap();
        assert!(control.starts_with("comment = 'real'"), "{control}");
        assert!(control.contains("\ntrusted = true\n"), "{control}");

        // Run twice (a restarted container), the trusted line is not added again.
        run_start_script(&stubs, &bin);
        let again = std::fs::read_to_string(ext.join(format!("{privileged}.control"))).unwrap();
        assert_eq!(again.matches("trusted").count(), 1, "{again}");
    }

    #[test]
    fn the_start_script_says_why_it_installed_nothing_and_still_starts_the_server() {
        let dir = tempfile::tempdir().unwrap();
        // No pg_config on PATH: no extension directory to write to.
        let (stdout, stderr) = run_start_script(dir.path(), &dir.path().join("none"));
        assert_eq!(stdout, "entrypoint postgres -c fsync=off\n", "{stderr}");
        assert!(!stderr.lines().any(|l| l == STUBS_INSTALLED), "{stderr}");
        assert!(
            stderr.lines().any(|l| l.starts_with(STUBS_NOT_INSTALLED)),
            "{stderr}"
        );
    }

    #[test]
    fn a_bridge_gateway_is_the_named_one_else_the_subnets_first_address() {
        use super::gateway;
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        assert_eq!(gateway(None, Some("172.17.0.0/16")), ip("172.17.0.1"));
        assert_eq!(
            gateway(Some("10.9.0.254"), Some("10.9.0.0/24")),
            ip("10.9.0.254")
        );
        assert_eq!(gateway(None, Some("fd00::/64")), None);
        assert_eq!(gateway(None, Some("not a subnet")), None);
        assert_eq!(gateway(None, None), None);
    }

    #[test]
    fn image_names_split_at_the_tag() {
        assert_eq!(
            split_image("pgvector/pgvector:pg17"),
            ("pgvector/pgvector".into(), "pg17".into())
        );
        assert_eq!(
            split_image("localhost:5000/pg:17"),
            ("localhost:5000/pg".into(), "17".into())
        );
        assert_eq!(
            split_image("postgres"),
            ("postgres".into(), "latest".into())
        );
    }
}
