//! Spatial re-indexing (`engine/src/ops/spatial.rs`): pad2d (zero, reflect; per side) and
//! upsample_nearest.

use crate::common::*;
use engine::{test_device, Pad2d, PadMode, Tensor};

/// PyTorch `F.pad(x, (1, 2, 2, 1), mode="reflect")` of `arange(12).reshape(1, 1, 3, 4)`
/// (pads left 1, right 2, top 2, bottom 1), written out by hand from the mirror rule.
const REFLECT_3X4: [f64; 42] = [
    9., 8., 9., 10., 11., 10., 9., //
    5., 4., 5., 6., 7., 6., 5., //
    1., 0., 1., 2., 3., 2., 1., //
    5., 4., 5., 6., 7., 6., 5., //
    9., 8., 9., 10., 11., 10., 9., //
    5., 4., 5., 6., 7., 6., 5., //
];

test_device!(checks, |dev| {
    // (a) values: reflect and zero padding of a known plane, TF "SAME" bottom/right padding.
    let x = Tensor::from_vec((0..12).map(f64::from).collect(), &[1, 1, 3, 4])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let r = x.pad2d(Pad2d::new(2, 1, 1, 2), PadMode::Reflect).unwrap();
    assert_eq!(r.shape(), [1, 1, 6, 7]);
    assert_eq!(r.to_vec_f64().unwrap(), REFLECT_3X4);
    let z = x.pad2d(Pad2d::new(0, 1, 0, 1), PadMode::Zero).unwrap();
    let want: Vec<f64> = (0..4 * 5)
        .map(|i| {
            let (y, c) = (i / 5, i % 5);
            if y < 3 && c < 4 {
                (y * 4 + c) as f64
            } else {
                0.0
            }
        })
        .collect();
    assert_eq!(z.to_vec_f64().unwrap(), want);
    assert!(
        x.pad2d(Pad2d::uniform(3), PadMode::Reflect).is_err(),
        "reflect pad ≥ H"
    );
    assert!(x
        .reshape(&[3, 4])
        .unwrap()
        .pad2d(Pad2d::uniform(1), PadMode::Zero)
        .is_err());
    // upsample ×2 of [[0, 1], [2, 3]]
    let u = x
        .narrow(3, 0, 2)
        .unwrap()
        .narrow(2, 0, 2)
        .unwrap()
        .upsample_nearest(2)
        .unwrap();
    let want = [
        0., 0., 1., 1., 0., 0., 1., 1., 4., 4., 5., 5., 4., 4., 5., 5.,
    ];
    assert_eq!(u.to_vec_f64().unwrap(), want);
    assert!(x.upsample_nearest(0).is_err());

    // (b) gradients
    // (n, c, h, w, top, bottom, left, right)
    for (i, &(n, c, h, w, t, b, l, r)) in [
        (1, 1, 3, 4, 1, 1, 1, 1),
        (2, 3, 5, 6, 4, 4, 4, 4),
        (1, 2, 6, 5, 0, 1, 0, 1),
        (1, 1, 7, 9, 2, 0, 3, 1),
    ]
    .iter()
    .enumerate()
    {
        let x = randn(&[n, c, h, w], 40 + i as u64, dev);
        for mode in [PadMode::Zero, PadMode::Reflect] {
            let pads = Pad2d::new(t, b, l, r);
            grad_check(
                |t| project(&t[0].pad2d(pads, mode)?),
                &[x.clone()],
                EPS,
                TOL,
            );
        }
        // A strided view as input.
        let xt = randn(&[n, c, w, h], 50 + i as u64, dev);
        grad_check(
            |t| {
                project(
                    &t[0]
                        .transpose(2, 3)?
                        .pad2d(Pad2d::uniform(1), PadMode::Reflect)?,
                )
            },
            &[xt],
            EPS,
            TOL,
        );
        for s in [1, 2, 3] {
            grad_check(
                |t| project(&t[0].upsample_nearest(s)?),
                &[x.clone()],
                EPS,
                TOL,
            );
        }
    }

    // (c) CPU vs GPU
    if is_gpu(dev) {
        for (i, &(n, c, h, w, p)) in [(1, 3, 64, 43, 4), (2, 8, 17, 33, 1), (1, 32, 86, 128, 1)]
            .iter()
            .enumerate()
        {
            let x = randn_f32(&[n, c, h, w], 60 + i as u64);
            for mode in [PadMode::Zero, PadMode::Reflect] {
                parity("pad2d", dev, &[x.clone()], move |t| {
                    t[0].pad2d(Pad2d::uniform(p), mode)
                });
                parity("pad2d bottom/right", dev, &[x.clone()], move |t| {
                    t[0].pad2d(Pad2d::new(0, 1, 0, 1), mode)
                });
            }
            parity("upsample_nearest", dev, &[x.clone()], |t| {
                t[0].upsample_nearest(2)
            });
            parity("upsample_nearest ×3", dev, &[x], |t| {
                t[0].upsample_nearest(3)
            });
        }
    }
});
