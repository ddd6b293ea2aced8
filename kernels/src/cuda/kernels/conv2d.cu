// conv2d helpers around cuBLAS GEMM: im2col (forward, weight gradient), col2im (input gradient,
// a gather: no atomics, deterministic), bias add and bias gradient. One image (C×H×W) per call;
// `cols` is the row-major (C·KH·KW) × (OH·OW) matrix.

struct ConvGeom { // must match `ConvGeom` in kernels/src/cuda/conv.rs (#[repr(C)], all i64)
    i64 c, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

// Both are laid out as planes: blockIdx.y walks the rows (im2col: the (ci, ky, kx) rows of
// `cols`; col2im: the channels of gx), so each block works out its row's constants once, and
// the x-threads walk the row's positions (OH·OW or H·W, under 2^31 for any image a GEMM takes:
// cuBLAS's dimensions are 32-bit) with one 32-bit division each. Reads and writes are
// coalesced along a row. Launched with launch::planes (grid y capped: rows grid-stride too).
template <typename T>
__device__ void im2col_impl(const T *__restrict__ x, T *__restrict__ cols, const ConvGeom &g) {
    const int out_w = (int)g.out_w, w = (int)g.w, h = (int)g.h;
    const int ohw = (int)(g.out_h * g.out_w);
    const int sh = (int)g.stride_h, sw = (int)g.stride_w;
    const i64 rows = g.c * g.kh * g.kw;
    for (i64 row = blockIdx.y; row < rows; row += gridDim.y) {
        const int kx = (int)(row % g.kw);
        const int ky = (int)((row / g.kw) % g.kh);
        const i64 ci = row / (g.kh * g.kw);
        const T *plane = x + ci * g.h * g.w;
        T *out = cols + row * (i64)ohw;
        const int y0 = ky - (int)g.pad_h, x0 = kx - (int)g.pad_w;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < ohw; p += blockDim.x * gridDim.x) {
            const int oy = p / out_w, ox = p - oy * out_w;
            const int y = oy * sh + y0, xx = ox * sw + x0;
            out[p] = (y >= 0 && y < h && xx >= 0 && xx < w) ? plane[y * w + xx] : (T)0;
        }
    }
}

// gx[ci, y, x] = Σ over (ky, kx) whose window position lands on (y, x) of cols[(ci,ky,kx), (oy,ox)],
// taps in (ky, kx) order (a gather: no atomics, deterministic).
template <typename T>
__device__ void col2im_impl(const T *__restrict__ cols, T *__restrict__ gx, const ConvGeom &g) {
    const int out_w = (int)g.out_w, out_h = (int)g.out_h, w = (int)g.w;
    const int hw = (int)(g.h * g.w), ohw = out_h * out_w;
    const int kh = (int)g.kh, kw = (int)g.kw, sh = (int)g.stride_h, sw = (int)g.stride_w;
    const int ph = (int)g.pad_h, pw = (int)g.pad_w;
    for (i64 ci = blockIdx.y; ci < g.c; ci += gridDim.y) {
        const T *crow = cols + ci * g.kh * g.kw * (i64)ohw;
        for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < hw; p += blockDim.x * gridDim.x) {
            const int y = p / w, x = p - y * w;
            T acc = (T)0;
            for (int ky = 0; ky < kh; ++ky) {
                const int ty = y + ph - ky;
                if (ty < 0) continue;
                const int oy = ty / sh;
                if (oy * sh != ty || oy >= out_h) continue;
                for (int kx = 0; kx < kw; ++kx) {
                    const int tx = x + pw - kx;
                    if (tx < 0) continue;
                    const int ox = tx / sw;
                    if (ox * sw != tx || ox >= out_w) continue;
                    acc += crow[(i64)(ky * kw + kx) * ohw + oy * out_w + ox];
                }
            }
            gx[ci * hw + p] = acc;
        }
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
