//! `nst-cli completions SHELL` and `nst-cli man`: shell completion scripts (clap_complete) and
//! man pages (clap_mangen), generated from the same clap definitions as `--help`.

use anyhow::{Context, Result};
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::path::PathBuf;

/// `nst-cli completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell. Install, e.g.:
    /// bash `nst-cli completions bash > ~/.local/share/bash-completion/completions/nst-cli`;
    /// zsh `nst-cli completions zsh > "${fpath[1]}/_nst-cli"`;
    /// fish `nst-cli completions fish > ~/.config/fish/completions/nst-cli.fish`.
    pub shell: Shell,
}

/// `nst-cli man [--dir DIR]`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write nst-cli.1 and one page per subcommand (nst-cli-transfer.1, …) into DIR (created if
    /// missing) instead of printing nst-cli.1 to stdout. View with `man -l nst-cli.1`.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut cmd = crate::Cli::command();
    // Into a buffer first: clap_complete panics on a write error (e.g. a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "nst-cli", &mut script);
    std::io::Write::write_all(&mut std::io::stdout(), &script)
        .context("writing the completion script")
}

/// Prints the top-level man page, or writes every page into `args.dir`.
pub fn man(args: ManArgs) -> Result<()> {
    let cmd = crate::Cli::command();
    match args.dir {
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("writing the man page"),
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            note!("wrote man pages into {}", dir.display());
            Ok(())
        }
    }
}
