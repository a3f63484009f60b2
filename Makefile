# make test: everything CI checks, on a fresh machine with only Go installed.
# Server-backed tests run against servers that scripts/servers.sh installs,
# starts on ports of its own and stops again, whatever the outcome.

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 10000x
GO          ?= go

# go.work puts every module here in one workspace, so that `go run
# ./examples/demo` works from the root. The checks run each module on its own
# go.mod instead: in the workspace a module builds with requirements that
# only another module declares (a root package importing a database driver
# would compile), and with the highest version any module asks for, so
# neither a missing requirement nor a wrong version would show.
export GOWORK := off

# Every module here: the root and each directory below it with a go.mod of
# its own (store/sqlstore, ...). vet, staticcheck, doccheck and unit cover
# them all; $(call each,CMD) runs CMD in each module's directory.
MODULES := . $(patsubst ./%/go.mod,%,$(shell find . -mindepth 2 -name go.mod -not -path '*/.*' -not -path '*/testdata/*'))
each     = for m in $(MODULES); do echo "($$m) $(1)"; (cd $$m && $(1)) || exit 1; done

.PHONY: test check fmt work vet staticcheck doccheck unit fuzz bench

test:
	scripts/servers.sh run $(MAKE) --no-print-directory check

check: fmt work vet staticcheck doccheck unit fuzz

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# go.work uses exactly the modules found above: one it leaves out cannot be
# built from its own directory, since the go command finds go.work there.
work:
	@want=$$(for m in $(MODULES); do (cd $$m && pwd); done | sort); \
	got=$$(GOWORK=$(CURDIR)/go.work $(GO) list -m -f '{{.Dir}}' | sort); \
	if [ "$$want" != "$$got" ]; then echo "go.work should use exactly:"; echo "$$want"; echo "it uses:"; echo "$$got"; exit 1; fi

vet:
	@$(call each,$(GO) vet ./...)

staticcheck:
	@$(call each,$(GO) run $(STATICCHECK) ./...)

# Every exported name and every package has a doc comment.
doccheck:
	$(GO) run ./internal/cmd/doccheck $(MODULES)

unit:
	@$(call each,$(GO) test -race -count=1 ./...)

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
