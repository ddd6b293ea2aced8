//! Shared by the speed examples (`#[path]`-included: not an example itself).

use std::time::Instant;

/// Fastest of 7 runs after a warm-up (the minimum is the least disturbed by other load).
pub fn time(mut f: impl FnMut()) -> f64 {
    f();
    (0..7)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}
