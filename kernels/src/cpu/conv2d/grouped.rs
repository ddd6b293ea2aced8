//! Grouped conv2d (`groups` g > 1): group k's output channels `[k·O/g, (k+1)·O/g)` convolve
//! input channels `[k·C/g, (k+1)·C/g)` with their own weights, as PyTorch's `groups`. Depthwise
//! convolutions (g = C = O) take the direct kernel of `depthwise.rs`; every other grouping runs
//! each (image, group) through the im2col + GEMM code of the parent module (the group's
//! channels are contiguous within an image, so no copies), and the weight gradient gathers each
//! group's channels over the batch once.

use super::depthwise;
use super::{
    backward_input_impl, backward_weight_impl, check_forward_lens, check_lens, forward_impl,
    Conv2dParams, COL_BUDGET,
};
use crate::cpu::buffers::BufferPool;
use crate::cpu::Float;

/// The parameters of one group of one image: an ordinary convolution of C/g → O/g channels.
fn group_params(p: &Conv2dParams, n: usize) -> Conv2dParams {
    Conv2dParams {
        n,
        c_in: p.c_in_per_group(),
        c_out: p.c_out / p.groups,
        groups: 1,
        ..*p
    }
}

/// Element counts of one group: (input C/g·H·W, output O/g·OH·OW, weight O/g·C/g·KH·KW).
fn group_lens(p: &Conv2dParams) -> (usize, usize, usize) {
    let gp = group_params(p, 1);
    (gp.input_len(), gp.output_len(), gp.weight_len())
}

pub(super) fn forward<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    check_forward_lens(p, input, weight, bias, out);
    if p.is_depthwise() {
        return depthwise::forward(p, input, weight, bias, out);
    }
    let gp = group_params(p, 1);
    let (in_g, out_g, w_g) = group_lens(p);
    let og = gp.c_out;
    for img in 0..p.n {
        for k in 0..p.groups {
            let at = img * p.groups + k;
            let b = bias.map(|b| &b[k * og..(k + 1) * og]);
            let (x, w) = (&input[at * in_g..][..in_g], &weight[k * w_g..][..w_g]);
            let o = &mut out[at * out_g..][..out_g];
            forward_impl(pool, &gp, x, w, b, o, COL_BUDGET, false);
        }
    }
}

pub(super) fn backward_input<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    grad_out: &[T],
    weight: &[T],
    grad_in: &mut [T],
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
    if p.is_depthwise() {
        return depthwise::backward_input(p, grad_out, weight, grad_in);
    }
    let gp = group_params(p, 1);
    let (in_g, out_g, w_g) = group_lens(p);
    for at in 0..p.n * p.groups {
        let k = at % p.groups;
        let (go, w) = (&grad_out[at * out_g..][..out_g], &weight[k * w_g..][..w_g]);
        let gi = &mut grad_in[at * in_g..][..in_g];
        backward_input_impl(pool, &gp, go, w, gi, COL_BUDGET);
    }
}

/// Group `k`'s channels of every image, gathered: N × (per-image chunk `len` at group offset).
fn gather<T: Float>(data: &[T], n: usize, groups: usize, k: usize, len: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(n * len);
    for img in 0..n {
        v.extend_from_slice(&data[(img * groups + k) * len..][..len]);
    }
    v
}

pub(super) fn backward_weight<T: Float>(
    pool: &BufferPool,
    p: &Conv2dParams,
    input: &[T],
    grad_out: &[T],
    grad_w: &mut [T],
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
    if p.is_depthwise() {
        return depthwise::backward_weight(p, input, grad_out, grad_w);
    }
    let gp = group_params(p, p.n);
    let (in_g, out_g, w_g) = group_lens(p);
    for (k, gw) in grad_w.chunks_exact_mut(w_g).enumerate() {
        if p.n == 1 {
            let (x, go) = (&input[k * in_g..][..in_g], &grad_out[k * out_g..][..out_g]);
            backward_weight_impl(pool, &gp, x, go, gw, COL_BUDGET);
        } else {
            let x = gather(input, p.n, p.groups, k, in_g);
            let go = gather(grad_out, p.n, p.groups, k, out_g);
            backward_weight_impl(pool, &gp, &x, &go, gw, COL_BUDGET);
        }
    }
}
