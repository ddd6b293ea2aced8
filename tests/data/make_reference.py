#!/usr/bin/env python3
"""PyTorch float64 reference values for nst's parity tests (tests/data/*.safetensors).

Set-up (once; any PyTorch >= 2.0 on the CPU will do):

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install torch safetensors pillow numpy

Run from the repository root, after `nst-cli weights fetch` (it reads the converted VGG-19):

    .venv-ref/bin/python tests/data/make_reference.py            # rewrites both files
    .venv-ref/bin/python tests/data/make_reference.py --check ORACLE.safetensors
        # recompute ORACLE's outputs from ORACLE's own inputs (pixels and x) and print the
        # relative error of every key: checks this script against an independent reference

What it computes (keys as in tests/data/README.md), in float64 throughout:
- inputs: the content and style images resized with Pillow (bicubic, from the public-domain
  images in assets/), preprocessed the Caffe way (RGB -> BGR, 0-255, minus the ImageNet mean
  B 103.939, G 116.779, R 123.68), and x = content_input + N(0, 8^2) noise (torch.randn, seed 1234, float64);
  every float input is rounded to float32 before use, so the f32 tests read exactly the
  inputs the reference used;
- VGG-19's 16 3x3 convolutions (padding 1, bias) with ReLU, 2x2 stride-2 pooling (max or avg,
  floor mode) after each block; features of content_input at the layers the tests read;
- Gram matrices G = F F^T / (C*H*W) of style_input at relu1_1..relu5_1 (Gatys et al. 2015);
- content loss mean((F_x - F_c)^2) at relu4_2, style loss mean((G_x - G_s)^2) per layer,
  TV mean((x[:,:,1:] - x[:,:,:-1])^2) + mean((x[...,1:] - x[...,:-1])^2);
  total = 1 * content + 1e-2 * sum(style) + 10 * tv, and d total / d x;
- x after three steps of torch.optim.Adam (lr 1, betas 0.9/0.999, eps 1e-8) on the total.
Outputs are stored as float32 (the tests' tolerances are >= 1e-4) and uint8 pixels.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MEAN_BGR = torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
BLOCKS = [2, 2, 4, 4, 4]
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
CONTENT_LAYER = "relu4_2"
WEIGHTS = {"content": 1.0, "style": 1e-2, "tv": 10.0}

# (output name, content image, content W x H, style image, style W x H, pooling,
#  content feature layers and style Gram layers stored: only those the tests read, to keep the
#  files small; every pool is stored, so each of the 16 convolutions is checked downstream)
CASES = [
    ("chelsea64x48_starry80x50_max", "chelsea.png", (64, 48), "starry_night.jpg", (80, 50), "max",
     ["relu3_1", "relu4_2", "relu5_1", "pool1", "pool2", "pool3", "pool4", "pool5"],
     STYLE_LAYERS),
    ("rocket57x43_scream70x53_avg", "rocket.jpg", (57, 43), "the_scream.jpg", (70, 53), "avg",
     ["relu2_1", "relu4_2", "relu5_4", "pool1", "pool2", "pool3", "pool4", "pool5"],
     ["relu1_1", "relu2_1", "relu3_1"]),
]


def load_vgg(path):
    with safe_open(path, framework="pt") as f:
        return {k: f.get_tensor(k).to(torch.float64) for k in f.keys()}


def vgg_features(w, x, pooling):
    """Every relu{B}_{I} and pool{B} activation of x (1x3xHxW, Caffe BGR), as a dict."""
    out, h = {}, x
    for b, n in enumerate(BLOCKS, start=1):
        for i in range(1, n + 1):
            h = F.conv2d(h, w[f"conv{b}_{i}.weight"], w[f"conv{b}_{i}.bias"], padding=1)
            h = F.relu(h)
            out[f"relu{b}_{i}"] = h
        pool = F.max_pool2d if pooling == "max" else F.avg_pool2d
        h = pool(h, 2, 2)
        out[f"pool{b}"] = h
    return out


def gram(f):
    _, c, h, w = f.shape
    m = f.reshape(c, h * w)
    return m @ m.t() / (c * h * w)


def f32(t):
    """Round a float64 tensor to float32 and back: the value the f32 tests will read."""
    return t.to(torch.float32).to(torch.float64)


def preprocess(rgb_u8):
    t = torch.from_numpy(rgb_u8.astype(np.float64)).permute(2, 0, 1).unsqueeze(0)
    return t.flip(1) - MEAN_BGR


def resized_u8(name, size):
    img = Image.open(os.path.join(ROOT, "assets", name)).convert("RGB")
    return np.asarray(img.resize(size, Image.BICUBIC), dtype=np.uint8)


def compute(w, content_u8, style_u8, x0, pooling, content_input=None, style_input=None):
    """All reference outputs for the given inputs (float64 tensors), as a dict."""
    if content_input is None:
        content_input = f32(preprocess(content_u8))
    if style_input is None:
        style_input = f32(preprocess(style_u8))
    cf = vgg_features(w, content_input, pooling)
    sf = vgg_features(w, style_input, pooling)
    style_grams = {l: gram(sf[l]) for l in STYLE_LAYERS}

    def objective(x):
        fx = vgg_features(w, x, pooling)
        terms = {"content": ((fx[CONTENT_LAYER] - cf[CONTENT_LAYER]) ** 2).mean()}
        for l in STYLE_LAYERS:
            terms[f"style.{l}"] = ((gram(fx[l]) - style_grams[l]) ** 2).mean()
        terms["tv"] = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).mean() + (
            (x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).mean()
        total = WEIGHTS["content"] * terms["content"] + WEIGHTS["tv"] * terms["tv"]
        total = total + WEIGHTS["style"] * sum(terms[f"style.{l}"] for l in STYLE_LAYERS)
        return total, terms

    x = x0.clone().requires_grad_(True)
    total, terms = objective(x)
    (grad,) = torch.autograd.grad(total, x)
    out = {"content_input": content_input, "style_input": style_input, "x": x0,
           "grad_total_wrt_x": grad, "loss.total": total.detach().reshape(1)}
    out.update({f"loss.{k}": v.detach().reshape(1) for k, v in terms.items()})
    out.update({f"content_features.{k}": v for k, v in cf.items()})
    out.update({f"style_gram.{k}": v for k, v in style_grams.items()})

    xa = x0.clone().requires_grad_(True)
    adam = torch.optim.Adam([xa], lr=1.0, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(3):
        adam.zero_grad()
        objective(xa)[0].backward()
        adam.step()
    out["adam_lr1_x_after_3_steps"] = xa.detach()
    return {k: v.detach() for k, v in out.items()}


def make(w, case, out_dir):
    name, content, csize, style, ssize, pooling, layers, grams = case
    content_u8, style_u8 = resized_u8(content, csize), resized_u8(style, ssize)
    content_input = f32(preprocess(content_u8))
    gen = torch.Generator().manual_seed(1234)
    x0 = f32(content_input + 8.0 * torch.randn(content_input.shape, generator=gen,
                                                dtype=torch.float64))
    ref = compute(w, content_u8, style_u8, x0, pooling)
    keep = {k: v for k, v in ref.items()
            if not k.startswith(("content_features.", "style_gram."))
            or k.split(".", 1)[1] in (layers if k.startswith("content") else grams)}
    tensors = {k: v.to(torch.float32).contiguous() for k, v in keep.items()}
    tensors["content_rgb_u8"] = torch.from_numpy(content_u8.copy())
    tensors["style_rgb_u8"] = torch.from_numpy(style_u8.copy())
    meta = {"content_image": content, "style_image": style, "pooling": pooling,
            "content_layers": CONTENT_LAYER, "style_layers": ",".join(STYLE_LAYERS),
            "content_weight": str(WEIGHTS["content"]), "style_weight": str(WEIGHTS["style"]),
            "tv_weight": str(WEIGHTS["tv"]), "generator": "tests/data/make_reference.py",
            "torch": torch.__version__}
    path = os.path.join(out_dir, name + ".safetensors")
    save_file(tensors, path, metadata=meta)
    print(f"wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)")


def rel(a, b):
    a, b = a.to(torch.float64), b.to(torch.float64)
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def check(w, oracle_path, ours_path=None):
    """Recompute oracle_path from its own inputs and compare the committed file of the same
    name with it; print every key's error. Returns True when both agree: the recomputation to
    1e-6, the committed pixels exactly and its values to 1e-5 (f32 storage adds about 1e-7)."""
    with safe_open(oracle_path, framework="pt") as f:
        o = {k: f.get_tensor(k) for k in f.keys()}
        pooling = f.metadata()["pooling"]
    ref = compute(w, None, None, o["x"].to(torch.float64), pooling,
                  o["content_input"].to(torch.float64), o["style_input"].to(torch.float64))
    worst = 0.0
    for k in sorted(o):
        if o[k].dtype == torch.uint8:
            continue
        e = rel(ref[k], o[k])
        worst = max(worst, e)
        print(f"  {k:34s} rel err {e:.2e}")
    print(f"{oracle_path}: this script vs the oracle on the oracle's inputs: worst {worst:.2e}")
    if ours_path:
        # The committed file against the oracle: pixels exactly, then every stored value (the
        # same noise, but our inputs are rounded to f32 and the outputs stored as f32).
        with safe_open(ours_path, framework="pt") as f:
            ours = {k: f.get_tensor(k) for k in f.keys()}
        pixels = 0
        for k in ["content_rgb_u8", "style_rgb_u8"]:
            diff = (ours[k].int() - o[k].int()).abs().max().item()
            pixels = max(pixels, diff)
            print(f"  {k:34s} max |pixel difference| {diff}")
        worst2 = 0.0
        for k in sorted(ours):
            if ours[k].dtype != torch.uint8:
                e = rel(ours[k], o[k])
                worst2 = max(worst2, e)
                print(f"  {k:34s} committed vs oracle {e:.2e}")
        print(f"{ours_path} vs {oracle_path}: worst {worst2:.2e}")
        if pixels != 0 or worst2 > 1e-5:
            return False
    return worst < 1e-6


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=os.path.join(
        os.environ.get("NST_HOME", os.path.expanduser("~/.cache/nst")), "vgg19.safetensors"),
        help="VGG-19 converted by `nst-cli weights fetch` (default: the nst cache)")
    ap.add_argument("--out-dir", default=HERE)
    ap.add_argument("--check", nargs="+", metavar="ORACLE",
                    help="compare with independent reference files of the same name instead "
                         "of writing")
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    w = load_vgg(args.weights)
    if args.check is not None:
        ok = True
        for p in args.check:
            mine = os.path.join(args.out_dir, os.path.basename(p))
            ok &= check(w, p, mine if os.path.exists(mine) else None)
        sys.exit(0 if ok else 1)
    for case in CASES:
        make(w, case, args.out_dir)


if __name__ == "__main__":
    main()
