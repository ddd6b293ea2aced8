"""PyTorch float64 golden values for nst's w2 and sliced-w style losses (loss_golden.safetensors).

Run from the repository root (torch, numpy and safetensors; no network, no weights):

    python3 -m venv .venv-ref && .venv-ref/bin/pip install torch safetensors numpy
    .venv-ref/bin/python tests/data/make_loss_golden.py          # writes tests/data/loss_golden.safetensors

The inputs are small fixed random "feature maps" (ReLU of seeded normal samples, so some are 0 as
VGG's are), made here from torch.manual_seed; the file holds them, the losses' values and their
gradients w.r.t. the image features, all float64. nst's tests (tests/tests/loss_golden.rs) compare
(≤ 1e-4 relative for values, ≤ 1e-3 for gradients). Before writing, the script checks its own
formulas against independent ones: w2 against the closed form for diagonal covariances, the
matrix square root against X·X = A, and the sorted matching of sliced-w against a brute-force
optimal assignment.

Definitions (as nst/src/loss/w2.rs and sliced_w.rs):
- w2: features F (C×N), mean mu, covariance Sigma = (F - mu)(F - mu)^T / N. The style target:
  mean and second raw moment E[f f^T] (blended linearly across styles), Sigma_s = srm - mu mu^T,
  eps = 1e-5 * tr(Sigma_s) / C + 1e-12, both covariances + eps*I. Value
  mean((mu_x - mu_s)^2) + tr(Sigma_x + Sigma_s - 2 sqrtm(S Sigma_x S)) / C with S = sqrtm(Sigma_s);
  sqrtm by torch.linalg.eigh (V diag(sqrt(max(lambda, 0))) V^T), differentiated by autograd.
- sliced-w: directions D (C×K, unit columns, stored), P = D^T F sorted per row, the style's
  sorted projections resampled to N values by linear interpolation at q_j = (j + 1/2) M/N - 1/2
  (clamped), value mean((sort(P) - target)^2).
"""

import itertools
import os
import sys

import torch
from safetensors.torch import save_file

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
EPS_REL = 1e-5


def sqrtm(a):
    a = 0.5 * (a + a.T)
    vals, vecs = torch.linalg.eigh(a)
    return vecs @ torch.diag(vals.clamp(min=0).sqrt()) @ vecs.T


def moments(f):
    c = f.shape[1]
    m = f.reshape(c, -1)
    return m.mean(1), m @ m.T / m.shape[1]


def w2_target(mean, srm):
    c = mean.shape[0]
    cov = srm - torch.outer(mean, mean)
    eps = EPS_REL * max(torch.trace(cov).item(), 0.0) / c + 1e-12
    cov = cov + eps * torch.eye(c)
    return mean, cov, sqrtm(cov), eps


def w2_loss(f, target):
    mean_s, cov_s, sqrt_s, eps = target
    c = f.shape[1]
    m = f.reshape(c, -1)
    mu = m.mean(1, keepdim=True)
    x = m - mu
    cov = x @ x.T / m.shape[1] + eps * torch.eye(c)
    mean_term = ((mu.reshape(c) - mean_s) ** 2).mean()
    cross = sqrtm(sqrt_s @ cov @ sqrt_s)
    return mean_term + (torch.trace(cov) + torch.trace(cov_s) - 2 * torch.trace(cross)) / c


def resample_rows(sorted_vals, n):
    k, m = sorted_vals.shape
    if m == n:
        return sorted_vals
    j = torch.arange(n, dtype=torch.float64)
    q = ((j + 0.5) * m / n - 0.5).clamp(0, m - 1)
    lo = q.floor().long()
    hi = (lo + 1).clamp(max=m - 1)
    w = q - lo
    return sorted_vals[:, lo] * (1 - w) + sorted_vals[:, hi] * w


def sliced_w_loss(f, style, dirs):
    c = f.shape[1]
    proj = dirs.T @ f.reshape(c, -1)
    sorted_x, _ = torch.sort(proj, dim=1)
    with torch.no_grad():
        t, _ = torch.sort(dirs.T @ style.reshape(c, -1), dim=1)
        t = resample_rows(t, proj.shape[1])
    return ((sorted_x - t) ** 2).mean()


