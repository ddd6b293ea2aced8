//! Adding a research loss term without touching the engine: a "histogram-free colour" term that
//! pulls the image's per-channel mean towards a target colour, next to the built-in content,
//! style and TV losses.
//!
//! Run (after `nst-cli weights fetch`):
//! `cargo run --release -p nst --example custom_loss -- CONTENT STYLE OUT.png`

use nst::engine::Tensor;
use nst::image::RgbImage;
use nst::loss::{Features, Loss, LossTerm};
use nst::optim::Lbfgs;
use nst::transfer::{objective_from_tensors, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use std::sync::Arc;

/// `mean_c((mean_{h,w} x_c − target_c)²)`: a function of the image only (no feature maps).
struct MeanColour {
    /// 1×3×1×1, in preprocessed units.
    target: Tensor,
    weight: f64,
}

impl Loss for MeanColour {
    fn layers(&self) -> Vec<String> {
        vec![]
    }
    fn terms(&self, _features: &Features, x: &Tensor) -> nst::Result<Vec<LossTerm>> {
        let means = x.mean_axis(3, true)?.mean_axis(2, true)?; // 1×3×1×1
        Ok(vec![LossTerm {
            name: "mean_colour".into(),
            value: means.mse_loss(&self.target)?,
            weight: self.weight,
        }])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: custom_loss CONTENT STYLE OUT.png");
        std::process::exit(2);
    }
    let weights = VggWeights::load(&default_weights_path()?)?;
    let vgg = Arc::new(Vgg19::new(&weights, Pooling::Max)?);
    let content = RgbImage::load(args[1].as_ref(), 50_000_000)?.resize_longest(256);
    let style = RgbImage::load(args[2].as_ref(), 50_000_000)?.resize_longest(256);
    let (w, h) = (content.width, content.height);
    let xc = vgg.preprocess(&content.data, w, h)?;
    let xs = vgg.preprocess(&style.data, style.width, style.height)?;
    // The built-in terms (content 5, Gram style 100 per layer, no TV), then ours on top.
    let cfg = StyleTransferConfig {
        tv_weight: 0.0,
        ..StyleTransferConfig::default()
    };
    let mut objective = objective_from_tensors(vgg.clone(), &xc, &[xs], &[1.0], &cfg)?;
    // A warm orange, in the network's preprocessed units. Means differ by ~100 (0–255 units):
    // weight 300 makes the term comparable to the others.
    let target = vgg.preprocess(&[0.9, 0.55, 0.2], 1, 1)?;
    objective.losses.push(Box::new(MeanColour {
        target,
        weight: 300.0,
    }));
    let mut x = xc.clone();
    let mut lbfgs = Lbfgs::new(10);
    for i in 1..=100 {
        let mut colour_term = 0.0;
        let step = lbfgs.step(&mut x, &mut |xs: &Tensor| {
            let e = objective.evaluate(xs)?;
            colour_term = e
                .terms
                .iter()
                .find(|(n, _)| n == "mean_colour")
                .map_or(0.0, |t| t.1);
            Ok((e.total, e.grad))
        })?;
        if i % 20 == 0 {
            eprintln!(
                "iteration {i}: loss {:.4e}, mean_colour {colour_term:.1}",
                step.loss
            );
        }
    }
    let rgb = vgg.deprocess(&x)?;
    RgbImage {
        width: w,
        height: h,
        data: rgb.into_iter().map(|v| v.clamp(0.0, 1.0)).collect(),
    }
    .save(args[3].as_ref())?;
    eprintln!("wrote {}", args[3]);
    Ok(())
}
