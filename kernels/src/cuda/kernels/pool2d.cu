// 2-D max/avg pooling on NCHW planes, forward and backward. Semantics match
// kernels/src/cpu/pool2d.rs exactly: floor mode; windows clipped to the input; padding never wins
// a max and counts as zero in the average (divisor KH·KW); the first maximum wins ties and a NaN
// wins and stays; argmax is the index y·W + x within the plane, NO_ARGMAX when the window holds no
// input cell. The backward kernels gather (one thread per input cell, outputs visited in
// row-major order, as the CPU loop adds them): no atomics, deterministic.

#define NO_ARGMAX 0xffffffffu

struct PoolGeom { // must match `PoolGeom` in kernels/src/cuda/pool.rs (#[repr(C)], all i64)
    i64 planes, h, w, kh, kw, stride_h, stride_w, pad_h, pad_w, out_h, out_w;
};

// Input cells [lo, hi) along one axis covered by window o (as `window` in cpu/pool2d.rs).
__device__ __forceinline__ void pool_window(i64 o, i64 k, i64 stride, i64 pad, i64 size, i64 *lo, i64 *hi) {
    const i64 start = o * stride;
    i64 l = start - pad;
    l = l < 0 ? 0 : (l > size ? size : l);
    i64 h = start + k - pad;
    h = h < 0 ? 0 : (h > size ? size : h);
    *lo = l;
    *hi = h < l ? l : h;
}

// Outputs [o0, o1] along one axis whose (unclipped) window covers input cell y.
__device__ __forceinline__ void covering_outputs(i64 y, i64 k, i64 stride, i64 pad, i64 out, i64 *o0, i64 *o1) {
    const i64 t = y + pad - k + 1; // first window start that still reaches y
    *o0 = t <= 0 ? 0 : (t + stride - 1) / stride;
    const i64 last = (y + pad) / stride;
    *o1 = last < out - 1 ? last : out - 1;
}

template <typename T>
__device__ void max_pool_fwd_impl(const T *__restrict__ x, T *__restrict__ out,
                                  unsigned int *__restrict__ argmax, const PoolGeom &g) {
    const i64 ohw = g.out_h * g.out_w;
    GRID_STRIDE_LOOP(idx, g.planes * ohw) {
        const i64 ox = idx % g.out_w, oy = (idx / g.out_w) % g.out_h, plane = idx / ohw;
        const T *p = x + plane * g.h * g.w;
        i64 y0, y1, x0, x1;
        pool_window(oy, g.kh, g.stride_h, g.pad_h, g.h, &y0, &y1);
        pool_window(ox, g.kw, g.stride_w, g.pad_w, g.w, &x0, &x1);
        T best = neg_infinity<T>();
        unsigned int arg = NO_ARGMAX;
        for (i64 y = y0; y < y1; ++y) {
            for (i64 xx = x0; xx < x1; ++xx) {
                const T v = p[y * g.w + xx];
                if (arg == NO_ARGMAX || (!is_nan(best) && (v > best || is_nan(v)))) {
                    best = v;
                    arg = (unsigned int)(y * g.w + xx);
                }
            }
        }
        out[idx] = best;
        argmax[idx] = arg;
    }
}

template <typename T>
__device__ void max_pool_bwd_impl(const T *__restrict__ gout, const unsigned int *__restrict__ argmax,
                                  T *__restrict__ gin, const PoolGeom &g) {
    const i64 hw = g.h * g.w, ohw = g.out_h * g.out_w;
    GRID_STRIDE_LOOP(idx, g.planes * hw) {
        const i64 x = idx % g.w, y = (idx / g.w) % g.h, plane = idx / hw;
        const unsigned int me = (unsigned int)(y * g.w + x);
        i64 oy0, oy1, ox0, ox1;
        covering_outputs(y, g.kh, g.stride_h, g.pad_h, g.out_h, &oy0, &oy1);
        covering_outputs(x, g.kw, g.stride_w, g.pad_w, g.out_w, &ox0, &ox1);
        T acc = (T)0;
        for (i64 oy = oy0; oy <= oy1; ++oy) {
            for (i64 ox = ox0; ox <= ox1; ++ox) {
                const i64 k = plane * ohw + oy * g.out_w + ox;
                if (argmax[k] == me) acc += gout[k];
            }
        }
        gin[idx] = acc;
    }
}

template <typename T>
__device__ void avg_pool_fwd_impl(const T *__restrict__ x, T *__restrict__ out, const PoolGeom &g) {
    const i64 ohw = g.out_h * g.out_w;
    const T scale = (T)1 / (T)(g.kh * g.kw);
    GRID_STRIDE_LOOP(idx, g.planes * ohw) {
        const i64 ox = idx % g.out_w, oy = (idx / g.out_w) % g.out_h, plane = idx / ohw;
        const T *p = x + plane * g.h * g.w;
        i64 y0, y1, x0, x1;
        pool_window(oy, g.kh, g.stride_h, g.pad_h, g.h, &y0, &y1);
        pool_window(ox, g.kw, g.stride_w, g.pad_w, g.w, &x0, &x1);
        T s = (T)0;
        for (i64 y = y0; y < y1; ++y)
            for (i64 xx = x0; xx < x1; ++xx) s += p[y * g.w + xx];
        out[idx] = s * scale;
    }
}

template <typename T>
__device__ void avg_pool_bwd_impl(const T *__restrict__ gout, T *__restrict__ gin, const PoolGeom &g) {
    const i64 hw = g.h * g.w, ohw = g.out_h * g.out_w;
    const T scale = (T)1 / (T)(g.kh * g.kw);
    GRID_STRIDE_LOOP(idx, g.planes * hw) {
        const i64 x = idx % g.w, y = (idx / g.w) % g.h, plane = idx / hw;
        i64 oy0, oy1, ox0, ox1;
        covering_outputs(y, g.kh, g.stride_h, g.pad_h, g.out_h, &oy0, &oy1);
        covering_outputs(x, g.kw, g.stride_w, g.pad_w, g.out_w, &ox0, &ox1);
        T acc = (T)0;
        for (i64 oy = oy0; oy <= oy1; ++oy)
            for (i64 ox = ox0; ox <= ox1; ++ox) acc += gout[plane * ohw + oy * g.out_w + ox] * scale;
        gin[idx] = acc;
    }
}

#define POOL(T, SUF)                                                                          \
    extern "C" __global__ void max_pool_fwd_##SUF(const T *x, T *out, unsigned int *argmax,  \
                                                  PoolGeom g) {                              \
        max_pool_fwd_impl<T>(x, out, argmax, g);                                             \
    }                                                                                        \
    extern "C" __global__ void max_pool_bwd_##SUF(const T *gout, const unsigned int *argmax, \
                                                  T *gin, PoolGeom g) {                      \
        max_pool_bwd_impl<T>(gout, argmax, gin, g);                                          \
    }                                                                                        \
    extern "C" __global__ void avg_pool_fwd_##SUF(const T *x, T *out, PoolGeom g) {          \
        avg_pool_fwd_impl<T>(x, out, g);                                                     \
    }                                                                                        \
    extern "C" __global__ void avg_pool_bwd_##SUF(const T *gout, T *gin, PoolGeom g) {       \
        avg_pool_bwd_impl<T>(gout, gin, g);                                                  \
    }

POOL(float, f32)
POOL(double, f64)
