//! Guided transfer (Gatys et al., CVPR 2017): two paintings, each in its own region of the
//! photo. The regions here are made in code: the upper half of the picture in the first style,
//! the lower half in the second (soft edge), as `nst-cli transfer C S1 S2 --content-mask
//! TOP.png --content-mask BOTTOM.png` would do with mask files.
//!
//! Run (after `nst-cli weights fetch`):
//! `cargo run --release -p nst --example guided -- CONTENT STYLE_TOP STYLE_BOTTOM OUT.png`

use nst::image::RgbImage;
use nst::transfer::{run, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst::weights::{default_weights_path, VggWeights};
use std::ops::ControlFlow;
use std::sync::Arc;

/// A `w × h` mask, white above the middle row and black below, with a 10%-high ramp between;
/// `flip` swaps black and white.
fn half_mask(w: usize, h: usize, flip: bool) -> RgbImage {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let t = ((y as f32 / h as f32 - 0.45) / 0.1).clamp(0.0, 1.0); // 0 top, 1 bottom
        let v = if flip { t } else { 1.0 - t };
        data.extend(std::iter::repeat_n(v, 3 * w));
    }
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: guided CONTENT STYLE_TOP STYLE_BOTTOM OUT.png");
        std::process::exit(2);
    }
    let weights = VggWeights::load(&default_weights_path()?)?;
    let vgg = Arc::new(Vgg19::new(&weights, Pooling::Max)?);
    let load = |p: &str| RgbImage::load(p.as_ref(), 50_000_000);
    let content = load(&args[1])?;
    let styles = [load(&args[2])?, load(&args[3])?];
    let (w, h) = content.size();
    let cfg = StyleTransferConfig {
        size_px: 256,
        // One mask per style image, any size with the content's aspect ratio.
        content_masks: vec![half_mask(w, h, false), half_mask(w, h, true)],
        ..StyleTransferConfig::default()
    };
    let out = run(vgg, &content, &styles, &cfg, |p| {
        if p.iteration % 20 == 0 {
            let style: f64 = p
                .eval
                .terms
                .iter()
                .filter(|t| t.0.starts_with("style"))
                .map(|t| t.1)
                .sum();
            eprintln!(
                "scale {} iteration {}: total {:.4e}, style terms {style:.4e}",
                p.scale, p.iteration, p.eval.total
            );
        }
        ControlFlow::Continue(())
    })?;
    out.save(args[4].as_ref())?;
    eprintln!("wrote {}", args[4]);
    Ok(())
}
