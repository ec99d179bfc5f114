//! Which server a project gets: the PostgreSQL major version `supabase/config.toml` asks for
//! (`[db] major_version`), and never another one silently.

use super::{container, local, BackendKind, BackendOptions, Server};
use crate::error::{Error, Result};

/// What the project asks for and what the user allowed.
#[derive(Debug, Clone, Copy, Default)]
pub struct VersionPolicy {
    /// The major version the project runs on; `None`: any server.
    pub major: Option<u32>,
    /// `--image`/`DB_CI_IMAGE` was given: used as given (its version still checked), not
    /// re-tagged to the wanted major version.
    pub image_given: bool,
    /// `--any-server-version`: run on another major version, said on the console.
    pub any_version: bool,
    /// Who to advise: the mismatch names the CLI flags or the `Gate` methods.
    pub caller: crate::caller::Caller,
}

/// Starts a server for `policy`. `auto` prefers local binaries of the wanted major version,
/// else a container of the image whose tag follows that version; whatever runs is checked
/// and a server of another major version is exit 3 unless `any_version`.
pub async fn start(options: &BackendOptions, policy: VersionPolicy) -> Result<Server> {
    // A run's server: started from what db-ci keeps, with the shim's roles and templates.
    let options = &BackendOptions {
        shimmed: true,
        ..options.clone()
    };
    let Some(major) = policy.major else {
        return Server::start(options).await;
    };
    // The paths below start a server without going through `Server::start`: sweep first, as
    // every run does, or a Supabase CLI project's runs would never clear dead runs' servers.
    super::sweep_machine().await;
    let mut options = options.clone();
    if !policy.image_given {
        options.image = image_for_major(&options.image, major);
    }
    let server = match options.kind {
        BackendKind::Local => match local::find_install_major(major) {
            Some(install) => local::start_install(install, options.shimmed).await?,
            None => Server::start(&options).await?,
        },
        BackendKind::Auto if options.database_url.is_none() && !policy.image_given => {
            if let Some(install) = local::find_install_major(major) {
                local::start_install(install, options.shimmed).await?
            } else if container::usable(&options.image).await.is_ok() {
                container::start(&options.image, options.shimmed).await?
            } else {
                Server::start(&options).await?
            }
        }
        _ => Server::start(&options).await?,
    };
    if server.major == major {
        return Ok(server);
    }
    if policy.any_version {
        let mut server = server;
        server.description = format!(
            "{}, not the project's major_version {major} (--any-server-version)",
            server.description
        );
        return Ok(server);
    }
    let message = mismatch_message(major, &server, &options, policy.caller);
    server.shutdown().await;
    Err(Error::environment(message))
}

/// The default image re-tagged for `major` (`pgvector/pgvector:pg17` → `…:pg15`); an image
/// whose tag does not name a version is kept.
pub fn image_for_major(image: &str, major: u32) -> String {
    match image.rsplit_once(":pg") {
        Some((name, tag)) if !tag.is_empty() && tag.chars().all(|c| c.is_ascii_digit()) => {
            format!("{name}:pg{major}")
        }
        _ => image.to_owned(),
    }
}

fn mismatch_message(
    major: u32,
    server: &Server,
    options: &BackendOptions,
    caller: crate::caller::Caller,
) -> String {
    let how = match server.kind {
        BackendKind::Local => format!(
            "install PostgreSQL {major} server binaries (e.g. `apt-get install postgresql-{major}`, \
             or set PG_BIN to them) or use a container (--backend container --image \
             {})",
            image_for_major(super::DEFAULT_IMAGE, major)
        ),
        BackendKind::Container => format!(
            "use an image of PostgreSQL {major} (--image {}), or install PostgreSQL {major} \
             server binaries for the local backend",
            image_for_major(&options.image, major)
        ),
        _ => format!("point --database-url at a PostgreSQL {major} server"),
    };
    format!(
        "use a PostgreSQL {major} server: supabase/config.toml sets [db] major_version = {major}, \
         but the {} backend runs PostgreSQL {} ({}).\n{}; or pass {} to run on PostgreSQL {} \
         anyway",
        server.kind.as_str(),
        server.major,
        server.description,
        caller.backend_switch(&how),
        caller.any_server_version(),
        server.major
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_image_follows_the_major_version() {
        assert_eq!(
            image_for_major("pgvector/pgvector:pg17", 15),
            "pgvector/pgvector:pg15"
        );
        assert_eq!(
            image_for_major("db-ci/pgvector:pg17", 17),
            "db-ci/pgvector:pg17"
        );
        assert_eq!(
            image_for_major("supabase/postgres:15.8.1.085", 17),
            "supabase/postgres:15.8.1.085"
        );
    }
}
