//! A container image's seed: its cluster initialised and shimmed once, stopped, and kept in
//! the cache as an archive of the data directory, which later containers of the image start
//! from — no initdb, no entrypoint setup server and no shim in each run (see docs/backends.md).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::container::{self, DataDir, SEED_DIR};
use crate::error::{Error, Result};
use crate::shim::{self, GrantMode};

/// Bump when what goes into a seed changes.
const RECIPE: &str = "seed 3";

/// A seed in the cache.
pub struct Seed {
    /// The archive of the stopped cluster's data directory (its top folder included).
    pub archive: PathBuf,
    /// The password of the cluster's bootstrap superuser.
    pub password: String,
}

/// The cache's seed of the image whose id is `image_id`, built now if this is the image's
/// second start here. The first start of an image builds none: a one-off run (a CI runner's
/// only one) would pay for a seed it never uses. A seed that cannot be built is said and
/// skipped: the container then starts as it would without one.
pub async fn find_or_build(image: &str, image_id: &str, entrypoint: &[String]) -> Option<Seed> {
    let key = key(image_id);
    let root = super::local::cache_root();
    let folder = root.join(format!("container-seed-{key}"));
    if let Some(seed) = read(&folder) {
        super::cache::mark_used(&folder);
        return Some(seed);
    }
    let seen = root.join(format!("container-seen-{key}"));
    if !seen.exists() {
        let _ = std::fs::create_dir_all(&root).and_then(|()| std::fs::write(&seen, image));
        return None;
    }
    super::cache::mark_used(&seen);
    // An image a seed could not be made of (one that runs as a user who may not install the
    // stubs, say) is not tried again at every start: the reason is kept.
    let failed = root.join(format!("container-unseeded-{key}"));
    if failed.exists() {
        super::cache::mark_used(&failed);
        return None;
    }
    // Parallel runs on one machine (a CI job's test threads) reach an image's second start
    // together: while one builds its seed, the others start without it rather than build
    // it again beside it. A dead builder's staging folder is gone by now (the sweep).
    let staging_prefix = format!("staging-seed-{key}-");
    if !super::sweep::candidates(&root, &staging_prefix).is_empty() {
        return None;
    }
    match build(image, entrypoint, &root, &folder, &staging_prefix).await {
        Ok(seed) => Some(seed),
        Err(e) => {
            let _ = std::fs::write(&failed, e.to_string());
            eprintln!(
                "note: could not keep a started cluster of {image} for later runs ({e}); \
                 it starts without one (delete {} to try again)",
                failed.display()
            );
            None
        }
    }
}

/// The cache key: the image's content, what db-ci puts in the cluster, and how.
fn key(image_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION"));
    hasher.update(RECIPE);
    hasher.update(image_id);
    hasher.update(super::BOOTSTRAP_SUPERUSER);
    hasher.update(container::start_script("-", "-"));
    for mode in [GrantMode::Classic, GrantMode::NoExpose] {
        hasher.update(shim::template_name(mode));
    }
    for (name, bytes) in shim::stub_extension_files() {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    hex::encode(&hasher.finalize()[..8])
}

fn read(folder: &Path) -> Option<Seed> {
    let password = std::fs::read_to_string(folder.join("password")).ok()?;
    let archive = folder.join("cluster.tar");
    archive.is_file().then(|| Seed {
        archive,
        password: password.trim().to_owned(),
    })
}

/// Starts a builder container with its cluster kept in its own file system, makes the
/// shimmed templates, stops its server cleanly, and archives the data directory into the
/// cache (written beside its place and renamed: a parallel run never sees half of it).
async fn build(
    image: &str,
    entrypoint: &[String],
    root: &Path,
    folder: &Path,
    staging_prefix: &str,
) -> Result<Seed> {
    // Claimed before the builder starts: other runs see the seed is being built.
    let staging = super::local::cache_staging(root, staging_prefix)?;
    let password = format!("dbci{:016x}", rand::random::<u64>());
    let started = container::boot(image, entrypoint, &password, DataDir::Kept).await?;
    if !started.stubs_installed {
        return Err(Error::environment("install the stub extensions"));
    }
    super::make_shimmed_templates(&started.connection).await?;
    started.container.stop_server().await?;

    let entry = staging.path().join("seed");
    std::fs::create_dir(&entry)
        .map_err(|e| Error::environment(format!("create a cache entry: {e}")))?;
    // Readable by us alone: it holds the superuser's password verifier. A container reads it
    // as root through the mount.
    let archive = entry.join("cluster.tar");
    started.container.download(SEED_DIR, &archive).await?;
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::environment(format!("keep the seed private: {e}")))?;
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(entry.join("password"))
            .map_err(|e| Error::environment(format!("write the seed's password: {e}")))?;
        std::io::Write::write_all(&mut file, password.as_bytes())
            .map_err(|e| Error::environment(format!("write the seed's password: {e}")))?;
    }
    started.container.stop().await;
    if std::fs::rename(&entry, folder).is_err() && !folder.is_dir() {
        return Err(Error::environment(format!(
            "keep the seed at {}",
            folder.display()
        )));
    }
    read(folder).ok_or_else(|| Error::environment("read the seed back"))
}

impl container::Container {
    /// Stops the container's server with a fast shutdown, and checks it said it shut down
    /// (a cluster that was not is no seed: each start would recover it).
    pub(super) async fn stop_server(&self) -> Result<()> {
        let docker = bollard::Docker::connect_with_defaults()
            .map_err(|e| Error::environment(format!("reach the Docker engine: {e}")))?;
        let options = bollard::query_parameters::KillContainerOptionsBuilder::default()
            .signal("SIGINT")
            .build();
        docker
            .kill_container(self.id(), Some(options))
            .await
            .map_err(|e| Error::environment(format!("stop the builder's server: {e}")))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.running().await {
            if tokio::time::Instant::now() > deadline {
                return Err(Error::environment(
                    "stop the builder's server: it did not stop",
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if !self.log().await.contains("database system is shut down") {
            return Err(Error::environment(
                "stop the builder's server: it did not shut down cleanly",
            ));
        }
        Ok(())
    }

    /// Writes the archive of `path` in the (stopped) container to the file `to`.
    pub(super) async fn download(&self, path: &str, to: &Path) -> Result<()> {
        let docker = bollard::Docker::connect_with_defaults()
            .map_err(|e| Error::environment(format!("reach the Docker engine: {e}")))?;
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let failed = |e: String| Error::environment(format!("archive the builder's cluster: {e}"));
        let mut file = tokio::fs::File::create(to)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut stream = docker.download_from_container(self.id(), Some(options));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| failed(e.to_string()))?;
            file.write_all(&chunk)
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        file.flush().await.map_err(|e| failed(e.to_string()))
    }
}
