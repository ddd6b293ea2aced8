//! Parity with the PyTorch float64 reference cases of tests/data (README there): VGG-19 features,
//! Gram matrices, every loss term, the input gradient and three Adam steps, for max pooling
//! (chelsea × starry_night, 64×48) and average pooling at odd sizes (rocket × the_scream, 57×43).
//! Tolerances (relative L2 error): features, Grams, losses ≤ 1e-4; gradient, Adam ≤ 1e-3.

use engine::testing::assert_close;
use nst::vgg19::{layer_names, Vgg19};
use nst_tests::{weights_or_skip, Reference, REFERENCES};

/// Runs `check` on every reference case (nothing when the weights are missing outside CI).
fn for_each_reference(check: impl Fn(&Reference, &nst::weights::VggWeights)) {
    let Some(w) = weights_or_skip() else { return };
    for r in &REFERENCES {
        check(r, &w);
    }
}

#[test]
fn vgg19_features_match_at_the_stored_layers() {
    for_each_reference(|r, w| {
        let names = r.keys("content_features");
        // Every pool (so all 16 convolutions) and at least one ReLU per case.
        for b in 1..=5 {
            assert!(names.contains(&format!("pool{b}")), "{}: {names:?}", r.name);
        }
        assert!(names.iter().any(|n| n.starts_with("relu")), "{names:?}");
        assert!(names.iter().all(|n| layer_names().contains(n)), "{names:?}");
        let taps: Vec<&str> = names.iter().map(String::as_str).collect();
        let vgg = Vgg19::new(w, r.pooling).unwrap();
        let feats = vgg.forward(&r.f32("content_input"), &taps).unwrap();
        assert_eq!(feats.len(), names.len());
        for name in &names {
            let (want, shape) = r.tensor(&format!("content_features.{name}"));
            assert_eq!(feats[name].shape(), &shape[..], "{} {name} shape", r.name);
            let what = format!("{} {name}", r.name);
            assert_close(&feats[name].to_vec_f64().unwrap(), &want, 1e-4, &what);
        }
    });
}

#[test]
fn preprocessing_from_u8_pixels_matches_the_reference_input() {
    for_each_reference(|r, w| {
        let vgg = Vgg19::new(w, r.pooling).unwrap();
        for (pixels, input) in [
            ("content_rgb_u8", "content_input"),
            ("style_rgb_u8", "style_input"),
        ] {
            let (px, shape) = r.tensor(pixels);
            let rgb: Vec<f32> = px.iter().map(|&v| v as f32 / 255.0).collect();
            let x = vgg.preprocess(&rgb, shape[1], shape[0]).unwrap();
            let (want, _) = r.tensor(input);
            let what = format!("{} {input}", r.name);
            assert_close(&x.to_vec_f64().unwrap(), &want, 1e-6, &what);
            // and back
            let back = vgg.deprocess(&x).unwrap();
            assert_close(
                &back.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                &rgb.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                1e-6,
                &format!("{} deprocess", r.name),
            );
        }
    });
}

#[test]
fn style_grams_losses_and_gradient_match() {
    for_each_reference(|r, w| {
        let vgg = r.vgg(w);
        let grams = r.keys("style_gram");
        assert!(grams.len() >= 3, "{}: {grams:?}", r.name);
        let taps: Vec<&str> = grams.iter().map(String::as_str).collect();
        let sf = vgg.forward(&r.f32("style_input"), &taps).unwrap();
        for l in &grams {
            let (want, _) = r.tensor(&format!("style_gram.{l}"));
            let got = sf[l].gram_matrix().unwrap().to_vec_f64().unwrap();
            assert_close(&got, &want, 1e-4, &format!("{} gram {l}", r.name));
        }
        let eval = r.objective(vgg).evaluate(&r.f32("x")).unwrap();
        assert_eq!(eval.terms.len(), 7);
        for (name, value) in &eval.terms {
            let (want, _) = r.tensor(&format!("loss.{name}"));
            assert_close(&[*value], &want, 1e-4, &format!("{} {name}", r.name));
        }
        let (total, _) = r.tensor("loss.total");
        assert_close(&[eval.total], &total, 1e-4, &format!("{} total", r.name));
        let (grad, _) = r.tensor("grad_total_wrt_x");
        let what = format!("{} grad_total_wrt_x", r.name);
        assert_close(&eval.grad.to_vec_f64().unwrap(), &grad, 1e-3, &what);
    });
}

#[test]
fn three_adam_steps_match() {
    for_each_reference(|r, w| {
        let obj = r.objective(r.vgg(w));
        let x0 = r.f32("x");
        let mut x = x0.clone();
        let mut adam = nst::optim::Adam::new(1.0);
        for _ in 0..3 {
            let e = obj.evaluate(&x).unwrap();
            adam.step(&mut x, &e.grad).unwrap();
        }
        let x = x.to_vec::<f32>().unwrap();
        let (want, _) = r.tensor("adam_lr1_x_after_3_steps");
        assert_close(
            &x.iter().map(|&v| v as f64).collect::<Vec<_>>(),
            &want,
            1e-3,
            &format!("{} adam_lr1_x_after_3_steps", r.name),
        );
        // x is ~100 in Caffe units while 3 steps move it by ~3: compare the displacement too.
        let x0v = x0.to_vec_f64().unwrap();
        let moved: Vec<f64> = x.iter().zip(&x0v).map(|(&a, b)| a as f64 - b).collect();
        let want_moved: Vec<f64> = want.iter().zip(&x0v).map(|(a, b)| a - b).collect();
        let what = format!("{} Adam displacement after 3 steps", r.name);
        assert_close(&moved, &want_moved, 1e-3, &what);
    });
}

#[test]
fn every_conv_algorithm_meets_the_feature_and_gradient_tolerances() {
    // The default is Winograd F(4,3); im2col and F(2,3) must meet the same tolerances. The
    // algorithm is chosen per call (ConvConfig), so other tests in this binary are unaffected.
    for_each_reference(|r, w| {
        let vgg = r.vgg(w);
        for algo in [
            engine::ConvAlgorithm::Im2col,
            engine::ConvAlgorithm::WinogradF2,
            engine::ConvAlgorithm::WinogradF4,
        ] {
            let conv = engine::ConvConfig {
                algorithm: algo,
                ..Default::default()
            };
            let feats = vgg
                .forward_with(&r.f32("content_input"), &["relu4_2", "pool5"], conv)
                .unwrap();
            for (name, f) in &feats {
                let (want, _) = r.tensor(&format!("content_features.{name}"));
                let what = format!("{} {algo:?} {name}", r.name);
                assert_close(&f.to_vec_f64().unwrap(), &want, 1e-4, &what);
            }
            let obj = r.objective_with(vgg.clone(), conv);
            let eval = obj.evaluate(&r.f32("x")).unwrap();
            let (grad, _) = r.tensor("grad_total_wrt_x");
            let g = eval.grad.to_vec_f64().unwrap();
            let what = format!("{} {algo:?} grad_total_wrt_x", r.name);
            assert_close(&g, &grad, 1e-3, &what);
        }
    });
}
