//! conv2d on NCHW input and OIHW weights: forward, input-gradient, weight-gradient.
//! (Cross-correlation, as in PyTorch/Caffe.) Implemented with im2col/col2im + gemm, parallel with rayon.
//! Grouped convolutions (`groups > 1`) run per group through the same code (`grouped.rs`), and
//! depthwise ones (groups = C_in = C_out) through a direct kernel (`depthwise.rs`); forwards
//! with at most 4 output channels, stride 1 and no padding are direct too (`direct.rs`), and
//! forwards with C_out a multiple of 8 and OW ≥ 32 build im2col panels for the packed
//! micro-kernel per 32 output pixels (`panel.rs`).

use super::buffers::BufferPool;
use super::gemm::{gemm, MatLayout};
use super::spatial::PadMode;
use super::Float;
use crate::window::Window2d;
use rayon::prelude::*;

/// Shapes of one conv2d: input N×C_in×H×W, weight C_out×(C_in/groups)×KH×KW, output
/// N×C_out×OH×OW with `OH = (H + 2·pad_h − KH) / stride_h + 1` (likewise OW; the [`Window2d`]
/// of [`Conv2dParams::window`]). With `groups` g > 1 (PyTorch's `groups`), output channels
/// `[k·C_out/g, (k+1)·C_out/g)` see only input channels `[k·C_in/g, (k+1)·C_in/g)`; g must
/// divide both channel counts (the engine checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_h: usize,
    pub pad_w: usize,
    /// Channel groups (1: an ordinary convolution; C_in = C_out: depthwise).
    pub groups: usize,
    /// What the padding holds: zeros, or the input mirrored without repeating the edge pixel
    /// (PyTorch's `padding_mode="reflect"`; each pad < the input's side). Reflection is read
    /// in place, with no padded copy, by the panel and Winograd paths only:
    /// [`reflect_supported`] says where; elsewhere pad the input with
    /// [`pad2d_forward`](super::spatial::pad2d_forward) first.
    pub pad_mode: PadMode,
}

impl Conv2dParams {
    /// Input channels each output channel sees: C_in / groups.
    pub fn c_in_per_group(&self) -> usize {
        self.c_in / self.groups.max(1)
    }
    /// Whether this is a depthwise convolution with one filter per channel (groups = C_in =
    /// C_out), which runs as a direct kernel.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c_in && self.groups == self.c_out
    }
    /// Whether the padding mirrors the input: [`PadMode::Reflect`] with a pad on some side
    /// (without padding the mode changes nothing).
    pub fn mirrors(&self) -> bool {
        self.pad_mode == PadMode::Reflect && (self.pad_h > 0 || self.pad_w > 0)
    }
    /// The same convolution on its input padded beforehand: sides grown by the pads, no
    /// padding of its own (what [`reflect_supported`] weighs, and tests compare against).
    pub fn padded_first(&self) -> Conv2dParams {
        Conv2dParams {
            h: self.h + 2 * self.pad_h,
            w: self.w + 2 * self.pad_w,
            pad_h: 0,
            pad_w: 0,
            pad_mode: PadMode::Zero,
            ..*self
        }
    }
    /// The kernel window: KH×KW, stride, padding.
    pub fn window(&self) -> Window2d {
        Window2d {
            kernel: (self.kh, self.kw),
            stride: (self.stride_h, self.stride_w),
            padding: (self.pad_h, self.pad_w),
        }
    }
    /// Output height; the caller validates the window first ([`Window2d::check`]).
    pub fn out_h(&self) -> usize {
        self.window().out_h(self.h)
    }
    /// Output width.
    pub fn out_w(&self) -> usize {
        self.window().out_w(self.w)
    }
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in_per_group() * self.kh * self.kw
    }
    pub fn output_len(&self) -> usize {
        self.n * self.c_out * self.out_h() * self.out_w()
    }
}

