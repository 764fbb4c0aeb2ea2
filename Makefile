# hyperd build, test and demo. `make help` lists the targets.

GO        ?= go
BIN       := bin
GUEST_DIR := build/guest
TOOLS     := $(CURDIR)/.tools

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION        := v0.8.2

DRIVERS := qemu libvirt xen

.PHONY: all build deps guest demo test test-examples test-short fuzz bench proto lint help clean

all: build ## build bin/hyperd, bin/hyperctl and the drivers in bin/plugins

build:
	$(GO) build -o $(BIN)/hyperd ./cmd/hyperd
	$(GO) build -o $(BIN)/hyperctl ./cmd/hyperctl
	$(foreach d,$(DRIVERS),$(GO) build -o $(BIN)/plugins/hyperd-driver-$(d) ./plugins/$(d)/cmd/hyperd-driver-$(d) &&) true

deps: ## install the Debian packages the build, tests and demo need
	./scripts/install-deps.sh

guest: ## build the test guest (kernel and busybox initrds) in build/guest
	./guest/build.sh $(GUEST_DIR)

demo: deps build guest ## boot a real guest through hyperd and the QEMU driver
	./scripts/demo.sh

test: deps build guest ## run every test, with real QEMU, libvirtd and nested Xen
	./scripts/start-libvirtd.sh
	HYPERD_BIN_DIR=$(CURDIR)/$(BIN) HYPERD_GUEST_DIR=$(CURDIR)/$(GUEST_DIR) \
		$(GO) test -count=1 -timeout 25m ./...
	HYPERD_BIN_DIR=$(CURDIR)/$(BIN) HYPERD_GUEST_DIR=$(CURDIR)/$(GUEST_DIR) \
		$(GO) test -count=1 -tags disruptive -run 'Outage' ./e2e
	$(MAKE) test-examples
	$(MAKE) fuzz
	$(MAKE) bench BENCH_FLAGS=-quick

FUZZTIME ?= 5s

fuzz: ## run each fuzz target briefly (FUZZTIME, default 5s)
	$(GO) test -run '^$$' -fuzz '^FuzzValidateSpec$$' -fuzztime $(FUZZTIME) ./core
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./core
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) ./core
	$(GO) test -run '^$$' -fuzz '^FuzzValidateSpec$$' -fuzztime $(FUZZTIME) ./plugins/qemu
	$(GO) test -run '^$$' -fuzz '^FuzzOptionEscaping$$' -fuzztime $(FUZZTIME) ./plugins/qemu

test-examples: build guest ## the example drivers' tests: the UML driver's conformance suite and a hyperd run
	cd examples/driver-uml && HYPERD_BIN_DIR=$(CURDIR)/$(BIN) HYPERD_GUEST_DIR=$(CURDIR)/$(GUEST_DIR) \
		$(GO) test -count=1 -timeout 15m ./...

.PHONY: test-xen
test-xen: deps guest ## boot Xen nested under QEMU and run hyperd's xen driver in its dom0 (about 5 minutes)
	HYPERD_GUEST_DIR=$(CURDIR)/$(GUEST_DIR) $(GO) test -count=1 -v -timeout 15m ./test/xen

test-short: ## unit tests only, no VMs booted
	$(GO) test -short ./...

bench: build guest ## benchmarks
	./scripts/start-libvirtd.sh
	$(GO) run ./bench/cmd/hyperd-bench -bin $(BIN) -guest $(GUEST_DIR) \
		-json $(or $(BENCH_JSON),build/bench.json) $(BENCH_FLAGS)

proto: ## regenerate the gRPC code from the .proto files
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(TOOLS):$$PATH protoc -I sdk/proto \
		--go_out=paths=source_relative:sdk/proto --go-grpc_out=paths=source_relative:sdk/proto \
		sdk/proto/hyperd/driver/v1/driver.proto sdk/proto/hyperd/driver/v2/driver.proto
	PATH=$(TOOLS):$$PATH protoc -I api \
		--go_out=paths=source_relative:api --go-grpc_out=paths=source_relative:api \
		api/hyperd/v1/hyperd.proto

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(TOOLS)/staticcheck ./...

clean:
	rm -rf $(BIN) build

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12
