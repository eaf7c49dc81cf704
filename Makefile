# gust — build, test and demo. See README.md.
GO        ?= go
BIN       ?= bin
# gustd links libcontainer's nsenter (cgo) and libseccomp statically, so
# the one binary runs on a fresh machine with nothing else installed.
GUSTD_TAGS := seccomp netgo osusergo
STATIC     := -s -w -extldflags "-static"
# Tests link statically like gustd: a stem cell re-executes the binary
# inside a sandbox whose root filesystem has no shared libraries.
TEST_TAGS  := seccomp netgo osusergo
TEST_LDFLAGS := -extldflags=-static
GOBIN_DIR  := $(shell $(GO) env GOPATH)/bin

.PHONY: build proto check-proto test fuzz demo lint bench clean tools

build: $(BIN)/gustd $(BIN)/gust

# gustd embeds gustd-init, its sandboxes' small init (sandbox.UseInit).
$(BIN)/gustd: FORCE
	CGO_ENABLED=1 $(GO) build -tags "$(GUSTD_TAGS)" -ldflags '$(STATIC)' -o cmd/gustd/initexe/gustd-init ./cmd/gustd-init
	CGO_ENABLED=1 $(GO) build -tags "$(GUSTD_TAGS)" -ldflags '$(STATIC)' -o $@ ./cmd/gustd

$(BIN)/gust: FORCE
	CGO_ENABLED=0 $(GO) build -o $@ ./cmd/gust

# The example function, as a Lambda `provided` bootstrap.
$(BIN)/hello/bootstrap: FORCE
	CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -o $@ ./examples/hello

# Code generators, pinned; installed into GOPATH/bin when missing.
tools:
	@test -x $(GOBIN_DIR)/buf || $(GO) install github.com/bufbuild/buf/cmd/buf@v1.75.0
	@test -x $(GOBIN_DIR)/protoc-gen-go || $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	@test -x $(GOBIN_DIR)/protoc-gen-go-grpc || $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

proto: tools
	PATH="$(GOBIN_DIR):$$PATH" buf generate

check-proto: proto
	@git diff --exit-code -- proto/ || (echo "generated code is stale: run make proto and commit" && exit 1)

# Sandbox and end-to-end tests need root; under CI=true they fail rather than
# skip. Packages run one at a time (-p 1): the cluster tests time failovers
# and quotas, and on a 2-core machine packages running side by side starve
# each other's gossip and Raft heartbeats.
# The binaries come first: under CI=true the Docker Compose test (test/deploy)
# builds its images from bin/.
test: build $(BIN)/hello/bootstrap
	$(GO) vet -tags "$(TEST_TAGS)" ./...
	GO=$(GO) ./scripts/layers.sh
	CGO_ENABLED=1 $(GO) test -p 1 -tags "$(TEST_TAGS)" -ldflags '$(TEST_LDFLAGS)' -count=1 -timeout 15m ./...
	FUZZTIME=3s ./scripts/fuzz.sh

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	FUZZTIME=$(or $(FUZZTIME),1m) ./scripts/fuzz.sh

demo: build $(BIN)/hello/bootstrap
	./scripts/demo.sh

lint: tools
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go') && exit 1)
	$(GO) vet -tags "$(TEST_TAGS)" ./...
	GO=$(GO) ./scripts/layers.sh
	PATH="$(GOBIN_DIR):$$PATH" buf lint

# Benchmarks, as root: `gust bench` with its references in the same run.
# BENCH_ARGS passes flags, e.g. make bench BENCH_ARGS="--mode cold --samples 20".
bench: build $(BIN)/hello/bootstrap
	./scripts/bench.sh $(BENCH_ARGS)

# A cluster in Docker: coordinators c1-c3 and workers w1-w2 from
# deploy/docker-compose.yml, images FROM scratch out of bin/gustd. gRPC on
# 127.0.0.1:7070-7072, HTTP on 127.0.0.1:7080-7082. See deploy/README.md.
COMPOSE = $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose)
.PHONY: cluster-up cluster-down deploy-test
cluster-up: build
	$(COMPOSE) -f deploy/docker-compose.yml up -d --build
	@echo 'try: $(BIN)/gust --addr 127.0.0.1:7070,127.0.0.1:7071,127.0.0.1:7072 nodes'

cluster-down:
	$(COMPOSE) -f deploy/docker-compose.yml down -v

# Brings the compose cluster up under its own project name, deploys and
# invokes, kills c1, invokes again; tears it down. Needs Docker.
deploy-test: build $(BIN)/hello/bootstrap
	GUST_DEPLOY_TEST=1 GUST_COMPOSE="$(COMPOSE)" $(GO) test ./test/deploy/ -count=1 -v -timeout 10m

clean:
	rm -rf $(BIN)

FORCE:

# The chaos suite (test/chaos): real gustd processes on loopback, seeded
# random faults under load, an invariant table; non-zero on any violation.
# Replay a run with GUST_CHAOS_SEED=N. CI runs the short version in make test.
.PHONY: chaos
chaos:
	CI= GUST_CHAOS=full CGO_ENABLED=1 $(GO) test -tags "$(TEST_TAGS)" -ldflags '$(TEST_LDFLAGS)' -count=1 -v -timeout 20m ./test/chaos/

# Mixed load on a 3-coordinator, 2-worker cluster for SOAK (default 10m);
# every node's goroutines, RSS and open files must stay flat.
.PHONY: soak
soak:
	CI= GUST_SOAK=$(or $(SOAK),10m) CGO_ENABLED=1 $(GO) test -tags "$(TEST_TAGS)" -ldflags '$(TEST_LDFLAGS)' -count=1 -v -run TestSoak -timeout 40m ./test/chaos/
