#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME (default 3s): `make test` runs it so
# each decoder of outside input is fuzzed briefly on every run; `make fuzz
# FUZZTIME=5m` fuzzes longer. Seed corpora are the f.Add calls and any
# testdata/fuzz files committed beside the targets.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-3s}
# Go 1.26's fuzz coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is mid-input on a
# busy machine (go.dev/issue/75804, fixed in Go 1.27). Fuzzing alone runs on
# 1.27.3, which the go command fetches from the module proxy; the module and
# everything else stay on the machine's Go.
export GOTOOLCHAIN=${FUZZ_TOOLCHAIN:-go1.27.3}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $fn ($FUZZTIME)"
    go test -tags "${TAGS:-seccomp}" -run '^$' -fuzz "^${fn}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/gust-fuzz.log 2>&1 || { cat /tmp/gust-fuzz.log; exit 1; }
  done
done
