#!/usr/bin/env bash
# run.sh [PASSES]: the in-process benchmarks of this module, in interleaved
# passes. Each pass runs BenchmarkHTTP once over every implementation (in a
# new random order each pass), and the first SCALE_PASSES passes also run
# BenchmarkScale; so slow drifts of a shared machine fall on all alike.
# Then it prints benchstat tables and, from cmd/ratios, the overheads over
# the bare handler with the ratios to the floor and to the peers.
#
# Valkey/Redis comes from scripts/servers.sh, under which this script runs
# itself when VALKEY_ADDR is unset.
#
# Environment: PASSES (default 6), SCALE_PASSES (3), BENCHTIME (go test
# -benchtime, default 500ms), OUT (directory for the raw output, default
# results/), IMPLS (a regular expression of the implementations that
# BenchmarkHTTP runs, default all; keep bare and floor, which the ratios are
# taken against, as in IMPLS='bare|floor|.*-postgres|.*-sqlite'). A
# benchmark given 0 passes keeps its raw output of an earlier run, which the
# tables then show: PASSES=0 reruns BenchmarkScale alone. The load average
# at the start of each pass goes to uptime.txt, since on a shared machine it
# says how far to trust the absolute times.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

if [[ -z ${VALKEY_ADDR:-} ]]; then
	exec "$root/scripts/servers.sh" run "$here/run.sh" "$@"
fi

passes=${1:-${PASSES:-6}}
scale_passes=${SCALE_PASSES:-3}
benchtime=${BENCHTIME:-500ms}
http_bench='^BenchmarkHTTP$'
if [[ -n ${IMPLS:-} ]]; then
	http_bench="^BenchmarkHTTP\$/^op=/^impl=($IMPLS)\$"
fi
out=${OUT:-$here/results}

say() { printf 'run.sh: %s\n' "$*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/run.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

cd "$here"
go test -c -o "$tmp/bench.test" .
go build -o "$tmp/ratios" ./cmd/ratios
go build -o "$tmp/benchstat" golang.org/x/perf/cmd/benchstat
mkdir -p "$out"
((passes == 0)) || : >"$out/http.txt"
((scale_passes == 0)) || : >"$out/scale.txt"
: >"$out/uptime.txt"
total=$((passes > scale_passes ? passes : scale_passes))
for ((pass = 1; pass <= total; pass++)); do
	echo "pass $pass: $(uptime)" >>"$out/uptime.txt"
	if ((pass <= passes)); then
		say "pass $pass of $total: BenchmarkHTTP"
		BENCH_SEED=$((pass * 7919 + RANDOM)) "$tmp/bench.test" -test.run '^$' -test.bench "$http_bench" \
			-test.benchtime "$benchtime" -test.benchmem >>"$out/http.txt"
	fi
	if ((pass <= scale_passes)); then
		say "pass $pass of $total: BenchmarkScale"
		"$tmp/bench.test" -test.run '^$' -test.bench '^BenchmarkScale$' \
			-test.benchtime "$benchtime" -test.benchmem >>"$out/scale.txt"
	fi
done

{
	echo "date: $(date -u +%Y-%m-%d)"
	echo "machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1), $(nproc) cores"
	echo "go: $(go version)"
	echo "load average (1, 5, 15 min) at the start of each pass:"
	sed 's/ up .*load average:/:/' "$out/uptime.txt"
	echo
	echo '```'
	# In $out, so that benchstat names its columns by the files alone.
	cd "$out"
	[[ ! -s http.txt ]] || "$tmp/benchstat" -row '/op@(read modify new),/impl@alpha' http.txt
	if [[ -s scale.txt ]]; then
		echo
		"$tmp/benchstat" -row '/payload@(100B 1kB 3kB),/op@(read modify)' -col '/sessions@(1k 100k 1M)' scale.txt
	fi
	echo '```'
	echo
	files=()
	for f in http.txt scale.txt; do
		if [[ -s $f ]]; then
			files+=("$f")
		fi
	done
	"$tmp/ratios" "${files[@]}"
} | tee "$out/summary.md"