/// Elements of the im2col buffer (per image in flight) above which the output rows are processed
/// in bands: 2²⁰ elements = 4 MiB of f32, so the buffer stays near the caches and the memory use
/// stays bounded (a whole 64-channel 256×256 3×3 im2col would be 151 MB).
const COL_BUDGET: usize = 1 << 20;

/// Derived sizes of one conv2d, and how its output rows are split into bands for im2col.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geom {
    /// Rows of the im2col matrix: C_in·KH·KW.
    k: usize,
    oh: usize,
    ow: usize,
    /// Output rows per band (the last band may be shorter).
    band: usize,
    /// 1×1, stride 1, no padding: the input plane *is* the im2col matrix.
    pointwise: bool,
}

impl Geom {
    pub(super) fn new(p: &Conv2dParams, budget: usize) -> Self {
        let (oh, ow) = (p.out_h(), p.out_w());
        let k = p.c_in * p.kh * p.kw;
        let rows = (budget / (k * ow).max(1)).clamp(1, oh.max(1));
        let bands = oh.max(1).div_ceil(rows);
        let pointwise = p.window().is_pointwise();
        Geom {
            k,
            oh,
            ow,
            band: oh.max(1).div_ceil(bands),
            pointwise,
        }
    }
    /// Output rows OH.
    pub(super) fn oh_rows(&self) -> usize {
        self.oh
    }
    pub(super) fn ohw(&self) -> usize {
        self.oh * self.ow
    }
    /// Length of the im2col buffer for one image (none in the pointwise case).
    fn col_len(&self) -> usize {
        if self.pointwise {
            0
        } else {
            self.k * self.band * self.ow
        }
    }
    /// The bands `[y0, y1)` of output rows.
    fn bands(&self) -> impl Iterator<Item = (usize, usize)> {
        let (band, oh) = (self.band, self.oh);
        (0..oh)
            .step_by(band)
            .map(move |y0| (y0, (y0 + band).min(oh)))
    }
}

/// Output positions `o` in `[lo, hi)` whose input coordinate `o·stride + tap − pad` lies in
/// `[0, size)`, clipped to `[0, out)`.
fn valid_range(tap: usize, pad: usize, stride: usize, size: usize, out: usize) -> (usize, usize) {
    let lo = if pad > tap {
        (pad - tap).div_ceil(stride)
    } else {
        0
    };
    let hi = if size + pad > tap {
        (size + pad - tap).div_ceil(stride)
    } else {
        0
    };
    let hi = hi.min(out);
    (lo.min(hi), hi)
}

/// Rayon tasks should touch at least this many elements.
const MIN_TASK_ELEMS: usize = 4096;

/// im2col of output rows `[y0, y1)` of one image `img` (C_in×H×W) into `col`, a row-major
/// `K × ((y1−y0)·OW)` matrix whose row `(c, i, j)` holds `img[c, oy·s_h+i−p_h, ox·s_w+j−p_w]`
/// (zero outside). Parallel over the K rows.
pub(super) fn im2col<T: Float>(
    p: &Conv2dParams,
    g: &Geom,
    img: &[T],
    y0: usize,
    y1: usize,
    col: &mut [T],
) {
    let cols = (y1 - y0) * g.ow;
    let (khw, hw) = (p.kh * p.kw, p.h * p.w);
    let min_len = (MIN_TASK_ELEMS / cols).max(1);
    col[..g.k * cols]
        .par_chunks_mut(cols)
        .with_min_len(min_len)
        .enumerate()
        .for_each(|(r, row)| {
            let (c, i, j) = (r / khw, (r / p.kw) % p.kh, r % p.kw);
            let plane = &img[c * hw..(c + 1) * hw];
            let (y_lo, y_hi) = valid_range(i, p.pad_h, p.stride_h, p.h, g.oh);
            let (x_lo, x_hi) = valid_range(j, p.pad_w, p.stride_w, p.w, g.ow);
            for (oy, dst) in (y0..y1).zip(row.chunks_exact_mut(g.ow)) {
                if oy < y_lo || oy >= y_hi {
                    dst.fill(T::ZERO);
                    continue;
                }
                let iy = oy * p.stride_h + i - p.pad_h;
                let src = &plane[iy * p.w..(iy + 1) * p.w];
                dst[..x_lo].fill(T::ZERO);
                dst[x_hi..].fill(T::ZERO);
                if p.stride_w == 1 {
                    let start = x_lo + j - p.pad_w;
                    dst[x_lo..x_hi].copy_from_slice(&src[start..start + (x_hi - x_lo)]);
                } else {
                    for (ox, d) in (x_lo..x_hi).zip(&mut dst[x_lo..x_hi]) {
                        *d = src[ox * p.stride_w + j - p.pad_w];
                    }
                }
            }
        });
}

