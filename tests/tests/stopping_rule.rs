//! The stopping rule (`StyleTransferConfig::tolerance`, `tolerance_window`) on a real run:
//! chelsea × starry_night at 64 px, one scale, L-BFGS. The run stops early once the objective
//! has converged, never before its window is full, at the first iteration where the window's
//! relative decrease is below the tolerance, and follows the uncapped run exactly until then.

use nst::image::{RgbImage, DEFAULT_MAX_PIXELS};
use nst::transfer::{run, StyleTransferConfig};
use nst::vgg19::{Pooling, Vgg19};
use nst_tests::{asset_path, weights_or_skip};
use std::ops::ControlFlow;
use std::sync::Arc;

#[test]
fn the_rule_stops_a_converged_run_early_and_never_before_the_window() {
    let Some(w) = weights_or_skip() else { return };
    let cfg0 = StyleTransferConfig {
        size_px: 64,
        scales: 1,
        iterations: 120,
        tolerance: 0.0,
        tolerance_window: 10,
        ..StyleTransferConfig::default()
    };
    let vgg = Arc::new(
        Vgg19::new(&w, Pooling::Max)
            .unwrap()
            .truncated(&cfg0.layers())
            .unwrap(),
    );
    let load = |n: &str| RgbImage::load(&asset_path(n), DEFAULT_MAX_PIXELS).unwrap();
    let (content, style) = (load("chelsea.png"), load("starry_night.jpg"));
    let totals = |cfg: &StyleTransferConfig| {
        let mut t = vec![];
        let mut converged = vec![];
        run(
            vgg.clone(),
            &content,
            std::slice::from_ref(&style),
            cfg,
            |p| {
                t.push(p.eval.total);
                converged.push(p.converged);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (t, converged)
    };
    let (full, none) = totals(&cfg0);
    assert_eq!(full.len(), 120);
    assert!(none.iter().all(|c| !c), "tolerance 0 never stops");

    let (tol, win) = (5e-2, cfg0.tolerance_window);
    let (stopped, conv) = totals(&StyleTransferConfig {
        tolerance: tol,
        ..cfg0.clone()
    });
    // Measured with the default objective (relative losses): stops after 51 of 120 iterations,
    // 10.7% above the uncapped run's last total (2026-11-29).
    let n = stopped.len();
    eprintln!(
        "stopped after {n} of 120 iterations: total {:.4e}, uncapped run's last {:.4e} ({:+.2}%)",
        stopped[n - 1],
        full[119],
        (full[119] / stopped[n - 1] - 1.0) * 100.0
    );
    assert!(n < 120, "a converged run stops early");
    assert!(n > win, "never before the window is full ({n} ≤ {win})");
    assert_eq!(conv.iter().filter(|c| **c).count(), 1);
    assert!(conv[n - 1], "the last iteration says it converged");
    assert_eq!(stopped[..], full[..n], "the same run up to the stop");
    // The first iteration where the window's relative decrease is below the tolerance.
    let decrease = |k: usize| (full[k - win] - full[k]) / full[k - win];
    let first = (win..120).find(|&k| decrease(k) < tol).unwrap();
    assert_eq!(
        n,
        first + 1,
        "stops at the first converged window, not before"
    );
}
