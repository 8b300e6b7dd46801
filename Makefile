# tote: two commands do all the set-up on a fresh machine with Go and PostgreSQL:
#   make demo   seeds a source (a throwaway server unless TOTE_SOURCE_URL is set) and runs the pipeline
#   make test   runs every test
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/terrifictotes/tote.version=$(VERSION)
BIN       := bin/tote
TOOLS     := bin/tools

.PHONY: all build demo test test-short cover tools lint fmt fmt-check vet staticcheck security gosec tfsec vulncheck clean bench deploy-check validate-asl lambda e2e-aws bench-dashboard

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
test: vet fmt-check
	$(GO) test -race -count=1 -ldflags=-w $(SLOWEST) ./...

# The same run as make test (CI runs this instead: the suite runs once), with
# the statement coverage of the whole tree: a package's statements count as
# covered when any package's tests run them (-coverpkg=./...). Prints a table
# per package and fails when the total is under COVER_FLOOR percent
# (docs/decisions/0020-ci-health.md). The profile stays in COVER_OUT:
#   go tool cover -html=bin/coverage.out
COVER_FLOOR   ?= 85
COVER_TARGET  ?= 90
COVER_OUT     ?= bin/coverage.out
# Counting every package's statements in every test binary slows the tests:
# more than go test's default 10m per package.
COVER_TIMEOUT ?= 30m
MODULE        := github.com/terrifictotes/tote
# Left out of the figure: the benchmark drivers (make bench, make
# bench-dashboard run them; they measure, nothing ships them).
COVER_EXCLUDE ?= cmd/bench cmd/dashbench
# The tests run; narrow them to see what one package's tests cover:
#   make cover COVER_PKGS=./alert COVER_FLOOR=0
COVER_PKGS    ?= $(SLOWEST) ./...
cover: vet fmt-check tools
	@mkdir -p $(dir $(COVER_OUT))
	$(GO) test -race -count=1 -ldflags=-w -timeout=$(COVER_TIMEOUT) -coverpkg=./... -coverprofile=$(COVER_OUT) $(COVER_PKGS)
	$(TOOLS)/coverfloor -profile $(COVER_OUT) -module $(MODULE) -floor $(COVER_FLOOR) -target $(COVER_TARGET) $(COVER_EXCLUDE:%=-exclude %)

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

# The tools the tests and lint run, at the versions pinned in tools/go.mod (a
# module of its own, so that their dependencies stay out of tote's), built into
# bin/tools: actionlint, the Lambda Runtime Interface Emulator, staticcheck,
# gosec, tfsec, govulncheck, and coverfloor (tools/coverfloor: make cover's
# table and floor). Rebuilt when tools/go.mod or coverfloor changes.
tools: $(TOOLS)/.built
$(TOOLS)/.built: tools/go.mod tools/go.sum $(wildcard tools/coverfloor/*.go)
	cd tools && CGO_ENABLED=0 $(GO) build -o ../$(TOOLS)/ tool ./coverfloor
	@touch $@

staticcheck: tools
	$(TOOLS)/staticcheck ./...

lint: vet staticcheck fmt-check
	cd tools && $(GO) vet ./... && $(GO) test -count=1 ./...

fmt-check:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

# Security scans (docs/decisions/0020-ci-health.md); each exclusion is in its
# config file with its reason. govulncheck needs its database (vuln.go.dev):
# the hosted workflow runs it; .ci/run cannot.
security: gosec tfsec
gosec: tools
	$(TOOLS)/gosec -quiet -conf .ci/gosec.json ./...
tfsec: tools
	$(TOOLS)/tfsec deploy/terraform --no-color --concise-output --config-file .ci/tfsec.yml
vulncheck:
	cd tools && $(GO) build -o ../$(TOOLS)/ golang.org/x/vuln/cmd/govulncheck
	$(TOOLS)/govulncheck ./...

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
