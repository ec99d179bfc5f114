//! Shared test helpers: which backends this machine has, running the binary, parallel work.
#![allow(dead_code)]

use std::process::{Command, Output};

pub struct Backend {
    pub name: &'static str,
    args: Vec<String>,
}

impl Backend {
    pub fn args(&self) -> Vec<String> {
        self.args.clone()
    }

    /// The local backend, if server binaries are present; else a loud skip (or a failure
    /// when DB_CI_REQUIRE_BACKENDS names it).
    pub fn local() -> Option<Backend> {
        match db_ci::backend::local::find_install() {
            Ok(_) => Some(Backend {
                name: "local",
                args: vec!["--backend".into(), "local".into()],
            }),
            Err(e) => skip("local", &e.to_string()),
        }
    }

    /// The container backend with DB_CI_TEST_IMAGE (or the default image) if an engine runs.
    pub fn container() -> Option<Backend> {
        let image = container_image();
        // Its own thread and runtime: callers may already be inside one.
        let probe = image.clone();
        let usable = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(db_ci::backend::container::usable(&probe))
        })
        .join()
        .unwrap();
        match usable {
            Ok(()) => Some(Backend {
                name: "container",
                args: vec![
                    "--backend".into(),
                    "container".into(),
                    "--image".into(),
                    image,
                ],
            }),
            Err(problem) => skip("container", &problem.to_string()),
        }
    }
}

pub fn container_image() -> String {
    std::env::var("DB_CI_TEST_IMAGE").unwrap_or_else(|_| db_ci::backend::DEFAULT_IMAGE.to_owned())
}

pub fn skip<T>(name: &str, why: &str) -> Option<T> {
    let required = std::env::var("DB_CI_REQUIRE_BACKENDS").unwrap_or_default();
    if required.split(',').any(|b| b.trim() == name) {
        panic!("the {name} backend is required here (DB_CI_REQUIRE_BACKENDS) but unusable: {why}");
    }
    // Straight to the stderr stream: the test harness captures eprintln!, and a skip must
    // be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPING {name}-backend tests: {why}\n"
    );
    None
}

pub fn db_ci(args: &[String]) -> Output {
    db_ci_with_env(args, &[])
}

/// Runs the binary with extra environment variables (e.g. `CI=true`, so that a fixture run
/// never writes a snapshot into the repository).
pub fn db_ci_with_env(args: &[String], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_db-ci"))
        .args(args)
        // Tests that run under GitHub Actions themselves must not colour their children's
        // output nor annotate the test job (a test that wants it sets them in `env`).
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("CLICOLOR_FORCE")
        .envs(env.iter().copied())
        .env_remove("DB_CI_BACKEND")
        .env_remove("DB_CI_DATABASE_URL")
        .output()
        .expect("run db-ci")
}

/// Runs `work` over `items` on `threads` threads, results in input order.
pub fn parallel<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let queue = std::sync::Mutex::new(items.into_iter().enumerate().collect::<Vec<_>>());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let next = queue.lock().unwrap().pop();
                let Some((i, item)) = next else { break };
                let r = work(item);
                results.lock().unwrap().push((i, r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// A private folder for `DB_CI_RUN_DIR` (for a test that looks at what a run leaves there):
/// on the memory-backed `/dev/shm` where db-ci puts its clusters by default, so a run costs
/// what it costs for users (on this machine's disk, a boot took 2.4 s instead of 0.35 s),
/// and open to everyone with the sticky bit, since the server may run as `postgres` (when
/// we are root) and writes its socket there.
pub fn run_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let shm = std::path::Path::new("/dev/shm");
    let dir = match shm.is_dir() {
        true => tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir()),
        false => tempfile::tempdir(),
    }
    .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Copies the folder `from` to `to`, recursively (fixtures are edited in a copy).
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Makes a local cluster look like a server a user hands the url backend (the official
/// postgres image's): its bootstrap superuser, `supabase_admin` on db-ci's own clusters (as on
/// the platform), renamed to `postgres`, and `server` connecting as it.
pub async fn as_plain_postgres_server(server: &mut db_ci::backend::Server) {
    // The session user cannot rename itself: a helper superuser does it, then goes.
    let helper = "db_ci_test_renamer";
    let run = |server: &db_ci::backend::Server, sql: String| {
        let server = server.connection.clone();
        async move {
            let (client, conn) = server
                .config("postgres")
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
        }
    };
    run(server, format!("create role {helper} superuser login")).await;
    let bootstrap = std::mem::replace(&mut server.connection.user, helper.to_owned());
    run(server, format!("alter role {bootstrap} rename to postgres")).await;
    server.connection.user = "postgres".to_owned();
    run(server, format!("drop role {helper}")).await;
}

/// The binary's exit code and everything it printed (stdout, then stderr).
pub fn db_ci_text(args: &[String], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = db_ci_with_env(args, env);
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// A server as users lend one to the url backend: a private local cluster whose superuser is
/// `postgres`, its URL (no password), and its administrator's session, which is not named as
/// a db-ci run's (so it never counts as a live run).
pub struct Lent {
    pub server: db_ci::backend::Server,
    pub url: String,
    pub admin: tokio_postgres::Client,
}

/// A [`Lent`] server, or `None` (a loud skip) without local binaries.
pub async fn lent_server() -> Option<Lent> {
    use db_ci::backend::{BackendKind, BackendOptions, Host, Server};
    Backend::local()?;
    let mut server = Server::start(&BackendOptions {
        kind: BackendKind::Local,
        ..Default::default()
    })
    .await
    .unwrap();
    as_plain_postgres_server(&mut server).await;
    let Host::Socket(socket) = &server.connection.host else {
        panic!("local backend uses a socket")
    };
    let url = format!(
        "postgres://postgres@{}:{}/postgres",
        socket.display().to_string().replace('/', "%2F"),
        server.connection.port
    );
    let mut config = server.connection.config("postgres");
    config.application_name("administrator");
    let (admin, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    Some(Lent { server, url, admin })
}
