//! Parity with the PyTorch float64 reference (../shared/reference/README.md): VGG-19 features,
//! Gram matrices, every loss term, the input gradient and three Adam steps.
//! Tolerances (relative L2 error): features, Grams, losses ≤ 1e-4; gradient, Adam ≤ 1e-3.

use engine::testing::assert_close;
use nst::vgg19::{layer_names, Pooling, Vgg19};
use nst_tests::reference_f32 as tensor;
use nst_tests::reference_objective as objective;
use nst_tests::{reference_bytes, reference_tensor, weights_or_skip};
use std::sync::Arc;

const STYLE_LAYERS: [&str; 5] = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"];

#[test]
fn vgg19_features_match_at_every_relu_and_pool() {
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Vgg19::new(&w, Pooling::Max).unwrap();
    let names: Vec<String> = layer_names()
        .into_iter()
        .filter(|n| !n.starts_with("conv"))
        .collect();
    let taps: Vec<&str> = names.iter().map(String::as_str).collect();
    let feats = vgg.forward(&tensor(&st, "content_input"), &taps).unwrap();
    assert_eq!(feats.len(), 21);
    for name in &names {
        let (want, shape) = reference_tensor(&st, &format!("content_features.{name}"));
        assert_eq!(feats[name].shape(), &shape[..], "{name} shape");
        assert_close(&feats[name].to_vec_f64().unwrap(), &want, 1e-4, name);
    }
}

#[test]
fn preprocessing_from_u8_pixels_matches_the_reference_input() {
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Vgg19::new(&w, Pooling::Max).unwrap();
    let (px, shape) = reference_tensor(&st, "content_rgb_u8");
    let rgb: Vec<f32> = px.iter().map(|&v| v as f32 / 255.0).collect();
    let x = vgg.preprocess(&rgb, shape[1], shape[0]).unwrap();
    let (want, _) = reference_tensor(&st, "content_input");
    assert_close(&x.to_vec_f64().unwrap(), &want, 1e-6, "content_input");
    // and back
    let back = vgg.deprocess(&x).unwrap();
    assert_close(
        &back.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        &rgb.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        1e-6,
        "deprocess",
    );
}

#[test]
fn style_grams_losses_and_gradient_match() {
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Arc::new(Vgg19::new(&w, Pooling::Max).unwrap());
    let sf = vgg
        .forward(&tensor(&st, "style_input"), &STYLE_LAYERS)
        .unwrap();
    for l in STYLE_LAYERS {
        let (want, _) = reference_tensor(&st, &format!("style_gram.{l}"));
        assert_close(
            &sf[l].gram_matrix().unwrap().to_vec_f64().unwrap(),
            &want,
            1e-4,
            &format!("gram {l}"),
        );
    }
    let obj = objective(vgg, &st);
    let eval = obj.evaluate(&tensor(&st, "x")).unwrap();
    for (name, value) in &eval.terms {
        let (want, _) = reference_tensor(&st, &format!("loss.{name}"));
        assert_close(&[*value], &want, 1e-4, name);
    }
    assert_eq!(eval.terms.len(), 7);
    let (total, _) = reference_tensor(&st, "loss.total");
    assert_close(&[eval.total], &total, 1e-4, "total");
    let (grad, _) = reference_tensor(&st, "grad_total_wrt_x");
    assert_close(
        &eval.grad.to_vec_f64().unwrap(),
        &grad,
        1e-3,
        "grad_total_wrt_x",
    );
}

#[test]
fn three_adam_steps_match() {
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Arc::new(Vgg19::new(&w, Pooling::Max).unwrap());
    let obj = objective(vgg, &st);
    let x0 = tensor(&st, "x");
    let mut x = x0.clone();
    let mut adam = nst::optim::Adam::new(1.0);
    for _ in 0..3 {
        let e = obj.evaluate(&x).unwrap();
        adam.step(&mut x, &e.grad).unwrap();
    }
    let x = x.to_vec::<f32>().unwrap();
    let (want, _) = reference_tensor(&st, "adam_lr1_x_after_3_steps");
    assert_close(
        &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        &want,
        1e-3,
        "adam_lr1_x_after_3_steps",
    );
    // x is ~100 in Caffe units while 3 steps move it by ~3: compare the displacement too.
    let x0v = x0.to_vec_f64().unwrap();
    let moved: Vec<f64> = x.iter().zip(&x0v).map(|(&a, b)| a as f64 - b).collect();
    let want_moved: Vec<f64> = want.iter().zip(&x0v).map(|(a, b)| a - b).collect();
    assert_close(&moved, &want_moved, 1e-3, "Adam displacement after 3 steps");
}

#[test]
fn every_conv_algorithm_meets_the_feature_and_gradient_tolerances() {
    // The default is Winograd F(4,3); im2col and F(2,3) must meet the same tolerances. (The
    // setting is process-wide; other tests in this binary stay within tolerance under any of them.)
    let Some(w) = weights_or_skip() else { return };
    let bytes = reference_bytes();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let vgg = Arc::new(Vgg19::new(&w, Pooling::Max).unwrap());
    for algo in [
        engine::ConvAlgorithm::Im2col,
        engine::ConvAlgorithm::WinogradF2,
        engine::ConvAlgorithm::WinogradF4,
    ] {
        engine::set_conv_algorithm(algo);
        let feats = vgg
            .forward(
                &tensor(&st, "content_input"),
                &["relu4_2", "relu5_1", "pool5"],
            )
            .unwrap();
        for (name, f) in &feats {
            let (want, _) = reference_tensor(&st, &format!("content_features.{name}"));
            assert_close(
                &f.to_vec_f64().unwrap(),
                &want,
                1e-4,
                &format!("{algo:?} {name}"),
            );
        }
        let eval = objective(vgg.clone(), &st)
            .evaluate(&tensor(&st, "x"))
            .unwrap();
        let (grad, _) = reference_tensor(&st, "grad_total_wrt_x");
        let g = eval.grad.to_vec_f64().unwrap();
        assert_close(&g, &grad, 1e-3, &format!("{algo:?} grad_total_wrt_x"));
    }
    engine::set_conv_algorithm(engine::ConvAlgorithm::Auto);
}
