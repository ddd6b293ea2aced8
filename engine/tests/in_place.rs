//! Ops that write over an input nothing else holds: the tensor memory they use. Its own test
//! binary: `peak_live_bytes` counts the whole process, so another test allocating at the same
//! moment would show up.

use engine::{no_grad, DType, Tensor};

/// One test, the checks in turn: two tests would run at once and see each other's buffers.
#[test]
fn by_value_ops_need_no_second_buffer() {
    instance_norm_by_value();
    activations_and_sums_by_value();
}

fn instance_norm_by_value() {
    let (g, b) = (
        Tensor::randn(&[32], 1.0, 1, DType::F32).unwrap(),
        Tensor::randn(&[32], 1.0, 2, DType::F32).unwrap(),
    );
    let bytes = 32 * 96 * 128 * 4;
    no_grad(|| {
        // Nothing else holds x: normalised where it lies.
        let x = Tensor::randn(&[1, 32, 96, 128], 1.0, 3, DType::F32).unwrap();
        let want = x
            .instance_norm_relu(&g, &b, 1e-5)
            .unwrap()
            .to_vec_f64()
            .unwrap();
        engine::reset_peak_live_bytes();
        let base = engine::live_bytes();
        let y = x.into_instance_norm_relu(&g, &b, 1e-5).unwrap();
        let grew = engine::peak_live_bytes() - base;
        assert!(grew < bytes / 8, "in place: {grew} bytes more at the peak");
        assert_eq!(y.to_vec_f64().unwrap(), want);
        // Held twice: a new buffer, and the other holder keeps its values.
        let z = y.clone();
        let before = z.to_vec_f64().unwrap();
        engine::reset_peak_live_bytes();
        let base = engine::live_bytes();
        let w = y.into_instance_norm(&g, &b, 1e-5).unwrap();
        assert!(
            engine::peak_live_bytes() - base >= bytes,
            "a copy was expected"
        );
        assert_eq!(z.to_vec_f64().unwrap(), before);
        drop(w);
    });
}

fn activations_and_sums_by_value() {
    let bytes = 32 * 96 * 128 * 4;
    no_grad(|| {
        let r = Tensor::randn(&[1, 32, 96, 128], 1.0, 4, DType::F32).unwrap();
        let x = Tensor::randn(&[1, 32, 96, 128], 1.0, 5, DType::F32).unwrap();
        let want = x
            .add(&r)
            .unwrap()
            .relu6()
            .unwrap()
            .sigmoid()
            .unwrap()
            .to_vec_f64()
            .unwrap();
        engine::reset_peak_live_bytes();
        let base = engine::live_bytes();
        let y = x
            .into_add(&r)
            .unwrap()
            .into_relu6()
            .unwrap()
            .into_sigmoid()
            .unwrap();
        let grew = engine::peak_live_bytes() - base;
        assert!(grew < bytes / 8, "in place: {grew} bytes more at the peak");
        assert_eq!(y.to_vec_f64().unwrap(), want);
        let y = y.into_relu().unwrap();
        assert!(y.to_vec_f64().unwrap().iter().all(|&v| v > 0.0));
    });
}
