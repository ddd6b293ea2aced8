// Shared definitions, prepended (by kernels/src/cuda/nvrtc.rs) to every .cu file in this folder
// before NVRTC compiles it. NVRTC has no standard headers here: only builtins are used.
//
// Conventions for every kernel in this folder:
// - element counts and indices are 64-bit (`i64`), so tensors over 2^31 elements index right;
// - every kernel is a grid-stride loop with a bounds check, so any grid size is correct
//   (the launcher caps the grid; see kernels/src/cuda/launch.rs);
// - templated on the element type; `extern "C"` instantiations are named `<name>_f32`/`<name>_f64`;
// - reductions use a fixed block size (REDUCE_THREADS) and a fixed accumulation order, so the
//   same input gives the same bits on every run.

typedef long long i64;
typedef unsigned long long u64;

#define MAX_DIMS 8
#define REDUCE_THREADS 256

#define GRID_STRIDE_LOOP(i, n)                                                       \
    for (i64 i = (i64)blockIdx.x * (i64)blockDim.x + (i64)threadIdx.x; i < (i64)(n); \
         i += (i64)blockDim.x * (i64)gridDim.x)

// Shape and two sets of strides (elements) for strided reads/writes. Must match
// `StridedMeta` in kernels/src/cuda/elementwise.rs field for field (#[repr(C)], all i64).
struct StridedMeta {
    i64 ndim;
    i64 shape[MAX_DIMS];
    i64 stride_a[MAX_DIMS];
    i64 stride_b[MAX_DIMS];
    i64 offset_a;
    i64 offset_b;
};

// Offsets into a and b of the element with row-major linear index `i` over `m.shape`.
__device__ __forceinline__ void strided_offsets(const StridedMeta &m, i64 i, i64 *oa, i64 *ob) {
    i64 a = m.offset_a, b = m.offset_b;
    for (int d = (int)m.ndim - 1; d >= 0; --d) {
        const i64 s = m.shape[d];
        const i64 idx = i % s;
        i /= s;
        a += idx * m.stride_a[d];
        b += idx * m.stride_b[d];
    }
    *oa = a;
    *ob = b;
}

template <typename T> __device__ __forceinline__ T neg_infinity();
template <> __device__ __forceinline__ float neg_infinity<float>() {
    return __int_as_float(0xff800000);
}
template <> __device__ __forceinline__ double neg_infinity<double>() {
    return __longlong_as_double((i64)0xfff0000000000000ULL);
}

template <typename T> __device__ __forceinline__ bool is_nan(T v) { return v != v; }

// Tree reduction of one value per thread over a block of exactly REDUCE_THREADS threads.
// Every thread must call it; the block's sum is returned to thread 0. Fixed order.
template <typename T> __device__ __forceinline__ T block_sum(T v, T *shared) {
    shared[threadIdx.x] = v;
    __syncthreads();
    for (int s = REDUCE_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
        __syncthreads();
    }
    T r = shared[0];
    __syncthreads();
    return r;
}
