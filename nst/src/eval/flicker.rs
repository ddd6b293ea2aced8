//! Flicker of a stylised video: how much the output changes between consecutive frames where
//! the input did not.
//!
//! `flicker = Σ_t Σ_{p ∈ S_t} Σ_c |O_t(p,c) − O_{t−1}(p,c)| / (3·Σ_t |S_t|)`, with
//! `S_t = {p : max_c |I_t(p,c) − I_{t−1}(p,c)| < 2/255}` the pixels whose input stayed still
//! between frames t−1 and t, and values in 0–1 units (×255 for 8-bit levels). A stable picture
//! of a still scene scores 0; lower is better. It is the quantity the temporal losses of Ruder,
//! Dosovitskiy & Brox 2016 (*Artistic style transfer for videos*) penalise, measured without
//! optical flow (frames compared in place), so pixels that moved are left out rather than
//! warped.

use crate::error::Result;
use crate::image::RgbImage;
use crate::video::pixel_change;

/// The input change (0–1 units, largest channel) below which a pixel counts as still: 2/255.
pub const STILL_THRESHOLD: f32 = 2.0 / 255.0;

/// Accumulates the flicker of a video one (input, output) frame pair at a time.
#[derive(Clone, Debug, Default)]
pub struct FlickerMeter {
    prev: Option<(RgbImage, RgbImage)>,
    sum: f64,
    /// Still pixels seen (each counted once per frame pair).
    still_pixels: u64,
    /// Pixels compared (all pixels of every frame after the first).
    pixels: u64,
}

impl FlickerMeter {
    pub fn new() -> FlickerMeter {
        FlickerMeter::default()
    }

    /// Adds the next frame: its `input` and the stylised `output`, of the same size as each
    /// other and as the previous frames. Errors: `InvalidArgument` on a size mismatch.
    pub fn push(&mut self, input: RgbImage, output: RgbImage) -> Result<()> {
        if let Some((pi, po)) = &self.prev {
            let changes = pixel_change(pi, &input)?;
            pixel_change(po, &output)?; // the same size check for the outputs
            for ((d, a), b) in changes
                .iter()
                .zip(po.data.chunks_exact(3))
                .zip(output.data.chunks_exact(3))
            {
                if *d < STILL_THRESHOLD {
                    self.still_pixels += 1;
                    self.sum += a
                        .iter()
                        .zip(b)
                        .map(|(x, y)| (x - y).abs() as f64)
                        .sum::<f64>();
                }
            }
            self.pixels += changes.len() as u64;
        }
        self.prev = Some((input, output));
        Ok(())
    }

    /// The flicker so far (0–1 units), or `None` before two frames or when no pixel was still.
    pub fn value(&self) -> Option<f64> {
        (self.still_pixels > 0).then(|| self.sum / (3.0 * self.still_pixels as f64))
    }

    /// The fraction of compared pixels that were still (0–1), or `None` before two frames.
    pub fn still_fraction(&self) -> Option<f64> {
        (self.pixels > 0).then(|| self.still_pixels as f64 / self.pixels as f64)
    }
}

/// The flicker of a whole video given as (input, output) frame pairs ([`FlickerMeter`]).
/// Errors: frames of different sizes.
pub fn flicker(frames: impl IntoIterator<Item = (RgbImage, RgbImage)>) -> Result<Option<f64>> {
    let mut m = FlickerMeter::new();
    for (i, o) in frames {
        m.push(i, o)?;
    }
    Ok(m.value())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: usize, h: usize, f: impl Fn(usize, usize, usize) -> f32) -> RgbImage {
        let data = (0..w * h * 3)
            .map(|i| f((i / 3) % w, i / 3 / w, i % 3))
            .collect();
        RgbImage {
            width: w,
            height: h,
            data,
        }
    }

    /// Naive: loop over frames, pixels and channels, with the definition's sums.
    fn naive(inputs: &[RgbImage], outputs: &[RgbImage]) -> f64 {
        let (mut num, mut den) = (0.0f64, 0.0f64);
        for t in 1..inputs.len() {
            let (w, h) = inputs[t].size();
            for y in 0..h {
                for x in 0..w {
                    let at = |img: &RgbImage, c: usize| img.data[3 * (y * w + x) + c];
                    let still = (0..3)
                        .all(|c| (at(&inputs[t], c) - at(&inputs[t - 1], c)).abs() < 2.0 / 255.0);
                    if still {
                        for c in 0..3 {
                            num += (at(&outputs[t], c) - at(&outputs[t - 1], c)).abs() as f64;
                        }
                        den += 3.0;
                    }
                }
            }
        }
        num / den
    }

    #[test]
    fn flicker_counts_only_pixels_whose_input_stayed_still() {
        // A bar moving right by 2 px a frame over a still background, with input noise of
        // ±1/255 (still) everywhere; outputs that shimmer by a known amount.
        let (w, h, n) = (23, 11, 6);
        let inputs: Vec<RgbImage> = (0..n)
            .map(|t| {
                frame(w, h, |x, y, c| {
                    let bar = (x + 20 - 2 * t) % 20 < 4;
                    let noise = (((x * 7 + y * 3 + t * 5 + c) % 3) as f32 - 1.0) / 255.0;
                    if bar {
                        0.9
                    } else {
                        0.3 + noise
                    }
                })
            })
            .collect();
        let outputs: Vec<RgbImage> = (0..n)
            .map(|t| {
                frame(w, h, |x, y, c| {
                    0.5 + 0.05 * (((x + 2 * y + c + 3 * t) % 5) as f32 - 2.0)
                })
            })
            .collect();
        let got = flicker(inputs.iter().cloned().zip(outputs.iter().cloned()))
            .unwrap()
            .unwrap();
        let want = naive(&inputs, &outputs);
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        assert!(want > 0.01, "the test means something: {want}");
        // Identical outputs do not flicker; a single frame has no measure.
        let same = flicker(
            inputs
                .iter()
                .cloned()
                .zip(std::iter::repeat(outputs[0].clone())),
        );
        assert_eq!(same.unwrap(), Some(0.0));
        assert_eq!(
            flicker([(inputs[0].clone(), outputs[0].clone())]).unwrap(),
            None
        );
        // The moving bar's pixels are excluded: some pixels were not still.
        let mut m = FlickerMeter::new();
        for (i, o) in inputs.into_iter().zip(outputs) {
            m.push(i, o).unwrap();
        }
        let f = m.still_fraction().unwrap();
        assert!(f > 0.5 && f < 1.0, "{f}");
        assert!(m
            .push(frame(3, 3, |_, _, _| 0.0), frame(3, 3, |_, _, _| 0.0))
            .is_err());
    }
}
