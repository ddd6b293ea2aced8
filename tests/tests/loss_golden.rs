//! The w2 and sliced-w style losses and their gradients against PyTorch float64
//! (tests/data/make_loss_golden.py → loss_golden.safetensors): ≤ 1e-4 relative for values,
//! ≤ 1e-3 for gradients, in f64 and f32, on every device present. w2 goes through
//! `StyleLoss::from_styles` (the path the transfer uses, blending included); sliced-w uses the
//! fixed directions stored in the file.

use nst::engine::testing::{devices, rel_error};
use nst::engine::{DType, Device, Tensor};
use nst::loss::{sliced_w, Features, Loss, StyleLoss, StyleLossKind};
use nst_tests::{safetensor_f64, LOSS_GOLDEN};
use safetensors::SafeTensors;

fn golden(key: &str) -> (Vec<f64>, Vec<usize>) {
    let st = SafeTensors::deserialize(LOSS_GOLDEN).unwrap();
    safetensor_f64(&st, "loss_golden", key)
}

fn tensor(key: &str, dtype: DType, dev: Device) -> Tensor {
    let (v, shape) = golden(key);
    Tensor::from_vec(v, &shape)
        .unwrap()
        .cast(dtype)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

/// Checks `loss(f)` and ∂loss/∂f against `<prefix>.value` / `.grad`.
fn check(what: &str, prefix: &str, f: &Tensor, loss: impl Fn(&Tensor) -> Tensor) {
    let leaf = f.detach().requires_grad_();
    let v = loss(&leaf);
    v.backward().unwrap();
    let got_v = v.item().unwrap();
    let want_v = golden(&format!("{prefix}.value")).0[0];
    let ev = ((got_v - want_v) / want_v).abs();
    let eg = rel_error(
        &leaf.grad().unwrap().to_vec_f64().unwrap(),
        &golden(&format!("{prefix}.grad")).0,
    );
    eprintln!("{what}: value {got_v:.8e} (rel {ev:.1e}), grad rel {eg:.1e}");
    assert!(
        ev <= 1e-4,
        "{what}: value {got_v} vs {want_v} (rel {ev:.2e})"
    );
    assert!(eg <= 1e-3, "{what}: gradient relative error {eg:.2e}");
}

fn feats(t: Tensor) -> Features {
    Features::from([("relu1_1".to_string(), t)])
}

#[test]
fn w2_and_sliced_w_match_pytorch_float64() {
    for dev in devices() {
        for dtype in [DType::F64, DType::F32] {
            for case in ["full", "rank"] {
                let f = tensor(&format!("{case}.f"), dtype, dev);
                let style = tensor(&format!("{case}.style"), dtype, dev);
                let layers = [("relu1_1".to_string(), 1.0)];
                let loss = nst::engine::no_grad(|| {
                    StyleLoss::from_styles(
                        StyleLossKind::W2,
                        &layers,
                        &[feats(style.clone())],
                        &[1.0],
                    )
                })
                .unwrap();
                check(
                    &format!("w2 {case} {dtype:?} {dev}"),
                    &format!("{case}.w2"),
                    &f,
                    |x| loss.terms(&feats(x.clone()), x).unwrap().remove(0).value,
                );
                let c = f.shape()[1];
                let s2 = style.reshape(&[c, style.numel() / c]).unwrap();
                for k in [c, 5] {
                    let p = format!("{case}.sw{k}");
                    let dirs = tensor(&format!("{p}.dirs"), dtype, dev);
                    check(&format!("sliced-w {p} {dtype:?} {dev}"), &p, &f, |x| {
                        sliced_w::layer_loss(x, &s2, &dirs).unwrap()
                    });
                }
            }
            // Two styles blended 1:3 (normalised to 0.25, 0.75): moments mixed linearly.
            let f = tensor("full.f", dtype, dev);
            let styles = [
                feats(tensor("full.style", dtype, dev)),
                feats(tensor("blend.style2", dtype, dev)),
            ];
            let layers = [("relu1_1".to_string(), 1.0)];
            let loss = nst::engine::no_grad(|| {
                StyleLoss::from_styles(StyleLossKind::W2, &layers, &styles, &[1.0, 3.0])
            })
            .unwrap();
            check(&format!("w2 blend {dtype:?} {dev}"), "blend.w2", &f, |x| {
                loss.terms(&feats(x.clone()), x).unwrap().remove(0).value
            });
        }
    }
}

/// Sliced-w through `StyleLoss`: the directions are fixed within an iteration (the same value
/// twice) and fresh at the next (another value); the resampled target at N = M is the identity
/// (the style against itself is 0 whatever the directions).
#[test]
fn sliced_w_directions_change_per_iteration_only() {
    let f = tensor("full.f", DType::F64, Device::Cpu);
    let style = tensor("full.style", DType::F64, Device::Cpu);
    let layers = [("relu1_1".to_string(), 1.0)];
    let loss = StyleLoss::from_styles(
        StyleLossKind::SlicedW,
        &layers,
        &[feats(style.clone())],
        &[1.0],
    )
    .unwrap();
    let value = |x: &Tensor| {
        loss.terms(&feats(x.clone()), x).unwrap()[0]
            .value
            .item()
            .unwrap()
    };
    assert!(loss.start_iteration(1), "sliced-w reports a new function");
    let (a, b) = (value(&f), value(&f));
    assert_eq!(a, b);
    loss.start_iteration(2);
    let c = value(&f);
    assert!(c != a && c > 0.0, "{a} vs {c}");
    assert!(value(&style) < 1e-20, "the style against itself");
}

/// w2 on real VGG-19 features: the reference cases' pool4 (512 channels, 12 and 6 pixels: a
/// covariance of rank ≤ 11, the worst case of VGG at small sizes) and pool3 (256 channels, 48
/// and 35 pixels), chelsea's as the image and rocket's as the style, f32 and f64, against
/// PyTorch float64 (tests/data/make_loss_golden.py's `w2_loss` on the same stored features:
/// `w2_loss(chelsea[content_features.pool4], w2_target(*moments(rocket[...])))`).
#[test]
fn w2_on_rank_deficient_vgg_features_matches_pytorch() {
    use nst_tests::{CHELSEA_MAX, ROCKET_AVG};
    for (layer, want) in [("pool4", 207731.01844408695), ("pool3", 1471410.5755927642)] {
        for dtype in [DType::F64, DType::F32] {
            let key = format!("content_features.{layer}");
            let f = CHELSEA_MAX.f32(&key).cast(dtype).unwrap();
            let s = ROCKET_AVG.f32(&key).cast(dtype).unwrap();
            let layers = [(layer.to_string(), 1.0)];
            let styles = [Features::from([(layer.to_string(), s)])];
            let loss = StyleLoss::from_styles(StyleLossKind::W2, &layers, &styles, &[1.0]).unwrap();
            let fx = Features::from([(layer.to_string(), f.clone())]);
            let got = loss.terms(&fx, &f).unwrap()[0].value.item().unwrap();
            let rel = ((got - want) / want).abs();
            eprintln!("w2 {layer} {dtype:?}: {got} (rel {rel:.1e})");
            assert!(
                rel <= 1e-4,
                "w2 {layer} {dtype:?}: {got} vs {want} (rel {rel:.2e})"
            );
        }
    }
}
