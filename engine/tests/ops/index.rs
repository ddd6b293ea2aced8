//! Patches and index selection (`engine/src/ops/index.rs`): unfold2d, argmax_axis,
//! index_select.

use crate::common::*;
use engine::{no_grad, test_device, Tensor};

/// `F.unfold` by its definition, on the host.
fn naive_unfold(
    x: &[f64],
    (n, c, h, w): (usize, usize, usize, usize),
    k: usize,
    s: usize,
    p: usize,
) -> Vec<f64> {
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let mut out = Vec::new();
    for b in 0..n {
        for ch in 0..c {
            for i in 0..k {
                for j in 0..k {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let (y, xx) = (
                                (oy * s + i) as isize - p as isize,
                                (ox * s + j) as isize - p as isize,
                            );
                            let inside = y >= 0 && xx >= 0 && (y as usize) < h && (xx as usize) < w;
                            out.push(if inside {
                                x[((b * c + ch) * h + y as usize) * w + xx as usize]
                            } else {
                                0.0
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

test_device!(checks, |dev| {
    // (a) values and (b) gradients of unfold2d.
    for (i, &(n, c, h, w, k, s, p)) in [
        (1, 2, 5, 4, 3, 1, 0),
        (2, 3, 7, 6, 3, 2, 1),
        (1, 1, 4, 4, 2, 2, 0),
        (1, 2, 6, 5, 3, 1, 2),
    ]
    .iter()
    .enumerate()
    {
        let x = randn(&[n, c, h, w], 50 + i as u64, dev);
        let u = x.unfold2d(k, s, p).unwrap();
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        assert_eq!(u.shape(), [n, c * k * k, oh * ow]);
        let want = naive_unfold(&x.to_vec_f64().unwrap(), (n, c, h, w), k, s, p);
        assert_close(&u.to_vec_f64().unwrap(), &want, 1e-15, "unfold2d");
        grad_check(
            |t| project(&t[0].unfold2d(k, s, p)?),
            &[x.clone()],
            EPS,
            TOL,
        );
    }
    let x = randn(&[1, 2, 4, 4], 60, dev);
    assert!(x.unfold2d(5, 1, 0).is_err(), "window larger than the input");
    assert!(x.unfold2d(3, 0, 0).is_err(), "zero stride");
    assert!(
        x.reshape(&[2, 16]).unwrap().unfold2d(3, 1, 0).is_err(),
        "rank"
    );

    // (a) argmax_axis: against a host scan, on every axis of a 3-D tensor with ties.
    let vals: Vec<f64> = (0..2 * 5 * 3).map(|j| ((j * 7) % 4) as f64).collect();
    let x = Tensor::from_vec(vals.clone(), &[2, 5, 3])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let dims = [2, 5, 3];
    for axis in 0..3 {
        let (v, ix) = x.argmax_axis(axis).unwrap();
        let (outer, len, inner) = (
            dims[..axis].iter().product::<usize>(),
            dims[axis],
            dims[axis + 1..].iter().product::<usize>(),
        );
        let (mut wv, mut wi) = (vec![], vec![]);
        for o in 0..outer {
            for q in 0..inner {
                let line: Vec<f64> = (0..len).map(|k| vals[(o * len + k) * inner + q]).collect();
                let k = (0..len).fold(0, |b, k| if line[k] > line[b] { k } else { b });
                wv.push(line[k]);
                wi.push(k as f64);
            }
        }
        assert_eq!(v.to_vec_f64().unwrap(), wv, "argmax values, axis {axis}");
        assert_eq!(ix.to_vec_f64().unwrap(), wi, "argmax indices, axis {axis}");
        assert!(!v.requires_grad() && !ix.requires_grad());
    }
    assert!(x.argmax_axis(3).is_err());

    // (a) index_select: against a host gather, on every axis; errors.
    let idx = Tensor::from_vec(vec![1.0f64, 0.0, 1.0, 1.0], &[4])
        .unwrap()
        .to_device(dev)
        .unwrap();
    for axis in 0..3 {
        let y = x.index_select(axis, &idx).unwrap();
        let mut shape = dims.to_vec();
        shape[axis] = 4;
        assert_eq!(y.shape(), shape.as_slice());
        let yv = y.to_vec_f64().unwrap();
        for (flat, got) in yv.iter().enumerate() {
            let mut rem = flat;
            let mut pos = [0usize; 3];
            for d in (0..3).rev() {
                pos[d] = rem % shape[d];
                rem /= shape[d];
            }
            pos[axis] = [1, 0, 1, 1][pos[axis]];
            assert_eq!(
                *got,
                vals[(pos[0] * 5 + pos[1]) * 3 + pos[2]],
                "index_select axis {axis}"
            );
        }
    }
    let leaf = randn(&[3, 2], 61, dev).requires_grad_();
    let i2 = Tensor::from_vec(vec![2.0f64], &[1])
        .unwrap()
        .to_device(dev)
        .unwrap();
    assert!(
        leaf.index_select(0, &i2).is_err(),
        "no gradient: refused while recording"
    );
    assert_eq!(
        no_grad(|| leaf.index_select(0, &i2)).unwrap().shape(),
        [1, 2]
    );
    if !is_gpu(dev) {
        let out_of_range = Tensor::from_vec(vec![3.0f64], &[1]).unwrap();
        assert!(leaf.detach().index_select(0, &out_of_range).is_err());
        let fractional = Tensor::from_vec(vec![0.5f64], &[1]).unwrap();
        assert!(leaf.detach().index_select(0, &fractional).is_err());
    }

    // (c) CPU vs GPU: unfold (forward and backward), and the nearest-patch pipeline.
    if is_gpu(dev) {
        for &(n, c, h, w, k, s, p) in &[(1, 64, 32, 24, 3, 1, 0), (2, 3, 9, 7, 3, 2, 1)] {
            let x = randn_f32(&[n, c, h, w], 62);
            parity("unfold2d", dev, &[x], move |t| t[0].unfold2d(k, s, p));
        }
        // Distinct scores (no ties), so both devices pick the same indices.
        let len = 40 * 300;
        let scores: Vec<f32> = (0..len).map(|j| ((j * 7919) % len) as f32 * 1e-3).collect();
        let scores = Tensor::from_vec(scores, &[40, 300]).unwrap();
        let bank = randn_f32(&[40, 7], 63);
        parity("argmax_axis + index_select", dev, &[scores, bank], |t| {
            let (v, i) = t[0].detach().argmax_axis(0)?;
            let picked = t[1].detach().index_select(0, &i)?; // 300 × 7
            picked.add(&v.reshape(&[300, 1])?)
        });
    }
});
