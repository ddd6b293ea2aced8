// Sorting along the last axis, gather along it by indices, and its adjoint scatter-add.
// Same order as kernels/src/cpu/sort.rs: ascending, NaN last, -0 == +0, ties by index.
//
// The sort is a bitonic network in global memory over rows padded to a power of two `p`:
// `sort_init` fills the padded keys and indices (a slot whose index is ≥ len is padding and
// sorts after every real element), `bitonic_step` runs one (k, j) stage (the launcher issues
// log2(p)·(log2(p)+1)/2 of them), `sort_copy_out` keeps the first len of each row. No shared
// memory, so any row length up to 2^31 works; cost O(rows·p·log²p).

template <typename T>
__device__ __forceinline__ bool sort_less(T a, unsigned ia, T b, unsigned ib, i64 len) {
    const bool pa = (i64)ia >= len, pb = (i64)ib >= len;
    if (pa || pb) return pa && pb ? ia < ib : pb;
    const bool na = is_nan(a), nb = is_nan(b);
    if (na != nb) return nb;
    if (na) return ia < ib;
    return a < b || (a == b && ia < ib);
}

template <typename T>
__device__ void sort_init_impl(const T *x, T *keys, unsigned *idx, i64 rows, i64 len, i64 p) {
    GRID_STRIDE_LOOP(t, rows * p) {
        const i64 r = t / p, i = t % p;
        keys[t] = i < len ? x[r * len + i] : (T)0;
        idx[t] = (unsigned)i;
    }
}

template <typename T>
__device__ void bitonic_step_impl(T *keys, unsigned *idx, i64 rows, i64 len, i64 p, i64 j,
                                  i64 k) {
    GRID_STRIDE_LOOP(t, rows * p) {
        const i64 r = t / p, i = t % p, l = i ^ j;
        if (l > i) {
            const i64 a = r * p + i, b = r * p + l;
            const bool up = (i & k) == 0;
            const bool swap = up ? sort_less(keys[b], idx[b], keys[a], idx[a], len)
                                 : sort_less(keys[a], idx[a], keys[b], idx[b], len);
            if (swap) {
                const T tk = keys[a];
                keys[a] = keys[b];
                keys[b] = tk;
                const unsigned ti = idx[a];
                idx[a] = idx[b];
                idx[b] = ti;
            }
        }
    }
}

template <typename T>
__device__ void sort_copy_out_impl(const T *keys, const unsigned *idx, T *vals, unsigned *out_idx,
                                   i64 rows, i64 len, i64 p) {
    GRID_STRIDE_LOOP(t, rows * len) {
        const i64 r = t / len, i = t % len;
        vals[t] = keys[r * p + i];
        out_idx[t] = idx[r * p + i];
    }
}

// out[r, j] = x[r, idx[r, j]]: rows of len in x, of k in idx and out.
template <typename T>
__device__ void gather_last_impl(const T *x, const unsigned *idx, T *out, i64 rows, i64 len,
                                 i64 k) {
    GRID_STRIDE_LOOP(t, rows * k) {
        const i64 r = t / k;
        out[t] = x[r * len + (i64)idx[t]];
    }
}

// out[r, idx[r, j]] += g[r, j] into zeroed rows of len: one thread per row, in order of j, so
// repeated indices need no atomics and the sums are deterministic.
template <typename T>
__device__ void scatter_add_last_impl(const T *g, const unsigned *idx, T *out, i64 rows, i64 k,
                                      i64 len) {
    GRID_STRIDE_LOOP(r, rows) {
        T *o = out + r * len;
        for (i64 i = 0; i < len; ++i) o[i] = (T)0;
        for (i64 j = 0; j < k; ++j) o[idx[r * k + j]] += g[r * k + j];
    }
}

#define SORT_KERNELS(T, S)                                                                     \
    extern "C" __global__ void sort_init_##S(const T *x, T *keys, unsigned *idx, i64 rows,     \
                                             i64 len, i64 p) {                                 \
        sort_init_impl<T>(x, keys, idx, rows, len, p);                                         \
    }                                                                                          \
    extern "C" __global__ void bitonic_step_##S(T *keys, unsigned *idx, i64 rows, i64 len,     \
                                                i64 p, i64 j, i64 k) {                         \
        bitonic_step_impl<T>(keys, idx, rows, len, p, j, k);                                   \
    }                                                                                          \
    extern "C" __global__ void sort_copy_out_##S(const T *keys, const unsigned *idx, T *vals,  \
                                                 unsigned *out_idx, i64 rows, i64 len, i64 p) { \
        sort_copy_out_impl<T>(keys, idx, vals, out_idx, rows, len, p);                         \
    }                                                                                          \
    extern "C" __global__ void gather_last_##S(const T *x, const unsigned *idx, T *out,        \
                                               i64 rows, i64 len, i64 k) {                     \
        gather_last_impl<T>(x, idx, out, rows, len, k);                                        \
    }                                                                                          \
    extern "C" __global__ void scatter_add_last_##S(const T *g, const unsigned *idx, T *out,   \
                                                    i64 rows, i64 k, i64 len) {                \
        scatter_add_last_impl<T>(g, idx, out, rows, k, len);                                   \
    }

SORT_KERNELS(float, f32)
SORT_KERNELS(double, f64)
