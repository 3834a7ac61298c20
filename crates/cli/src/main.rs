//! `healthchain`: the HealthChain command-line client.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = healthchain_cli::Cli::parse();
    healthchain_cli::init_tracing(cli.verbosity());
    match healthchain_cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
