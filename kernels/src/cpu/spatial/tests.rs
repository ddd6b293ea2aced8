use super::*;

fn ramp(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| (((i * 7919 + seed * 104_729) % 1009) as f64) / 97.0 - 5.0)
        .collect()
}

/// Reference padding: the mirror written as a loop over the padded coordinate (NumPy's
/// `mode="reflect"`), zero outside for `Zero`.
fn naive_pad(p: &Pad2dParams, x: &[f64]) -> Vec<f64> {
    let mirror = |o: isize, size: isize| -> Option<usize> {
        let mut i = o;
        if i < 0 || i >= size {
            if p.mode == PadMode::Zero {
                return None;
            }
            if i < 0 {
                i = -i;
            }
            if i >= size {
                i = 2 * (size - 1) - i;
            }
        }
        Some(i as usize)
    };
    let mut out = Vec::new();
    for plane in 0..p.n * p.c {
        for oy in 0..p.out_h() {
            for ox in 0..p.out_w() {
                let sy = mirror(oy as isize - p.top as isize, p.h as isize);
                let sx = mirror(ox as isize - p.left as isize, p.w as isize);
                out.push(match (sy, sx) {
                    (Some(y), Some(x2)) => x[(plane * p.h + y) * p.w + x2],
                    _ => 0.0,
                });
            }
        }
    }
    out
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn pad2d_matches_reference_and_backward_is_its_adjoint() {
    // (n, c, h, w, top, bottom, left, right)
    let cases = [
        (1, 1, 3, 4, 1, 1, 1, 1),
        (2, 3, 5, 6, 4, 4, 4, 4),
        (1, 2, 7, 5, 0, 1, 0, 1),
        (1, 1, 2, 2, 1, 0, 0, 1),
        (2, 1, 9, 11, 2, 3, 4, 1),
    ];
    for (i, &(n, c, h, w, top, bottom, left, right)) in cases.iter().enumerate() {
        for mode in [PadMode::Zero, PadMode::Reflect] {
            let p = Pad2dParams {
                n,
                c,
                h,
                w,
                top,
                bottom,
                left,
                right,
                mode,
            };
            if p.check().is_err() {
                assert_eq!(mode, PadMode::Reflect);
                continue;
            }
            let x = ramp(p.input_len(), i);
            let mut out = vec![0.0; p.output_len()];
            pad2d_forward(&p, &x, &mut out);
            assert_eq!(out, naive_pad(&p, &x), "{p:?}");
            // f32 copies the same values.
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let mut of = vec![0.0f32; p.output_len()];
            pad2d_forward(&p, &xf, &mut of);
            assert!(of.iter().zip(&out).all(|(a, b)| *a == *b as f32));
            // ⟨pad(x), g⟩ = ⟨x, padᵀ(g)⟩ for every x, g: check with random-like g.
            let g = ramp(p.output_len(), i + 17);
            let mut gi = vec![f64::NAN; p.input_len()];
            pad2d_backward(&p, &g, &mut gi);
            let (l, r) = (dot(&out, &g), dot(&x, &gi));
            assert!(
                (l - r).abs() <= 1e-9 * l.abs().max(1.0),
                "{p:?}: {l} vs {r}"
            );
            // And cell by cell: the gradient of one input cell is the sum over its copies.
            for j in [0, p.input_len() / 2, p.input_len() - 1] {
                let mut e = vec![0.0; p.input_len()];
                e[j] = 1.0;
                assert!((dot(&naive_pad(&p, &e), &g) - gi[j]).abs() < 1e-9);
            }
        }
    }
}

#[test]
fn pad2d_reflect_edges() {
    // One row 1 2 3 4, reflect 2 on each side: 3 2 | 1 2 3 4 | 3 2.
    let p = Pad2dParams {
        n: 1,
        c: 1,
        h: 1,
        w: 4,
        top: 0,
        bottom: 0,
        left: 2,
        right: 2,
        mode: PadMode::Reflect,
    };
    let mut out = vec![0.0f64; 8];
    pad2d_forward(&p, &[1.0, 2.0, 3.0, 4.0], &mut out);
    assert_eq!(out, [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
    assert!(Pad2dParams { left: 4, ..p }.check().is_err());
    assert!(Pad2dParams {
        mode: PadMode::Zero,
        left: 9,
        ..p
    }
    .check()
    .is_ok());
    assert_eq!("Reflect".parse::<PadMode>().unwrap(), PadMode::Reflect);
    assert_eq!(PadMode::Zero.to_string(), "zero");
    assert!("edge".parse::<PadMode>().is_err());
}

#[test]
fn upsample_nearest_matches_reference_and_backward_is_its_adjoint() {
    for (i, &(n, c, h, w, s)) in [
        (1, 1, 3, 4, 2),
        (2, 3, 5, 7, 2),
        (1, 2, 4, 3, 3),
        (1, 1, 2, 2, 1),
    ]
    .iter()
    .enumerate()
    {
        let p = UpsampleParams {
            n,
            c,
            h,
            w,
            scale: s,
        };
        let x = ramp(p.input_len(), i);
        let mut out = vec![0.0; p.output_len()];
        upsample_nearest_forward(&p, &x, &mut out);
        let (oh, ow) = (p.out_h(), p.out_w());
        for plane in 0..n * c {
            for oy in 0..oh {
                for ox in 0..ow {
                    let want = x[(plane * h + oy / s) * w + ox / s];
                    assert_eq!(out[(plane * oh + oy) * ow + ox], want, "{p:?}");
                }
            }
        }
        let g = ramp(p.output_len(), i + 3);
        let mut gi = vec![f64::NAN; p.input_len()];
        upsample_nearest_backward(&p, &g, &mut gi);
        let (l, r) = (dot(&out, &g), dot(&x, &gi));
        assert!(
            (l - r).abs() <= 1e-9 * l.abs().max(1.0),
            "{p:?}: {l} vs {r}"
        );
        let mut gf = vec![0.0f32; p.input_len()];
        let g32: Vec<f32> = g.iter().map(|&v| v as f32).collect();
        upsample_nearest_backward(&p, &g32, &mut gf);
        let err = gf
            .iter()
            .zip(&gi)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(err < 1e-4, "f32 backward off by {err}");
    }
}
