//! `db-ci`: arguments in, exit code out.

use clap::Parser;

fn main() {
    // An empty DB_CI_* variable means unset: the GitHub Action passes every input through
    // `env:`, given or not, and clap would reject an empty value for a flag like
    // --fail-on-lint.
    for (key, value) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("DB_CI_") && value.is_empty() {
            std::env::remove_var(key);
        }
    }
    let cli = db_ci::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            std::process::exit(db_ci::error::exit::ENVIRONMENT);
        }
    };
    let code = runtime.block_on(async {
        // SIGTERM (timeout, docker stop, a cancelled CI job) and SIGHUP (a closed terminal)
        // end the run exactly like Ctrl-C; the exit code is 128 + the signal's number.
        let signal = match db_ci::interrupt::until_signal(db_ci::cli::main(cli)).await {
            Ok(Ok(code)) => return code,
            Ok(Err(signal)) => signal,
            Err(_) => {
                eprintln!("error: install the signal handlers");
                return db_ci::error::exit::ENVIRONMENT;
            }
        };
        // The run future is dropped before block_on returns: that tears down the server,
        // container, databases and temp dirs.
        if db_ci::keep::verdict_while_kept().is_none() {
            eprintln!("interrupted by {}: cleaning up", signal.name);
        }
        // A container still starting when the signal came belongs to no run yet.
        db_ci::backend::sweep::own_containers().await;
        match db_ci::keep::verdict_while_kept() {
            // Ctrl-C ends `--keep` on purpose: the run's verdict stands.
            Some(code) if signal.number == libc::SIGINT => code,
            _ => 128 + signal.number,
        }
    });
    drop(runtime);
    std::process::exit(code);
}
