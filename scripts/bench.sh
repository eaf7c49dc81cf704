#!/usr/bin/env bash
# make bench: gustd dev side by side with `runc run` and aws-lambda-rie.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench starts sandboxes and runc: run as root" >&2; exit 1; }
command -v runc >/dev/null || { apt-get update -qq && apt-get install -y -qq runc; }
GOBIN=$(go env GOPATH)/bin
[ -x "$GOBIN/aws-lambda-rie" ] || GOFLAGS= go install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@latest
go run ./bench -gustd bin/gustd -bootstrap bin/hello/bootstrap -rie "$GOBIN/aws-lambda-rie" "$@"
