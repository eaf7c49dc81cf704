#!/usr/bin/env bash
# make demo: start `gustd dev`, deploy the example function, invoke it cold
# and warm, show the timings, stop cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
GRPC=${GUST_DEMO_GRPC:-127.0.0.1:7070}
HTTP=${GUST_DEMO_HTTP:-127.0.0.1:7080}

if [ "$(id -u)" != 0 ]; then
  echo "gustd runs sandboxes and needs root: run 'sudo make demo'" >&2
  exit 1
fi
data=$(mktemp -d /tmp/gust-demo.XXXXXX)
log="$data/gustd.log"
"$BIN/gustd" dev --data-dir "$data/state" --grpc "$GRPC" --http "$HTTP" 2>"$log" &
gustd=$!
cleanup() {
  if kill -0 "$gustd" 2>/dev/null; then kill -TERM "$gustd"; wait "$gustd" || true; fi
  rm -rf "$data"
}
trap cleanup EXIT

for _ in $(seq 1 200); do
  if curl -fsS "http://$HTTP/readyz" >/dev/null 2>&1 || (exec 3<>"/dev/tcp/${HTTP%:*}/${HTTP#*:}") 2>/dev/null; then break; fi
  kill -0 "$gustd" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.05
done

gust() { "$BIN/gust" --addr "$GRPC" "$@"; }
field() { sed -n "s/^  \"$1\": \\(.*\\),\$/\\1/p"; }

echo "== deploy"
gust fn deploy hello --code "$BIN/hello" --env GREETING=hi
for kind in cold warm; do
  echo "== invoke ($kind)"
  start=$(date +%s%N)
  out=$(gust -o json invoke hello --payload '{"name":"demo"}')
  end=$(date +%s%N)
  echo "$out" | sed -n '/"payload"/,/}/p'
  printf '   cold_start=%s  init=%s ms  duration=%s ms  end-to-end (CLI process included)=%d ms\n' \
    "$(echo "$out" | field cold_start)" "$(echo "$out" | field init_duration_ms)" \
    "$(echo "$out" | field duration_ms)" $(( (end - start) / 1000000 ))
done
echo "== stop"
kill -TERM "$gustd"
wait "$gustd"
echo "gustd stopped cleanly"
