#!/usr/bin/env bash
# Time to a picture: the default `nst-cli transfer` at 512 px on several content × style pairs,
# recording wall time and peak RSS (/usr/bin/time) and `nst-cli eval`'s measures of the saved
# picture (objective, relu1_1 and mean Gram relative error, content_rel, SSIM). Public-domain
# pairs from assets/; with ../shared present also tubingen × starry_night / the_scream /
# shipwreck, and jcjohnson/neural-style's published pictures of the first two evaluated the same
# way (they are read from ../shared, never copied).
#
# Usage: benches/time_to_picture.sh [LABEL]        (from the repository root)
# Env: NST_CLI (binary; default target/release/nst-cli), NST_EVAL (binary for eval; default
#      NST_CLI — lets an old binary's pictures be measured by a new eval), NST_FLAGS (extra
#      transfer flags), PAIRS (space-separated names to run a subset), OUT (default
#      benches/out/ttp-LABEL).
# Prints one markdown table row per pair.
set -euo pipefail
cd "$(dirname "$0")/.."
label=${1:-run}
nst=${NST_CLI:-target/release/nst-cli}
ev=${NST_EVAL:-$nst}
out=${OUT:-benches/out/ttp-$label}
mkdir -p "$out"
shared=../shared/images
echo "# $(lscpu | sed -n 's/^Model name: *//p') · $(nproc) cores · $(date -u +%F) · $("$nst" --version)" >&2

pairs=(
  "chelsea_starry assets/chelsea.png assets/starry_night.jpg"
  "astronaut_scream assets/astronaut.jpg assets/the_scream.jpg"
  "rocket_shipwreck assets/rocket.jpg assets/shipwreck.jpg"
)
if [ -d "$shared" ]; then
  pairs+=(
    "tubingen_starry $shared/tubingen.jpg assets/starry_night.jpg"
    "tubingen_scream $shared/tubingen.jpg assets/the_scream.jpg"
    "tubingen_shipwreck $shared/tubingen.jpg assets/shipwreck.jpg"
  )
fi

row() { # name picture content style log time rss
  local j
  j=$("$ev" eval "$2" --content "$3" --style "$4" ${5:+--log-json "$5"} --json)
  python3 - "$1" "$6" "$7" "$j" <<'PY'
import json, sys
name, secs, rss, j = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
g = j["gram_rel"]
print(f"| {name} | {secs} | {rss} | {j['total']:.4g} | {g['relu1_1']:.3f} | {j['gram_rel_mean']:.3f} | "
      f"{j['content_rel']:.3f} | {j['ssim']:.3f} |")
PY
}

echo "| pair | wall s | peak RSS MiB | objective | gram relu1_1 | gram mean | content_rel | SSIM |"
echo "|---|---|---|---|---|---|---|---|"
for p in "${pairs[@]}"; do
  read -r name content style <<<"$p"
  if [ -n "${PAIRS:-}" ] && [[ " $PAIRS " != *" $name "* ]]; then continue; fi
  pic="$out/$name.png"
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e %M" -o "$out/$name.time" "$nst" transfer "$content" "$style" -o "$pic" \
    --log-json "$out/$name.json" ${NST_FLAGS:-} 2>"$out/$name.err" || { echo "| $name | failed: $(tail -1 "$out/$name.err") |"; continue; }
  read -r secs kb <"$out/$name.time"
  row "$name" "$pic" "$content" "$style" "$out/$name.json" "$secs" "$((kb / 1024))"
done
if [ -d ../shared/jcjohnson ] && [ -z "${PAIRS:-}" ]; then
  for s in starry:starry_night scream:the_scream; do
    row "jcjohnson tubingen_${s%%:*}" "../shared/jcjohnson/tubingen_${s%%:*}.png" "$shared/tubingen.jpg" \
      "assets/${s#*:}.jpg" "" "—" "—"
  done
fi
