//! Backends: where the throwaway PostgreSQL comes from (container, local binaries, a URL),
//! and the databases db-ci creates and drops on it.

pub mod cache;
pub mod container;
pub mod copier;
pub mod lent;
pub mod local;
pub mod outside;
pub mod owner;
pub mod roles;
pub mod seed;
pub mod sweep;
pub mod url;
pub mod version;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::error::{Error, Result};
use crate::sql::{db_error_text, quote_ident, quote_literal};

/// The superuser db-ci's own clusters (local, container) are initialised with, as the
/// platform's are: `postgres` is then an ordinary role the shim creates as the platform
/// demotes it (a bootstrap superuser cannot be demoted). See `shim::platform`.
pub const BOOTSTRAP_SUPERUSER: &str = crate::shim::platform::SUPERUSER;

/// The image used when `--image` is not given (the official pgvector image's contract).
pub const DEFAULT_IMAGE: &str = "pgvector/pgvector:pg17";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Auto,
    Container,
    Local,
    Url,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Container => "container",
            BackendKind::Local => "local",
            BackendKind::Url => "url",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    pub kind: BackendKind,
    pub image: String,
    pub database_url: Option<String>,
    /// Start from what db-ci keeps (the local cached cluster's shimmed copy, a container's
    /// seed): the platform shim's roles and template databases are there from the start.
    /// Every run asks for it ([`version::start`]); false gives a bare cluster, a test's
    /// stand-in for a server db-ci did not make.
    pub shimmed: bool,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            kind: BackendKind::Auto,
            image: DEFAULT_IMAGE.to_owned(),
            database_url: None,
            shimmed: false,
        }
    }
}

#[derive(Debug, Clone)]
pub enum Host {
    Tcp(String),
    Socket(PathBuf),
}

/// How to reach the server as its superuser. Never printed whole: see [`Connection::redacted`].
#[derive(Clone)]
pub struct Connection {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    /// The database we connect to for CREATE/DROP DATABASE; never written to.
    pub maintenance_db: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted(&self.maintenance_db))
    }
}

impl Connection {
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        match &self.host {
            Host::Tcp(host) => config.host(host),
            Host::Socket(dir) => config.host_path(dir),
        };
        config
            .port(self.port)
            .user(&self.user)
            .dbname(dbname)
            .application_name("db-ci")
            .connect_timeout(Duration::from_secs(10));
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    /// A `postgres://` URL for `dbname`, with the password: for library users' pools only.
    pub fn url(&self, dbname: &str) -> String {
        let auth = match &self.password {
            Some(p) => format!("{}:{}@", urlencode(&self.user), urlencode(p)),
            None => format!("{}@", urlencode(&self.user)),
        };
        match &self.host {
            Host::Tcp(host) => format!("postgres://{auth}{host}:{}/{dbname}", self.port),
            Host::Socket(dir) => format!(
                "postgres://{auth}localhost:{}/{dbname}?host={}",
                self.port,
                urlencode(&dir.to_string_lossy())
            ),
        }
    }

    /// A description safe to print: never the password.
    pub fn redacted(&self, dbname: &str) -> String {
        let host = match &self.host {
            Host::Tcp(host) => host.clone(),
            Host::Socket(dir) => dir.display().to_string(),
        };
        let password = if self.password.is_some() { ":***" } else { "" };
        format!(
            "postgres://{}{password}@{host}:{}/{dbname}",
            self.user, self.port
        )
    }
}

