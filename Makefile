# Spate — the two set-up commands are `make run` and `make test`.
GO       ?= go
BIN      := bin/spate
PKGS     := ./...
# CI runs the full tier; `make test SHORT=1` skips the slow oracle/e2e runs.
TESTFLAGS ?= $(if $(SHORT),-short,)

.PHONY: build run test test-deps bench lint fmt clean

build:
	$(GO) build -o $(BIN) ./cmd/spate

run: build
	$(BIN) serve

# test-deps installs what the tests drive for real: psql and the PostgreSQL
# 15 server binaries (the oracle), versitygw (S3), and the client drivers
# (JDBC, psycopg2, SQLAlchemy, node-postgres). Under CI=true a missing one
# is an error.
test-deps:
	@bash scripts/test-deps.sh

test: build test-deps lint
	$(GO) test $(TESTFLAGS) -timeout 20m -count=1 $(PKGS)
	# The runtime's concurrency (pipelines, checkpoints, repairs) and the
	# copy-on-write snapshots built while an aggregate goes on, under the
	# race detector.
	$(GO) test -race -timeout 10m -count=1 ./cluster/...
	$(GO) test -race -timeout 10m -count=1 -run 'Freeze|CowVec|JoinCheckpointRestore|OverWindowCheckpointRestore' ./exec/
	# Execution counts, not durations: a duration races Go 1.26's fuzz
	# coordinator at the deadline (go.dev/issue/75804, a spurious
	# "context deadline exceeded" with no failing input).
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 100000x ./parser
	$(GO) test -run '^$$' -fuzz FuzzStartupAndMessages -fuzztime 15000x ./pgwire
	$(GO) test -run '^$$' -fuzz FuzzCatalogQuery -fuzztime 5000x ./pgwire/pgcatalog

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1x ./exec 2>&1 | grep -v '^ok\|^PASS'
	$(GO) test -run '^$$' -bench BenchmarkCopyIngest -benchtime 2x ./cmd/spate 2>&1 | grep -v '^ok\|^PASS\|INF'
	# Each captured client catalog query on a catalog of 1,000 streams.
	$(GO) test -run '^$$' -bench BenchmarkClientQueries -benchtime 1x ./pgwire/pgcatalog 2>&1 | grep -v '^ok\|^PASS'
	$(BIN) bench agg
	$(BIN) bench agg --workers 1,2
	$(BIN) bench agg --rows 40000000 --checkpoint-intervals off,30s,5s,1s
	$(BIN) bench recovery --state 10MB,1GB
	$(BIN) bench restart
	$(BIN) bench scale
	$(BIN) bench net
	$(BIN) bench lrb --expressways 2 --duration 1h --speedup max
	$(BIN) bench lrb --expressways 2 --duration 1h --speedup max --workers 1
	$(BIN) bench lrb --expressways 2 --duration 1h --speedup max --workers 2

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin
