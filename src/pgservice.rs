//! libpq's connection service files: `service=name` in a connection string (or `PGSERVICE`)
//! names a section of `PGSERVICEFILE` (else `~/.pg_service.conf`), then of
//! `PGSYSCONFDIR/pg_service.conf`, whose settings fill what the string leaves unset.
//! tokio-postgres knows none of this, and a user's working `psql` setup must work here too.
//! A password found in a service file is registered with the scrubber before it is used.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::error::{Error, Result};

/// Where libpq looks for the system-wide service file when `PGSYSCONFDIR` is unset, as
/// Debian and Ubuntu build it (`pg_config --sysconfdir`).
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// `conninfo` (a URL or a key=value string) with its service's settings added where it sets
/// none, and `service` removed, so tokio-postgres can read it. Unchanged when no service is
/// named there or in `PGSERVICE`. `Err` is the problem, at its line of the service file when it
/// has one.
pub fn expand(conninfo: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let env_nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
    if conninfo.contains("://") {
        expand_url(conninfo, &env_nonempty)
    } else {
        expand_key_values(conninfo, &env_nonempty)
    }
}

fn expand_key_values(conninfo: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    // A string libpq would refuse is left to tokio-postgres to refuse with its own message.
    let Some(settings) = crate::redact::key_values(conninfo) else {
        return Ok(conninfo.to_owned());
    };
    let named = settings.iter().rev().find(|s| s.key == "service");
    let Some(service) = named.map(|s| s.value.clone()).or_else(|| env("PGSERVICE")) else {
        return Ok(conninfo.to_owned());
    };
    let mut kept: Vec<crate::redact::Setting> = settings
        .into_iter()
        .filter(|s| s.key != "service")
        .collect();
    for (key, value) in lookup(&service, env)? {
        if !kept.iter().any(|s| s.key == key) {
            kept.push(crate::redact::Setting { key, value });
        }
    }
    Ok(crate::redact::join_key_values(&kept))
}

