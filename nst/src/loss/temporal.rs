//! The short-term temporal loss of Ruder, Dosovitskiy & Brox 2016, *Artistic style transfer
//! for videos* (GCPR; arXiv:1604.08610), eq. 7: `L = (1/D) Σ_k c_k (x_k − ω_k)²`, with `x` the
//! frame being optimised, `ω` the previous frame's output (warped by the optical flow in the
//! paper; here in place, see [`crate::video`]), `c ∈ [0,1]` the per-pixel weight (0 where the
//! previous output is not to be trusted: disocclusions in the paper, pixels whose input changed
//! here) and `D = C·H·W` the number of values.

use super::{Features, Loss, LossTerm};
use crate::error::{Error, Result};
use engine::Tensor;

/// `mean(c · (x − ω)²)` over 1×3×H×W values (the paper's `1/D` normalisation), in the
/// network's preprocessed units (as the image `x` the optimiser moves; for Caffe VGG-19 that is
/// 0–255 levels), one term named `temporal`.
pub struct TemporalLoss {
    /// The previous frame's output `ω`, preprocessed as `x` is: 1×3×H×W, no grad.
    pub previous: Tensor,
    /// The weights `c`: 1×1×H×W (broadcast over the channels), values in 0–1.
    pub mask: Tensor,
    pub weight: f64,
}

impl TemporalLoss {
    /// From the previous output (preprocessed, 1×3×H×W) and a W·H mask (row-major, as
    /// [`crate::video::still_mask`] returns it), both moved to `previous`'s device.
    /// Errors: `InvalidArgument` when the mask's length is not H·W; engine errors.
    pub fn new(previous: Tensor, mask: &[f32], weight: f64) -> Result<TemporalLoss> {
        let s = previous.shape().to_vec();
        if s.len() != 4 || s[0] != 1 || s[1] != 3 || mask.len() != s[2] * s[3] {
            return Err(Error::InvalidArgument(format!(
                "temporal loss: previous frame {s:?} (want 1×3×H×W) and a mask of {} values",
                mask.len()
            )));
        }
        let mask = Tensor::from_vec(mask.to_vec(), &[1, 1, s[2], s[3]])?
            .cast(previous.dtype())?
            .to_device(previous.device())?;
        Ok(TemporalLoss {
            previous: previous.detach(),
            mask,
            weight,
        })
    }
}

impl Loss for TemporalLoss {
    fn layers(&self) -> Vec<String> {
        vec![]
    }
    fn terms(&self, _features: &Features, x: &Tensor) -> Result<Vec<LossTerm>> {
        if x.shape() != self.previous.shape() {
            return Err(Error::InvalidArgument(format!(
                "temporal loss: image {:?} vs previous frame {:?}",
                x.shape(),
                self.previous.shape()
            )));
        }
        let d = x.sub(&self.previous)?;
        Ok(vec![LossTerm {
            name: "temporal".into(),
            value: d.square()?.mul(&self.mask)?.mean()?,
            weight: self.weight,
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::DType;

    #[test]
    fn value_and_gradient_match_a_naive_computation() {
        let (h, w) = (5, 7);
        let n = 3 * h * w;
        let x: Vec<f64> = (0..n)
            .map(|i| ((i * 37 % 23) as f64 - 11.0) * 3.1)
            .collect();
        let prev: Vec<f64> = (0..n).map(|i| ((i * 13 % 17) as f64 - 8.0) * 2.3).collect();
        let mask: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 5) as f32 / 4.0).collect();
        let loss = TemporalLoss::new(
            Tensor::from_vec(prev.clone(), &[1, 3, h, w]).unwrap(),
            &mask,
            2.0,
        )
        .unwrap();
        let xt = Tensor::from_vec(x.clone(), &[1, 3, h, w])
            .unwrap()
            .requires_grad_();
        let terms = loss.terms(&Features::new(), &xt).unwrap();
        assert_eq!(terms.len(), 1);
        assert_eq!((terms[0].name.as_str(), terms[0].weight), ("temporal", 2.0));
        terms[0].value.backward().unwrap();
        let grad = xt.grad().unwrap().to_vec_f64().unwrap();
        // Naive: L = Σ_k c_k (x_k − ω_k)² / (3HW), ∂L/∂x_k = 2 c_k (x_k − ω_k) / (3HW).
        let (mut want, mut want_grad) = (0.0f64, vec![0.0; n]);
        for c in 0..3 {
            for (p, &m) in mask.iter().enumerate() {
                let k = c * h * w + p;
                let d = x[k] - prev[k];
                want += m as f64 * d * d / n as f64;
                want_grad[k] = 2.0 * m as f64 * d / n as f64;
            }
        }
        let got = terms[0].value.item().unwrap();
        assert!((got - want).abs() <= 1e-12 * want.abs(), "{got} vs {want}");
        assert!(want > 1.0, "the test means something: {want}");
        engine::testing::assert_close(&grad, &want_grad, 1e-12, "temporal gradient");
        // And f32, as the optimiser runs it.
        let x32 = xt.cast(DType::F32).unwrap();
        let l32 = TemporalLoss::new(
            Tensor::from_vec(prev, &[1, 3, h, w])
                .unwrap()
                .cast(DType::F32)
                .unwrap(),
            &mask,
            1.0,
        )
        .unwrap();
        let v32 = l32.terms(&Features::new(), &x32).unwrap()[0]
            .value
            .item()
            .unwrap();
        assert!((v32 - want).abs() <= 1e-5 * want, "{v32} vs {want}");
        // A mask of the wrong length, or a frame of another size, is refused.
        assert!(TemporalLoss::new(
            Tensor::zeros(&[1, 3, h, w], DType::F64).unwrap(),
            &mask[1..],
            1.0
        )
        .is_err());
        let other = Tensor::zeros(&[1, 3, h, w + 1], DType::F64).unwrap();
        assert!(loss.terms(&Features::new(), &other).is_err());
    }
}