/// The adjoint of [`im2col`] for output rows `[y0, y1)`: adds every entry of `col` into the
/// input-gradient position it was gathered from. Written as a gather per input row, so that it
/// is parallel over the C_in·H rows of `grad_img` with no write conflicts.
pub(super) fn col2im_add<T: Float>(
    p: &Conv2dParams,
    g: &Geom,
    col: &[T],
    y0: usize,
    y1: usize,
    grad_img: &mut [T],
) {
    let cols = (y1 - y0) * g.ow;
    // The input rows this band reads: [lo, hi) in every channel.
    let lo = (y0 * p.stride_h).saturating_sub(p.pad_h).min(p.h);
    let hi = ((y1 - 1) * p.stride_h + p.kh)
        .saturating_sub(p.pad_h)
        .clamp(lo, p.h);
    let min_len = (MIN_TASK_ELEMS / (p.w * p.kh * p.kw).max(1)).max(1);
    let add_row = |c: usize, iy: usize, dst: &mut [T]| {
        for i in 0..p.kh {
            // Output row oy reads input row iy through tap i when oy·s_h + i − p_h = iy.
            let Some(t) = (iy + p.pad_h).checked_sub(i) else {
                continue;
            };
            if t % p.stride_h != 0 || t / p.stride_h < y0 || t / p.stride_h >= y1 {
                continue;
            }
            let oy = t / p.stride_h;
            for j in 0..p.kw {
                let r = (c * p.kh + i) * p.kw + j;
                let src = &col[r * cols + (oy - y0) * g.ow..][..g.ow];
                let (x_lo, x_hi) = valid_range(j, p.pad_w, p.stride_w, p.w, g.ow);
                if p.stride_w == 1 {
                    let start = x_lo + j - p.pad_w;
                    let d = &mut dst[start..start + (x_hi - x_lo)];
                    for (d, s) in d.iter_mut().zip(&src[x_lo..x_hi]) {
                        *d += *s;
                    }
                } else {
                    for (ox, s) in (x_lo..x_hi).zip(&src[x_lo..x_hi]) {
                        dst[ox * p.stride_w + j - p.pad_w] += *s;
                    }
                }
            }
        }
    };
    grad_img
        .par_chunks_mut(p.h * p.w)
        .enumerate()
        .for_each(|(c, plane)| {
            plane[lo * p.w..hi * p.w]
                .par_chunks_mut(p.w)
                .with_min_len(min_len)
                .enumerate()
                .for_each(|(k, dst)| add_row(c, lo + k, dst))
        });
}

/// Runs `f(image index, that image's chunk of `per_image` elements of `data`, im2col buffer)` for
/// every image: in parallel over the batch (one buffer per rayon task) when N > 1, else on the
/// calling thread with one buffer (the kernels inside are parallel themselves).
fn per_image<T, F>(pool: &BufferPool, data: &mut [T], per_image: usize, col_len: usize, f: F)
where
    T: Float,
    F: Fn(usize, &mut [T], &mut [T]) + Sync + Send,
{
    if data.len() > per_image && rayon::current_num_threads() > 1 {
        data.par_chunks_mut(per_image).enumerate().for_each_init(
            || vec![T::ZERO; col_len],
            |col, (img, chunk)| f(img, chunk, col),
        );
    } else {
        let mut col = pool.zeroed::<T>(col_len);
        for (img, chunk) in data.chunks_mut(per_image).enumerate() {
            f(img, chunk, &mut col);
        }
        pool.recycle(col);
    }
}

