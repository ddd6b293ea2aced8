// Spatial re-indexing of NCHW planes, as kernels/src/cpu/spatial.rs: 2-D padding (zero or
// reflect, per side) and nearest upsampling by an integer factor, forward and backward. The
// backward kernels gather (one thread per input cell, its copies visited in a fixed order): no
// atomics, deterministic.

#define PAD_ZERO 0
#define PAD_REFLECT 1

struct PadGeom { // must match `PadGeom` in kernels/src/cuda/spatial.rs (#[repr(C)], all i64)
    i64 planes, h, w, top, bottom, left, right, mode;
};

// Input index read by output index o along one axis (as `pad_source`), -1 for a zero cell.
__device__ __forceinline__ i64 pad_source(i64 o, i64 pad, i64 size, i64 mode) {
    i64 i = o - pad;
    if (i >= 0 && i < size) return i;
    if (mode == PAD_ZERO) return -1;
    return i < 0 ? -i : 2 * (size - 1) - i;
}

// The output indices along one axis that read input index i: the direct copy, then (reflect)
// the mirror before and the mirror after. Returns how many (1..3) were written to o[].
__device__ __forceinline__ int pad_copies(i64 i, i64 pad_lo, i64 pad_hi, i64 size, i64 mode,
                                          i64 o[3]) {
    int n = 0;
    o[n++] = i + pad_lo;
    if (mode == PAD_REFLECT) {
        if (i >= 1 && i <= pad_lo) o[n++] = pad_lo - i;
        const i64 after = pad_lo + 2 * (size - 1) - i; // reads i from beyond the last cell
        if (i <= size - 2 && after < pad_lo + size + pad_hi) o[n++] = after;
    }
    return n;
}

template <typename T>
__device__ void pad_fwd_impl(const T *__restrict__ x, T *__restrict__ out, const PadGeom &g) {
    const i64 oh = g.top + g.h + g.bottom, ow = g.left + g.w + g.right;
    GRID_STRIDE_LOOP(idx, g.planes * oh * ow) {
        const i64 ox = idx % ow, oy = (idx / ow) % oh, plane = idx / (oh * ow);
        const i64 sy = pad_source(oy, g.top, g.h, g.mode), sx = pad_source(ox, g.left, g.w, g.mode);
        out[idx] = (sy < 0 || sx < 0) ? (T)0 : x[(plane * g.h + sy) * g.w + sx];
    }
}

template <typename T>
__device__ void pad_bwd_impl(const T *__restrict__ gout, T *__restrict__ gin, const PadGeom &g) {
    const i64 oh = g.top + g.h + g.bottom, ow = g.left + g.w + g.right;
    GRID_STRIDE_LOOP(idx, g.planes * g.h * g.w) {
        const i64 x = idx % g.w, y = (idx / g.w) % g.h, plane = idx / (g.h * g.w);
        i64 oys[3], oxs[3];
        const int ny = pad_copies(y, g.top, g.bottom, g.h, g.mode, oys);
        const int nx = pad_copies(x, g.left, g.right, g.w, g.mode, oxs);
        const T *p = gout + plane * oh * ow;
        T acc = (T)0;
        for (int a = 0; a < ny; ++a)
            for (int b = 0; b < nx; ++b) acc += p[oys[a] * ow + oxs[b]];
        gin[idx] = acc;
    }
}

template <typename T>
__device__ void upsample_fwd_impl(const T *__restrict__ x, T *__restrict__ out, i64 planes,
                                  i64 h, i64 w, i64 s) {
    const i64 oh = h * s, ow = w * s;
    GRID_STRIDE_LOOP(idx, planes * oh * ow) {
        const i64 ox = idx % ow, oy = (idx / ow) % oh, plane = idx / (oh * ow);
        out[idx] = x[(plane * h + oy / s) * w + ox / s];
    }
}

template <typename T>
__device__ void upsample_bwd_impl(const T *__restrict__ gout, T *__restrict__ gin, i64 planes,
                                  i64 h, i64 w, i64 s) {
    const i64 ow = w * s;
    GRID_STRIDE_LOOP(idx, planes * h * w) {
        const i64 x = idx % w, y = (idx / w) % h, plane = idx / (h * w);
        const T *p = gout + (plane * h * s + y * s) * ow + x * s;
        T acc = (T)0;
        for (i64 i = 0; i < s; ++i)
            for (i64 j = 0; j < s; ++j) acc += p[i * ow + j];
        gin[idx] = acc;
    }
}

#define SPATIAL(T, SUF)                                                                       \
    extern "C" __global__ void pad_fwd_##SUF(const T *x, T *out, PadGeom g) {                \
        pad_fwd_impl<T>(x, out, g);                                                          \
    }                                                                                        \
    extern "C" __global__ void pad_bwd_##SUF(const T *gout, T *gin, PadGeom g) {             \
        pad_bwd_impl<T>(gout, gin, g);                                                       \
    }                                                                                        \
    extern "C" __global__ void upsample_fwd_##SUF(const T *x, T *out, i64 planes, i64 h,     \
                                                  i64 w, i64 s) {                            \
        upsample_fwd_impl<T>(x, out, planes, h, w, s);                                       \
    }                                                                                        \
    extern "C" __global__ void upsample_bwd_##SUF(const T *gout, T *gin, i64 planes, i64 h,  \
                                                  i64 w, i64 s) {                            \
        upsample_bwd_impl<T>(gout, gin, planes, h, w, s);                                    \
    }

SPATIAL(float, f32)
SPATIAL(double, f64)
