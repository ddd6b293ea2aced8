//! Temporal consistency for video stylisation, without optical flow: which pixels of a frame
//! did not change since the previous frame, and a temporal smoothing of feed-forward outputs
//! on those pixels. The loss for optimised frames is [`crate::loss::TemporalLoss`]; the
//! flicker measure is [`crate::eval::flicker`].
//!
//! Ruder, Dosovitskiy & Brox 2016 (*Artistic style transfer for videos*, GCPR) weigh the
//! temporal terms with a per-pixel mask `c` that is 0 where the optical flow is unreliable
//! (disocclusions, motion boundaries) and 1 elsewhere. Without a flow estimate the previous
//! output is compared with the current one in place, so `c` here is 1 where the *input* pixel
//! kept its value and falls linearly to 0 as it changes by `tau` (a soft mask: no hard seam
//! where the change crosses a threshold).

use crate::error::{Error, Result};
use crate::image::RgbImage;

/// The change (0–1 units, largest over R, G, B) at which a pixel stops counting as still, by
/// default: 6/255, above H.264 noise on a still scene (±1–2 levels). Chosen on a 1 px/frame
/// pan over a photo (benches/video.sh) with `--smooth 0.8`: flicker 1.71/255 at 6/255, 1.68 at
/// 4/255, 2.41 at 2/255 (with 0.6), and higher above 12/255 (5.09 at 30/255 with 0.6), where
/// moving pixels start to lag.
pub const DEFAULT_STILL_TAU: f32 = 6.0 / 255.0;

/// The default weight of the previous output in [`smooth`] (`video --smooth`): on the pan
/// above the network's flicker of 2.73/255 becomes 1.71 at 0.8 and 0.97 at 0.95, with no
/// trailing visible in the frames at 320×240.
pub const DEFAULT_SMOOTH: f32 = 0.9;

fn same_size(a: &RgbImage, b: &RgbImage, what: &str) -> Result<()> {
    if a.size() != b.size() || a.data.len() != b.data.len() {
        return Err(Error::InvalidArgument(format!(
            "{what}: frames of {}×{} and {}×{}",
            a.width, a.height, b.width, b.height
        )));
    }
    Ok(())
}

/// Per pixel, the largest channel change `max_c |b − a|` between two frames of the same size
/// (0–1 units; W·H values, row-major). Errors: `InvalidArgument` when the sizes differ.
pub fn pixel_change(a: &RgbImage, b: &RgbImage) -> Result<Vec<f32>> {
    same_size(a, b, "pixel change")?;
    Ok(a.data
        .chunks_exact(3)
        .zip(b.data.chunks_exact(3))
        .map(|(p, q)| {
            (p[0] - q[0])
                .abs()
                .max((p[1] - q[1]).abs())
                .max((p[2] - q[2]).abs())
        })
        .collect())
}

/// The still mask `c = clamp(1 − Δ/tau, 0, 1)` per pixel, `Δ` the [`pixel_change`] from
/// `prev_in` to `cur_in` (W·H values in 0–1; `tau` > 0 in 0–1 units). Errors: sizes differ.
pub fn still_mask(prev_in: &RgbImage, cur_in: &RgbImage, tau: f32) -> Result<Vec<f32>> {
    let tau = tau.max(f32::MIN_POSITIVE);
    Ok(pixel_change(prev_in, cur_in)?
        .into_iter()
        .map(|d| (1.0 - d / tau).clamp(0.0, 1.0))
        .collect())
}

/// Temporal smoothing of a stylised frame: `out = cur_out + s·c·(prev_out − cur_out)` per
/// pixel, `c` the [`still_mask`] of the inputs and `s` = `strength` (0: no smoothing, the
/// network's frame; towards 1: still regions keep the previous output). Applied to each
/// frame with `prev_out` the previous *smoothed* frame it is an exponential moving average
/// over the frames a pixel stayed still, which removes the feed-forward network's frame-to-frame
/// texture noise there and leaves moving regions as the network drew them.
/// Errors: `InvalidArgument` when the four frames are not all the same size.
pub fn smooth(
    prev_out: &RgbImage,
    cur_out: &RgbImage,
    prev_in: &RgbImage,
    cur_in: &RgbImage,
    strength: f32,
    tau: f32,
) -> Result<RgbImage> {
    same_size(prev_out, cur_out, "smoothing")?;
    same_size(prev_in, cur_out, "smoothing")?;
    let mask = still_mask(prev_in, cur_in, tau)?;
    let mut data = cur_out.data.clone();
    for ((px, p), c) in data
        .chunks_exact_mut(3)
        .zip(prev_out.data.chunks_exact(3))
        .zip(mask)
    {
        let w = strength * c;
        for (v, q) in px.iter_mut().zip(p) {
            *v += w * (q - *v);
        }
    }
    Ok(RgbImage {
        width: cur_out.width,
        height: cur_out.height,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, f: impl Fn(usize, usize, usize) -> f32) -> RgbImage {
        let mut data = vec![];
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    data.push(f(x, y, c));
                }
            }
        }
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn the_mask_follows_the_largest_channel_change() {
        let a = img(4, 1, |_, _, _| 0.5);
        // Pixel x changes channel 1 by x·0.02.
        let b = img(
            4,
            1,
            |x, _, c| if c == 1 { 0.5 + x as f32 * 0.02 } else { 0.5 },
        );
        let m = still_mask(&a, &b, 0.04).unwrap();
        let want = [1.0, 0.5, 0.0, 0.0];
        for (got, want) in m.iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{m:?}");
        }
        assert!(still_mask(&a, &img(3, 1, |_, _, _| 0.0), 0.1).is_err());
    }

    #[test]
    fn smoothing_blends_still_pixels_only() {
        let prev_in = img(2, 1, |_, _, _| 0.2);
        // Pixel 0 still, pixel 1 changed by 0.5.
        let cur_in = img(2, 1, |x, _, _| if x == 0 { 0.2 } else { 0.7 });
        let prev_out = img(2, 1, |_, _, _| 1.0);
        let cur_out = img(2, 1, |_, _, _| 0.0);
        let s = smooth(&prev_out, &cur_out, &prev_in, &cur_in, 0.6, 0.05).unwrap();
        // Naive: still pixel 0 + 0.6·1·(1 − 0) = 0.6; moved pixel 1 keeps 0.
        assert_eq!(s.data, vec![0.6, 0.6, 0.6, 0.0, 0.0, 0.0]);
        let none = smooth(&prev_out, &cur_out, &prev_in, &cur_in, 0.0, 0.05).unwrap();
        assert_eq!(none, cur_out);
    }
}