/// View of output rows `[y0, y1)` of a C×OH×OW map (starting at row y0's offset) as a C × band
/// matrix.
fn band_layout(rows: usize, g: &Geom, y0: usize, y1: usize) -> MatLayout {
    MatLayout {
        rows,
        cols: (y1 - y0) * g.ow,
        rs: g.ohw(),
        cs: 1,
    }
}

fn check_lens(op: &str, p: &Conv2dParams, lens: &[(&str, usize, usize)]) {
    for &(name, got, want) in lens {
        assert_eq!(
            got, want,
            "{op}: {name} has {got} elements, expected {want} for {p:?}"
        );
    }
}

/// Sum of a slice with 8 independent accumulators (vectorises, and is more accurate than one
/// running sum).
fn sum_lanes<T: Float>(x: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let chunks = x.chunks_exact(8);
    let tail: T = chunks.remainder().iter().copied().sum();
    for ch in chunks {
        for (a, v) in acc.iter_mut().zip(ch) {
            *a += *v;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `out[n,o,y,x] = bias[o] + Σ_{c,i,j} input[n,c,y·s_h+i−p_h, x·s_w+j−p_w] · weight[o,c,i,j]`
/// (zero outside the input, or its mirror image with [`PadMode::Reflect`]). `out` is
/// overwritten.
///
/// # Panics
/// If a length disagrees with `p`, or on reflect padding where [`reflect_supported`] is false.
pub fn conv2d_forward<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    forward_act(pool, p, input, weight, bias, out, false)
}

/// [`conv2d_forward`] followed by ReLU (`out = max(0, conv)`), fused into the store where the
/// convolution goes through packed panels (VGG-19's conv1_1), else one pass over `out`.
pub fn conv2d_forward_relu<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    forward_act(pool, p, input, weight, bias, out, true)
}

/// Whether [`conv2d_forward`] can run `p`: it does not mirror (zero padding, or none), or it
/// does and reads the reflection in place: a one-group convolution on the panel path (C_out a multiple of 8, OW ≥ 32) with
/// each pad smaller than the input's side, unless the padded input would take the direct
/// kernel, which is faster than the panels even counting the padded copy (the style
/// networks' 9×9 3→32 layer: 6.8 ms with the copy, 11.5 ms in place at 512×384).
/// (Winograd's 3×3 stride-1 layers read it too:
/// [`conv3x3_winograd_reflect`](super::winograd::conv3x3_winograd_reflect).)
pub fn reflect_supported<T: Float>(p: &Conv2dParams) -> bool {
    !p.mirrors()
        || (p.groups == 1
            && p.pad_h < p.h
            && p.pad_w < p.w
            && !direct::applies::<T>(&p.padded_first())
            && panel::applies(p))
}

/// The input index read at padded position `i` (negative left of or above the input) of an
/// axis of `n`: `i` itself inside; outside, its mirror with [`PadMode::Reflect`]
/// (`−1 → 1`, `n → n − 2`; |overhang| < n) or `None` (a zero) with [`PadMode::Zero`].
#[inline(always)]
fn source_index(i: isize, n: usize, mode: PadMode) -> Option<usize> {
    let n = n as isize;
    if (0..n).contains(&i) {
        return Some(i as usize);
    }
    match mode {
        PadMode::Zero => None,
        PadMode::Reflect => {
            let r = if i < 0 { -i } else { 2 * (n - 1) - i };
            debug_assert!(
                (0..n).contains(&r),
                "reflect padding of {i} beyond an axis of {n}"
            );
            Some(r as usize)
        }
    }
}

/// Panics on reflect padding the backward passes would take for zeros.
fn assert_zero_padding(op: &str, p: &Conv2dParams) {
    assert!(
        !p.mirrors(),
        "{op}: reflect padding has no backward here (pad2d, then conv2d): {p:?}"
    );
}

/// [`conv2d_forward`], then ReLU when `relu`.
fn forward_act<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    relu: bool,
) {
    assert!(
        reflect_supported::<T>(p),
        "conv2d: reflect padding on a path that pads with zeros: {p:?}"
    );
    if p.groups > 1 {
        grouped::forward(pool, p, input, weight, bias, out);
        if relu {
            relu_in_place(out);
        }
        return;
    }
    forward_impl(pool, p, input, weight, bias, out, COL_BUDGET, relu)
}

