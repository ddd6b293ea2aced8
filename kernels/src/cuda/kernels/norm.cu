// Instance normalisation with per-plane scale and shift, as kernels/src/cpu/norm.rs:
// y = (x − μ)·r·γ + β (max(0, y) with relu), r = 1/√(σ² + eps), μ and the biased σ² per (n, c) plane, summed in double
// in two passes. One block of exactly REDUCE_THREADS threads per plane (grid-stride over
// planes), block tree sums: deterministic, no atomics.

template <typename T>
__device__ void inorm_fwd_impl(const T *__restrict__ x, const T *__restrict__ gamma,
                               const T *__restrict__ beta, T *__restrict__ out,
                               T *__restrict__ stats, i64 planes, i64 hw, double eps,
                               int keep_stats, int relu) {
    __shared__ double shared[REDUCE_THREADS];
    for (i64 p = blockIdx.x; p < planes; p += gridDim.x) {
        const T *xs = x + p * hw;
        T *o = out + p * hw;
        double acc = 0.0;
        for (i64 i = threadIdx.x; i < hw; i += REDUCE_THREADS) acc += (double)xs[i];
        const double mean = block_sum<double>(acc, shared) / (double)hw;
        acc = 0.0;
        for (i64 i = threadIdx.x; i < hw; i += REDUCE_THREADS) {
            const double d = (double)xs[i] - mean;
            acc += d * d;
        }
        const double var = block_sum<double>(acc, shared) / (double)hw;
        const double rstd = 1.0 / sqrt(var + eps);
        // μ as hi + lo in T (as `split` in cpu/norm.rs): x − hi is exact near μ.
        const T hi = (T)mean, lo = (T)(mean - (double)hi);
        const T a = (T)(rstd * (double)gamma[p]), b = beta[p];
        for (i64 i = threadIdx.x; i < hw; i += REDUCE_THREADS) {
            const T y = ((xs[i] - hi) - lo) * a + b;
            // A fused ReLU: NaN → 0 as the CPU's `y > 0 ? y : 0`.
            o[i] = (relu && !(y > (T)0)) ? (T)0 : y;
        }
        if (keep_stats && threadIdx.x == 0) {
            stats[2 * p] = (T)mean;
            stats[2 * p + 1] = (T)rstd;
        }
    }
}

// ∂x = k·g + c1·(x − μ) + c0 with k = γr, c1 = −k·r·Σ(g·x̂)/M, c0 = −k·Σg/M; ∂γ = Σ g·x̂,
// ∂β = Σ g (x̂ = (x − μ)·r, M = H·W).
template <typename T>
__device__ void inorm_bwd_impl(const T *__restrict__ gout, const T *__restrict__ x,
                               const T *__restrict__ gamma, const T *__restrict__ stats,
                               T *__restrict__ gx, T *__restrict__ ggamma, T *__restrict__ gbeta,
                               i64 planes, i64 hw) {
    __shared__ double shared[REDUCE_THREADS];
    for (i64 p = blockIdx.x; p < planes; p += gridDim.x) {
        const T *g = gout + p * hw, *xs = x + p * hw;
        const double mean = (double)stats[2 * p], rstd = (double)stats[2 * p + 1];
        double sg = 0.0, sgx = 0.0;
        for (i64 i = threadIdx.x; i < hw; i += REDUCE_THREADS) {
            sg += (double)g[i];
            sgx += (double)g[i] * ((double)xs[i] - mean);
        }
        sg = block_sum<double>(sg, shared);
        sgx = block_sum<double>(sgx, shared) * rstd;
        const double k = (double)gamma[p] * rstd, m = (double)hw;
        const double c1 = -k * rstd * sgx / m, c0 = -k * sg / m;
        const T kt = (T)k, c1t = (T)c1, c0t = (T)c0, hi = (T)mean, lo = (T)(mean - (double)hi);
        T *d = gx + p * hw;
        for (i64 i = threadIdx.x; i < hw; i += REDUCE_THREADS)
            d[i] = kt * g[i] + c1t * ((xs[i] - hi) - lo) + c0t;
        if (threadIdx.x == 0) {
            ggamma[p] = (T)sgx;
            gbeta[p] = (T)sg;
        }
    }
}

#define NORM(T, SUF)                                                                          \
    extern "C" __global__ void inorm_fwd_##SUF(const T *x, const T *gamma, const T *beta,    \
                                               T *out, T *stats, i64 planes, i64 hw,         \
                                               double eps, int keep_stats, int relu) {       \
        inorm_fwd_impl<T>(x, gamma, beta, out, stats, planes, hw, eps, keep_stats, relu);    \
    }                                                                                        \
    extern "C" __global__ void inorm_bwd_##SUF(const T *gout, const T *x, const T *gamma,    \
                                               const T *stats, T *gx, T *ggamma, T *gbeta,   \
                                               i64 planes, i64 hw) {                         \
        inorm_bwd_impl<T>(gout, x, gamma, stats, gx, ggamma, gbeta, planes, hw);             \
    }

NORM(float, f32)
NORM(double, f64)
