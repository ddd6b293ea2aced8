#!/usr/bin/env bash
# Side-by-side speed on this CPU: nst-cli bench against the PyTorch anchor (torch_reference.py: the
# same objective, Adam, threads and timing in PyTorch) with the same settings, at each size.
# First the CPU (lscpu model name, family/model, the flags that choose the kernels: avx2, fma,
# avx512f, avx512_bf16, amx_bf16) and the load average; then per size three columns at the
# default instruction set: nst, PyTorch f32 and PyTorch under torch.autocast(bfloat16)
# (--autocast bf16: oneDNN's bf16 path, AMX where present), and the AVX2 pair: nst with
# NST_SIMD=avx2 against PyTorch with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2. Each JSON
# line is printed with the load average (`uptime`) taken just before it: PyTorch's OpenMP threads
# slow down badly when other processes compete for the cores, so figures taken under load are
# not comparable with quiet ones. Last a table of seconds per iteration and ratios nst/PyTorch.
# The anchor script is TORCH_REFERENCE (default: the project's shared folder beside the checkout,
# ../shared/bench/torch_reference.py); without it only nst's lines are printed. PyTorch comes from a
# venv: set TORCH_PY (default ../.venv-torch/bin/python; create it with:
# python3 -m venv ../.venv-torch && ../.venv-torch/bin/pip install torch safetensors pillow).
# Images: CONTENT and STYLE (default tubingen.jpg × starry_night.jpg from ../shared/images, as in
# benches/README.md; else the public-domain assets/chelsea.png × assets/starry_night.jpg).
# Usage: benches/compare.sh [SIZE…]   (default: 256 512)
# Environment: NST_CLI (the binary; default: build this checkout's), ITERATIONS (default 5), THREADS (2), CONV (--conv), PRECISION (--precision f32|bf16),
# AVX2=0 (skip the AVX2 pair).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared="$root/../shared"
torch_py=${TORCH_PY:-$root/../.venv-torch/bin/python}
weights=${NST_WEIGHTS:-${NST_HOME:-$HOME/.cache/nst}/vgg19.safetensors}
iters=${ITERATIONS:-5}
threads=${THREADS:-2}
# NST_CLI: an nst-cli binary to time (default: build this checkout's release binary).
if [ -z "${NST_CLI:-}" ]; then
  cargo build --release -p nst-cli --quiet --manifest-path "$root/Cargo.toml"
fi
nst_cli=${NST_CLI:-$root/target/release/nst-cli}
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

# The CPU: model name, family/model and the flags of interest (present or not).
if command -v lscpu >/dev/null; then
  lscpu | awk -F: '/^Model name|^CPU family|^Model:|^Thread\(s\) per core|^L2 cache|^L3 cache/ {
    gsub(/^[ \t]+/, "", $2); printf "%s: %s\n", $1, $2 }'
  flags=$(lscpu | awk -F: '/^Flags/ {print $2}')
  for f in avx2 fma avx512f avx512_bf16 amx_bf16; do
    case " $flags " in *" $f "*) printf '%s=yes ' "$f" ;; *) printf '%s=no ' "$f" ;; esac
  done
  echo
fi
load() { uptime | sed 's/.*load average/load average/'; }

results=()
# run LABEL ENV… -- COMMAND…: prints the load and the JSON line, records "LABEL<TAB>json".
run() {
  local label=$1
  shift
  local envs=()
  while [ "$1" != "--" ]; do
    envs+=("$1")
    shift
  done
  shift
  echo "# $label ($(load))"
  local out
  out=$(
    for e in ${envs[@]+"${envs[@]}"}; do export "${e?}"; done
    "$@"
  )
  echo "$out"
  results+=("$label	$out")
}
nst() {
  "$nst_cli" bench --content "$content" --style "$style" --size "$1" \
    --iterations "$iters" --threads "$threads" ${CONV:+--conv "$CONV"} \
    ${PRECISION:+--precision "$PRECISION"}
}
torch() {
  local s=$1
  shift
  "$torch_py" "$torch_ref" --weights "$weights" --content "$content" --style "$style" \
    --size "$s" --iterations "$iters" --threads "$threads" "$@"
}
avx2_torch=(ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
for size in "${@:-256 512}"; do
  for s in $size; do
    run "nst $s" -- nst "$s"
    if [ -f "$torch_ref" ]; then
      run "pytorch-f32 $s" -- torch "$s"
      run "pytorch-bf16 $s" -- torch "$s" --autocast bf16
    fi
    [ "${AVX2:-1}" = 0 ] && continue
    run "nst-avx2 $s" NST_SIMD=avx2 -- nst "$s"
    if [ -f "$torch_ref" ]; then
      run "pytorch-avx2 $s" "${avx2_torch[@]}" -- torch "$s"
    fi
  done
done

tab=$(mktemp)
trap 'rm -f "$tab"' EXIT
printf '%s\n' "${results[@]}" >"$tab"
python3 - "$tab" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    label, js = line.rstrip("\n").split("\t", 1)
    kind, size = label.split()
    r.setdefault(size, {})[kind] = json.loads(js)
print("| size | nst | PyTorch f32 | PyTorch bf16 autocast | nst/f32 | nst/bf16 "
      "| nst avx2 | PyTorch avx2 | nst/PyTorch avx2 | peak RSS MB nst / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|")
for k in r.values():
    def sec(n):
        return k[n]["sec_per_iter_median"] if n in k else None
    def f(v):
        return "-" if v is None else f"{v:.3f}"
    def q(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}"
    o = k["nst"]
    rss = f"{o['peak_rss_mb']:.0f}"
    if "pytorch-f32" in k:
        rss += f" / {k['pytorch-f32']['peak_rss_mb']:.0f}"
    n, t, b = sec("nst"), sec("pytorch-f32"), sec("pytorch-bf16")
    n2, t2 = sec("nst-avx2"), sec("pytorch-avx2")
    print(f"| {o['size'][1]}x{o['size'][0]} | {f(n)} | {f(t)} | {f(b)} | {q(n, t)} | {q(n, b)} "
          f"| {f(n2)} | {f(t2)} | {q(n2, t2)} | {rss} |")
PY
echo "($(load) at the end)"