/// `v = max(0, v)` over `out`, in parallel.
fn relu_in_place<T: Float>(out: &mut [T]) {
    super::elementwise::unary_in_place(out, |v| v.max(T::ZERO));
}

fn check_forward_lens<T>(
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &[T],
) {
    check_lens(
        "conv2d_forward",
        p,
        &[
            ("input", input.len(), p.input_len()),
            ("weight", weight.len(), p.weight_len()),
            ("out", out.len(), p.output_len()),
            ("bias", bias.map_or(p.c_out, |b| b.len()), p.c_out),
        ],
    );
}

/// One group's forward by the first algorithm that applies (direct, packed panels, im2col
/// bands of `budget`), then ReLU when `relu` (inside the panels' store, else one pass).
#[allow(clippy::too_many_arguments)]
fn forward_impl<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    budget: usize,
    relu: bool,
) {
    check_forward_lens(p, input, weight, bias, out);
    if direct::applies::<T>(p) {
        direct::forward(p, input, weight, bias, out);
    } else if panel::applies(p) {
        return panel::forward(p, input, weight, bias, out, relu);
    } else {
        im2col_forward(pool, p, input, weight, bias, out, budget);
    }
    if relu {
        relu_in_place(out);
    }
}

/// [`forward_impl`] by im2col bands of `budget` bytes and GEMM (lengths checked).
fn im2col_forward<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
    budget: usize,
) {
    let g = Geom::new(p, budget);
    let (in_per, out_per) = (p.c_in * p.h * p.w, p.c_out * g.ohw());
    if out_per == 0 {
        return;
    }
    let lw = MatLayout::row_major(p.c_out, g.k);
    per_image(pool, out, out_per, g.col_len(), |img, out_n, col| {
        let x = &input[img * in_per..(img + 1) * in_per];
        let beta = match bias {
            Some(b) => {
                let min_len = (MIN_TASK_ELEMS / g.ohw()).max(1);
                out_n
                    .par_chunks_mut(g.ohw())
                    .with_min_len(min_len)
                    .zip(b)
                    .for_each(|(row, &v)| row.fill(v));
                T::ONE
            }
            None => T::ZERO,
        };
        if g.pointwise {
            let lx = MatLayout::row_major(g.k, g.ohw());
            gemm(
                T::ONE,
                weight,
                lw,
                x,
                lx,
                beta,
                out_n,
                MatLayout::row_major(p.c_out, g.ohw()),
            );
            return;
        }
        for (y0, y1) in g.bands() {
            let cols = (y1 - y0) * g.ow;
            im2col(p, &g, x, y0, y1, col);
            let lc = MatLayout::row_major(g.k, cols);
            gemm(
                T::ONE,
                weight,
                lw,
                &col[..g.k * cols],
                lc,
                beta,
                &mut out_n[y0 * g.ow..],
                band_layout(p.c_out, &g, y0, y1),
            );
        }
    });
}

