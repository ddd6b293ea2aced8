//! The Wasserstein-2 style loss: the squared W2 distance between Gaussians fitted to the image's
//! and the style's features (mean and covariance over the pixels), per layer, as in Katherine
//! Crowson's style-transfer-pytorch (`StyleLossW2`, github.com/crowsonkb/style-transfer-pytorch)
//! and Kolkin, Salavon & Shakhnarovich, *Style Transfer by Relaxed Optimal Transport and
//! Self-Similarity* (CVPR 2019) for the use of W2 in style transfer. The closed form between
//! N(μ_x, Σ_x) and N(μ_s, Σ_s) is Dowson & Landau (1982):
//!
//! `W2² = ‖μ_x − μ_s‖² + tr(Σ_x + Σ_s − 2 (Σ_s^{1/2} Σ_x Σ_s^{1/2})^{1/2})`.
//!
//! The term nst reports is `W2² / C` (C channels: `mean((μ_x − μ_s)²)` plus the trace over C),
//! as crowsonkb's, so its scale is that of a mean square of the features. Both covariances get
//! `eps·I` added (as crowsonkb's `eps`) so that the square root's gradient stays finite on the
//! rank-deficient covariances VGG gives (512 channels, few pixels at small sizes); here
//! `eps = EPS_REL · tr(Σ_s)/C` (scale-free). The matrix square roots are
//! [`engine::Tensor::sqrtm`] (an eigendecomposition in f64). The statistics and the loss are
//! computed in f64 whatever the features' dtype (the gradient is cast back): the trace term
//! is a difference of large traces, and in f32 it was 2.9e-4 off PyTorch float64 on VGG's
//! pool3 features (6e-5 on pool4), against 2e-11 in f64.

use crate::error::{Error, Result};
use engine::{DType, Tensor};

/// `eps` relative to the style covariance's mean variance `tr(Σ_s)/C`.
pub const EPS_REL: f64 = 1e-5;

/// `[μ (C), E[f fᵀ] (C×C)]` (f64) of a 1×C×H×W feature map over its H·W pixels: the mean and the
/// second raw moment, which (unlike the covariance) blend linearly across style images
/// (crowsonkb's `get_target`). Errors: not 1×C×H×W, no pixels, engine errors.
pub fn moments(f: &Tensor) -> Result<Vec<Tensor>> {
    let m = as_matrix(f)?.cast(DType::F64)?;
    let n = m.shape()[1] as f64;
    let mean = m.mean_axis(1, false)?;
    let srm = m.matmul(&m.transpose(0, 1)?)?.mul_scalar(1.0 / n)?;
    Ok(vec![mean, srm])
}

/// The style target from blended [`moments`] `[μ, E[f fᵀ]]`: `[μ (C), Σ_s + eps·I (C×C),
/// (Σ_s + eps·I)^{1/2} (C×C), eps ([1])]` in f64, computed once per style layer.
pub fn target(moments: &[Tensor]) -> Result<Vec<Tensor>> {
    let [mean, srm] = moments else {
        return Err(Error::InvalidArgument(format!(
            "w2 target: 2 moments expected, got {}",
            moments.len()
        )));
    };
    let c = mean.shape()[0];
    let cov = srm.sub(&outer(mean)?)?;
    let eps = EPS_REL * trace(&cov)?.item()?.max(0.0) / c as f64 + 1e-12;
    let cov = cov.add(&eye(c, eps, mean)?)?;
    let sqrt = cov.sqrtm()?;
    let eps_t = Tensor::from_vec(vec![eps], &[1])?;
    Ok(vec![mean.clone(), cov, sqrt, eps_t])
}

/// `W2²/C` between the Gaussian of `f` (1×C×H×W, differentiable) and the style `target` of
/// [`target`]: `mean((μ_x − μ_s)²) + tr(Σ_x + Σ_s − 2 (Σ_s^{1/2} Σ_x Σ_s^{1/2})^{1/2}) / C`
/// with `Σ_x` the (biased, over H·W) covariance of `f` plus `eps·I`; shape `[]`.
/// Errors: shapes that disagree with the target's, engine errors.
pub fn layer_loss(f: &Tensor, target: &[Tensor]) -> Result<Tensor> {
    let [mean_s, cov_s, sqrt_s, eps] = target else {
        return Err(Error::InvalidArgument(
            "w2 loss: a target of 4 tensors expected".into(),
        ));
    };
    let m = as_matrix(f)?.cast(DType::F64)?;
    let (c, n) = (m.shape()[0], m.shape()[1]);
    if cov_s.shape() != [c, c] {
        return Err(Error::InvalidArgument(format!(
            "w2 loss: {c} channels, target {:?}",
            cov_s.shape()
        )));
    }
    let mean = m.mean_axis(1, true)?;
    let centred = m.sub(&mean)?;
    let cov = centred
        .matmul(&centred.transpose(0, 1)?)?
        .mul_scalar(1.0 / n as f64)?
        .add(&eye(c, eps.item()?, &m)?)?;
    let mean_term = mean.reshape(&[c])?.mse_loss(mean_s)?;
    let cross = sqrt_s.matmul(&cov)?.matmul(sqrt_s)?.sqrtm()?;
    let tr = trace(&cov)?
        .add(&trace(cov_s)?)?
        .sub(&trace(&cross)?.mul_scalar(2.0)?)?;
    Ok(mean_term
        .add(&tr.mul_scalar(1.0 / c as f64)?)?
        .cast(f.dtype())?)
}

/// The scale of a target: `mean(μ²) + tr(Σ)/C`, the mean square of the style features (what
/// relative loss weights divide by).
pub fn target_mean_square(target: &[Tensor]) -> Result<f64> {
    let c = target[0].numel() as f64;
    let mu = target[0].to_vec_f64()?;
    Ok(mu.iter().map(|v| v * v).sum::<f64>() / c + trace(&target[1])?.item()? / c)
}

fn as_matrix(f: &Tensor) -> Result<Tensor> {
    let s = f.shape();
    if s.len() != 4 || s[0] != 1 || s[1] == 0 || s[2] * s[3] == 0 {
        return Err(Error::InvalidArgument(format!(
            "w2 statistics need 1×C×H×W features with pixels, got {s:?}"
        )));
    }
    Ok(f.reshape(&[s[1], s[2] * s[3]])?)
}

/// `v vᵀ` of a vector [C]: C×C.
fn outer(v: &Tensor) -> Result<Tensor> {
    let c = v.shape()[0];
    Ok(v.reshape(&[c, 1])?.matmul(&v.reshape(&[1, c])?)?)
}

/// The trace of an n×n matrix, shape `[]` (differentiable).
fn trace(a: &Tensor) -> Result<Tensor> {
    let n = a.shape()[0];
    Ok(a.mul(&eye(n, 1.0, a)?)?.sum()?)
}

/// `s·I` (n×n) in `like`'s dtype and device.
fn eye(n: usize, s: f64, like: &Tensor) -> Result<Tensor> {
    let v: Vec<f64> = (0..n * n)
        .map(|i| if i % (n + 1) == 0 { s } else { 0.0 })
        .collect();
    Ok(Tensor::from_vec(v, &[n, n])?
        .cast(like.dtype())?
        .to_device(like.device())?)
}