fn urlencode(text: &str) -> String {
    ::url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

enum Handle {
    Local(local::Cluster),
    Container(Box<container::Container>),
    Url,
}

/// A running server and every throwaway database db-ci made on it. Dropping it tears the
/// server down (and drops the databases on a URL server); [`Server::shutdown`] does so and
/// waits.
pub struct Server {
    pub kind: BackendKind,
    pub connection: Connection,
    /// `server_version`, e.g. `15.18 (Debian 15.18-0+deb12u1)`.
    pub version: String,
    pub major: u32,
    /// Printed on the console: what the server is (no password).
    pub description: String,
    /// Whether the shim's stub extensions are installable (`CREATE EXTENSION pg_net` works).
    pub stub_extensions_installed: bool,
    created: Mutex<Vec<String>>,
    handle: Option<Handle>,
    /// 12 hex digits naming this server's databases (`db_ci_<tag>_…`) and carried by its
    /// sessions (`application_name = 'db-ci <tag>'`): how a later run tells them from a live
    /// run's on a shared server.
    tag: String,
    /// Counts databases named, so names stay unique within the run.
    named: std::sync::atomic::AtomicU32,
    /// The url backend's session held for the whole run: while it lives, this run's databases
    /// are never swept by another run.
    keepalive: Option<Client>,
    /// The statement time limit's watchdog, once [`Server::limit_statements`] started it.
    watchdog: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The backend pids of the sessions [`Server::connect`] opened: what the watchdog watches.
    sessions: watchdog::Sessions,
}

/// What every run does first: remove what dead runs left on this machine (local clusters and
/// their servers, half-built cache entries, `--keep`'s password files), and the cache entries
/// no run has used for a while.
pub async fn sweep_machine() {
    let _ = tokio::task::spawn_blocking(|| {
        sweep::local_clusters(&local::run_root());
        sweep::staging_dirs(&local::cache_root());
        cache::remove_unused(&local::cache_root());
        sweep::keep_dirs(&std::env::temp_dir());
    })
    .await;
}

impl Server {
    /// Starts (or reaches) a server as `options` say. `auto`: the URL if given, else a
    /// container when an engine and the image are usable, else local binaries.
    pub async fn start(options: &BackendOptions) -> Result<Server> {
        sweep_machine().await;
        match options.kind {
            BackendKind::Url => {
                let url = options.database_url.as_deref().ok_or_else(|| {
                    Error::input("use the url backend: --database-url is required")
                })?;
                url::connect(url).await
            }
            BackendKind::Local => local::start(options.shimmed).await,
            BackendKind::Container => container::start(&options.image, options.shimmed).await,
            BackendKind::Auto => {
                if let Some(url) = options.database_url.as_deref() {
                    return url::connect(url).await;
                }
                let container_problem = match container::usable(&options.image).await {
                    Ok(()) => return container::start(&options.image, options.shimmed).await,
                    Err(problem) => problem,
                };
                match local::start(options.shimmed).await {
                    Ok(server) => Ok(server),
                    Err(Error::Environment(local_problem)) => Err(Error::environment(format!(
                        "find a usable PostgreSQL backend:\n  container: {container_problem}\n  \
                         local: {local_problem}\n\
                         Install PostgreSQL server binaries (e.g. `apt-get install postgresql` \
                         or `brew install postgresql@17`, or set PG_BIN), start a Docker engine, \
                         or pass --database-url."
                    ))),
                    Err(other) => Err(other),
                }
            }
        }
    }

    fn new(
        kind: BackendKind,
        connection: Connection,
        description: String,
        stub_extensions_installed: bool,
        handle: Handle,
    ) -> Server {
        Server {
            kind,
            connection,
            version: String::new(),
            major: 0,
            description,
            stub_extensions_installed,
            created: Mutex::new(Vec::new()),
            handle: Some(handle),
            tag: format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff),
            named: std::sync::atomic::AtomicU32::new(0),
            keepalive: None,
            watchdog: Mutex::new(None),
            sessions: watchdog::Sessions::default(),
        }
    }

    /// Reads the server version once it is reachable.
    async fn identify(mut self) -> Result<Server> {
        let client = self
            .connect(&self.connection.maintenance_db.clone())
            .await?;
        let row = client
            .query_one(
                "select current_setting('server_version'), current_setting('server_version_num')::int",
                &[],
            )
            .await
            .map_err(|e| Error::environment(format!("read the server version: {e}")))?;
        self.version = row.get(0);
        let num: i32 = row.get(1);
        self.major = (num / 10000) as u32;
        Ok(self)
    }

    pub async fn connect(&self, dbname: &str) -> Result<Client> {
        let client = connect_config(
            &self.session_config(dbname),
            &self.connection.redacted(dbname),
        )
        .await?;
        // Known by its pid: what the statement time limit watches, whatever the SQL renames.
        let row = client
            .query_one("select pg_backend_pid()", &[])
            .await
            .map_err(|e| Error::environment(format!("read the session's backend pid: {e}")))?;
        self.sessions.lock().unwrap().insert(row.get(0));
        Ok(client)
    }

    /// A session for db-ci's own setup (the shim), which the statement time limit does not
    /// watch: its pid is never recorded. The exemption is the session, not a name, so SQL
    /// under test (always on [`Server::connect`]'s sessions) cannot claim it by renaming itself.
    pub async fn connect_unwatched(&self, dbname: &str) -> Result<Client> {
        connect_config(
            &self.session_config(dbname),
            &self.connection.redacted(dbname),
        )
        .await
    }

    /// The configuration of this run's sessions: tagged with the run (see [`Server::tag`]).
    fn session_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = self.connection.config(dbname);
        config.application_name(self.application_name());
        if self.kind == BackendKind::Url && self.major >= 14 {
            // A run killed mid-statement leaves its session running on a shared server until
            // the statement ends; with this the server notices the client is gone within 1s.
            config.options("-c client_connection_check_interval=1000");
        }
        config
    }

    /// `db-ci <tag>`: the `application_name` of every session of this run.
    pub fn application_name(&self) -> String {
        format!("db-ci {}", self.tag)
    }

    /// A session for db-ci's own maintenance (CREATE/DROP DATABASE): named `db-ci <tag>
    /// admin`, so the statement time limit never cancels it.
    async fn admin(&self) -> Result<Client> {
        let dbname = &self.connection.maintenance_db;
        let mut config = self.session_config(dbname);
        config.application_name(format!("{} admin", self.application_name()));
        connect_config(&config, &self.connection.redacted(dbname)).await
    }

    /// Stops every statement of this run's sessions that runs longer than `limit`, from
    /// db-ci's side (see [`watchdog`]); `Duration::ZERO` means no limit.
    pub async fn limit_statements(&self, limit: Duration) -> Result<()> {
        if limit.is_zero() {
            return Ok(());
        }
        let dbname = &self.connection.maintenance_db;
        let mut config = self.session_config(dbname);
        config.application_name(format!("{} watchdog", self.application_name()));
        let client = connect_config(&config, &self.connection.redacted(dbname)).await?;
        let task = watchdog::spawn(client, self.sessions.clone(), limit);
        if let Some(old) = self.watchdog.lock().unwrap().replace(task) {
            old.abort();
        }
        Ok(())
    }

    /// Creates a database db-ci owns (optionally as a copy of `template`).
    pub async fn create_database(&self, name: &str, template: Option<&str>) -> Result<()> {
        self.create_database_on(&self.admin().await?, name, template)
            .await
    }

    /// [`Server::create_database`] over the maintenance session `admin`.
    async fn create_database_on(
        &self,
        admin: &Client,
        name: &str,
        template: Option<&str>,
    ) -> Result<()> {
        let sql = match template {
            // A copy keeps its template's owner: the platform's `postgres` owns the replayed
            // database (and so `public`), and must own every clone tests run in.
            Some(t) => format!(
                "create database {} template {} owner {}",
                quote_ident(name),
                quote_ident(t),
                quote_ident(&database_owner(admin, t).await?)
            ),
            None => format!("create database {} template template0", quote_ident(name)),
        };
        self.run_create(admin, &sql, name).await?;
        if let Some(template) = template {
            copy_database_settings(admin, template, name).await?;
        }
        Ok(())
    }

    /// Creates `name` holding the platform shim for `mode`: a copy of the server's shimmed
    /// template where it keeps one (a run's server started from the local cache or a
    /// container's seed), else a new database the shim is applied to. The shim is db-ci's own
    /// setup: its sessions are not watched.
    pub async fn create_shimmed_database(
        &self,
        name: &str,
        mode: crate::shim::GrantMode,
    ) -> Result<()> {
        let template = crate::shim::template_name(mode);
        let admin = self.admin().await?;
        let kept = admin
            .query_opt("select 1 from pg_database where datname = $1", &[&template])
            .await
            .map_err(|e| Error::environment(format!("look for the shimmed template: {e}")))?
            .is_some();
        if kept {
            return self.create_database_on(&admin, name, Some(&template)).await;
        }
        self.create_database_on(&admin, name, None).await?;
        drop(admin);
        crate::shim::apply(&self.connect_unwatched(name).await?, mode).await
    }

    /// Runs `sql`, a CREATE DATABASE of `name`, on `admin`.
    async fn run_create(&self, admin: &Client, sql: &str, name: &str) -> Result<()> {
        // Recorded before it exists: an exit while CREATE DATABASE runs still drops it.
        self.created.lock().unwrap().push(name.to_owned());
        // A template still being disconnected from (a client just dropped) is "in use" for
        // a few milliseconds: retry briefly rather than fail.
        let mut attempt = 0;
        loop {
            match admin.batch_execute(sql).await {
                Ok(()) => return Ok(()),
                Err(e)
                    if attempt < 50
                        && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => {
                    return Err(Error::environment(format!(
                        "create database {name}: {}",
                        db_error_text(&e)
                    )))
                }
            }
        }
    }

    /// Drops a database this run created. Refuses any other.
    pub async fn drop_database(&self, name: &str) -> Result<()> {
        let admin = self.admin().await?;
        self.drop_database_on(&admin, name).await
    }

    async fn drop_database_on(&self, admin: &Client, name: &str) -> Result<()> {
        if !self.created.lock().unwrap().iter().any(|n| n == name) {
            return Err(Error::environment(format!(
                "drop database {name}: db-ci did not create it"
            )));
        }
        admin
            .batch_execute(&format!(
                "drop database if exists {} with (force)",
                quote_ident(name)
            ))
            .await
            .map_err(|e| {
                Error::environment(format!("drop database {name}: {}", db_error_text(&e)))
            })?;
        self.created.lock().unwrap().retain(|n| n != name);
        Ok(())
    }

    /// A fresh database name unique to this run.
    pub fn unique_name(&self, purpose: &str) -> String {
        let n = self
            .named
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("db_ci_{}_{n}_{purpose}", self.tag)
    }

    /// Drops what we created and stops what we started, waiting for it.
    pub async fn shutdown(mut self) {
        self.drop_created().await;
        if matches!(self.handle, Some(Handle::Url)) {
            if let Ok(admin) = self.admin().await {
                roles::release(&admin, &self.application_name()).await;
            }
        }
        match self.handle.take() {
            Some(Handle::Local(cluster)) => cluster.stop(),
            Some(Handle::Container(container)) => container.stop().await,
            Some(Handle::Url) | None => {}
        }
    }

    async fn drop_created(&self) {
        let names: Vec<String> = self.created.lock().unwrap().clone();
        // Only a URL server outlives us; a local cluster or container goes away whole.
        if names.is_empty() || !matches!(self.handle, Some(Handle::Url)) {
            return;
        }
        for name in names {
            let _ = self.drop_database(&name).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Reached on panic or cancellation (Ctrl-C) without shutdown().
        if let Some(task) = self.watchdog.lock().unwrap().take() {
            task.abort();
        }
        let names: Vec<String> = self.created.lock().unwrap().drain(..).collect();
        if matches!(self.handle, Some(Handle::Url)) {
            let config = self.connection.config(&self.connection.maintenance_db);
            url::drop_databases_blocking(config, self.application_name(), names);
        }
        match self.handle.take() {
            Some(Handle::Local(cluster)) => cluster.stop(),
            Some(Handle::Container(container)) => drop(container),
            _ => {}
        }
    }
}