/// Input gradient of `grad_out · [mask > 0]` (`mask`: the output of a ReLU that follows the
/// convolution, same shape as `grad_out`; `None`: [`conv2d_backward_input`]). Few input
/// channels with stride 1 (VGG-19's conv1_1) go through packed panels with the mask applied on
/// the way in ([`panel_grad`]); other shapes through a masked copy and
/// [`conv2d_backward_input`]. `grad_in` is overwritten.
///
/// # Panics
/// If a length disagrees with `p` (as [`conv2d_backward_input`]; `mask` as `grad_out`).
pub fn conv2d_backward_input_masked<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    grad_out: &[T],
    mask: Option<&[T]>,
    weight: &[T],
    grad_in: &mut [T],
) {
    check_lens(
        "conv2d_backward_input",
        p,
        &[
            ("grad_out", grad_out.len(), p.output_len()),
            (
                "mask",
                mask.map_or(p.output_len(), |m| m.len()),
                p.output_len(),
            ),
            ("weight", weight.len(), p.weight_len()),
            ("grad_in", grad_in.len(), p.input_len()),
        ],
    );
    assert_zero_padding("conv2d_backward_input", p);
    if panel_grad::applies::<T>(p) {
        return panel_grad::backward_input(p, grad_out, mask, weight, grad_in);
    }
    match mask {
        Some(y) => {
            let mut gm = vec![T::ZERO; grad_out.len()];
            super::elementwise::relu_backward(grad_out, y, &mut gm);
            conv2d_backward_input(pool, p, &gm, weight, grad_in)
        }
        None => conv2d_backward_input(pool, p, grad_out, weight, grad_in),
    }
}

/// Input gradient: `grad_in = ∂L/∂input` given `grad_out = ∂L/∂out`. `grad_in` is overwritten.
pub fn conv2d_backward_input<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    grad_out: &[T],
    weight: &[T],
    grad_in: &mut [T],
) {
    assert_zero_padding("conv2d_backward_input", p);
    if p.groups > 1 {
        return grouped::backward_input(pool, p, grad_out, weight, grad_in);
    }
    backward_input_impl(pool, p, grad_out, weight, grad_in, COL_BUDGET)
}

fn backward_input_impl<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    grad_out: &[T],
    weight: &[T],
    grad_in: &mut [T],
    budget: usize,
) {
    check_lens(
        "conv2d_backward_input",
        p,
        &[
            ("grad_out", grad_out.len(), p.output_len()),
            ("weight", weight.len(), p.weight_len()),
            ("grad_in", grad_in.len(), p.input_len()),
        ],
    );
    let g = Geom::new(p, budget);
    let (in_per, out_per) = (p.c_in * p.h * p.w, p.c_out * g.ohw());
    if in_per == 0 {
        return;
    }
    // grad_col (K × cols) = Wᵀ (K × C_out) · grad_out band (C_out × cols).
    let lwt = MatLayout::row_major(p.c_out, g.k).t();
    per_image(pool, grad_in, in_per, g.col_len(), |img, gin, col| {
        let go = &grad_out[img * out_per..(img + 1) * out_per];
        if g.pointwise {
            let lgo = MatLayout::row_major(p.c_out, g.ohw());
            gemm(
                T::ONE,
                weight,
                lwt,
                go,
                lgo,
                T::ZERO,
                gin,
                MatLayout::row_major(g.k, g.ohw()),
            );
            return;
        }
        gin.fill(T::ZERO);
        for (y0, y1) in g.bands() {
            let cols = (y1 - y0) * g.ow;
            let lgo = band_layout(p.c_out, &g, y0, y1);
            let lc = MatLayout::row_major(g.k, cols);
            gemm(
                T::ONE,
                weight,
                lwt,
                &go[y0 * g.ow..],
                lgo,
                T::ZERO,
                &mut col[..g.k * cols],
                lc,
            );
            col2im_add(p, &g, col, y0, y1, gin);
        }
    });
}

/// Weight gradient: `grad_w = ∂L/∂weight` (C_out×(C_in/groups)×KH×KW). `grad_w` is
/// overwritten.
pub fn conv2d_backward_weight<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    grad_out: &[T],
    grad_w: &mut [T],
) {
    assert_zero_padding("conv2d_backward_weight", p);
    if p.groups > 1 {
        return grouped::backward_weight(pool, p, input, grad_out, grad_w);
    }
    backward_weight_impl(pool, p, input, grad_out, grad_w, COL_BUDGET)
}

