//! nst-cli: command-line neural style transfer.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `eprintln!` that never panics: a full stderr (`2>/dev/full`) loses the message, not the run
/// (std's `eprintln!` panics on a write error).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod batch;
mod bench;
mod bench_fast;
mod common;
mod devices;
mod docs;
mod eval;
mod features;
mod objective;
mod pip;
mod sheet;
mod styles;
mod stylize;
mod transfer;
mod transfer_batch;
mod video;
mod weights;

/// Neural style transfer (Gatys et al.) on the nst engine.
#[derive(Debug, Parser)]
#[command(name = "nst-cli", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Style transfer: optimise an image with CONTENT's content in STYLE's style.
    Transfer(Box<transfer::TransferArgs>),
    /// Instant style transfer with pretrained feed-forward networks: a built-in style (0–25) or
    /// any painting, in well under a second a picture.
    Stylize(stylize::StylizeArgs),
    /// Stylise a video frame by frame (fast: the feed-forward networks; optimise: Gatys with a
    /// temporal loss), through the system's ffmpeg; animated GIF/WebP without it.
    Video(Box<video::VideoArgs>),
    /// A contact sheet of the 26 built-in styles on a photo, each labelled with its number.
    Styles(styles::StylesArgs),
    /// Measure finished pictures: the objective, Gram and content relative errors, SSIM, time;
    /// a table, JSON lines, or a contact sheet.
    Eval(Box<eval::EvalArgs>),
    /// Dump VGG-19 activations (or their Gram matrices) of an image as safetensors.
    Features(features::FeaturesArgs),
    /// Seconds per iteration on the reference objective (side by side with PyTorch:
    /// benches/compare.sh).
    Bench(bench::BenchArgs),
    /// Get, convert and inspect the VGG-19 weights.
    Weights {
        #[command(subcommand)]
        cmd: weights::WeightsCmd,
    },
    /// A local web page to upload images, choose styles, watch the picture form and download it.
    Serve(nst_serve::ServeArgs),
    /// List the CUDA GPUs this build can use (name, compute capability, memory).
    Devices,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the man page, or write all of them into a directory (--dir).
    Man(docs::ManArgs),
}

/// Keep freed memory in the process (glibc): an iteration frees and reallocates the same large
/// activation buffers every time, and returning them to the OS costs a page fault per 4 KiB on
/// the next iteration (≈10% of an iteration at 512 px). The heap's high-water mark stays the
/// peak of live memory.
fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    retain_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Weights { cmd } => weights::run(cmd),
        Command::Features(args) => features::run(args),
        Command::Stylize(args) => stylize::run(args),
        Command::Styles(args) => styles::run(args),
        Command::Eval(args) => eval::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => nst_serve::run(args, common::load_vgg),
        Command::Devices => devices::run(),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Video(args) => match video::run(*args) {
            Ok(true) => return ExitCode::from(130),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
        Command::Transfer(args) => match transfer::run_transfer(*args) {
            Ok(true) => return ExitCode::from(130),
            Ok(false) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `nst-cli weights info | head`: a closed pipe is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e:#}");
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
