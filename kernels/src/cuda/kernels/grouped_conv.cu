// Grouped conv2d (groups > 1, depthwise included) as direct kernels, the semantics of
// kernels/src/cpu/conv2d.rs with `groups`: output channel oc of group k = oc / (O/g) sees input
// channels [k·C/g, (k+1)·C/g) with weight oc × (C/g) × KH × KW. A group has few channels, so
// a direct loop beats im2col + GEMM per group. The forward and input gradient are one thread
// per output / input cell (the input gradient gathers: no atomics); the weight gradient is one
// block of REDUCE_THREADS threads per weight, summed with block_sum (deterministic).

struct GConvGeom { // must match `GConvGeom` in kernels/src/cuda/grouped_conv.rs (all i64)
    i64 n, c, h, w, o, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w, groups;
};

template <typename T>
__device__ void gconv_fwd_impl(const T *__restrict__ x, const T *__restrict__ wt,
                               const T *__restrict__ bias, T *__restrict__ out, int has_bias,
                               const GConvGeom &g) {
    const i64 cg = g.c / g.groups, og = g.o / g.groups, ohw = g.out_h * g.out_w;
    GRID_STRIDE_LOOP(idx, g.n * g.o * ohw) {
        const i64 ox = idx % g.out_w, oy = (idx / g.out_w) % g.out_h;
        const i64 oc = (idx / ohw) % g.o, n = idx / (ohw * g.o);
        const i64 c0 = (oc / og) * cg;
        T acc = has_bias ? bias[oc] : (T)0;
        for (i64 cc = 0; cc < cg; ++cc) {
            const T *plane = x + ((n * g.c + c0 + cc) * g.h) * g.w;
            const T *k = wt + (oc * cg + cc) * g.kh * g.kw;
            for (i64 i = 0; i < g.kh; ++i) {
                const i64 y = oy * g.stride_h - g.pad_h + i;
                if (y < 0 || y >= g.h) continue;
                for (i64 j = 0; j < g.kw; ++j) {
                    const i64 xx = ox * g.stride_w - g.pad_w + j;
                    if (xx < 0 || xx >= g.w) continue;
                    acc += plane[y * g.w + xx] * k[i * g.kw + j];
                }
            }
        }
        out[idx] = acc;
    }
}

// gin[n, ci, y, x] = Σ over the group's output channels oc and taps (i, j) with
// oy·s_h − p_h + i = y and ox·s_w − p_w + j = x of gout[n, oc, oy, ox] · w[oc, ci mod C/g, i, j].
template <typename T>
__device__ void gconv_bwd_input_impl(const T *__restrict__ gout, const T *__restrict__ wt,
                                     T *__restrict__ gin, const GConvGeom &g) {
    const i64 cg = g.c / g.groups, og = g.o / g.groups, hw = g.h * g.w;
    GRID_STRIDE_LOOP(idx, g.n * g.c * hw) {
        const i64 x = idx % g.w, y = (idx / g.w) % g.h;
        const i64 ci = (idx / hw) % g.c, n = idx / (hw * g.c);
        const i64 k0 = (ci / cg) * og, cc = ci % cg;
        T acc = (T)0;
        for (i64 oc = k0; oc < k0 + og; ++oc) {
            const T *plane = gout + ((n * g.o + oc) * g.out_h) * g.out_w;
            const T *k = wt + (oc * cg + cc) * g.kh * g.kw;
            for (i64 i = 0; i < g.kh; ++i) {
                const i64 ty = y + g.pad_h - i;
                if (ty < 0 || ty % g.stride_h != 0) continue;
                const i64 oy = ty / g.stride_h;
                if (oy >= g.out_h) continue;
                for (i64 j = 0; j < g.kw; ++j) {
                    const i64 tx = x + g.pad_w - j;
                    if (tx < 0 || tx % g.stride_w != 0) continue;
                    const i64 ox = tx / g.stride_w;
                    if (ox >= g.out_w) continue;
                    acc += plane[oy * g.out_w + ox] * k[i * g.kw + j];
                }
            }
        }
        gin[idx] = acc;
    }
}

// gw[oc, cc, i, j] = Σ_{n, oy, ox} gout[n, oc, oy, ox] · x[n, ci, oy·s_h − p_h + i, ox·s_w − p_w + j]
// with ci = group(oc)·C/g + cc: one block per weight (grid-stride over weights).
template <typename T>
__device__ void gconv_bwd_weight_impl(const T *__restrict__ x, const T *__restrict__ gout,
                                      T *__restrict__ gw, const GConvGeom &g) {
    __shared__ T shared[REDUCE_THREADS];
    const i64 cg = g.c / g.groups, og = g.o / g.groups, ohw = g.out_h * g.out_w;
    const i64 nweights = g.o * cg * g.kh * g.kw;
    for (i64 widx = blockIdx.x; widx < nweights; widx += gridDim.x) {
        const i64 j = widx % g.kw, i = (widx / g.kw) % g.kh;
        const i64 cc = (widx / (g.kw * g.kh)) % cg, oc = widx / (g.kw * g.kh * cg);
        const i64 ci = (oc / og) * cg + cc;
        T acc = (T)0;
        for (i64 t = threadIdx.x; t < g.n * ohw; t += REDUCE_THREADS) {
            const i64 n = t / ohw, ox = t % g.out_w, oy = (t / g.out_w) % g.out_h;
            const i64 y = oy * g.stride_h - g.pad_h + i, xx = ox * g.stride_w - g.pad_w + j;
            if (y < 0 || y >= g.h || xx < 0 || xx >= g.w) continue;
            acc += gout[(n * g.o + oc) * ohw + oy * g.out_w + ox] *
                   x[((n * g.c + ci) * g.h + y) * g.w + xx];
        }
        const T total = block_sum<T>(acc, shared);
        if (threadIdx.x == 0) gw[widx] = total;
    }
}

#define GROUPED_CONV(T, SUF)                                                                  \
    extern "C" __global__ void gconv_fwd_##SUF(const T *x, const T *w, const T *bias, T *out, \
                                               int has_bias, GConvGeom g) {                  \
        gconv_fwd_impl<T>(x, w, bias, out, has_bias, g);                                     \
    }                                                                                        \
    extern "C" __global__ void gconv_bwd_input_##SUF(const T *gout, const T *w, T *gin,      \
                                                     GConvGeom g) {                          \
        gconv_bwd_input_impl<T>(gout, w, gin, g);                                            \
    }                                                                                        \
    extern "C" __global__ void gconv_bwd_weight_##SUF(const T *x, const T *gout, T *gw,      \
                                                      GConvGeom g) {                         \
        gconv_bwd_weight_impl<T>(x, gout, gw, g);                                            \
    }

GROUPED_CONV(float, f32)
GROUPED_CONV(double, f64)
