//! The MRF (patch) style loss of Li & Wand (CVPR 2016) through the library: the same run as
//! `nst-cli transfer --style-loss mrf`, with the loss's nearest-patch search shown for one layer.
//!
//! Run (after `nst-cli weights fetch`):
//! `cargo run --release -p nst --example mrf_loss -- CONTENT STYLE OUT.png`

use nst::image::RgbImage;
use nst::loss::mrf::{default_layers, MrfLoss, MRF_STYLE_STRIDE};
use nst::loss::StyleLossKind;
use nst::transfer::{run, target_features, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use std::ops::ControlFlow;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: mrf_loss CONTENT STYLE OUT.png");
        std::process::exit(2);
    }
    let weights = VggWeights::load(&default_weights_path()?)?;
    let vgg = Arc::new(Vgg19::new(&weights, Pooling::Max)?);
    let content = RgbImage::load(args[1].as_ref(), 50_000_000)?;
    let style = RgbImage::load(args[2].as_ref(), 50_000_000)?;
    let (style_layers, style_layer_weights) = default_layers();
    let cfg = StyleTransferConfig {
        size_px: 256,
        style_loss: StyleLossKind::Mrf,
        style_layers,
        style_layer_weights,
        ..StyleTransferConfig::default()
    };

    // The loss on its own: style patches of relu3_1 and, for the content photo, which style
    // patch each of its 3×3 patches is nearest to.
    let small = |img: &RgbImage| img.resize_longest(cfg.size_px);
    let (c, s) = (small(&content), small(&style));
    let xc = vgg.preprocess(&c.data, c.width, c.height)?;
    let xs = vgg.preprocess(&s.data, s.width, s.height)?;
    let fc = target_features(&vgg, &xc, &["relu3_1"], &cfg)?;
    let fs = target_features(&vgg, &xs, &["relu3_1"], &cfg)?;
    let loss = MrfLoss::from_styles(&[("relu3_1".into(), 1.0)], &[fs], MRF_STYLE_STRIDE, false)?;
    let idx = MrfLoss::nearest(&loss.layers[0], &fc["relu3_1"])?.to_vec_f64()?;
    let mut used = idx.clone();
    used.sort_by(f64::total_cmp);
    used.dedup();
    let value = MrfLoss::layer_value(&loss.layers[0], &fc["relu3_1"])?.item()?;
    eprintln!(
        "relu3_1: {} content patches matched to {} of {} style patches; loss {value:.4e}",
        idx.len(),
        used.len(),
        loss.layers[0].filters.shape()[0]
    );

    // The whole transfer.
    let out = run(vgg, &content, &[style], &cfg, |p| {
        if p.iteration % 20 == 0 {
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
