#!/usr/bin/env bash
# Side-by-side speed: nst-cli bench, then the PyTorch anchor (torch_reference.py: the same
# objective, Adam, threads and timing in PyTorch) with the same settings, at each size; prints
# both JSON lines and the ratio ours/PyTorch (seconds per iteration) and the peak-RSS ratio.
# The anchor script is TORCH_REFERENCE (default: the project's shared folder beside the checkout,
# ../shared/bench/torch_reference.py); without it only nst's line is printed. PyTorch comes from a
# venv: set TORCH_PY (default ../.venv-torch/bin/python; create it with:
# python3 -m venv ../.venv-torch && ../.venv-torch/bin/pip install torch safetensors pillow).
# Images: CONTENT and STYLE (default tubingen.jpg × starry_night.jpg from ../shared/images, as in
# benches/README.md; else the public-domain assets/chelsea.png × assets/starry_night.jpg).
# Usage: benches/compare.sh [SIZE…]   (default: 256 512)
# Environment: ITERATIONS (default 5), THREADS (2), CONV (--conv), PRECISION (--precision f32|bf16).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared="$root/../shared"
torch_py=${TORCH_PY:-$root/../.venv-torch/bin/python}
weights=${NST_WEIGHTS:-${NST_HOME:-$HOME/.cache/nst}/vgg19.safetensors}
iters=${ITERATIONS:-5}
threads=${THREADS:-2}
cargo build --release -p nst-cli --quiet --manifest-path "$root/Cargo.toml"
torch_ref=${TORCH_REFERENCE:-$shared/bench/torch_reference.py}
if [ -f "$shared/images/tubingen.jpg" ]; then
  content=${CONTENT:-$shared/images/tubingen.jpg}
else
  content=${CONTENT:-$root/assets/chelsea.png}
fi
style=${STYLE:-$root/assets/starry_night.jpg}
if [ ! -f "$torch_ref" ]; then
  echo "no PyTorch anchor at $torch_ref (set TORCH_REFERENCE): printing nst's figures only" >&2
fi
for size in "${@:-256 512}"; do
  for s in $size; do
    ours=$("$root/target/release/nst-cli" bench --content "$content" --style "$style" --size "$s" \
      --iterations "$iters" --threads "$threads" ${CONV:+--conv "$CONV"} ${PRECISION:+--precision "$PRECISION"})
    echo "$ours"
    [ -f "$torch_ref" ] || continue
    theirs=$("$torch_py" "$torch_ref" --weights "$weights" --content "$content" \
      --style "$style" --size "$s" --iterations "$iters" --threads "$threads")
    echo "$theirs"
    python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"size {o['size'][1]}x{o['size'][0]}: nst {o['sec_per_iter_median']:.3f} s/it, "
      f"pytorch {t['sec_per_iter_median']:.3f} s/it, ratio {o['sec_per_iter_median']/t['sec_per_iter_median']:.2f}; "
      f"peak RSS {o['peak_rss_mb']:.0f} vs {t['peak_rss_mb']:.0f} MB, ratio {o['peak_rss_mb']/t['peak_rss_mb']:.2f}; "
      f"final loss {o['final_loss']:.4e} vs {t['final_loss']:.4e}")
PY
  done
done
