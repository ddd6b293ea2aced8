// Elementwise maps: unary ops, binary ops (contiguous and strided/broadcast), strided copies
// (gather to contiguous and scatter into a strided view), dtype casts.

// Unary op codes: must match `unary_code` in kernels/src/cuda/elementwise.rs.
#define U_NEG 0
#define U_ADD_SCALAR 1
#define U_MUL_SCALAR 2
#define U_SQUARE 3
#define U_SQRT 4
#define U_ABS 5
#define U_RELU 6
#define U_SIGMOID 7    // 1 / (1 + exp(-v))
#define U_CLAMP 8      // min(max(v, s0), s1)
#define U_CLAMP_GRAD 9 // s0 <= v <= s1 ? 1 : 0

// Binary op codes: must match `binary_code` in kernels/src/cuda/elementwise.rs.
#define B_ADD 0
#define B_SUB 1
#define B_MUL 2
#define B_DIV 3
#define B_RELU_GRAD 4 // a = upstream gradient, b = relu output: b > 0 ? a : 0
#define B_ABS_GRAD 5  // a = upstream gradient, b = abs input: sign(b) · a
#define B_SIGMOID_GRAD 6 // a = upstream gradient, b = sigmoid output: a · b · (1 − b)

template <typename T> __device__ __forceinline__ T apply_unary(T v, int op, T s, T s1) {
    switch (op) {
    case U_NEG: return -v;
    case U_ADD_SCALAR: return v + s;
    case U_MUL_SCALAR: return v * s;
    case U_SQUARE: return v * v;
    case U_SQRT: return sqrt(v);
    case U_ABS: return fabs(v);
    case U_RELU: return v > (T)0 ? v : (T)0;
    case U_SIGMOID: return (T)1 / ((T)1 + exp(-v));
    case U_CLAMP: return v < s ? s : (v > s1 ? s1 : v);
    case U_CLAMP_GRAD: return (v >= s && v <= s1) ? (T)1 : (T)0;
    default: return v;
    }
}

template <typename T> __device__ __forceinline__ T apply_binary(T a, T b, int op) {
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_RELU_GRAD: return b > (T)0 ? a : (T)0;
    case B_ABS_GRAD: return b > (T)0 ? a : (b < (T)0 ? -a : (T)0);
    case B_SIGMOID_GRAD: return a * b * ((T)1 - b);
    default: return a;
    }
}

template <typename T>
__device__ void unary_impl(const T *__restrict__ x, T *__restrict__ out, i64 n, int op,
                           double scalar, double scalar1) {
    const T s = (T)scalar, s1 = (T)scalar1;
    GRID_STRIDE_LOOP(i, n) { out[i] = apply_unary<T>(x[i], op, s, s1); }
}

template <typename T>
__device__ void binary_impl(const T *__restrict__ a, const T *__restrict__ b,
                            T *__restrict__ out, i64 n, int op) {
    GRID_STRIDE_LOOP(i, n) { out[i] = apply_binary<T>(a[i], b[i], op); }
}

// out (contiguous, n elements over meta.shape) = a[strided a] op b[strided b].
template <typename T>
__device__ void binary_strided_impl(const T *__restrict__ a, const T *__restrict__ b,
                                    T *__restrict__ out, i64 n, int op, const StridedMeta &m) {
    GRID_STRIDE_LOOP(i, n) {
        i64 oa, ob;
        strided_offsets(m, i, &oa, &ob);
        out[i] = apply_binary<T>(a[oa], b[ob], op);
    }
}

// dst[strided b] = src[strided a] for every index of meta.shape (n elements). The destination
// view must not overlap itself (true for the contiguous and narrow-scatter uses).
template <typename T>
__device__ void copy_strided_impl(const T *__restrict__ src, T *__restrict__ dst, i64 n,
                                  const StridedMeta &m) {
    GRID_STRIDE_LOOP(i, n) {
        i64 oa, ob;
        strided_offsets(m, i, &oa, &ob);
        dst[ob] = src[oa];
    }
}

#define ELEMENTWISE(T, SUF)                                                                     \
    extern "C" __global__ void unary_##SUF(const T *x, T *out, i64 n, int op, double scalar,   \
                                           double scalar1) {                                   \
        unary_impl<T>(x, out, n, op, scalar, scalar1);                                         \
    }                                                                                          \
    extern "C" __global__ void binary_##SUF(const T *a, const T *b, T *out, i64 n, int op) {   \
        binary_impl<T>(a, b, out, n, op);                                                      \
    }                                                                                          \
    extern "C" __global__ void binary_strided_##SUF(const T *a, const T *b, T *out, i64 n,     \
                                                    int op, StridedMeta meta) {                \
        binary_strided_impl<T>(a, b, out, n, op, meta);                                        \
    }                                                                                          \
    extern "C" __global__ void copy_strided_##SUF(const T *src, T *dst, i64 n,                 \
                                                  StridedMeta meta) {                          \
        copy_strided_impl<T>(src, dst, n, meta);                                               \
    }

ELEMENTWISE(float, f32)
ELEMENTWISE(double, f64)

extern "C" __global__ void cast_f32_f64(const float *x, double *out, i64 n) {
    GRID_STRIDE_LOOP(i, n) { out[i] = (double)x[i]; }
}

extern "C" __global__ void cast_f64_f32(const double *x, float *out, i64 n) {
    GRID_STRIDE_LOOP(i, n) { out[i] = (float)x[i]; }
}
