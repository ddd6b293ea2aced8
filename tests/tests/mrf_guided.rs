//! The MRF style loss and the guided (masked) Gram and mean-std style losses against PyTorch
//! float64 (tests/data/make_mrf_guided_golden.py): values ≤ 1e-4 relative, gradients ≤ 1e-3,
//! nearest-patch indices exactly; the guided Gram also against a naive sum.

use nst::engine::testing::{assert_close, rel_error};
use nst::engine::Tensor;
use nst::loss::guided::{masked_statistics, GrayMask, GuidedStyleLoss};
use nst::loss::mrf::MrfLoss;
use nst::loss::{Features, Loss, StyleLossKind};
use nst_tests::MRF_GUIDED as G;

fn feats(t: Tensor) -> Features {
    Features::from([("relu3_1".to_string(), t)])
}

fn mask(key: &str) -> GrayMask {
    let (v, s) = G.tensor(key);
    GrayMask {
        width: s[3],
        height: s[2],
        data: v.iter().map(|&x| x as f32).collect(),
    }
}

fn layers() -> Vec<(String, f64)> {
    vec![("relu3_1".to_string(), 1.0)]
}

/// The sum of `loss`'s terms at features `x` (a leaf) and its gradient.
fn value_and_grad(loss: &dyn Loss, x: &Tensor) -> (f64, Vec<f64>) {
    let x = x.detach().requires_grad_();
    let terms = loss.terms(&feats(x.clone()), &x).unwrap();
    assert_eq!(terms.len(), 1);
    let v = terms[0].value.clone();
    v.backward().unwrap();
    (v.item().unwrap(), x.grad().unwrap().to_vec_f64().unwrap())
}

#[test]
fn mrf_loss_matches_pytorch() {
    let styles = [feats(G.f64("mrf_style1")), feats(G.f64("mrf_style2"))];
    let loss = MrfLoss::from_styles(&layers(), &styles, 2, false).unwrap();
    let x = G.f64("mrf_x");
    let idx = MrfLoss::nearest(&loss.layers[0], &x).unwrap();
    assert_eq!(
        idx.to_vec_f64().unwrap(),
        G.tensor("mrf_idx").0,
        "nearest patches"
    );
    let (v, g) = value_and_grad(&loss, &x);
    let want = G.tensor("mrf_value").0[0];
    assert!(
        (v - want).abs() <= 1e-4 * want.abs(),
        "mrf value {v} vs {want}"
    );
    let e = rel_error(&g, &G.tensor("mrf_grad").0);
    assert!(e <= 1e-3, "mrf gradient: relative error {e:.2e}");
    // f32, as a transfer runs it: same indices, value within 1e-4.
    let styles32 = styles.map(|f| feats(f["relu3_1"].cast(nst::engine::DType::F32).unwrap()));
    let loss32 = MrfLoss::from_styles(&layers(), &styles32, 2, false).unwrap();
    let x32 = x.cast(nst::engine::DType::F32).unwrap();
    let v32 = MrfLoss::layer_value(&loss32.layers[0], &x32)
        .unwrap()
        .item()
        .unwrap();
    assert!(
        (v32 - want).abs() <= 1e-4 * want.abs(),
        "f32 mrf value {v32} vs {want}"
    );
}

#[test]
fn mrf_search_in_chunks_picks_the_same_patches() {
    let styles = [feats(G.f64("mrf_style1")), feats(G.f64("mrf_style2"))];
    let loss = MrfLoss::from_styles(&layers(), &styles, 2, false).unwrap();
    let x = G.f64("mrf_x");
    let want = G.tensor("mrf_idx").0;
    let n_pos = want.len();
    let k = loss.layers[0].filters.shape()[0];
    for filters_per_chunk in [1, 7, k - 1] {
        let idx =
            MrfLoss::nearest_in_chunks(&loss.layers[0], &x, filters_per_chunk * n_pos).unwrap();
        assert_eq!(
            idx.to_vec_f64().unwrap(),
            want,
            "{filters_per_chunk} filters per chunk"
        );
    }
}