def features(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.relu(torch.randn(shape, generator=g) + 0.3) * 2.0


def unit_dirs(c, k, seed):
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(c, k, generator=g)
    return d / d.norm(dim=0, keepdim=True)


def value_and_grad(loss_fn, f):
    f = f.clone().requires_grad_(True)
    v = loss_fn(f)
    (g,) = torch.autograd.grad(v, f)
    return v.detach().reshape(1), g


def self_checks():
    # sqrtm: X X = A on a rank-deficient PSD matrix.
    b = features((6, 3), 1)
    a = b @ b.T
    x = sqrtm(a)
    assert torch.allclose(x @ x, a, atol=1e-10), "sqrtm"
    # w2 between Gaussians with diagonal covariances: sum (mu diff)^2 + sum (sigma diff)^2.
    mx, ms = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 2.0])
    vx, vs = torch.tensor([4.0, 1.0, 0.25]), torch.tensor([1.0, 9.0, 0.25])
    sx, ss = sqrtm(torch.diag(vs)), torch.diag(vx)
    tr = torch.trace(torch.diag(vx) + torch.diag(vs) - 2 * sqrtm(sx @ ss @ sx))
    closed = ((vx.sqrt() - vs.sqrt()) ** 2).sum()
    assert abs(tr - closed) < 1e-12, (tr, closed)
    # and through w2_loss on features whose covariance is diagonal: two channels that are
    # uncorrelated by construction (+-1 patterns), eps removed from both sides.
    f = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]) * torch.tensor([[2.0], [3.0]])
    f = (f + torch.tensor([[5.0], [7.0]])).reshape(1, 2, 2, 2)
    s = torch.tensor([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]]) * torch.tensor([[1.0], [0.5]])
    s = (s + torch.tensor([[4.0], [7.5]])).reshape(1, 2, 2, 2)
    mean_s, cov_s, sqrt_s, eps = w2_target(*moments(s))
    got = w2_loss(f, (mean_s, cov_s, sqrt_s, eps))
    sig_x = torch.tensor([4.0, 9.0]) + eps
    sig_s = torch.tensor([1.0, 0.25]) + eps
    expect = (((torch.tensor([5.0, 7.0]) - torch.tensor([4.0, 7.5])) ** 2).mean()
              + ((sig_x.sqrt() - sig_s.sqrt()) ** 2).sum() / 2)
    assert abs(got - expect) < 1e-12 * expect, (got, expect)
    # sliced-w with N = M: sorting gives the optimal 1-D assignment (brute force over 5!).
    p, q = features((1, 5), 3).reshape(5), features((1, 5), 4).reshape(5) - 1.0
    best = min(((p[list(perm)] - q) ** 2).mean() for perm in itertools.permutations(range(5)))
    got = sliced_w_loss(p.reshape(1, 1, 1, 5), q.reshape(1, 1, 1, 5), torch.ones(1, 1))
    assert abs(got - best) < 1e-12, (got, best)


def main():
    self_checks()
    out = {}
    cases = {
        # (image features, style features): C = 8 with more pixels than channels; C = 16 with
        # 9 pixels (a rank-deficient covariance, as VGG's deep layers at small sizes).
        "full": (features((1, 8, 6, 5), 11), features((1, 8, 7, 4), 12)),
        "rank": (features((1, 16, 3, 3), 13), features((1, 16, 4, 3), 14)),
    }
    for name, (f, s) in cases.items():
        out[f"{name}.f"], out[f"{name}.style"] = f, s
        target = w2_target(*moments(s))
        out[f"{name}.w2.value"], out[f"{name}.w2.grad"] = value_and_grad(lambda t: w2_loss(t, target), f)
        c = f.shape[1]
        for k, seed in [(c, 21), (5, 22)]:
            dirs = unit_dirs(c, k, seed)
            key = f"{name}.sw{k}"
            out[f"{key}.dirs"] = dirs
            out[f"{key}.value"], out[f"{key}.grad"] = value_and_grad(
                lambda t: sliced_w_loss(t, s, dirs), f)
    # Blend of two styles for w2: moments mixed 1:3 (weights 0.25, 0.75).
    f, s1 = cases["full"]
    s2 = features((1, 8, 5, 5), 15)
    out["blend.style2"] = s2
    (m1, r1), (m2, r2) = moments(s1), moments(s2)
    target = w2_target(0.25 * m1 + 0.75 * m2, 0.25 * r1 + 0.75 * r2)
    out["blend.w2.value"], out["blend.w2.grad"] = value_and_grad(lambda t: w2_loss(t, target), f)
    out = {k: v.contiguous() for k, v in out.items()}
    path = os.path.join(HERE, "loss_golden.safetensors")
    save_file(out, path, metadata={"script": "tests/data/make_loss_golden.py", "eps_rel": str(EPS_REL)})
    for k in sorted(out):
        if k.endswith("value"):
            print(f"{k} = {out[k].item():.10g}")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
