//! Spatial re-indexing of NCHW planes: 2-D padding (zero or reflect, each side its own amount)
//! and nearest-neighbour upsampling by an integer factor, forward and backward. Parallel over
//! output rows (forward) or (n, c) planes (backward); inner loops are row copies.

use super::Float;
use rayon::prelude::*;

/// How [`pad2d_forward`] fills the border.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PadMode {
    /// Zeros (TF "SAME" padding, conv zero padding).
    #[default]
    Zero,
    /// Mirror without repeating the edge pixel (PyTorch `ReflectionPad2d`, NumPy
    /// `mode="reflect"`): `x[−1] = x[1]`, `x[W] = x[W−2]`; each pad must be < the axis size.
    Reflect,
}

impl std::str::FromStr for PadMode {
    type Err = crate::ParseOptionError;
    /// `zero` (or `zeros`, `constant`) or `reflect` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "zero" | "zeros" | "constant" => Ok(PadMode::Zero),
            "reflect" => Ok(PadMode::Reflect),
            _ => Err(crate::ParseOptionError::new(
                "pad mode",
                s,
                "zero or reflect",
            )),
        }
    }
}

impl std::fmt::Display for PadMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PadMode::Zero => "zero",
            PadMode::Reflect => "reflect",
        })
    }
}

/// One 2-D padding: input N×C×H×W, output N×C×(top+H+bottom)×(left+W+right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pad2dParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub top: usize,
    pub bottom: usize,
    pub left: usize,
    pub right: usize,
    pub mode: PadMode,
}

impl Pad2dParams {
    pub fn out_h(&self) -> usize {
        self.top + self.h + self.bottom
    }
    pub fn out_w(&self) -> usize {
        self.left + self.w + self.right
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c * self.out_h() * self.out_w()
    }
    /// Why these parameters cannot be padded, if they cannot: an empty plane, or a reflect pad
    /// not smaller than its axis (the mirror would leave the input).
    pub fn check(&self) -> Result<(), String> {
        if self.h == 0 || self.w == 0 {
            return Err(format!("empty {}×{} plane", self.h, self.w));
        }
        if self.mode == PadMode::Reflect
            && (self.top.max(self.bottom) >= self.h || self.left.max(self.right) >= self.w)
        {
            return Err(format!(
                "reflect pads (top {}, bottom {}, left {}, right {}) must be smaller than the \
                 {}×{} input",
                self.top, self.bottom, self.left, self.right, self.h, self.w
            ));
        }
        Ok(())
    }
}

/// The input index that output index `o` along one axis reads (`pad` cells before the input,
/// `size` input cells), `None` for a zero cell. Reflect needs `pad < size` on both sides.
#[inline]
pub fn pad_source(o: usize, pad: usize, size: usize, mode: PadMode) -> Option<usize> {
    if o < pad {
        match mode {
            PadMode::Zero => None,
            PadMode::Reflect => Some(pad - o),
        }
    } else if o - pad < size {
        Some(o - pad)
    } else {
        match mode {
            PadMode::Zero => None,
            // o − pad = size + k (k ≥ 0) reads size − 2 − k.
            PadMode::Reflect => Some(2 * (size - 1) - (o - pad)),
        }
    }
}

fn check_len(op: &str, what: &str, got: usize, want: usize) {
    assert_eq!(
        got, want,
        "{op}: {what} has {got} elements, expected {want}"
    );
}

/// Rows per rayon task: at least this many elements each.
const MIN_TASK_ELEMS: usize = 4096;

/// `out` (N×C×OH×OW) = `x` (N×C×H×W) padded per [`Pad2dParams`]. `out` is overwritten.
///
/// # Panics
/// If a length does not match `p` or `p.check()` fails (the engine validates first).
pub fn pad2d_forward<T: Float>(p: &Pad2dParams, x: &[T], out: &mut [T]) {
    check_len("pad2d_forward", "x", x.len(), p.input_len());
    check_len("pad2d_forward", "out", out.len(), p.output_len());
    if let Err(e) = p.check() {
        panic!("pad2d_forward: {e}");
    }
    let (oh, ow, hw) = (p.out_h(), p.out_w(), p.h * p.w);
    if ow == 0 {
        return;
    }
    let min_len = (MIN_TASK_ELEMS / ow).max(1);
    out.par_chunks_mut(ow)
        .with_min_len(min_len)
        .enumerate()
        .for_each(|(r, dst)| {
            let (plane, oy) = (r / oh, r % oh);
            let Some(sy) = pad_source(oy, p.top, p.h, p.mode) else {
                dst.fill(T::ZERO);
                return;
            };
            let src = &x[plane * hw + sy * p.w..][..p.w];
            dst[p.left..p.left + p.w].copy_from_slice(src);
            match p.mode {
                PadMode::Zero => {
                    dst[..p.left].fill(T::ZERO);
                    dst[p.left + p.w..].fill(T::ZERO);
                }
                PadMode::Reflect => {
                    for (o, d) in dst[..p.left].iter_mut().enumerate() {
                        *d = src[p.left - o];
                    }
                    for (k, d) in dst[p.left + p.w..].iter_mut().enumerate() {
                        *d = src[p.w - 2 - k];
                    }
                }
            }
        });
}

