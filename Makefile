# dripdrop — make targets. `make run` and `make test` are the two commands a
# newcomer needs; everything else is for working on the engine.

GO          ?= go
SQLC_VER    := v1.31.1
GOBIN       := $(shell $(GO) env GOPATH)/bin
SQLC        := $(GOBIN)/sqlc
PKGS        := ./...
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT      ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS     := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: run test test-citus build generate check-generated vet lint fuzz bench bench-scale db/stop clean

## run: start the engine in dev mode (managed PostgreSQL, SMTP sink, demo data);
## installs the PostgreSQL server binaries first when they are missing
run:
	@scripts/ensure-postgres DATABASE_URL
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/dripdrop dev

## test: everything CI runs — generated code freshness, vet, all tests with the race detector
## (installs the PostgreSQL server binaries, Chromium for the dashboard's browser tests,
## Postfix for the real-Postfix dispatch test and Dovecot for the real-IMAP mailbox tests,
## first when they are missing)
test: check-generated vet lint
	@scripts/ensure-postgres TEST_DATABASE_URL
	@scripts/ensure-chromium
	@scripts/ensure-postfix
	@scripts/ensure-dovecot
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## test-citus: the Citus tests alone (a coordinator and two workers on loopback), failing rather than
## skipping when no Citus is installed: set DRIPDROP_CITUS_BINDIR to the bin directory of a PostgreSQL
## with the citus extension (docs/scaling.md#testing-on-citus). `make test` runs them too when one is found.
test-citus:
	DRIPDROP_CITUS_REQUIRED=1 $(GO) test -race -count=1 -timeout 20m -run 'Citus' ./db/... ./dispatch/... ./mailsync/... ./api/...

## build: build bin/dripdrop
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/dripdrop ./cmd/dripdrop

$(SQLC):
	GOFLAGS= $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VER)

## generate: regenerate the sqlc query code
generate: $(SQLC)
	@$(SQLC) version | grep -qx '$(SQLC_VER)' || GOFLAGS= $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VER)
	$(SQLC) generate

## check-generated: fail when committed sqlc code differs from what the queries generate
check-generated: $(SQLC)
	@$(SQLC) version | grep -qx '$(SQLC_VER)' || GOFLAGS= $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VER)
	@$(SQLC) diff || (echo "generated sqlc code is stale: run 'make generate' and commit the result" >&2; exit 1)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:" >&2; gofmt -l $$(git ls-files '*.go') >&2; exit 1)

STATICCHECK_VER := v0.8.2
## lint: staticcheck
lint:
	GOFLAGS= $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VER) $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (seed corpora always run in `make test`)
FUZZTIME ?= 30s
fuzz:
	@for target in $$($(GO) test -list '^Fuzz' $(PKGS) | grep -E '^(Fuzz|ok)' | awk '/^Fuzz/{f=f" "$$1} /^ok/{if(f!="") print $$2":"f; f=""}'); do \
		pkg=$${target%%:*}; for fz in $${target#*:}; do \
			echo "== $$pkg $$fz"; $(GO) test -run '^$$' -fuzz "^$$fz$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; done

## bench: the benchmarks (README.md#benchmarks) on a durable cluster (.dripdrop/benchpg, fsync on), each figure reported
## with its target or in-process baseline; BenchmarkClaimAtScale and BenchmarkFleet skip (see bench-scale).
## BenchmarkHotPath/adapters=16 and BenchmarkEnrollBatch make five alternating runs against their baselines and
## print the five ratios in order, their median (the reported ratio) and the lowest
bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

## bench-scale: the long ones — 1 000 000 enrollments / 10 000 adapters claim and RSS, the
## 1 000-adapter fleet with a 60 s gap against a 2 s sink, and 1 000 mailboxes synced at 60 s (several minutes)
bench-scale:
	DRIPDROP_BENCH_SCALE=1 $(GO) test -run '^$$' -bench 'ClaimAtScale|Fleet' -benchtime 1x -timeout 60m -v ./dispatch/
	MAILSYNC_BENCH_INTERVAL=60s $(GO) test -run '^$$' -bench MailboxSync -benchtime 1x -timeout 30m -v ./mailsync/

## db/stop: stop every managed PostgreSQL cluster of this project (.dripdrop/*, wherever its data lives)
db/stop:
	$(GO) run ./cmd/dripdrop dev -stop-db

clean:
	rm -rf bin
