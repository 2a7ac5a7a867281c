# sluice — the two commands that matter: `make run` and `make test`.
SHELL       := /bin/bash
GO          ?= go
BIN         := $(CURDIR)/bin
DIST        := $(CURDIR)/dist
FUNCTIONS   := stream embed orchestrate
MAX_ZIP     := 8388608
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_VERSION := v0.8.2

.PHONY: run run-orchestrate test build bench lint fmt clean emulator test-atomicity invoke local-up local-down local-deploy test-integration run-embed enqueue fuzz

## run: serve the streaming API on 127.0.0.1:8080 with the built-in config (no keys needed)
run:
	@bash scripts/run.sh $(ARGS)

## run-orchestrate: serve the task API (and the buffered chat API) on 127.0.0.1:8081 with the built-in config and memory stores (no keys, no AWS)
run-orchestrate:
	$(GO) run ./functions/orchestrate $(ARGS)

## run-embed: the embed function polling a local queue (emulator started, queue and vector bucket created); ARGS pass flags
run-embed:
	bash scripts/run-embed.sh $(ARGS)

## enqueue: send sample documents to the queue run-embed polls (FILE=docs.jsonl sends your own)
enqueue:
	@test -f .cache/embed-local.env || { echo "start make run-embed first"; exit 1; }
	bash -c 'source .cache/embed-local.env && go run ./scripts/embedq send $(if $(FILE),-file $(FILE))'

## test: lint, unit/integration tests with -race, and the OpenAI SDK compatibility test
test: lint
	bash scripts/test.sh

## build: one linux/arm64 bootstrap zip per function in dist/
build:
	@mkdir -p $(DIST)
	@for f in $(FUNCTIONS); do \
	  mkdir -p $(DIST)/$$f && \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" \
	    -o $(DIST)/$$f/bootstrap ./functions/$$f && \
	  $(GO) run ./scripts/lambdazip $(DIST)/$$f.zip $(DIST)/$$f/bootstrap || exit 1; \
	  size=$$(stat -c %s $(DIST)/$$f.zip); \
	  awk -v s=$$size -v f=$$f.zip 'BEGIN { printf "%-16s %6.2f MB\n", f, s/1048576 }'; \
	  if [ $$size -gt $(MAX_ZIP) ]; then echo "$$f.zip exceeds 8 MB" >&2; exit 1; fi; \
	done

## invoke: run one function under AWS's Lambda Runtime Interface Emulator with an event file;
##         the response is the last line of stdout, exit status 1 if the invocation failed
##         make invoke FN=stream|embed|orchestrate EVENT=events/<file>.json [CONFIG=sluice.yaml]
invoke:
	@mkdir -p .cache/bin && $(GO) build -o .cache/bin/sluice-invoke ./scripts/invoke
	@.cache/bin/sluice-invoke -fn "$(FN)" -event "$(EVENT)" $(if $(CONFIG),-config "$(CONFIG)")

## bench: micro-benchmarks (allocations per chunk) and the TTFT load test (overhead, hedging, state backends)
bench:
	bash scripts/bench.sh

## emulator: run the AWS API emulator (moto, one request at a time) in the foreground; MOTO_PORT=5000 picks the port
emulator:
	@bash -c 'source scripts/emulator.sh || exit 1; \
	  echo "# in another shell:"; \
	  echo "export AWS_ENDPOINT_URL=$$AWS_ENDPOINT_URL AWS_REGION=$$AWS_REGION AWS_ACCESS_KEY_ID=$$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$$AWS_SECRET_ACCESS_KEY"; \
	  echo "# Ctrl-C stops it"; wait'

## test-atomicity: check the emulator applies conditional writes atomically (MOTO_UNSAFE=1 shows plain moto failing)
test-atomicity:
	bash -c 'source scripts/emulator.sh && go test -count=1 -run TestEmulatorIsAtomic -v ./shared/ddb/'

## fuzz: every Fuzz target in turn; FUZZTIME=5m per target for a longer run (default: a 24s budget shared)
fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

## local-up / local-deploy / test-integration / local-down: the LocalStack path (needs Docker; see README)
local-up:
	bash scripts/localstack.sh up
local-deploy: build
	bash scripts/localstack.sh deploy
test-integration:
	bash scripts/localstack.sh test
local-down:
	bash scripts/localstack.sh down

$(STATICCHECK):
	GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: gofmt, go vet and staticcheck must all be clean
lint: $(STATICCHECK)
	@out=$$(gofmt -l functions shared scripts infra); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

fmt:
	gofmt -w functions shared scripts infra

clean:
	rm -rf $(DIST)
