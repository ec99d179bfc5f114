//! `db-ci`: arguments in, exit code out.

use clap::Parser;

fn main() {
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
