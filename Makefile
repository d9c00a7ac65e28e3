# tenant-proxy: `make run` starts a local cluster and the proxy; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
KUBE_VERSION := v1.37.2
KUBE_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/component-base/version.gitTreeState=clean \
	-X k8s.io/client-go/pkg/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitTreeState=clean
# The runtime's compile-time GODEBUG default, the one //go:debug lines set ($$GODEBUG still overrides it), for a setting
# //go:debug does not accept: with schedtrace set, the runtime's sysmon thread never parks in its deep sleep, from which
# every wake of an idle proxy (twice a request at one client) woke it with a futex, and it polls every 10 ms when
# nothing needs it (cmd/tenant-proxy/main.go). The period is 2^31-1 ms, so the trace itself is at most one line per
# 24.8 days of uptime.
PROXY_LDFLAGS := -X runtime.godebugDefault=schedtrace=2147483647
CLUSTER_BINS := $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kubectl $(BIN)/etcd $(BIN)/capsule $(BIN)/capsule-crds
E2E_TIMEOUT ?= 30m

.PHONY: all build cluster-bins run test unit e2e bench fmt vet clean

all: build

build: $(BIN)/tenant-proxy

# Static, without cgo: kustomize (through Helm and k8s.io/cli-runtime) imports "plugin", which with cgo makes the linker
# export every symbol dynamically (23 MB of .dynsym/.dynstr, 5 MB more text) and so the proxy maps more of its
# executable into memory.
$(BIN)/tenant-proxy: $(shell find cmd internal -name '*.go' 2>/dev/null) go.mod go.sum Makefile
	@echo ">> building tenant-proxy"
	CGO_ENABLED=0 $(GO) build -ldflags '$(PROXY_LDFLAGS)' -o $@ ./cmd/tenant-proxy

cluster-bins: $(CLUSTER_BINS)

# The control-plane binaries are built once from pinned modules and cached in ./bin.
$(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kubectl: hack/tools/kubernetes/go.mod
	@echo ">> building $(notdir $@) $(KUBE_VERSION) from k8s.io/kubernetes (first build takes about 5 minutes)"
	cd hack/tools/kubernetes && $(GO) build -trimpath -ldflags '$(KUBE_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(notdir $@)

$(BIN)/etcd: hack/tools/etcd/go.mod
	@echo ">> building etcd"
	cd hack/tools/etcd && $(GO) build -trimpath -o $@ go.etcd.io/etcd/server/v3

$(BIN)/capsule: hack/tools/capsule/go.mod
	@echo ">> building the Capsule controller v0.13.11 (first build takes about 3 minutes)"
	cd hack/tools/capsule && $(GO) build -trimpath -o $@ github.com/projectcapsule/capsule/cmd/controller

run: build cluster-bins
	@echo ">> starting a local cluster with Capsule, demo tenants and the proxy (Ctrl-C stops everything)"
	$(GO) build -o $(BIN)/localcluster ./hack/localcluster
	$(BIN)/localcluster -bin $(BIN) -proxy $(BIN)/tenant-proxy

test: build cluster-bins
	@echo ">> unit tests"
	TENANT_PROXY_BIN=$(BIN) $(GO) test -count=1 ./internal/... ./cmd/... ./bench/...
	@echo ">> end-to-end tests against a real kube-apiserver, etcd, Capsule and kubectl"
	TENANT_PROXY_BIN=$(BIN) $(GO) test -count=1 -timeout $(E2E_TIMEOUT) -v ./e2e/...

bench: build cluster-bins
	TENANT_PROXY_BIN=$(BIN) $(GO) run ./bench/cmd/bench -front-proxy -floor $(BENCH_FLAGS)

fmt:
	gofmt -l -w cmd internal e2e hack bench

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN)

# Capsule's CRDs (and their conversion-webhook patches) from the pinned module, for the test bed.
$(BIN)/capsule-crds: hack/tools/capsule/go.mod
	@echo ">> copying Capsule CRDs"
	rm -rf $@ && mkdir -p $@ && cp "$$(cd hack/tools/capsule && $(GO) list -m -f '{{.Dir}}' github.com/projectcapsule/capsule)"/charts/capsule/crds/* $@/ && chmod -R u+w $@
