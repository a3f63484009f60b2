# make test: everything CI checks, on a fresh machine with only Go installed.
# Server-backed tests run against servers that scripts/servers.sh installs,
# starts on ports of its own and stops again, whatever the outcome.

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10000x
GO          ?= go
# Nested modules (a go.mod of their own, testdata aside): vetted,
# staticchecked and tested like the root module.
MODULES     := $(shell git ls-files '*/go.mod' | grep -v /testdata/ | sed 's,/go.mod$$,,')

.PHONY: test check fmt vet staticcheck doccheck unit fuzz bench

test:
	scripts/servers.sh run $(MAKE) --no-print-directory check

check: fmt vet staticcheck doccheck unit fuzz

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	for d in $(MODULES); do (cd $$d && $(GO) vet ./...) || exit 1; done

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	for d in $(MODULES); do (cd $$d && $(GO) run $(STATICCHECK) ./...) || exit 1; done

# Every exported name and every package has a doc comment.
doccheck:
	$(GO) run ./internal/cmd/doccheck

unit:
	$(GO) test -race -count=1 ./...
	for d in $(MODULES); do (cd $$d && $(GO) test -race -count=1 ./...) || exit 1; done

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

# Benchmarks of every package, the Valkey ones against throwaway servers;
# compare two runs with benchstat (golang.org/x/perf/cmd/benchstat). Then the
# side-by-side harness with the peers (bench/run.sh) and the end-to-end load
# run (bench/load.sh); their figures go to bench/results/.
bench:
	scripts/servers.sh run $(GO) test -run '^$$' -bench . -benchmem -count 6 ./... | tee bench.txt
	bench/run.sh
	bench/load.sh