#[test]
fn mrf_relative_weight_divides_by_the_patches_mean_square() {
    let styles = [feats(G.f64("mrf_style1")), feats(G.f64("mrf_style2"))];
    let abs = MrfLoss::from_styles(&layers(), &styles, 2, false).unwrap();
    let rel = MrfLoss::from_styles(&layers(), &styles, 2, true).unwrap();
    let p = abs.layers[0].patches.to_vec_f64().unwrap();
    let ms = p.iter().map(|v| v * v).sum::<f64>() / p.len() as f64;
    assert!((rel.layers[0].weight - 1.0 / ms).abs() < 1e-12 / ms);
}

#[test]
fn guided_gram_matches_a_naive_sum_and_pytorch() {
    let x = G.f64("guided_x");
    let (xv, s) = (x.to_vec_f64().unwrap(), x.shape().to_vec());
    let (c, h, w) = (s[1], s[2], s[3]);
    for r in 1..=2 {
        let m = mask(&format!("guided_mask{r}")).area_resize(w, h);
        let mass: f64 = m.iter().sum();
        // Naive: G_ij = Σ_p (F_i m)(F_j m) / (C Σ m).
        let mut naive = vec![0.0; c * c];
        for i in 0..c {
            for j in 0..c {
                naive[i * c + j] = (0..h * w)
                    .map(|p| xv[i * h * w + p] * m[p] * xv[j * h * w + p] * m[p])
                    .sum::<f64>()
                    / (c as f64 * mass);
            }
        }
        let mt = Tensor::from_vec(m, &[1, 1, h, w]).unwrap();
        let g = masked_statistics(StyleLossKind::Gram, &x, &mt, mass).unwrap();
        let gv = g[0].to_vec_f64().unwrap();
        assert_close(&gv, &naive, 1e-12, "guided Gram vs naive");
        assert_close(
            &gv,
            &G.tensor(&format!("guided_gram_x{r}")).0,
            1e-10,
            "guided Gram vs PyTorch",
        );
    }
    // A mask of ones gives the plain Gram matrix.
    let ones = Tensor::from_vec(vec![1.0f64; h * w], &[1, 1, h, w]).unwrap();
    let g1 = masked_statistics(StyleLossKind::Gram, &x, &ones, (h * w) as f64).unwrap();
    assert_close(
        &g1[0].to_vec_f64().unwrap(),
        &x.gram_matrix().unwrap().to_vec_f64().unwrap(),
        1e-13,
        "ones mask",
    );
}

#[test]
fn guided_losses_match_pytorch() {
    let styles = [feats(G.f64("guided_style1")), feats(G.f64("guided_style2"))];
    let content = [mask("guided_mask1"), mask("guided_mask2")];
    let style_masks = [None, Some(mask("guided_style_mask2"))];
    for (kind, key) in [
        (StyleLossKind::Gram, "gram"),
        (StyleLossKind::MeanStd, "meanstd"),
    ] {
        let loss =
            GuidedStyleLoss::new(kind, &layers(), &styles, &content, &style_masks, false).unwrap();
        let (v, g) = value_and_grad(&loss, &G.f64("guided_x"));
        let want = G.tensor(&format!("guided_{key}_value")).0[0];
        assert!(
            (v - want).abs() <= 1e-4 * want.abs(),
            "{key}: value {v} vs {want}"
        );
        let e = rel_error(&g, &G.tensor(&format!("guided_{key}_grad")).0);
        assert!(e <= 1e-3, "{key}: gradient relative error {e:.2e}");
    }
    // Counts and losses that take no masks are refused.
    let one = [mask("guided_mask1")];
    assert!(GuidedStyleLoss::new(
        StyleLossKind::Gram,
        &layers(),
        &styles,
        &one,
        &[None],
        false
    )
    .is_err());
    let e = GuidedStyleLoss::new(
        StyleLossKind::Mrf,
        &layers(),
        &styles,
        &content,
        &style_masks,
        false,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("not mrf"), "{e}");
}
