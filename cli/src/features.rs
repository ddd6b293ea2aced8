//! `nst-cli features IMAGE --layers relu1_1,relu4_2 [--gram] [--size PX] -o OUT.safetensors`.

use crate::common::{check_output, load_vgg, parse_flag};
use anyhow::{Context, Result};
use clap::Args;
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::vgg19::Pooling;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options of `nst-cli features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// The image.
    pub image: PathBuf,
    /// Comma-separated VGG-19 layers (conv1_1 … relu5_4, pool1 … pool5).
    #[arg(long, required = true, value_delimiter = ',')]
    pub layers: Vec<String>,
    /// Store Gram matrices G = F Fᵀ/(C·H·W) (C×C) instead of the 1×C×H×W activations.
    #[arg(long)]
    pub gram: bool,
    /// Resize so the longest side is PX first [default: keep the image's size].
    #[arg(long)]
    pub size: Option<usize>,
    /// Pooling in VGG-19: max or avg.
    #[arg(long, default_value = "max")]
    pub pooling: String,
    /// Output .safetensors file (f32, one tensor per layer, keyed by layer name).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Replace an existing -o file even if nst did not write it.
    #[arg(long)]
    pub overwrite: bool,
    /// VGG-19 weights [default: the cache].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

pub fn run(args: FeaturesArgs) -> Result<()> {
    // The weights are read too: --weights, or the cache's file.
    let weights = match &args.weights {
        Some(w) => w.clone(),
        None => nst::weights::default_weights_path()?,
    };
    check_output(
        &args.output,
        &[args.image.as_path(), &weights],
        &["safetensors"],
        args.overwrite,
    )?;
    let pooling: Pooling = parse_flag("--pooling", &args.pooling)?;
    let taps: Vec<&str> = args.layers.iter().map(String::as_str).collect();
    // Layers, size and image before the weights: a bad request is refused before any work.
    nst::vgg19::min_input_side(&taps)?;
    if args.size == Some(0) {
        anyhow::bail!("--size must be ≥ 1 px");
    }
    let mut img = RgbImage::load(&args.image, args.max_pixels)?;
    if let Some(s) = args.size {
        img = img.resize_longest(s);
    }
    nst::vgg19::check_input_size("the image", img.width, img.height, &taps).map_err(|e| {
        anyhow::anyhow!(
            "{e}{}",
            if args.size.is_some() {
                " (raise --size)"
            } else {
                ""
            }
        )
    })?;
    let vgg = load_vgg(args.weights.as_deref(), pooling)?;
    let x = vgg.preprocess(&img.data, img.width, img.height)?;
    let feats = nst::engine::no_grad(|| vgg.forward(&x, &taps))?;
    let mut tensors: BTreeMap<String, (Vec<usize>, Vec<u8>)> = BTreeMap::new();
    for (name, f) in feats {
        let t = if args.gram { f.gram_matrix()? } else { f };
        let bytes: Vec<u8> = t
            .to_vec_f32()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tensors.insert(name, (t.shape().to_vec(), bytes));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, (shape, bytes))| {
            Ok((
                k.clone(),
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytes,
                )?,
            ))
        })
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let mut meta = std::collections::HashMap::new();
    // The mark of nst's files (`nst::provenance`): a later run may replace this file.
    meta.insert("format".to_string(), "nst-features".to_string());
    meta.insert("image".to_string(), args.image.display().to_string());
    meta.insert("size".to_string(), format!("{}x{}", img.width, img.height));
    meta.insert(
        "kind".to_string(),
        if args.gram { "gram" } else { "activations" }.to_string(),
    );
    meta.insert("preprocessing".to_string(), vgg.preprocessing().to_string());
    let bytes = safetensors::serialize(views, Some(meta)).context("serialising safetensors")?;
    nst::image::write_atomic(&args.output, &bytes)?;
    note!(
        "wrote {} layer(s) to {}",
        tensors.len(),
        args.output.display()
    );
    Ok(())
}
