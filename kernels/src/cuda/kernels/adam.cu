// Adam's update, fused: one pass reads x, g, m, v and writes x', m', v'. The arithmetic and its
// order are those of nst/src/optim/adam.rs (PyTorch's Adam without weight decay):
//   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  x ← x − step · m / (√v / √(1−β₂ᵗ) + ε)
// with step = lr / (1−β₁ᵗ) and the constants computed on the host (f64, then cast).
// Outputs may alias inputs (in-place update): each thread reads element i before writing it,
// so no pointer here is __restrict__.

template <typename T>
__device__ void adam_impl(const T *x, const T *g, const T *m, const T *v, T *x_out, T *m_out,
                          T *v_out, i64 n, T b1, T b2, T c1, T c2, T step, T bc2_sqrt, T eps) {
    GRID_STRIDE_LOOP(i, n) {
        const T gi = g[i];
        const T mi = b1 * m[i] + c1 * gi;
        const T vi = b2 * v[i] + c2 * gi * gi;
        const T xi = x[i];
        m_out[i] = mi;
        v_out[i] = vi;
        x_out[i] = xi - step * mi / (sqrt(vi) / bc2_sqrt + eps);
    }
}

#define ADAM(T, SUF)                                                                          \
    extern "C" __global__ void adam_##SUF(const T *x, const T *g, const T *m, const T *v,    \
                                          T *x_out, T *m_out, T *v_out, i64 n, T b1, T b2,   \
                                          T c1, T c2, T step, T bc2_sqrt, T eps) {           \
        adam_impl<T>(x, g, m, v, x_out, m_out, v_out, n, b1, b2, c1, c2, step, bc2_sqrt,     \
                     eps);                                                                   \
    }

ADAM(float, f32)
ADAM(double, f64)
