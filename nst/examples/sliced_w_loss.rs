//! Texture synthesis with the sliced Wasserstein loss (`nst::loss::sliced_w`; Heitz et al.,
//! CVPR 2021, the paper's own use): from noise, with no content term, the style's feature
//! distributions are matched through sorted projections on random directions, redrawn at every
//! iteration (`Loss::start_iteration`, called by `transfer::run`).
//!
//! Run (after `nst-cli weights fetch`):
//! `cargo run --release -p nst --example sliced_w_loss -- STYLE OUT.png`

use nst::config::Init;
use nst::image::RgbImage;
use nst::loss::StyleLossKind;
use nst::transfer::{self, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use std::ops::ControlFlow;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: sliced_w_loss STYLE OUT.png");
        std::process::exit(2);
    }
    let vgg = Arc::new(Vgg19::new(
        &VggWeights::load(&default_weights_path()?)?,
        Pooling::Max,
    )?);
    let style = RgbImage::load(args[1].as_ref(), 50_000_000)?.resize_longest(256);
    let cfg = StyleTransferConfig {
        size_px: 256,
        style_loss: StyleLossKind::SlicedW,
        content_weight: 0.0,
        init: Init::Noise,
        // One scale, as the paper: coarse scales from noise at 64 px, where relu5_1 sees the
        // whole picture, rebuilt the painting's layout (moon, cypress) rather than a texture.
        scales: 1,
        iterations: 200,
        tolerance: 0.0,
        ..StyleTransferConfig::default()
    };
    // The "content" only sets the output's size here: its weight is 0.
    let out = transfer::run(vgg, &style, std::slice::from_ref(&style), &cfg, |p| {
        if p.iteration % 25 == 0 {
            eprintln!(
                "scale {} iteration {}: sliced-w {:.4e}",
                p.scale, p.iteration, p.eval.total
            );
        }
        ControlFlow::Continue(())
    })?;
    out.save(args[2].as_ref())?;
    eprintln!("wrote {}", args[2]);
    Ok(())
}
