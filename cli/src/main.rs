//! nst-cli: command-line neural style transfer.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod weights;

/// Neural style transfer (Gatys et al.) on the nst engine.
#[derive(Debug, Parser)]
#[command(name = "nst-cli", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Get, convert and inspect the VGG-19 weights.
    Weights {
        #[command(subcommand)]
        cmd: weights::WeightsCmd,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Weights { cmd } => weights::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `nst-cli weights info | head`: a closed pipe is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
