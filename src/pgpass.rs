//! The password libpq would send for a connection string that names none: `PGPASSWORD`, then
//! the password file (`PGPASSFILE`, else `~/.pgpass`), matched on host, port, database and
//! user. tokio-postgres reads neither, and a user's working `psql` setup must work here too.
//! Whatever is found is registered with the scrubber before it is used, so it is never shown.

use std::path::{Path, PathBuf};

/// The password for `config` from the environment or the password file, or `None` when
/// `config` has one already or nothing matches. `env` reads a variable (the process's, in
/// production).
pub fn password_for(
    config: &tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    if config.get_password().is_some() {
        return None;
    }
    let found = env("PGPASSWORD")
        .filter(|p| !p.is_empty())
        .or_else(|| from_file(config, env));
    if let Some(password) = &found {
        crate::redact::register_password(password);
    }
    found
}

fn from_file(
    config: &tokio_postgres::Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let path = env("PGPASSFILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    // As libpq: a file others may read is not trusted with passwords, and is ignored.
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        eprintln!(
            "db-ci: warning: password file {} has group or world access and is ignored; \
             permissions should be u=rw (0600) or less",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    lookup(&text, &Wanted::of(config))
}

/// What a password-file line must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub host: String,
    pub port: String,
    pub database: String,
    pub user: String,
}

impl Wanted {
    /// libpq's reading of a connection: a socket directory counts as `localhost`, the port
    /// defaults to 5432, the database to the user's name.
    pub fn of(config: &tokio_postgres::Config) -> Wanted {
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) if !h.is_empty() => h.clone(),
            _ => "localhost".to_owned(),
        };
        let user = config.get_user().unwrap_or("postgres").to_owned();
        Wanted {
            host,
            port: config
                .get_ports()
                .first()
                .copied()
                .unwrap_or(5432)
                .to_string(),
            database: config.get_dbname().unwrap_or(&user).to_owned(),
            user,
        }
    }
}

/// The password of the first line of a password file matching `wanted`: five fields split on
/// `:`, each `*` or equal to the wanted value, with `\:` and `\\` escaping; `#` comments.
pub fn lookup(text: &str, wanted: &Wanted) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_fields(line);
        if fields.len() < 5 {
            continue;
        }
        let matches = |field: &str, value: &str| field == "*" || field == value;
        if matches(&fields[0], &wanted.host)
            && matches(&fields[1], &wanted.port)
            && matches(&fields[2], &wanted.database)
            && matches(&fields[3], &wanted.user)
        {
            // The password is the rest of the line: a fifth field may hold unescaped colons.
            return Some(fields[4..].join(":"));
        }
    }
    None
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            ':' => fields.push(String::new()),
            other => fields.last_mut().unwrap().push(other),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(host: &str, port: &str, database: &str, user: &str) -> Wanted {
        Wanted {
            host: host.into(),
            port: port.into(),
            database: database.into(),
            user: user.into(),
        }
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let file = "# comment\n\
                    db.example:5432:app:alice:first\n\
                    *:*:*:bob:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        let at = |user: &str, db: &str| lookup(file, &wanted("db.example", "5432", db, user));
        assert_eq!(at("alice", "app").as_deref(), Some("first"));
        assert_eq!(at("alice", "other").as_deref(), Some("fallback"));
        assert_eq!(at("bob", "app").as_deref(), Some("pa:ss\\word"));
        assert_eq!(lookup("h:1:d:u\n", &wanted("h", "1", "d", "u")), None);
    }

    #[test]
    fn a_socket_is_localhost_and_the_database_defaults_to_the_user() {
        let config: tokio_postgres::Config = "host=/var/run/postgresql user=ci".parse().unwrap();
        assert_eq!(Wanted::of(&config), wanted("localhost", "5432", "ci", "ci"));
        let config: tokio_postgres::Config = "postgres://u@db.example:6543/app".parse().unwrap();
        assert_eq!(
            Wanted::of(&config),
            wanted("db.example", "6543", "app", "u")
        );
    }

    #[test]
    fn the_environment_comes_before_the_file_and_a_given_password_before_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(&file, "*:*:*:*:from-file\n").unwrap();
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let file_name = file.display().to_string();
        let config: tokio_postgres::Config = "host=h user=u".parse().unwrap();
        let env = |pgpassword: Option<&'static str>| {
            let file_name = file_name.clone();
            move |key: &str| match key {
                "PGPASSWORD" => pgpassword.map(str::to_owned),
                "PGPASSFILE" => Some(file_name.clone()),
                _ => None,
            }
        };
        assert_eq!(
            password_for(&config, &env(Some("from-env"))).as_deref(),
            Some("from-env")
        );
        assert_eq!(
            password_for(&config, &env(None)).as_deref(),
            Some("from-file")
        );
        // An empty PGPASSWORD is unset, as in libpq.
        assert_eq!(
            password_for(&config, &env(Some(""))).as_deref(),
            Some("from-file")
        );
        let given: tokio_postgres::Config = "host=h user=u password=given".parse().unwrap();
        assert_eq!(password_for(&given, &env(Some("from-env"))), None);
        // A file others can read is ignored.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        assert_eq!(password_for(&config, &env(None)), None);
        // What was found is masked in every output.
        assert_eq!(crate::redact::scrub("x from-file y"), "x *** y");
    }
}
