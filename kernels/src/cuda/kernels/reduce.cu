// Deterministic sums. Every kernel here is launched with exactly REDUCE_THREADS threads per
// block and a grid that depends only on the sizes, so each output is summed in a fixed order:
// same input, same bits.

// Pass 1 of a full sum: block b writes the sum of the elements it strides over
// (i = b·REDUCE_THREADS + t, then + gridDim·REDUCE_THREADS ...) to partials[b]. Pass 2 runs the
// same kernel with one block over the partials.
template <typename T> __device__ void sum_partial_impl(const T *__restrict__ x, T *partials, i64 n) {
    __shared__ T shared[REDUCE_THREADS];
    T acc = (T)0;
    GRID_STRIDE_LOOP(i, n) { acc += x[i]; }
    T total = block_sum<T>(acc, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// out[r] = Σ_l x[r·len + l] for each row r: one block per row (grid-stride over rows).
template <typename T> __device__ void sum_rows_impl(const T *__restrict__ x, T *out, i64 rows, i64 len) {
    __shared__ T shared[REDUCE_THREADS];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *row = x + r * len;
        T acc = (T)0;
        for (i64 l = threadIdx.x; l < len; l += REDUCE_THREADS) acc += row[l];
        T total = block_sum<T>(acc, shared);
        if (threadIdx.x == 0) out[r] = total;
    }
}

// Middle-axis sum of a contiguous outer × len × inner array, one thread per output
// (coalesced over `inner`): out[o·inner + i] = Σ_l x[(o·len + l)·inner + i].
template <typename T>
__device__ void sum_axis_impl(const T *__restrict__ x, T *__restrict__ out, i64 outer, i64 len, i64 inner) {
    GRID_STRIDE_LOOP(k, outer * inner) {
        const i64 o = k / inner, i = k % inner;
        const T *p = x + o * len * inner + i;
        T acc = (T)0;
        for (i64 l = 0; l < len; ++l) acc += p[l * inner];
        out[k] = acc;
    }
}

#define REDUCE(T, SUF)                                                                         \
    extern "C" __global__ void sum_partial_##SUF(const T *x, T *partials, i64 n) {            \
        sum_partial_impl<T>(x, partials, n);                                                  \
    }                                                                                         \
    extern "C" __global__ void sum_rows_##SUF(const T *x, T *out, i64 rows, i64 len) {        \
        sum_rows_impl<T>(x, out, rows, len);                                                  \
    }                                                                                         \
    extern "C" __global__ void sum_axis_##SUF(const T *x, T *out, i64 outer, i64 len,         \
                                              i64 inner) {                                    \
        sum_axis_impl<T>(x, out, outer, len, inner);                                          \
    }

REDUCE(float, f32)
REDUCE(double, f64)
