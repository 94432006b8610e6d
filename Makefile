# Flagline — build, test and run locally.
#
#   make dev     the whole pipeline on this machine (moto + local API)
#   make test    every test and check (what CI runs)
#
# sam build calls the build-<LogicalId> targets below (BuildMethod: makefile).

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
PYTHON       ?= python3
VENV         ?= $(CURDIR)/.venv
VENV_BIN     := $(VENV)/bin
REGION       ?= eu-west-1
export AWS_REGION ?= $(REGION)
export SAM_CLI_TELEMETRY := 0
export FLAGLINE_VENV := $(VENV)

FUNCTIONS    := ingest aggregate alert cases escalate
LDFLAGS      := -s -w
LAMBDA_BUILD := CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags lambda.norpc -ldflags='$(LDFLAGS)'

.PHONY: all dev test soak unit integration browser chromium fmt-check vet sam-validate sam-build venv bench fuzz clean

all: test

## venv: install moto_server, the SAM CLI and cfn-lint into .venv (pinned)
venv: $(VENV)/.installed
$(VENV)/.installed: requirements-dev.txt requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV_BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements-dev.lock
	touch $@

## dev: run the pipeline locally (moto_server + the HTTP API on 127.0.0.1:3000).
## The CLI is built and run as itself, not through `go run`: `go run` answers
## Ctrl-C with exit status 1 even when flagline stops cleanly.
dev: venv
	$(GO) build -o bin/flagline ./cmd/flagline
	bin/flagline dev

## test: vet, format, every test with -race (integration: the unit tests and
## the tests against moto, in one run), browser tests in headless Chromium,
## template checks
test: fmt-check vet integration browser sam-validate sam-build

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.venv/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	$(GO) vet -tags browser ./...

## unit: the tests that need no moto, for a quick run; `make test` runs them
## within `integration`, as a test file without a build tag is in every build
unit:
	$(GO) test -race -count=1 ./...

## integration: against moto over the wire; -short leaves the long load
## tests to `make soak`
integration: venv
	$(GO) test -race -count=1 -short -timeout 30m -tags integration ./...

## soak: the long load tests, named TestSoak…, which skip themselves under -short
soak: venv
	$(GO) test -count=1 -timeout 60m -tags integration -run 'Soak' ./...

## browser: `flagline dev` as a user runs it, its inbox page and the stats page in headless
## Chromium (chromedp; never linked into a Lambda binary)
browser: venv chromium
	$(GO) test -race -count=1 -tags browser ./internal/local/inbox/ ./cmd/flagline/ ./shared/casesapi/

## chromium: Debian's Chromium for the browser tests, installed when missing
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

sam-validate: venv
	$(VENV_BIN)/sam validate --lint --region $(REGION)

sam-build: venv
	$(VENV_BIN)/sam build --build-in-source --region $(REGION)

## bench: every ratio of docs/performance.md from one run (about 2 minutes).
## The intake hot path (Core: verify + decode + validate + canonicalise +
## build item; HotPath: the whole handler) against its floor (HMAC-SHA256 +
## json.Unmarshal of the same body): BENCH_RUNS runs of one test binary, each
## running all three, so every ratio pairs figures taken side by side; then
## cold init of each function's bootstrap against an SDK floor (BENCH_ROUNDS
## alternating rounds), the arm64 bootstrap sizes, and each stage.
BENCH_RUNS   ?= 10
BENCH_ROUNDS ?= 100
bench:
	mkdir -p bin
	$(GO) test -c -o bin/intake.test ./shared/intake/
	rm -f bench.out
	for i in $$(seq $(BENCH_RUNS)); do \
	  echo "intake benchmarks, run $$i of $(BENCH_RUNS) (raw results in bench.out)"; \
	  (cd shared/intake && ../../bin/intake.test -test.run '^$$' -test.bench 'Core|HotPath|Floor' -test.benchmem) >> bench.out; \
	done
	$(GO) tool benchstat bench.out
	$(GO) run ./internal/local/benchreport -hotpath bench.out -rounds $(BENCH_ROUNDS) -sizes
	$(GO) test -run '^$$' -bench . -benchmem ./shared/webhook/ ./shared/report/ ./shared/reportstore/ ./shared/canon/

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./shared/canon/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./shared/report/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodePlainMatchesStrict$$' -fuzztime $(FUZZTIME) ./shared/report/
	$(GO) test -run '^$$' -fuzz '^FuzzValidEmail$$' -fuzztime $(FUZZTIME) ./shared/report/
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./shared/webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyMatchesReference$$' -fuzztime $(FUZZTIME) ./shared/webhook/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/local/inbox/

clean:
	rm -rf .aws-sam bin bench.out

# One target per function for sam build (BuildMethod: makefile).
build-IngestFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/ingest

build-AggregateFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/aggregate

build-AlertFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/alert

build-CasesFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/cases

build-EscalateFunction:
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/escalate
