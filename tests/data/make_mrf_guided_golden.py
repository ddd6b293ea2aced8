#!/usr/bin/env python3
"""PyTorch float64 golden values for the MRF style loss and guided (masked) Gram / mean-std
style losses (tests/data/mrf_guided_golden.safetensors, read by tests/tests/mrf_guided.rs).

Set-up: any PyTorch >= 2.0 on the CPU, plus safetensors, pillow, numpy. Run from the repository
root:

    python3 tests/data/make_mrf_guided_golden.py

Inputs are small "feature maps" made from the public-domain images in assets/ (no network):
an image resized with Pillow (bicubic) to H x W, scaled to 0..1, and expanded to 6 channels
[r, g, b, r*g, g*b, |r - b|] (so that channels are correlated, like real features). Everything
is float64; stored as float64.

MRF (Li & Wand, CVPR 2016, as pystiche's mrf_loss with reduction="mean"):
- style patches: F.unfold(style_features, 3, stride=2) of each style image, concatenated along
  the patch axis: S, (C*9) x K;
- nearest patch: conv2d(x, S^T rows L2-normalised (+1e-8), as K x C x 3 x 3 filters), argmax
  over the K output channels, under no_grad;
- value: mean((F.unfold(x, 3) - S[:, idx])^2); gradient d value / d x.

Guided style statistics (Gatys et al., CVPR 2017, "Controlling Perceptual Factors", guided Gram
matrices), for a region mask m (1 x 1 x h x w, values in 0..1) at the features' size:
- Gram: G = (F*m)(F*m)^T / (C * sum(m)) (the plain Gram F F^T / (C*H*W) when m = 1);
- mean-std: mu = sum(m F) / sum(m), sigma = sqrt(sum(m (F - mu)^2) / sum(m) + 1e-5);
masks are given at 4x (content) or 2x (style) the features' size and area-averaged down
(avg_pool2d with an integer factor = an exact area resize). The loss of a layer is
sum over regions r of mean((S_r(x) - S_r(style_r))^2) (summed over the statistics).
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

torch.set_default_dtype(torch.float64)
ROOT = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(ROOT, "..", "..", "assets")


def features(name, h, w):
    img = Image.open(os.path.join(ASSETS, name)).convert("RGB").resize((w, h), Image.BICUBIC)
    a = torch.tensor(np.asarray(img, dtype=np.float64) / 255.0).permute(2, 0, 1)
    r, g, b = a[0], a[1], a[2]
    return torch.stack([r, g, b, r * g, g * b, (r - b).abs()]).unsqueeze(0)


def mrf(x, styles, stride=2):
    s = torch.cat([F.unfold(f, 3, stride=stride)[0] for f in styles], dim=1)  # C9 x K
    c = x.shape[1]
    with torch.no_grad():
        bank = s.t() / (s.t().norm(dim=1, keepdim=True) + 1e-8)
        scores = F.conv2d(x, bank.reshape(-1, c, 3, 3))
        idx = scores.argmax(dim=1).flatten()
        # No near-ties: the test compares indices exactly.
        top2 = scores.flatten(2)[0].topk(2, dim=0).values
        assert (top2[0] - top2[1]).min() > 1e-6, "tie in the nearest-patch search"
    p = F.unfold(x, 3)[0]
    return ((p - s[:, idx]) ** 2).mean(), idx


def down(mask, factor):
    return F.avg_pool2d(mask, factor) if factor > 1 else mask


def guided_gram(f, m):
    c = f.shape[1]
    fm = (f * m).reshape(c, -1)
    return fm @ fm.t() / (c * m.sum())


def guided_mean_std(f, m):
    c = f.shape[1]
    ff, mm = f.reshape(c, -1), m.reshape(1, -1)
    mu = (ff * mm).sum(1) / mm.sum()
    var = (mm * (ff - mu[:, None]) ** 2).sum(1) / mm.sum()
    return [mu, (var + 1e-5).sqrt()]


def main():
    out = {}
    # MRF: picture 8 x 10 (chelsea), two style images (starry_night 9 x 12, the_scream 11 x 8).
    x = features("chelsea.png", 8, 10).requires_grad_()
    s1, s2 = features("starry_night.jpg", 9, 12), features("the_scream.jpg", 11, 8)
    value, idx = mrf(x, [s1, s2])
    value.backward()
    out.update(mrf_x=x.detach(), mrf_style1=s1, mrf_style2=s2, mrf_value=value.detach().reshape(1),
               mrf_grad=x.grad, mrf_idx=idx.double())

    # Guided: picture features 6 x 10 (rocket); content mask at 24 x 40: region 1 = the upper
    # part (a soft edge), region 2 = 1 - region 1. Style 1 (starry_night 7 x 9, no style
    # mask); style 2 (the_scream 8 x 6, style mask at 16 x 12: its left 5/12).
    g = features("rocket.jpg", 6, 10)
    yy = torch.arange(24.0).reshape(24, 1).expand(24, 40)
    m1 = (1.0 - (yy - 9.0) / 4.0).clamp(0.0, 1.0).reshape(1, 1, 24, 40)
    m2 = 1.0 - m1
    t1, t2 = features("starry_night.jpg", 7, 9), features("the_scream.jpg", 8, 6)
    sm2 = torch.zeros(1, 1, 16, 12)
    sm2[..., :5] = 1.0
    regions = [(m1, t1, torch.ones(1, 1, 7, 9), 1), (m2, t2, sm2, 2)]
    out.update(guided_x=g, guided_mask1=m1, guided_mask2=m2, guided_style1=t1,
               guided_style2=t2, guided_style_mask2=sm2)
    for kind, stats in [("gram", lambda f, m: [guided_gram(f, m)]), ("meanstd", guided_mean_std)]:
        xg = g.clone().requires_grad_()
        total = 0.0
        for r, (cm, st, sm, sf) in enumerate(regions, 1):
            sx = stats(xg, down(cm, 4))
            ss = stats(st, down(sm, sf))
            total = total + sum(((a - b) ** 2).mean() for a, b in zip(sx, ss))
            if kind == "gram":
                out[f"guided_gram_x{r}"] = sx[0].detach()
                out[f"guided_gram_style{r}"] = ss[0]
        total.backward()
        out[f"guided_{kind}_value"] = total.detach().reshape(1)
        out[f"guided_{kind}_grad"] = xg.grad
    out = {k: v.contiguous() for k, v in out.items()}
    path = os.path.join(ROOT, "mrf_guided_golden.safetensors")
    save_file(out, path, metadata={"script": "make_mrf_guided_golden.py", "dtype": "float64"})
    for k in sorted(out):
        print(k, tuple(out[k].shape), float(out[k].flatten()[0]))


if __name__ == "__main__":
    main()
