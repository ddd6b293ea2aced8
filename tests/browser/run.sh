#!/usr/bin/env bash
# Real-browser test of `nst-cli serve`: installs Chromium (Debian apt) and playwright-core (npm ci)
# when missing, builds nst-cli (release), starts a fresh server on a free port with a temporary
# jobs directory, runs test.mjs against it, and stops the server.
#
# Environment: NST_CLI (an nst-cli binary to use instead of building one), NST_WEIGHTS (VGG-19
# weights; default: the cache), NST_SIZE, NST_ITERATIONS, NST_SCREENSHOT (see test.mjs).
# Without the weights it prints "skipped" and succeeds, except in CI (CI set), where it fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
start=$(date +%s)

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (apt-get)"
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
export CHROMIUM=${CHROMIUM:-$(command -v chromium)}

if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${NST_CLI:-}" ]; then
  (cd "$root" && cargo build --release -p nst-cli --quiet)
  NST_CLI="${CARGO_TARGET_DIR:-$root/target}/release/nst-cli"
fi

tmp=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

weights_args=()
[ -n "${NST_WEIGHTS:-}" ] && weights_args=(--weights "$NST_WEIGHTS")
"$NST_CLI" serve --port 0 --jobs-dir "$tmp/jobs" "${weights_args[@]}" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!

url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'http://[^ ]*' "$tmp/server.out" 2>/dev/null | head -n1 || true)
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    server_pid=""
    if grep -q "weights not found" "$tmp/server.err" && [ -z "${CI:-}" ]; then
      echo "skipped: $(cat "$tmp/server.err")"
      exit 0
    fi
    echo "the server did not start:" >&2
    cat "$tmp/server.err" >&2
    exit 1
  fi
  sleep 0.2
done
if [ -z "$url" ]; then
  echo "the server printed no address within 120 s" >&2
  exit 1
fi
echo "server: $url"

status=0
NST_URL="$url" node "$here/test.mjs" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server stderr ---" >&2
  cat "$tmp/server.err" >&2
fi
echo "browser test: $([ "$status" -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - start)) s"
exit "$status"
