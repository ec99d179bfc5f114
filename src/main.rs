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
        tokio::select! {
            code = db_ci::cli::main(cli) => code,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the run tears down the server, container and temp dirs.
                eprintln!("interrupted: cleaning up");
                130
            }
        }
    });
    drop(runtime);
    std::process::exit(code);
}
