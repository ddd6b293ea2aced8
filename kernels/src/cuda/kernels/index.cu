// Maximum along an axis and index selection (the MRF style loss's nearest-patch search and
// target gather). Tensors are viewed as outer × n × inner; indices travel as T (exact below
// 2^24 in f32, which the engine checks).

// values[o, i] = max_k x[o, k, i]; indices[o, i] = the first k reaching it (NaNs never win).
template <typename T>
__device__ void argmax_impl(const T *__restrict__ x, T *__restrict__ values,
                            T *__restrict__ indices, i64 outer, i64 n, i64 inner) {
    GRID_STRIDE_LOOP(t, outer * inner) {
        const i64 i = t % inner, o = t / inner;
        const T *p = x + o * n * inner + i;
        T best = p[0];
        i64 bk = 0;
        for (i64 k = 1; k < n; ++k) {
            const T v = p[k * inner];
            if (v > best || (best != best && v == v)) {
                best = v;
                bk = k;
            }
        }
        values[t] = best;
        indices[t] = (T)bk;
    }
}

// out[o, j, i] = x[o, idx[j], i]; an index outside [0, n_src) gives 0 (the engine validates
// host indices; device indices come from argmax).
template <typename T>
__device__ void index_select_impl(const T *__restrict__ x, const T *__restrict__ idx,
                                  T *__restrict__ out, i64 outer, i64 n_src, i64 n_idx,
                                  i64 inner) {
    GRID_STRIDE_LOOP(t, outer * n_idx * inner) {
        const i64 i = t % inner, j = (t / inner) % n_idx, o = t / (inner * n_idx);
        const i64 s = (i64)idx[j];
        out[t] = (s >= 0 && s < n_src) ? x[(o * n_src + s) * inner + i] : (T)0;
    }
}

#define INDEX(T, SUF)                                                                         \
    extern "C" __global__ void argmax_axis_##SUF(const T *x, T *values, T *indices, i64 outer, \
                                                 i64 n, i64 inner) {                          \
        argmax_impl<T>(x, values, indices, outer, n, inner);                                 \
    }                                                                                        \
    extern "C" __global__ void index_select_##SUF(const T *x, const T *idx, T *out, i64 outer, \
                                                  i64 n_src, i64 n_idx, i64 inner) {          \
        index_select_impl<T>(x, idx, out, outer, n_src, n_idx, inner);                       \
    }

INDEX(float, f32)
INDEX(double, f64)
