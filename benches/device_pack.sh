#!/usr/bin/env bash
# Packs what benches/device_check.sh needs on a machine without a Rust toolchain (the lent GPU
# machine): the release nst-cli, the test binaries with GPU or bf16/AMX tests and the kernel
# speed examples (packed_gemm_speed, conv_speed, gram_speed; stripped), the VGG-19 weights and PyTorch's
# anchor, into DIR (default .gpu, which .git/info/exclude should
# list). Usage: benches/device_pack.sh [DIR]
# Environment: TORCH_REFERENCE (default ../shared/bench/torch_reference.py), NST_WEIGHTS
# (default $NST_HOME or ~/.cache/nst, vgg19.safetensors).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/.gpu}
weights=${NST_WEIGHTS:-${NST_HOME:-$HOME/.cache/nst}/vgg19.safetensors}
torch_ref=${TORCH_REFERENCE:-$root/../shared/bench/torch_reference.py}
cd "$root"
mkdir -p "$dir"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cargo build --release -p nst-cli --quiet
strip -o "$stage/nst-cli" target/release/nst-cli
cargo build --release -p nst-kernels --example packed_gemm_speed --example conv_speed \
  --example gram_speed --quiet
for e in packed_gemm_speed conv_speed gram_speed; do
  strip -o "$stage/$e" "target/release/examples/$e"
done
exes=$(
  {
    cargo test --release -p nst-kernels --lib --no-run --message-format=json
    cargo test --release -p nst-engine --test ops --test cuda_device --test cpu_precision \
      --no-run --message-format=json
    cargo test --release -p nst-tests --test cuda_transfer --test bf16_precision --test reference \
      --no-run --message-format=json
  } 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"])'
)
while read -r name exe; do
  strip -o "$stage/$name" "$exe"
done <<<"$exes"
cp "$weights" "$stage/vgg19.safetensors"
# xz: the weights are k-means quantised (256 values a layer) and shrink to a third.
tar cf - -C "$stage" . | xz -T0 -6 >"$dir/pack.tar.xz"
[ -f "$torch_ref" ] && cp "$torch_ref" "$dir/"
cp benches/device_check.sh "$dir/"
ls -la "$dir"