/// The adjoint of [`pad2d_forward`]: `grad_in` (N×C×H×W) = the sum of `grad_out` over every
/// output cell that read each input cell (one for zero padding; up to 3 per axis for reflect,
/// the mirrored cells added to their sources). `grad_in` is overwritten. Parallel over planes.
///
/// # Panics
/// As [`pad2d_forward`].
pub fn pad2d_backward<T: Float>(p: &Pad2dParams, grad_out: &[T], grad_in: &mut [T]) {
    check_len("pad2d_backward", "grad_out", grad_out.len(), p.output_len());
    check_len("pad2d_backward", "grad_in", grad_in.len(), p.input_len());
    if let Err(e) = p.check() {
        panic!("pad2d_backward: {e}");
    }
    let (oh, ow, hw) = (p.out_h(), p.out_w(), p.h * p.w);
    grad_in
        .par_chunks_mut(hw)
        .zip(grad_out.par_chunks(oh * ow))
        .for_each(|(gi, go)| {
            // The interior: one copy per row.
            for (y, row) in gi.chunks_exact_mut(p.w).enumerate() {
                row.copy_from_slice(&go[(y + p.top) * ow + p.left..][..p.w]);
            }
            if p.mode == PadMode::Zero {
                return;
            }
            // The border cells, each added to its mirrored source.
            for (oy, grow) in go.chunks_exact(ow).enumerate() {
                let sy = pad_source(oy, p.top, p.h, p.mode).expect("reflect reads every row");
                let inner = oy >= p.top && oy < p.top + p.h;
                for (ox, &g) in grow.iter().enumerate() {
                    if inner && ox >= p.left && ox < p.left + p.w {
                        continue;
                    }
                    let sx =
                        pad_source(ox, p.left, p.w, p.mode).expect("reflect reads every column");
                    gi[sy * p.w + sx] += g;
                }
            }
        });
}

/// One nearest-neighbour upsampling: input N×C×H×W, output N×C×(s·H)×(s·W), `out[y][x] =
/// in[y / s][x / s]` (PyTorch `Upsample(scale_factor=s, mode="nearest")` for integer s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpsampleParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub scale: usize,
}

impl UpsampleParams {
    pub fn out_h(&self) -> usize {
        self.h * self.scale
    }
    pub fn out_w(&self) -> usize {
        self.w * self.scale
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c * self.h * self.w
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c * self.out_h() * self.out_w()
    }
}

/// Nearest upsampling forward; `out` is overwritten. Each output row is built once per input
/// row and copied to the other s − 1 rows.
///
/// # Panics
/// If a length does not match `p`.
pub fn upsample_nearest_forward<T: Float>(p: &UpsampleParams, x: &[T], out: &mut [T]) {
    check_len("upsample_nearest_forward", "x", x.len(), p.input_len());
    check_len("upsample_nearest_forward", "out", out.len(), p.output_len());
    let (s, ow) = (p.scale, p.out_w());
    if ow == 0 || s == 0 {
        return;
    }
    // One input row → one block of s output rows.
    let min_len = (MIN_TASK_ELEMS / (s * ow)).max(1);
    out.par_chunks_mut(s * ow)
        .with_min_len(min_len)
        .zip(x.par_chunks(p.w))
        .for_each(|(block, src)| {
            let (first, rest) = block.split_at_mut(ow);
            if s == 2 {
                for (d, &v) in first.chunks_exact_mut(2).zip(src) {
                    d[0] = v;
                    d[1] = v;
                }
            } else {
                for (d, &v) in first.chunks_exact_mut(s).zip(src) {
                    d.fill(v);
                }
            }
            for r in rest.chunks_exact_mut(ow) {
                r.copy_from_slice(first);
            }
        });
}

/// Nearest upsampling backward: `grad_in[y][x] = Σ_{i,j < s} grad_out[s·y + i][s·x + j]`
/// (s×s sum pooling). `grad_in` is overwritten.
///
/// # Panics
/// If a length does not match `p`.
pub fn upsample_nearest_backward<T: Float>(p: &UpsampleParams, grad_out: &[T], grad_in: &mut [T]) {
    check_len(
        "upsample_nearest_backward",
        "grad_out",
        grad_out.len(),
        p.output_len(),
    );
    check_len(
        "upsample_nearest_backward",
        "grad_in",
        grad_in.len(),
        p.input_len(),
    );
    let (s, ow) = (p.scale, p.out_w());
    if p.w == 0 || s == 0 {
        return;
    }
    let min_len = (MIN_TASK_ELEMS / (s * ow).max(1)).max(1);
    grad_in
        .par_chunks_mut(p.w)
        .with_min_len(min_len)
        .zip(grad_out.par_chunks(s * ow))
        .for_each(|(dst, block)| {
            dst.fill(T::ZERO);
            for row in block.chunks_exact(ow) {
                for (d, cell) in dst.iter_mut().zip(row.chunks_exact(s)) {
                    *d += cell.iter().copied().sum::<T>();
                }
            }
        });
}

#[cfg(test)]
mod tests;