fn backward_weight_impl<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    grad_out: &[T],
    grad_w: &mut [T],
    budget: usize,
) {
    check_lens(
        "conv2d_backward_weight",
        p,
        &[
            ("input", input.len(), p.input_len()),
            ("grad_out", grad_out.len(), p.output_len()),
            ("grad_w", grad_w.len(), p.weight_len()),
        ],
    );
    let g = Geom::new(p, budget);
    let (in_per, out_per) = (p.c_in * p.h * p.w, p.c_out * g.ohw());
    if p.n == 0 || out_per == 0 {
        grad_w.fill(T::ZERO);
        return;
    }
    let lgw = MatLayout::row_major(p.c_out, g.k);
    // grad_w (C_out × K) += grad_out band (C_out × cols) · colᵀ (cols × K); `beta` is zero for
    // the first product into `gw`, which therefore needs no clearing.
    let one_image = |img: usize, gw: &mut [T], col: &mut [T], mut beta: T| {
        let x = &input[img * in_per..(img + 1) * in_per];
        let go = &grad_out[img * out_per..(img + 1) * out_per];
        if g.pointwise {
            let lgo = MatLayout::row_major(p.c_out, g.ohw());
            let lxt = MatLayout::row_major(g.k, g.ohw()).t();
            gemm(T::ONE, go, lgo, x, lxt, beta, gw, lgw);
            return;
        }
        for (y0, y1) in g.bands() {
            let cols = (y1 - y0) * g.ow;
            im2col(p, &g, x, y0, y1, col);
            let lgo = band_layout(p.c_out, &g, y0, y1);
            let lct = MatLayout::row_major(g.k, cols).t();
            gemm(
                T::ONE,
                &go[y0 * g.ow..],
                lgo,
                &col[..g.k * cols],
                lct,
                beta,
                gw,
                lgw,
            );
            beta = T::ONE;
        }
    };
    if p.n > 1 && rayon::current_num_threads() > 1 {
        // Per-task partial sums over a share of the batch, then added together.
        let (wlen, col_len) = (grad_w.len(), g.col_len());
        let total = (0..p.n)
            .into_par_iter()
            .fold(
                || (vec![T::ZERO; col_len], vec![T::ZERO; wlen]),
                |(mut col, mut gw), img| {
                    one_image(img, &mut gw, &mut col, T::ONE);
                    (col, gw)
                },
            )
            .map(|(_, gw)| gw)
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += *b);
                a
            });
        grad_w.copy_from_slice(&total.expect("n > 1 images"));
    } else {
        let mut col = pool.zeroed::<T>(g.col_len());
        for img in 0..p.n {
            let beta = if img == 0 { T::ZERO } else { T::ONE };
            one_image(img, grad_w, &mut col, beta);
        }
        pool.recycle(col);
    }
}

/// Bias gradient: `grad_b[o] = Σ_{n,y,x} grad_out[n,o,y,x]`. `grad_b` is overwritten.
pub fn conv2d_backward_bias<T: Float>(p: &Conv2dParams, grad_out: &[T], grad_b: &mut [T]) {
    check_lens(
        "conv2d_backward_bias",
        p,
        &[
            ("grad_out", grad_out.len(), p.output_len()),
            ("grad_b", grad_b.len(), p.c_out),
        ],
    );
    let ohw = p.out_h() * p.out_w();
    grad_b.par_iter_mut().enumerate().for_each(|(o, gb)| {
        *gb = (0..p.n)
            .map(|img| sum_lanes(&grad_out[(img * p.c_out + o) * ohw..][..ohw]))
            .sum();
    });
}

/// The first pixels of blocks of `width` pixels covering an output row of `ow` ≥ `width`: 0,
/// `width`, …, and a last block ending at `ow` (overlapping its neighbour when `width` does not
/// divide `ow`). Used by the direct and panel forwards.
fn block_starts(ow: usize, width: usize) -> impl Iterator<Item = usize> + Clone {
    (0..ow - width)
        .step_by(width)
        .chain(std::iter::once(ow - width))
}

mod depthwise;
mod direct;
mod grouped;
mod panel;
mod panel_grad;

#[cfg(test)]
mod tests;
