//! Seconds per symmetric eigendecomposition (`kernels::cpu::symeig`) at the VGG-19 style layers'
//! channel counts, on a rank-deficient covariance-like matrix (B Bᵀ/m + 1e-3·I, B n×n/2).
//! `cargo run --release -p nst-kernels --example symeig_speed`

use kernels::cpu::symeig::sym_eig;
use std::time::Instant;

fn main() {
    for n in [64usize, 128, 256, 512] {
        let m = n / 2;
        let b: Vec<f64> = (0..n * m)
            .map(|i| ((i * 7919 % 1009) as f64 / 97.0).sin())
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..m).map(|k| b[i * m + k] * b[j * m + k]).sum::<f64>() / m as f64;
            }
            a[i * n + i] += 1e-3;
        }
        let (mut w, mut v) = (vec![0.0; n], vec![0.0; n * n]);
        let t = Instant::now();
        sym_eig(&a, n, &mut w, &mut v).unwrap();
        println!("n = {n}: {:.3} s", t.elapsed().as_secs_f64());
    }
}
