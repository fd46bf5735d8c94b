use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    authlog::files_private_to_their_owner();
    let cli = authlog::cli::Cli::parse();
    match authlog::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with the chain of causes: what failed and why.
            eprintln!("authlog: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
