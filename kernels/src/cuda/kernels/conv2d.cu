// conv2d helpers around cuBLAS GEMM: im2col (forward, weight gradient), col2im (input gradient,
// a gather: no atomics, deterministic), bias add and bias gradient. One image (C×H×W) per call;
// `cols` is the row-major (C·KH·KW) × (OH·OW) matrix.

struct ConvGeom { // must match `ConvGeom` in kernels/src/cuda/conv.rs (#[repr(C)], all i64)
    i64 c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

template <typename T>
__device__ void im2col_impl(const T *__restrict__ x, T *__restrict__ cols, const ConvGeom &g) {
    const i64 ohw = g.out_h * g.out_w;
    const i64 n = g.c * g.kh * g.kw * ohw;
    GRID_STRIDE_LOOP(idx, n) {
        const i64 ox = idx % g.out_w;
        const i64 oy = (idx / g.out_w) % g.out_h;
        const i64 row = idx / ohw;
        const i64 kx = row % g.kw;
        const i64 ky = (row / g.kw) % g.kh;
        const i64 ci = row / (g.kh * g.kw);
        const i64 y = oy * g.stride_h - g.pad_h + ky;
        const i64 xx = ox * g.stride_w - g.pad_w + kx;
        cols[idx] = (y >= 0 && y < g.h && xx >= 0 && xx < g.w) ? x[(ci * g.h + y) * g.w + xx] : (T)0;
    }
}

// gx[ci, y, x] = Σ over (ky, kx) whose window position lands on (y, x) of cols[(ci,ky,kx), (oy,ox)].
template <typename T>
__device__ void col2im_impl(const T *__restrict__ cols, T *__restrict__ gx, const ConvGeom &g) {
    const i64 ohw = g.out_h * g.out_w;
    const i64 n = g.c * g.h * g.w;
    GRID_STRIDE_LOOP(idx, n) {
        const i64 x = idx % g.w;
        const i64 y = (idx / g.w) % g.h;
        const i64 ci = idx / (g.h * g.w);
        T acc = (T)0;
        for (i64 ky = 0; ky < g.kh; ++ky) {
            const i64 ty = y + g.pad_h - ky;
            if (ty < 0 || ty % g.stride_h != 0) continue;
            const i64 oy = ty / g.stride_h;
            if (oy >= g.out_h) continue;
            for (i64 kx = 0; kx < g.kw; ++kx) {
                const i64 tx = x + g.pad_w - kx;
                if (tx < 0 || tx % g.stride_w != 0) continue;
                const i64 ox = tx / g.stride_w;
                if (ox >= g.out_w) continue;
                acc += cols[((ci * g.kh + ky) * g.kw + kx) * ohw + oy * g.out_w + ox];
            }
        }
        gx[idx] = acc;
    }
}

// out[b, o, p] += bias[o] over an N×O×(OH·OW) output (n = N·O·OH·OW).
template <typename T>
__device__ void bias_add_impl(T *out, const T *__restrict__ bias, i64 n, i64 channels, i64 plane) {
    GRID_STRIDE_LOOP(i, n) { out[i] += bias[(i / plane) % channels]; }
}

// gb[o] = Σ_{b,p} g[b, o, p]: one block per channel (grid-stride over channels), fixed order.
template <typename T>
__device__ void bias_grad_impl(const T *__restrict__ g, T *gb, i64 batch, i64 channels, i64 plane) {
    __shared__ T shared[REDUCE_THREADS];
    const i64 per = batch * plane;
    for (i64 o = blockIdx.x; o < channels; o += gridDim.x) {
        T acc = (T)0;
        for (i64 j = threadIdx.x; j < per; j += REDUCE_THREADS) {
            const i64 b = j / plane, p = j % plane;
            acc += g[(b * channels + o) * plane + p];
        }
        T total = block_sum<T>(acc, shared);
        if (threadIdx.x == 0) gb[o] = total;
    }
}

#define CONV(T, SUF)                                                                          \
    extern "C" __global__ void im2col_##SUF(const T *x, T *cols, ConvGeom g) {               \
        im2col_impl<T>(x, cols, g);                                                          \
    }                                                                                        \
    extern "C" __global__ void col2im_##SUF(const T *cols, T *gx, ConvGeom g) {              \
        col2im_impl<T>(cols, gx, g);                                                         \
    }                                                                                        \
    extern "C" __global__ void bias_add_##SUF(T *out, const T *bias, i64 n, i64 channels,    \
                                              i64 plane) {                                   \
        bias_add_impl<T>(out, bias, n, channels, plane);                                     \
    }                                                                                        \
    extern "C" __global__ void bias_grad_##SUF(const T *g, T *gb, i64 batch, i64 channels,   \
                                               i64 plane) {                                  \
        bias_grad_impl<T>(g, gb, batch, channels, plane);                                    \
    }

CONV(float, f32)
CONV(double, f64)