fn expand_url(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let decode = |text: &str| {
        ::url::form_urlencoded::parse(format!("v={text}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut service = None;
    let mut kept = Vec::new();
    let mut present = url_parts_present(base);
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "service" {
            service = Some(decode(value));
        } else {
            present.push(key.to_owned());
            kept.push(pair.to_owned());
        }
    }
    let Some(service) = service.or_else(|| env("PGSERVICE")) else {
        return Ok(url.to_owned());
    };
    for (key, value) in lookup(&service, env)? {
        if !present.contains(&key) {
            kept.push(format!("{key}={}", percent_encode(&value)));
        }
    }
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

/// `text` as a URL query value tokio-postgres decodes back: every byte but the unreserved
/// ones percent-encoded (a space as `%20`: `+` would stay a plus).
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The settings a URL without its query names: userinfo, host, port, database.
fn url_parts_present(base: &str) -> Vec<String> {
    let rest = base.split_once("://").map_or(base, |(_, rest)| rest);
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut present = Vec::new();
    let hosts = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            if !user.is_empty() {
                present.push("user".to_owned());
            }
            if userinfo.contains(':') {
                present.push("password".to_owned());
            }
            hosts
        }
        None => authority,
    };
    for spec in hosts.split(',').filter(|s| !s.is_empty()) {
        // `[::1]:5432`: the port follows the bracket; `host:5432` the last colon.
        let after_bracket = spec.rfind(']').map_or(spec, |i| &spec[i..]);
        if after_bracket.contains(':') {
            present.push("port".to_owned());
        }
        if !spec.starts_with(':') {
            present.push("host".to_owned());
        }
    }
    if !path.is_empty() {
        present.push("dbname".to_owned());
    }
    present
}

/// The settings of `service`, read as libpq reads them: the user's file first (`PGSERVICEFILE`,
/// else `~/.pg_service.conf`), then the system's (`PGSYSCONFDIR`, else
/// [`DEFAULT_SYSCONFDIR`], `/pg_service.conf`); the first file with a section of that name wins.
pub fn lookup(
    service: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let user_file = env("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|home| Path::new(&home).join(".pg_service.conf")));
    let system_file = Path::new(&env("PGSYSCONFDIR").unwrap_or(DEFAULT_SYSCONFDIR.to_owned()))
        .join("pg_service.conf");
    let mut looked = Vec::new();
    for file in user_file.into_iter().chain([system_file]) {
        looked.push(file.display().to_string());
        // As libpq: a file that is not there is skipped; one that cannot be read is an error.
        if std::fs::metadata(&file).is_err() {
            continue;
        }
        let text = std::fs::read_to_string(&file).map_err(|e| {
            Diagnostic::in_file(
                file.display().to_string(),
                format!("read the service file {}: {e}", file.display()),
            )
        })?;
        if let Some(settings) = section(&text, service, &file)? {
            for (key, value) in &settings {
                if key == "password" {
                    crate::redact::register_password(value);
                }
            }
            return Ok(settings);
        }
    }
    Err(Error::input(format!(
        "find the definition of service \"{service}\" (looked in {})",
        looked.join(", ")
    )))
}

/// The `key=value` lines of `[service]` in a service file's `text`, or `None` when it has no
/// such section. Blank lines and `#` comments are skipped; a line without `=`, or a `service`
/// key inside a section, is an error at its line (never quoting the line: it may be a password).
pub fn section(text: &str, service: &str, file: &Path) -> Result<Option<Vec<(String, String)>>> {
    let mut found: Option<Vec<(String, String)>> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if name.strip_suffix(']') == Some(service) {
                found = Some(Vec::new());
            }
            continue;
        }
        let Some(settings) = found.as_mut() else {
            continue;
        };
        let at = |message: &str| {
            Error::at(
                file.display().to_string(),
                number + 1,
                None,
                format!("read the service file: {message}"),
            )
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(at("a line with no `=`"));
        };
        let key = key.trim();
        if key == "service" {
            return Err(at("a service inside a service is not supported"));
        }
        if !settings.iter().any(|(k, _)| k == key) {
            settings.push((key.to_owned(), value.trim_start().to_owned()));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| vars.get(k).cloned()
    }

    fn files(user: &str, system: &str) -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let user_file = dir.path().join("user.conf");
        std::fs::write(&user_file, user).unwrap();
        let sys = dir.path().join("sys");
        std::fs::create_dir(&sys).unwrap();
        std::fs::write(sys.join("pg_service.conf"), system).unwrap();
        let (u, s) = (user_file.display().to_string(), sys.display().to_string());
        (dir, u, s)
    }

    #[test]
    fn a_service_fills_what_the_string_leaves_unset() {
        let (_dir, user, sys) = files(
            "# mine\n[other]\nhost=nowhere\n\n[prod]\nhost=db.example\nport=6543\n\
             user=app\npassword=Svc pw 1 x\ndbname=main\n[after]\nhost=later\n",
            "",
        );
        let env = env_of(&[("PGSERVICEFILE", &user), ("PGSYSCONFDIR", &sys)]);
        let expanded = expand("service=prod dbname=other", &env).unwrap();
        let config: tokio_postgres::Config = expanded.parse().unwrap();
        assert_eq!(config.get_dbname(), Some("other"), "the string wins");
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(config.get_ports(), &[6543]);
        assert_eq!(config.get_password(), Some(&b"Svc pw 1 x"[..]));
        assert_eq!(
            config.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("db.example".into())]
        );
        assert_eq!(crate::redact::scrub("said Svc pw 1 x"), "said ***");

        // The same through a URL's query, and through PGSERVICE.
        let url = expand("postgresql://me@/?service=prod", &env).unwrap();
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_user(), Some("me"));
        assert_eq!(config.get_password(), Some(&b"Svc pw 1 x"[..]));
        assert_eq!(config.get_dbname(), Some("main"));
        assert_eq!(config.get_ports(), &[6543]);
        let env = env_of(&[
            ("PGSERVICEFILE", &user),
            ("PGSYSCONFDIR", &sys),
            ("PGSERVICE", "prod"),
        ]);
        let config: tokio_postgres::Config = expand("port=5", &env).unwrap().parse().unwrap();
        assert_eq!(config.get_ports(), &[5]);
        assert_eq!(config.get_user(), Some("app"));
        assert_eq!(expand("host=h", &env_of(&[])).unwrap(), "host=h");
    }

    #[test]
    fn the_system_file_serves_what_the_users_lacks() {
        let (_dir, user, sys) = files("[mine]\nport=1\n", "[shared]\nport=2\n[mine]\nport=3\n");
        let env = env_of(&[("PGSERVICEFILE", &user), ("PGSYSCONFDIR", &sys)]);
        assert_eq!(expand("service=shared", &env).unwrap(), "port=2");
        assert_eq!(expand("service=mine", &env).unwrap(), "port=1");
        let missing = expand("service=none", &env)
            .unwrap_err()
            .diagnostic()
            .headline();
        assert!(missing.contains("service \"none\""), "{missing}");
        assert!(missing.contains(&user), "{missing}");
    }

    #[test]
    fn a_bad_line_is_an_error_at_its_line_without_its_text() {
        let (_dir, user, sys) = files("[s]\nhost=x\nSecretWithoutEquals\n", "");
        let env = env_of(&[("PGSERVICEFILE", &user), ("PGSYSCONFDIR", &sys)]);
        let error = expand("service=s", &env)
            .unwrap_err()
            .diagnostic()
            .headline();
        assert!(error.contains(&format!("{user}:3")), "{error}");
        assert!(!error.contains("SecretWithoutEquals"), "{error}");
        let (_dir, user, sys) = files("[s]\nservice=t\n", "");
        let env = env_of(&[("PGSERVICEFILE", &user), ("PGSYSCONFDIR", &sys)]);
        assert!(expand("service=s", &env)
            .unwrap_err()
            .diagnostic()
            .headline()
            .contains("service inside"));
    }
}
