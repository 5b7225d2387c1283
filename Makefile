# Berth's two set-up commands: `make run` and `make test`.
GO      ?= go
BIN     := bin/berth
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/berthdev/berth/internal/cli.Version=$(VERSION)
DATA    ?= .berth

.PHONY: all build run test test-short test-race test-disruptive deps bench generate clean

# Packages with goroutines of their own: run again under the race detector.
RACE_PKGS := ./internal/agent ./internal/scproxy ./internal/httpfwd ./internal/agentgw ./internal/taskrun ./internal/ecs/... ./internal/store \
	./internal/registry ./internal/awsproto ./internal/telemetry ./internal/audit ./internal/tsdb \
	./internal/logstore ./internal/logs ./internal/cloudwatch ./internal/awslogs ./internal/taskstats \
	./internal/ecsmetrics ./internal/alb ./internal/elbv2 ./internal/events ./internal/tlsca ./internal/cloudmap ./internal/autoscaling \
	./internal/console

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/berth

# Installs what Berth needs (Docker Engine, etcd for the external-store
# tests, the AWS CLIs), builds and starts `berth up` in the foreground.
run: deps build
	./$(BIN) up --data-dir $(DATA)

# The whole suite, as CI runs it: unit, contract, scenario and CLI tests.
test: deps build
	BERTH_REQUIRE_ETCD=1 BERTH_REQUIRE_CLIS=1 BERTH_REQUIRE_DOCKER=1 BERTH_BIN=$(CURDIR)/$(BIN) \
		$(GO) test ./... -count=1 -timeout 30m -parallel 3
	$(MAKE) test-race
	$(MAKE) test-disruptive

test-race:
	BERTH_REQUIRE_DOCKER=1 $(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

# Tests that restart Docker Engine: run alone, after the parallel suite.
test-disruptive:
	BERTH_REQUIRE_DOCKER=1 BERTH_BIN=$(CURDIR)/$(BIN) \
		$(GO) test -tags disruptive -p 1 ./test/disruptive -count=1 -timeout 5m

test-short: build
	BERTH_BIN=$(CURDIR)/$(BIN) $(GO) test ./... -count=1 -short

deps:
	bash scripts/install-deps.sh

bench: build
	./$(BIN) bench

generate:
	$(GO) generate ./...

clean:
	rm -rf bin
