//! The three feed-forward networks on our engine against onnxruntime's outputs on the float
//! ONNX graphs (`tests/data/fast_golden.safetensors`, made by `tests/data/make_fast_golden.py`):
//! f32 within 1e-4 relative L2 and 1e-4 of full scale per pixel; on every device present.

use engine::testing::devices;
use nst::engine;
use nst::fast::net::image_to_tensor;
use nst::fast::{
    FastNet, Multistyle26, Multistyle26Weights, PredictWeights, StylePredictor, StyleTransformer,
    TransformWeights,
};
use nst::image::RgbImage;
use nst_tests::fast_weights_or_skip;
use safetensors::SafeTensors;

const GOLDEN: &[u8] = include_bytes!("../data/fast_golden.safetensors");

fn golden() -> SafeTensors<'static> {
    SafeTensors::deserialize(GOLDEN).expect("fast_golden.safetensors")
}

fn f32s(key: &str) -> Vec<f32> {
    let g = golden();
    let t = g.tensor(key).unwrap_or_else(|_| panic!("no key {key}"));
    assert_eq!(t.dtype(), safetensors::Dtype::F32, "{key}");
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn image(key: &str) -> RgbImage {
    let g = golden();
    let t = g.tensor(key).unwrap_or_else(|_| panic!("no key {key}"));
    let (h, w) = (t.shape()[0], t.shape()[1]);
    RgbImage::from_u8(w, h, t.data()).unwrap()
}

/// Fails unless `ours` is within 1e-4 of `want` in relative L2 and in max abs difference.
#[track_caller]
fn assert_matches(what: &str, ours: &[f32], want: &[f32]) {
    assert_eq!(ours.len(), want.len(), "{what}: length");
    let (mut diff2, mut ref2, mut max) = (0.0f64, 0.0f64, 0.0f64);
    for (&a, &b) in ours.iter().zip(want) {
        let d = (a - b) as f64;
        diff2 += d * d;
        ref2 += (b as f64) * (b as f64);
        max = max.max(d.abs());
    }
    let rel = (diff2 / ref2).sqrt();
    eprintln!("{what}: relative L2 {rel:.2e}, max abs {max:.2e}");
    assert!(
        rel <= 1e-4 && max <= 1e-4,
        "{what}: relative L2 {rel:.3e}, max abs {max:.3e}"
    );
}

#[test]
fn multistyle26_matches_onnxruntime() {
    let Some(w) = fast_weights_or_skip(FastNet::Multistyle26, Multistyle26Weights::load) else {
        return;
    };
    let content = image("multistyle26.content_rgb_u8");
    for dev in devices() {
        let net = Multistyle26::new(&w, dev).unwrap();
        for case in ["style19", "blend"] {
            let s = f32s(&format!("multistyle26.{case}.style_weights"));
            let out = net
                .forward(&image_to_tensor(&content).unwrap(), &s)
                .unwrap();
            assert_eq!(out.shape(), &[1, 3, 48, 64]);
            let want = f32s(&format!("multistyle26.{case}.output"));
            assert_matches(
                &format!("multistyle26 {case} on {dev}"),
                &out.to_vec_f32().unwrap(),
                &want,
            );
        }
    }
}

#[test]
fn predictor_and_transformer_match_onnxruntime() {
    let Some(pw) = fast_weights_or_skip(FastNet::Predict, PredictWeights::load) else {
        return;
    };
    let Some(tw) = fast_weights_or_skip(FastNet::Transform, TransformWeights::load) else {
        return;
    };
    let style = image("predict.style_rgb_u8");
    let content = image("transform.content_rgb_u8");
    let want_v = f32s("predict.style_vector");
    for dev in devices() {
        let predict = StylePredictor::new(&pw, dev).unwrap();
        let v = predict.forward(&image_to_tensor(&style).unwrap()).unwrap();
        assert_eq!(v.shape(), &[1, 100]);
        let v = v.to_vec_f32().unwrap();
        assert_matches(&format!("style vector on {dev}"), &v, &want_v);
        let transform = StyleTransformer::new(&tw, dev).unwrap();
        // The golden style vector, so each network is checked on its own.
        let out = transform
            .forward(&image_to_tensor(&content).unwrap(), &want_v)
            .unwrap();
        assert_matches(
            &format!("transformer on {dev}"),
            &out.to_vec_f32().unwrap(),
            &f32s("transform.output"),
        );
    }
}

#[test]
fn stylize_pads_odd_sizes_and_refuses_tiny_pictures() {
    let Some(w) = fast_weights_or_skip(FastNet::Multistyle26, Multistyle26Weights::load) else {
        return;
    };
    let net = Multistyle26::new(&w, engine::Device::Cpu).unwrap();
    let s = f32s("multistyle26.style19.style_weights");
    // 64×48 cut to 62×45: padded to 64×48 by reflection, run, cropped back.
    let content = image("multistyle26.content_rgb_u8");
    let odd = content.crop(0, 0, 62, 45).unwrap();
    let out = net.stylize(&odd, &s).unwrap();
    assert_eq!((out.width, out.height), (62, 45));
    assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
    // Away from the padded border the picture matches the unpadded run (the receptive field
    // reaches the border, so only a loose check: mean abs difference in the top-left quarter).
    let full = net.stylize(&content, &s).unwrap();
    let mut diff = 0.0f64;
    let mut n = 0;
    for y in 0..20 {
        for x in 0..28 {
            for c in 0..3 {
                diff +=
                    (out.data[(y * 62 + x) * 3 + c] - full.data[(y * 64 + x) * 3 + c]).abs() as f64;
                n += 1;
            }
        }
    }
    assert!(
        diff / (n as f64) < 0.05,
        "mean abs difference {}",
        diff / n as f64
    );
    let tiny = content.crop(0, 0, 10, 10).unwrap();
    let err = net.stylize(&tiny, &s).unwrap_err().to_string();
    assert!(err.contains("10×10") && err.contains("≥ 32"), "{err}");
    let err = net
        .forward(&image_to_tensor(&content).unwrap(), &[1.0; 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("26 style weights"), "{err}");
}