async fn database_owner(admin: &Client, database: &str) -> Result<String> {
    admin
        .query_one(
            "select pg_catalog.pg_get_userbyid(datdba)::text from pg_catalog.pg_database \
             where datname = $1",
            &[&database],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| {
            Error::environment(format!(
                "read the owner of {database}: {}",
                db_error_text(&e)
            ))
        })
}

/// `CREATE DATABASE … TEMPLATE` copies contents, not `ALTER DATABASE … SET` settings (the
/// shim's `search_path` among them): carry them over so the copy behaves the same.
async fn copy_database_settings(admin: &Client, template: &str, name: &str) -> Result<()> {
    let settings = database_settings(admin, template).await?;
    apply_database_settings(admin, &settings, name).await
}

/// One `ALTER DATABASE … SET` of a template: the role it is for (empty: every role), the
/// setting, and its value as SQL.
type DatabaseSetting = (String, String, String);

async fn database_settings(admin: &Client, template: &str) -> Result<Vec<DatabaseSetting>> {
    let rows = admin
        .query(
            "select coalesce(r.rolname, ''), unnest(s.setconfig) from pg_db_role_setting s \
             join pg_database d on d.oid = s.setdatabase left join pg_roles r on r.oid = s.setrole \
             where d.datname = $1",
            &[&template],
        )
        .await
        .map_err(|e| {
            Error::environment(format!(
                "read settings of {template}: {}",
                db_error_text(&e)
            ))
        })?;
    let mut settings = Vec::new();
    for row in rows {
        let role: String = row.get(0);
        let setting: String = row.get(1);
        let Some((key, value)) = setting.split_once('=') else {
            continue;
        };
        // List settings are stored already quoted, element by element; the rest is one value.
        let list = matches!(
            key,
            "search_path"
                | "temp_tablespaces"
                | "local_preload_libraries"
                | "session_preload_libraries"
        );
        let value = if list {
            value.to_owned()
        } else {
            quote_literal(value)
        };
        settings.push((role, key.to_owned(), value));
    }
    Ok(settings)
}

