# tote: two commands do all the set-up on a fresh machine with Go and PostgreSQL:
#   make demo   seeds a source (a throwaway server unless TOTE_SOURCE_URL is set) and runs the pipeline
#   make test   runs every test
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/terrifictotes/tote.version=$(VERSION)
BIN       := bin/tote
TOOLS     := bin/tools

.PHONY: all build demo test test-short tools lint fmt vet staticcheck clean bench deploy-check validate-asl lambda e2e-aws bench-dashboard

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tote

demo: build
	./$(BIN) demo --log-level warn

# Every test, with the race detector; fails on unformatted code or vet findings.
# go test downloads and builds no tools: the tests that need one (the Lambda
# emulator, actionlint) skip without bin/tools, saying to run make tools.
# go test runs packages in the order given, two at a time on two cores: the
# slowest go first, so that none of them starts last and runs alone.
# The test binaries are linked without DWARF (-w), a third of each link:
# stack traces and race reports read the symbol table, which stays.
SLOWEST := ./awslambda ./web ./pipeline ./cmd/tote ./extract ./warehouse ./daemon ./deploy ./transform
test: vet
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -ldflags=-w $(SLOWEST) ./...

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

# The tools the tests and lint run, at the versions pinned in tools/go.mod (a
# module of its own, so that their dependencies stay out of tote's), built into
# bin/tools: actionlint, the Lambda Runtime Interface Emulator, staticcheck.
# Rebuilt when tools/go.mod changes.
tools: $(TOOLS)/.built
$(TOOLS)/.built: tools/go.mod tools/go.sum
	cd tools && CGO_ENABLED=0 $(GO) build -o ../$(TOOLS)/ tool
	@touch $@

staticcheck: tools
	$(TOOLS)/staticcheck ./...

lint: vet staticcheck
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

fmt:
	gofmt -w .

# Build outputs and the default lake (./data); never a tracked file (a test checks).
clean:
	rm -rf bin data

# Benchmarks against the floor (plain COPY to COPY) on a throwaway server:
#   make bench [SCALE=20 | SCALES="20 100 400"] [SEED=1]
# prints a table per scale (and one across scales) and writes cmd/bench/results/*.json
SCALE     ?= 20
SCALES    ?= $(SCALE)
SEED      ?= 1
BENCHFLAGS ?=
bench: build
	$(GO) run ./cmd/bench -tote $(BIN) -scales "$(SCALES)" -seed $(SEED) $(BENCHFLAGS)

# The dashboard's queries and first paint against a loaded warehouse (make
# bench measures them too, on the warehouse it loads at each scale):
#   make bench-dashboard WAREHOUSE=postgres://…/warehouse [LAKE=file://…]
WAREHOUSE ?= $(TOTE_WAREHOUSE_URL)
LAKE      ?=
bench-dashboard:
	cd web/e2e && npm ci --no-audit --no-fund --loglevel=error
	$(GO) run ./cmd/dashbench -warehouse "$(WAREHOUSE)" $(if $(LAKE),-lake "$(LAKE)")

# The AWS deployment's checks alone: terraform fmt/validate/test (mock AWS) and actionlint.
deploy-check:
	$(GO) test -count=1 -v ./deploy/

# The state machine definition, validated by the local Step Functions harness.
validate-asl:
	cd deploy/stepfunctions && npm ci --no-audit --no-fund --loglevel=error
	node deploy/stepfunctions/run.mjs --validate-only

# The Lambda deployment package, one zip for the three functions:
#   make lambda [ARCH=arm64|amd64]   writes bin/tote-lambda-$(ARCH).zip (bootstrap only, mode 0755)
# Reproducible: the same commit gives the same bytes (no build id, no paths,
# no VCS stamp; fixed zip time and attributes).
ARCH       ?= arm64
LAMBDA_DIR ?= bin
lambda:
	@mkdir -p $(LAMBDA_DIR)/lambda-$(ARCH)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(ARCH) $(GO) build -tags lambda.norpc -trimpath -buildvcs=false \
		-ldflags "-s -w -buildid= $(LDFLAGS)" -o $(LAMBDA_DIR)/lambda-$(ARCH)/bootstrap ./cmd/tote-lambda
	$(GO) run ./cmd/lambdazip -o $(LAMBDA_DIR)/tote-lambda-$(ARCH).zip $(LAMBDA_DIR)/lambda-$(ARCH)/bootstrap
	@ls -l $(LAMBDA_DIR)/tote-lambda-$(ARCH).zip

# Optional and heavy (not part of make test): applies the Terraform against a
# local AWS emulator, runs the pipeline through it and destroys it.
# See cmd/e2e-aws/README.md.
e2e-aws:
	$(MAKE) lambda ARCH=amd64
	cd cmd/e2e-aws && $(GO) run . -repo $(CURDIR) -zip $(CURDIR)/bin/tote-lambda-amd64.zip
