#!/usr/bin/env bash
# make bench: gust side by side with its references, in one run on this
# machine, through `gust bench` (see `bin/gust bench --help`). Its arguments
# go to gust bench: make bench BENCH_ARGS="--mode cold --samples 20".
# Also writes bin/bench/report.md, report.json and latency.svg (BENCH_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench starts sandboxes and runc: run as root" >&2; exit 1; }
command -v runc >/dev/null || { apt-get update -qq && apt-get install -y -qq runc; }
GOBIN=$(go env GOPATH)/bin
RIE=$(command -v aws-lambda-rie || echo "$GOBIN/aws-lambda-rie")
[ -x "$RIE" ] || GOFLAGS= go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@latest
OUT=${BENCH_OUT:-bin/bench}
mkdir -p "$OUT"
bin/gust bench --gustd bin/gustd --bootstrap bin/hello/bootstrap --rie "$RIE" \
  --json "$OUT/report.json" --chart "$OUT/latency.svg" "$@" | tee "$OUT/report.md"
echo "wrote $OUT/report.md, $OUT/report.json, $OUT/latency.svg" >&2
