#!/bin/sh
# The layers hold: coordinators, the client SDK and the CLI link no sandbox
# code (they reach workers through worker/workerapi only), and build off
# Linux. Run by `make test` and `make lint`.
set -eu
GO=${GO:-go}
pkgs="./coordinator/... ./client/... ./cmd/gust"
if $GO list -deps $pkgs | grep -E 'opencontainers/runc|gustfaas/gust/(worker|sandbox)$'; then
	echo "layers: the packages above are linked into $pkgs; reach workers through worker/workerapi" >&2
	exit 1
fi
GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $GO build -o /dev/null $pkgs
echo "layers: ok ($pkgs link no runc and build for darwin)"
