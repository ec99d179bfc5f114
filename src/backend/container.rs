//! The container backend: any image with the official `postgres` image's contract, started
//! with testcontainers and removed on every exit path.

use std::time::Duration;

use base64::Engine as _;
use testcontainers::core::{ContainerPort, ExecCommand, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

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

/// Starts `image`, waits until it accepts connections, installs the stub extensions.
pub async fn start(image: &str) -> Result<Server> {
    usable(image)
        .await
        .map_err(|problem| Error::environment(format!("use the container backend: {problem}")))?;
    if let Ok(docker) = bollard::Docker::connect_with_defaults() {
        super::sweep::containers(&docker).await;
    }
    let (name, tag) = split_image(image);
    let password = format!("dbci{:016x}", rand::random::<u64>());
    let mut command = vec!["postgres".to_owned()];
    for (setting, value) in super::local::FAST_SETTINGS {
        command.push("-c".to_owned());
        command.push(format!("{setting}={value}"));
    }
    let request = GenericImage::new(name, tag)
        .with_exposed_port(ContainerPort::Tcp(5432))
        .with_wait_for(WaitFor::message_on_either_std(
            "database system is ready to accept connections",
        ))
        .with_env_var("POSTGRES_PASSWORD", &password)
        .with_env_var("POSTGRES_USER", super::BOOTSTRAP_SUPERUSER)
        .with_env_var("POSTGRES_DB", "postgres")
        // A throwaway cluster needs no disk: memory-backed data and no fsync in initdb.
        .with_env_var("PGDATA", DATA_DIR)
        .with_env_var("POSTGRES_INITDB_ARGS", "--no-sync")
        .with_mount(Mount::tmpfs_mount(DATA_DIR))
        .with_label(LABEL, std::process::id().to_string())
        .with_label(
            super::sweep::OWNER_LABEL,
            super::owner::Owner::current()
                .map(|o| o.render())
                .unwrap_or_default(),
        )
        .with_cmd(command)
        .with_startup_timeout(Duration::from_secs(120));
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
    let connection = Connection {
        host: Host::Tcp(host),
        port,
        user: super::BOOTSTRAP_SUPERUSER.to_owned(),
        password: Some(password),
        maintenance_db: "postgres".to_owned(),
    };
    // The official entrypoint logs "ready" once for its init server, then restarts. The stub
    // extensions are files, not SQL: they are copied in meanwhile (a few `docker exec`s, as
    // long as the wait on a loaded machine).
    let config = connection.config("postgres");
    let mut not_watched = || None;
    let starting = async {
        tokio::join!(
            super::wait_until_ready(
                &config,
                Duration::from_secs(60),
                "the container",
                &mut not_watched
            ),
            install_stub_extensions(&container),
        )
    };
    // The server that said "ready" may be the entrypoint's setup server: the final one can
    // still fail (a setting or library the setup did not load). Its container then exits, and
    // that is said at once with the log, not after the 60 s wait.
    let (ready, stubs_installed) = tokio::select! {
        both = starting => both,
        exited = exited_at_start(&container, image) => return Err(exited),
    };
    ready?;
    let stubs_installed = stubs_installed?;
    let description = format!(
        "container {image} ({})",
        &container.id()[..12.min(container.id().len())]
    );
    Server::new(
        BackendKind::Container,
        connection,
        description,
        stubs_installed,
        Handle::Container(Box::new(container)),
    )
    .identify()
    .await
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

/// Copies the shim's stub extensions into the server's extension directory, as root in the
/// container. Returns false when the image does not let us: the shim then skips the stubs
/// with a warning, and a migration that creates one fails naming it.
async fn install_stub_extensions(container: &Container) -> Result<bool> {
    for script in install_scripts(&crate::shim::stub_extension_files()) {
        let mut result = container
            .inner
            .exec(ExecCommand::new(["sh", "-c", &script]))
            .await
            .map_err(|e| {
                Error::environment(format!("install stub extensions in the container: {e}"))
            })?;
        let _ = result.stdout_to_vec().await;
        let stderr = result.stderr_to_vec().await.unwrap_or_default();
        let code = result.exit_code().await.ok().flatten();
        if code != Some(0) {
            eprintln!(
                "warning: could not install stub extensions in the container (exit {code:?}): {}",
                String::from_utf8_lossy(&stderr).trim()
            );
            return Ok(false);
        }
    }
    Ok(true)
}

/// The largest install script passed as one `sh -c` argument, well below the kernel's
/// MAX_ARG_STRLEN (128 KiB per argument).
const SCRIPT_LIMIT: usize = 100 * 1024;

/// Shell scripts that write `files` into the server's extension directory, each small enough
/// to be one exec argument.
fn install_scripts(files: &[(&str, &[u8])]) -> Vec<String> {
    let prelude = "set -e\next=\"$(pg_config --sharedir)/extension\"\ntest -w \"$ext\"\n";
    let mut scripts = vec![String::from(prelude)];
    for (name, bytes) in files {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        // A real extension of the same name wins over our stub, except pg_cron (see shim).
        let guard = if crate::shim::stub_overrides_real(name) {
            String::new()
        } else {
            format!("[ -e \"$ext/{name}\" ] || ")
        };
        let line = format!("{guard}echo '{encoded}' | base64 -d > \"$ext/{name}\"\n");
        if scripts.last().map_or(0, String::len) + line.len() > SCRIPT_LIMIT {
            scripts.push(String::from(prelude));
        }
        if let Some(script) = scripts.last_mut() {
            script.push_str(&line);
        }
    }
    // The platform's privileged extensions, created by postgres (not a superuser) also where
    // no statement routing reaches (DO blocks, test files): trusted, as in the local tree.
    let mut trusted = String::from(prelude);
    trusted.push_str(&format!(
        "for n in {}; do f=\"$ext/$n.control\"; \
         if [ -f \"$f\" ] && ! grep -q '^[[:space:]]*trusted' \"$f\"; then \
         printf '\\n# db-ci: a privileged extension on the platform\\ntrusted = true\\n' >> \"$f\"; fi; done\n",
        crate::shim::platform::PRIVILEGED_EXTENSIONS.join(" ")
    ));
    scripts.push(trusted);
    scripts
}

#[cfg(test)]
mod tests {
    use super::{install_scripts, split_image, SCRIPT_LIMIT};

    #[test]
    fn stub_install_scripts_fit_in_one_exec_argument_each() {
        let files = crate::shim::stub_extension_files();
        let scripts = install_scripts(&files);
        assert!(
            scripts.len() > 1,
            "the shipped files need more than one script"
        );
        for script in &scripts {
            assert!(
                script.len() <= SCRIPT_LIMIT,
                "a script of {} bytes",
                script.len()
            );
            assert!(
                script.starts_with("set -e\n"),
                "every script stops at its first error"
            );
        }
        for (name, _) in &files {
            let writes = format!("> \"$ext/{name}\"\n");
            let count = scripts
                .iter()
                .map(|s| s.matches(&writes).count())
                .sum::<usize>();
            assert_eq!(count, 1, "{name} is written exactly once");
        }
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
