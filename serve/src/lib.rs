//! nst-serve, run as `nst-cli serve`: a local web page (and JSON API, docs/API.md) to upload a
//! content image and style images, run style transfer jobs one at a time, watch the picture form
//! and download it.
//!
//! Layout: `api` (routes and handlers), `upload` (POST /api/jobs), `app` (the state and error
//! type both share), `store` (jobs in memory and on disk, events), `worker` (the thread that
//! runs the transfer), `record` and `params` (what a job is), `decode` (images from memory),
//! `assets` (the page and gallery built into the binary).

/// `eprintln!` that never panics: a full stderr (`2>/dev/full`) loses the message, not the run
/// (std's `eprintln!` panics on a write error).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod api;
mod app;
mod assets;
mod decode;
mod params;
mod record;
mod store;
mod upload;
mod worker;

use anyhow::{bail, Context, Result};
use clap::Args;
use nst::engine::Precision;
use nst::vgg19::{Pooling, Vgg19};
use nst::ParseOptionError;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `nst-cli serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Anything but loopback lets other machines use the server (a warning
    /// is printed): there is no authentication.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port; the address is printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Open the page in the default web browser.
    #[arg(long)]
    pub open: bool,
    /// VGG-19 weights (.safetensors from `nst-cli weights`) [default: the cache].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Pooling in VGG-19: max or avg.
    #[arg(long, default_value = "max")]
    pub pooling: String,
    /// Number format of CPU jobs' backward-pass convolutions: auto (bf16 with AMX and on an AMD
    /// with AVX-512-BF16, else f32), f32, or bf16 (bf16 operands, f32 sums). Server-wide; GPU jobs
    /// keep exact f32.
    #[arg(long, default_value = "auto")]
    pub precision: String,
    /// Where jobs are kept [default: $NST_HOME/jobs, else <user cache dir>/nst/jobs].
    #[arg(long)]
    pub jobs_dir: Option<PathBuf>,
    /// Largest request body (all uploaded images of one job together), in MiB.
    #[arg(long, default_value_t = 32)]
    pub max_upload_mib: u64,
    /// Largest input image, in pixels (width × height), checked before decoding.
    #[arg(long, default_value_t = 25_000_000)]
    pub max_pixels: u64,
    /// Largest output a job may ask for (longest side, px).
    #[arg(long, default_value_t = 1024)]
    pub max_size: usize,
    /// Most iterations per scale a job may ask for.
    #[arg(long, default_value_t = 2000)]
    pub max_iterations: usize,
    /// Most jobs waiting in the queue.
    #[arg(long, default_value_t = 64)]
    pub max_queued: usize,
}

/// Run the server until the process is stopped. `load_vgg(--weights, pooling)` loads the
/// network (nst-cli's, which says how to fetch missing weights).
pub fn run(
    args: ServeArgs,
    load_vgg: impl FnOnce(Option<&Path>, Pooling) -> Result<Vgg19>,
) -> Result<()> {
    let pooling: Pooling = args
        .pooling
        .parse()
        .map_err(|e: ParseOptionError| anyhow::anyhow!(e.named("--pooling")))?;
    let conv = nst::engine::ConvConfig {
        precision: parse_precision(&args.precision)?,
        ..Default::default()
    };
    let addrs: Vec<SocketAddr> = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("--host {}: cannot resolve", args.host))?
        .collect();
    let Some(&addr) = addrs.first() else {
        bail!("--host {}: resolves to no address", args.host);
    };
    let loopback = addrs.iter().all(|a| a.ip().is_loopback());
    if !loopback {
        note!(
            "warning: --host {} is not a loopback address: anyone who can reach it can upload \
             images and run jobs on this machine (there is no authentication)",
            args.host
        );
    }
    let jobs_dir = match &args.jobs_dir {
        Some(d) => d.clone(),
        None => nst::weights::weights_cache_dir()?.join("jobs"),
    };
    let limits = params::Limits {
        max_upload_bytes: args.max_upload_mib.saturating_mul(1 << 20),
        max_pixels: args.max_pixels,
        max_size: args.max_size,
        max_iterations: args.max_iterations,
        max_queued: args.max_queued,
    };
    let vgg = Arc::new(load_vgg(args.weights.as_deref(), pooling)?);
    let store = store::Store::open(&jobs_dir)?;
    // The instant mode's networks, when installed (CPU: a picture takes well under a second).
    let fast = match nst::fast::ArbitraryStyle::load_cached(nst::engine::Device::Cpu) {
        Ok(n) => Some(Arc::new(n)),
        Err(e) => {
            note!("note: instant mode off ({e}); run `nst-cli weights fetch` to add it");
            None
        }
    };
    worker::spawn(store.clone(), vgg, fast.clone(), limits.clone(), conv)
        .context("starting the worker thread")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let local = listener.local_addr()?;
        let port = local.port();
        let allowed_hosts = loopback.then(|| {
            let mut hosts = vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                local.to_string(),
            ];
            if port == 80 {
                hosts.extend(["127.0.0.1", "localhost", "[::1]"].map(String::from));
            }
            hosts.sort();
            hosts.dedup();
            hosts
        });
        let app = Arc::new(app::App {
            store: store.clone(),
            limits,
            allowed_hosts,
            fast,
        });
        let url = format!("http://{local}/");
        println!("nst-cli serve: listening on {url}");
        println!("jobs are kept in {}", store.dir().display());
        if args.open {
            let shown = if local.ip().is_unspecified() {
                format!("http://localhost:{port}/")
            } else {
                url.clone()
            };
            open_browser(&shown);
        }
        serve_http(listener, api::router(app)).await
    })
}

/// How long a client may take to send a request's headers before its connection is closed:
/// half-sent requests must not hold connections open forever.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on `listener` over HTTP/1.1, one task per connection, each with
/// [`HEADER_READ_TIMEOUT`] (what `axum::serve` does, plus that timeout).
async fn serve_http(listener: tokio::net::TcpListener, router: axum::Router) -> Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of file descriptors and the like: wait a moment instead of spinning.
            Err(e) => {
                note!("warning: accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            // A client that goes away mid-request is not the server's error.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// `--precision auto|f32|bf16` for CPU jobs ([`nst::config::precision_choice`]), saying so
/// when an explicit bf16 will not be faster here ([`nst::config::precision_note`]).
fn parse_precision(precision: &str) -> Result<Precision> {
    let p = nst::config::precision_choice(precision, nst::engine::Device::Cpu)
        .map_err(|e: ParseOptionError| anyhow::anyhow!(e.named("--precision")))?;
    if let Some(n) = nst::config::precision_note(precision, p, nst::engine::Device::Cpu) {
        note!("{n}");
    }
    Ok(p)
}

/// Open `url` in the desktop's browser; a failure only prints a note.
fn open_browser(url: &str) {
    let cmd = if cfg!(target_os = "macos") {
        std::process::Command::new("open").arg(url).spawn()
    } else if cfg!(windows) {
        std::process::Command::new("cmd")
            .args(["/C", "start", "", url])
            .spawn()
    } else {
        std::process::Command::new("xdg-open").arg(url).spawn()
    };
    if let Err(e) = cmd {
        note!("note: could not open a browser ({e}); open {url} yourself");
    }
}