/// Applies `settings` to database `name`, in one round trip.
async fn apply_database_settings(
    admin: &Client,
    settings: &[DatabaseSetting],
    name: &str,
) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let mut sql = String::new();
    for (role, key, value) in settings {
        let target = if role.is_empty() {
            format!("database {}", quote_ident(name))
        } else {
            format!(
                "role {} in database {}",
                quote_ident(role),
                quote_ident(name)
            )
        };
        sql.push_str(&format!(
            "alter {target} set {} = {value};\n",
            quote_ident(key)
        ));
    }
    admin.batch_execute(&sql).await.map_err(|e| {
        Error::environment(format!(
            "copy the settings to {name}: {}",
            db_error_text(&e)
        ))
    })
}

pub(crate) async fn connect_config(config: &tokio_postgres::Config, shown: &str) -> Result<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| Error::environment(format!("connect to {shown}: {}", db_error_text(&e))))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Makes the shimmed templates (see [`crate::shim::template_name`]) on the fresh server
/// `connection` reaches as its bootstrap superuser: a database per grant mode holding the
/// shim and nothing else, which nobody connects to. For a server kept to start from (the
/// local backend's cached cluster, a container's seed): a run's first database is then a
/// copy, not the shim applied again ([`Server::create_shimmed_database`]).
pub(crate) async fn make_shimmed_templates(connection: &Connection) -> Result<()> {
    use crate::shim::{self, GrantMode};
    let admin = connect_config(
        &connection.config(&connection.maintenance_db),
        &connection.redacted(&connection.maintenance_db),
    )
    .await?;
    for mode in [GrantMode::Classic, GrantMode::NoExpose] {
        let name = shim::template_name(mode);
        let failed = |e: tokio_postgres::Error| {
            Error::environment(format!("create {name}: {}", db_error_text(&e)))
        };
        admin
            .batch_execute(&format!(
                "create database {} template template0",
                quote_ident(&name)
            ))
            .await
            .map_err(failed)?;
        let shimmed =
            connect_config(&connection.config(&name), &connection.redacted(&name)).await?;
        shim::apply(&shimmed, mode).await?;
        drop(shimmed);
        admin
            .batch_execute(&format!(
                "alter database {} allow_connections false",
                quote_ident(&name)
            ))
            .await
            .map_err(failed)?;
    }
    Ok(())
}

/// Waits until `config` accepts connections, up to `limit`.
pub(crate) async fn wait_until_ready(
    config: &tokio_postgres::Config,
    limit: Duration,
    shown: &str,
    exited: &mut dyn FnMut() -> Option<String>,
) -> Result<()> {
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < limit {
        // A server that already exited will never accept: say so now, not after the limit.
        if let Some(why) = exited() {
            return Err(Error::environment(format!("start {shown}: {why}")));
        }
        match config.connect(NoTls).await {
            Ok((client, connection)) => {
                let task = tokio::spawn(connection);
                let ok = client.simple_query("select 1").await.is_ok();
                drop(client);
                let _ = task.await;
                if ok {
                    return Ok(());
                }
            }
            Err(e) => last = db_error_text(&e),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(Error::environment(format!(
        "wait for {shown} to accept connections: gave up after {:.1}s ({last})",
        limit.as_secs_f64()
    )))
}
