//! Sort and gather along the last axis (`engine/src/ops/sort.rs`): sort_last (values + argsort),
//! gather_last, and their scatter-add backward.

use crate::common::*;
use engine::{test_device, Device, Indices, Tensor};

/// Naive reference: each row sorted by (value, index), as a stable sort does.
fn naive_sort(x: &[f64], len: usize) -> (Vec<f64>, Vec<u32>) {
    let (mut v, mut ix) = (Vec::new(), Vec::new());
    for row in x.chunks(len) {
        let mut order: Vec<usize> = (0..len).collect();
        order.sort_by(|&a, &b| row[a].partial_cmp(&row[b]).unwrap());
        v.extend(order.iter().map(|&i| row[i]));
        ix.extend(order.iter().map(|&i| i as u32));
    }
    (v, ix)
}

test_device!(checks, |dev| {
    // (a) values against the naive sort, on rows of odd, power-of-two and long lengths.
    for (shape, seed) in [
        (vec![3, 7], 1u64),
        (vec![2, 2, 8], 2),
        (vec![2, 1000], 3),
        (vec![5], 4),
    ] {
        let x = randn(&shape, seed, dev);
        let (v, i) = x.sort_last().unwrap();
        let len = *shape.last().unwrap();
        let (ev, ei) = naive_sort(&x.to_vec_f64().unwrap(), len);
        assert_eq!(v.to_vec_f64().unwrap(), ev, "sort values {shape:?}");
        assert_eq!(i.to_vec().unwrap(), ei, "argsort {shape:?}");
        assert_eq!(i.shape(), &shape[..]);
        assert_eq!(i.device(), dev);
    }
    // Ties keep their order; a transposed (strided) view sorts its own rows.
    let t = Tensor::from_vec(vec![2.0f64, 1.0, 2.0, 1.0, 0.0, 5.0], &[2, 3])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let (v, i) = t.sort_last().unwrap();
    assert_eq!(v.to_vec_f64().unwrap(), [1.0, 2.0, 2.0, 0.0, 1.0, 5.0]);
    assert_eq!(i.to_vec().unwrap(), [1, 0, 2, 1, 0, 2]);
    let (v, i) = t.transpose(0, 1).unwrap().sort_last().unwrap();
    assert_eq!(v.to_vec_f64().unwrap(), [1.0, 2.0, 0.0, 1.0, 2.0, 5.0]);
    assert_eq!(i.to_vec().unwrap(), [1, 0, 1, 0, 0, 1]);

    // gather with repeated indices, from host indices moved to the device.
    let idx = Indices::from_vec(vec![2, 2, 0, 1], &[2, 2])
        .unwrap()
        .to_device(dev)
        .unwrap();
    let g = t.gather_last(&idx).unwrap();
    assert_eq!(g.shape(), &[2, 2]);
    assert_eq!(g.to_vec_f64().unwrap(), [2.0, 2.0, 1.0, 0.0]);
    // Errors: index out of range, other leading axes, indices on another device, 0-D input.
    let far = Indices::from_vec(vec![3, 0], &[2, 1])
        .unwrap()
        .to_device(dev)
        .unwrap();
    assert!(t
        .gather_last(&far)
        .unwrap_err()
        .to_string()
        .contains("out of range"));
    let rows3 = Indices::from_vec(vec![0, 0, 0], &[3, 1])
        .unwrap()
        .to_device(dev)
        .unwrap();
    assert!(t.gather_last(&rows3).is_err());
    if dev != Device::Cpu {
        let host = Indices::from_vec(vec![0, 0], &[2, 1]).unwrap();
        assert!(t.gather_last(&host).is_err());
    }
    assert!(Tensor::from_vec(vec![1.0f64], &[])
        .unwrap()
        .sort_last()
        .is_err());
    assert!(Indices::from_vec(vec![0, 1], &[3]).is_err());

    // (b) gradients: the sort's values (random data: no ties), gather with repeats, and the
    // two composed as the sliced Wasserstein loss composes them.
    grad_check(
        |t| project(&t[0].sort_last()?.0),
        &[randn(&[3, 6], 11, dev)],
        EPS,
        TOL,
    );
    grad_check(
        |t| project(&t[0].gather_last(&idx)?),
        &[randn(&[2, 3], 12, dev)],
        EPS,
        TOL,
    );
    let target = randn(&[4, 5], 13, dev).sort_last().unwrap().0.detach();
    grad_check(
        |t| t[0].sort_last()?.0.mse_loss(&target),
        &[randn(&[4, 5], 14, dev)],
        EPS,
        TOL,
    );

    // (c) CPU vs GPU: values and gradients, and the indices themselves.
    if is_gpu(dev) {
        let x = randn_f32(&[4, 1000], 21);
        parity("sort_last", dev, &[x.clone()], |t| Ok(t[0].sort_last()?.0));
        let on_gpu = x
            .to_device(dev)
            .unwrap()
            .sort_last()
            .unwrap()
            .1
            .to_vec()
            .unwrap();
        assert_eq!(
            on_gpu,
            x.sort_last().unwrap().1.to_vec().unwrap(),
            "argsort parity"
        );
        let ix =
            Indices::from_vec((0..40).map(|i| (i * 7 % 9) as u32).collect(), &[4, 10]).unwrap();
        let ix_gpu = ix.to_device(dev).unwrap();
        let xs = randn_f32(&[4, 9], 22);
        parity("gather_last", dev, &[xs], |t| {
            let ix = if t[0].device() == Device::Cpu {
                &ix
            } else {
                &ix_gpu
            };
            t[0].gather_last(ix)
        });
    }
});
