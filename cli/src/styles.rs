//! `nst-cli styles PHOTO -o sheet.png`: a contact sheet of the 26 built-in styles on one photo,
//! each tile labelled with its number (the number `stylize --style N` takes).

use crate::common::{check_device, check_output};
use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use nst::fast::{Multistyle26, Multistyle26Weights, N_STYLES};
use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use std::path::PathBuf;

/// Options of `nst-cli styles`.
#[derive(Debug, Args)]
pub struct StylesArgs {
    /// The photo.
    pub photo: PathBuf,
    /// The contact sheet (.png or .jpg).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Longest side of each tile, in pixels.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Tiles per row (the photo itself comes first, then styles 0–25).
    #[arg(long, default_value_t = 7)]
    pub columns: usize,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Replace an existing -o file even if nst did not write it.
    #[arg(long)]
    pub overwrite: bool,
}

/// 5×7 bitmaps of the digits 0–9, one row per byte (bit 4 = leftmost pixel).
const DIGITS: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
];

/// Writes `label` (digits) at (x, y) of `img` in white on a black box, each font pixel
/// `scale`×`scale` image pixels.
fn draw_label(img: &mut RgbImage, x: usize, y: usize, label: &str, scale: usize) {
    let glyphs: Vec<&[u8; 7]> = label
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| &DIGITS[(b - b'0') as usize])
        .collect();
    let (w, h) = ((glyphs.len() * 6 + 1) * scale, 9 * scale);
    let mut set = |px: usize, py: usize, v: f32| {
        if px < img.width && py < img.height {
            let i = (py * img.width + px) * 3;
            img.data[i..i + 3].fill(v);
        }
    };
    for dy in 0..h {
        for dx in 0..w {
            set(x + dx, y + dy, 0.0);
        }
    }
    for (g, rows) in glyphs.iter().enumerate() {
        for (r, bits) in rows.iter().enumerate() {
            for c in 0..5 {
                if bits & (0x10 >> c) != 0 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            let px = x + (1 + g * 6 + c) * scale + sx;
                            set(px, y + (1 + r) * scale + sy, 1.0);
                        }
                    }
                }
            }
        }
    }
}

/// Copies `tile` into `sheet` with its top-left corner at (x, y).
fn paste(sheet: &mut RgbImage, tile: &RgbImage, x: usize, y: usize) {
    for row in 0..tile.height {
        let src = &tile.data[row * tile.width * 3..(row + 1) * tile.width * 3];
        let at = ((y + row) * sheet.width + x) * 3;
        sheet.data[at..at + tile.width * 3].copy_from_slice(src);
    }
}

/// Runs the command.
pub fn run(args: StylesArgs) -> Result<()> {
    let device = check_device(&args.device)?;
    if !(32..=2048).contains(&args.tile) {
        bail!("--tile {}: must be 32–2048 px", args.tile);
    }
    if !(1..=N_STYLES + 1).contains(&args.columns) {
        bail!("--columns {}: must be 1–{}", args.columns, N_STYLES + 1);
    }
    check_output(
        &args.output,
        &[&args.photo],
        &["png", "jpg", "jpeg"],
        args.overwrite,
    )?;
    let photo = RgbImage::load(&args.photo, DEFAULT_MAX_PIXELS)?.resize_longest(args.tile);
    if photo.width.min(photo.height) < nst::fast::net::MIN_SIDE {
        bail!(
            "{}: at --tile {} the photo is {}×{} px; the networks need both sides ≥ {} px (raise --tile)",
            args.photo.display(),
            args.tile,
            photo.width,
            photo.height,
            nst::fast::net::MIN_SIDE
        );
    }
    let w = Multistyle26Weights::load_cached().map_err(|e| {
        anyhow::anyhow!("{e} (run `nst-cli weights fetch` to get the feed-forward networks)")
    })?;
    let net = Multistyle26::new(&w, device)?;
    let (tw, th, gap) = (photo.width, photo.height, 4);
    let rows = (N_STYLES + 1).div_ceil(args.columns);
    let mut sheet = RgbImage {
        width: args.columns * (tw + gap) + gap,
        height: rows * (th + gap) + gap,
        data: vec![1.0; 3 * (args.columns * (tw + gap) + gap) * (rows * (th + gap) + gap)],
    };
    let scale = (args.tile / 128).max(1);
    let bar = ProgressBar::new(N_STYLES as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:30} {pos}/{len} styles")
            .expect("static template"),
    );
    for k in 0..=N_STYLES {
        let tile = if k == 0 {
            photo.clone()
        } else {
            let mut s = vec![0.0f32; N_STYLES];
            s[k - 1] = 1.0;
            let mut t = net.stylize(&photo, &s)?;
            draw_label(&mut t, 0, 0, &(k - 1).to_string(), scale);
            bar.inc(1);
            t
        };
        let (col, row) = (k % args.columns, k / args.columns);
        paste(
            &mut sheet,
            &tile,
            gap + col * (tw + gap),
            gap + row * (th + gap),
        );
    }
    bar.finish_and_clear();
    sheet.save(&args.output)?;
    note!(
        "wrote {} ({}×{}: the photo, then styles 0–{})",
        args.output.display(),
        sheet.width,
        sheet.height,
        N_STYLES - 1
    );
    Ok(())
}
