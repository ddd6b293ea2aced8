//! The Wasserstein-2 style loss (mean + covariance, `nst::loss::w2`): how far the content image
//! is from the style at each layer under Gram and under W2 (both scale-free: divided by the
//! target's mean square, as `--loss-scale relative`), then a 256 px transfer with it.
//!
//! Run (after `nst-cli weights fetch`):
//! `cargo run --release -p nst --example w2_loss -- CONTENT STYLE OUT.png`

use nst::image::RgbImage;
use nst::loss::{target_mean_square, Loss, StyleLoss, StyleLossKind};
use nst::transfer::{self, target_features, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use std::ops::ControlFlow;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: w2_loss CONTENT STYLE OUT.png");
        std::process::exit(2);
    }
    let vgg = Arc::new(Vgg19::new(
        &VggWeights::load(&default_weights_path()?)?,
        Pooling::Max,
    )?);
    let content = RgbImage::load(args[1].as_ref(), 50_000_000)?.resize_longest(256);
    let style = RgbImage::load(args[2].as_ref(), 50_000_000)?.resize_longest(256);
    let cfg = StyleTransferConfig {
        size_px: 256,
        style_loss: StyleLossKind::W2,
        ..StyleTransferConfig::default()
    };
    let layers: Vec<&str> = cfg.style_layers.iter().map(String::as_str).collect();
    let feats = |im: &RgbImage| {
        target_features(
            &vgg,
            &vgg.preprocess(&im.data, im.width, im.height)?,
            &layers,
            &cfg,
        )
    };
    let (fc, fs) = (feats(&content)?, feats(&style)?);
    let unit: Vec<(String, f64)> = cfg.style_layers.iter().map(|l| (l.clone(), 1.0)).collect();
    for kind in [StyleLossKind::Gram, StyleLossKind::W2] {
        let loss = StyleLoss::from_styles(kind, &unit, std::slice::from_ref(&fs), &[1.0])?;
        let x = vgg.preprocess(&content.data, content.width, content.height)?;
        for (term, (_, stats, _)) in loss.terms(&fc, &x)?.iter().zip(&loss.targets) {
            let rel = term.value.item()? / target_mean_square(kind, stats)?;
            eprintln!("{kind:>5} {}: {rel:.3}", term.name);
        }
    }
    let out = transfer::run(vgg, &content, &[style], &cfg, |p| {
        if p.iteration % 50 == 0 {
            eprintln!(
                "scale {} iteration {}: {:.4e}",
                p.scale, p.iteration, p.eval.total
            );
        }
        ControlFlow::Continue(())
    })?;
    out.save(args[3].as_ref())?;
    eprintln!("wrote {}", args[3]);
    Ok(())
}
