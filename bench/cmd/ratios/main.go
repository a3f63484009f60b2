// Command ratios reads `go test -bench` output of this module (one or more
// passes, from files or standard input) and prints, as Markdown tables, the
// medians of BenchmarkHTTP with each implementation's overhead over the bare
// handler, its ratio to the floor, this library's ratios to its peers, and
// the medians of BenchmarkScale relative to the smallest store; the CPU time
// per request with the same ratios to the peers; and, for the
// implementations that count them, the round trips to the database. With -load,
// it reads the figures load.sh writes instead (server, scenario, requests per
// second, non-2xx responses, median and 99th percentile latency, one run a
// line) and prints requests per second with the ratios to the bare server
// and to the peers.
//
//	go run ./cmd/ratios bench.txt
//	go run ./cmd/ratios -load results/load.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// sample is one benchmark's values over the passes.
type sample struct {
	ns, bytes, allocs []float64
	trips             []float64 // round trips to the database, where counted
	cpu               []float64 // the process's CPU time per request, ns
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	load := flag.Bool("load", false, "read load.sh's figures")
	flag.Parse()
	var in []io.Reader
	for _, f := range flag.Args() {
		fh, err := os.Open(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer fh.Close()
		in = append(in, fh)
	}
	if len(in) == 0 {
		in = append(in, os.Stdin)
	}
	if *load {
		loadTables(os.Stdout, in)
		return
	}
	samples := map[string]*sample{}
	for _, r := range in {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			m := line.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			s := samples[m[1]]
			if s == nil {
				s = &sample{}
				samples[m[1]] = s
			}
			f := strings.Fields(m[2])
			for i := 0; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				switch f[i+1] {
				case "ns/op":
					s.ns = append(s.ns, v)
				case "B/op":
					s.bytes = append(s.bytes, v)
				case "allocs/op":
					s.allocs = append(s.allocs, v)
				case "trips/op":
					s.trips = append(s.trips, v)
				case "cpu-ns/op":
					s.cpu = append(s.cpu, v)
				}
			}
		}
	}
	httpTables(os.Stdout, samples)
	scaleTable(os.Stdout, samples)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is half the range of v, relative to its median, in percent.
func spread(v []float64) float64 {
	if len(v) < 2 {
		return 0
	}
	return (slices.Max(v) - slices.Min(v)) / 2 / median(v) * 100
}

var (
	opsOrder   = []string{"read", "modify", "new"}
	implsOrder = []string{
		"bare", "floor",
		"typedsession-memory", "typedsession-cookie", "typedsession-valkey", "typedsession-valkey-cached",
		"typedsession-postgres", "typedsession-sqlite",
		"scs-memory", "scs-redis", "scs-postgres", "scs-sqlite", "gorilla-cookie",
	}
	// peers pairs each of this library's setups with the peer it replaces.
	peers = [][2]string{
		{"typedsession-memory", "scs-memory"},
		{"typedsession-cookie", "gorilla-cookie"},
		{"typedsession-valkey", "scs-redis"},
		{"typedsession-valkey-cached", "scs-redis"},
		{"typedsession-postgres", "scs-postgres"},
		{"typedsession-sqlite", "scs-sqlite"},
	}
)

func httpKey(op, impl string) string { return "BenchmarkHTTP/op=" + op + "/impl=" + impl }

func us(ns float64) string {
	switch {
	case ns >= 100_000:
		return fmt.Sprintf("%.0f µs", ns/1000)
	case ns >= 10_000:
		return fmt.Sprintf("%.1f µs", ns/1000)
	default:
		return fmt.Sprintf("%.2f µs", ns/1000)
	}
}

func httpTables(w io.Writer, samples map[string]*sample) {
	get := func(op, impl string) (*sample, bool) {
		s, ok := samples[httpKey(op, impl)]
		return s, ok && len(s.ns) > 0
	}
	if _, ok := get("read", "bare"); !ok {
		return
	}
	passes := len(samples[httpKey("read", "bare")].ns)
	fmt.Fprintf(w, "### One request through each middleware (BenchmarkHTTP, medians of %d passes)\n\n", passes)
	fmt.Fprintln(w, "Time per request, and in brackets the overhead over the bare handler; ± is half the range over the passes.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| implementation | read | modify | new | allocs (r / m / n) |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	bare := map[string]float64{}
	for _, op := range opsOrder {
		s, _ := get(op, "bare")
		bare[op] = median(s.ns)
	}
	ratio := func(op, num, den string) (float64, bool) {
		return overheadRatio(get, op, num, den, func(s *sample) []float64 { return s.ns })
	}
	for _, impl := range implsOrder {
		if _, ok := get("read", impl); !ok {
			continue
		}
		row := "| " + impl
		var allocs []string
		for _, op := range opsOrder {
			s, ok := get(op, impl)
			if !ok {
				row += " | –"
				allocs = append(allocs, "–")
				continue
			}
			m := median(s.ns)
			cell := fmt.Sprintf("%s ±%.0f%%", us(m), spread(s.ns))
			if impl != "bare" {
				cell += " (" + us(m-bare[op]) + ")"
			}
			row += " | " + cell
			allocs = append(allocs, fmt.Sprintf("%.0f", median(s.allocs)))
		}
		fmt.Fprintln(w, row+" | "+strings.Join(allocs, " / ")+" |")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "Overhead over the bare handler as a multiple of the floor's (the codec-free typed middleware), taken in each pass, median over the passes:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| implementation | read | modify | new |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, impl := range implsOrder {
		if impl == "bare" || impl == "floor" {
			continue
		}
		if _, ok := get("read", impl); !ok {
			continue
		}
		row := "| " + impl
		for _, op := range opsOrder {
			r, ok := ratio(op, impl, "floor")
			if !ok {
				row += " | –"
				continue
			}
			row += fmt.Sprintf(" | %.1fx", r)
		}
		fmt.Fprintln(w, row+" |")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "This library against the peer it replaces: the peer's overhead over this library's, taken in each pass, median over the passes (above 1: this library is faster):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| this library | peer | read | modify | new |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, p := range peers {
		if _, ok := get("read", p[0]); !ok {
			continue
		}
		if _, ok := get("read", p[1]); !ok {
			continue
		}
		row := "| " + p[0] + " | " + p[1]
		for _, op := range opsOrder {
			r, ok := ratio(op, p[1], p[0])
			if !ok {
				row += " | –"
				continue
			}
			row += fmt.Sprintf(" | %.1fx", r)
		}
		fmt.Fprintln(w, row+" |")
	}
	fmt.Fprintln(w)

	cpuTable(w, get)
	tripsTable(w, get)
}

// cpuTable prints the CPU time per request and this library's CPU ratios
// to its peers, each overhead over the bare handler's taken in each pass.
// Time spent waiting (for a server, or for a core of a busy machine) is not
// in it, so on a shared machine it moves far less than the time per request.
func cpuTable(w io.Writer, get func(op, impl string) (*sample, bool)) {
	if s, ok := get("read", "bare"); !ok || len(s.cpu) == 0 {
		return
	}
	ratio := func(op, num, den string) (float64, bool) {
		return overheadRatio(get, op, num, den, func(s *sample) []float64 { return s.cpu })
	}
	fmt.Fprintln(w, "CPU time of the process per request (user and system; median over the passes, ± half the range):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| implementation | read | modify | new |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, impl := range implsOrder {
		if s, ok := get("read", impl); !ok || len(s.cpu) == 0 {
			continue
		}
		row := "| " + impl
		for _, op := range opsOrder {
			s, ok := get(op, impl)
			if !ok || len(s.cpu) == 0 {
				row += " | –"
				continue
			}
			row += fmt.Sprintf(" | %s ±%.0f%%", us(median(s.cpu)), spread(s.cpu))
		}
		fmt.Fprintln(w, row+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "The peer's CPU time over this library's, each over the bare handler's, taken in each pass, median over the passes:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| this library | peer | read | modify | new |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, p := range peers {
		row := "| " + p[0] + " | " + p[1]
		some := false
		for _, op := range opsOrder {
			r, ok := ratio(op, p[1], p[0])
			if !ok {
				row += " | –"
				continue
			}
			some = true
			row += fmt.Sprintf(" | %.1fx", r)
		}
		if some {
			fmt.Fprintln(w, row+" |")
		}
	}
	fmt.Fprintln(w)
}

// tripsTable prints the round trips to the database per request of the
// implementations that count them (medians over the passes).
func tripsTable(w io.Writer, get func(op, impl string) (*sample, bool)) {
	header := false
	for _, impl := range implsOrder {
		if s, ok := get("read", impl); !ok || len(s.trips) == 0 {
			continue
		}
		if !header {
			fmt.Fprintln(w, "Round trips to the database per request (median over the passes):")
			fmt.Fprintln(w)
			fmt.Fprintln(w, "| implementation | read | modify | new |")
			fmt.Fprintln(w, "|---|---|---|---|")
			header = true
		}
		row := "| " + impl
		for _, op := range opsOrder {
			s, ok := get(op, impl)
			if !ok || len(s.trips) == 0 {
				row += " | –"
				continue
			}
			row += fmt.Sprintf(" | %.2f", median(s.trips))
		}
		fmt.Fprintln(w, row+" |")
	}
	if header {
		fmt.Fprintln(w)
	}
}

func scaleTable(w io.Writer, samples map[string]*sample) {
	payloads := []string{"100B", "1kB", "3kB"}
	counts := []string{"1k", "100k", "1M"}
	key := func(p, n, op string) string {
		return "BenchmarkScale/payload=" + p + "/sessions=" + n + "/op=" + op
	}
	if _, ok := samples[key("100B", "1k", "read")]; !ok {
		return
	}
	fmt.Fprintln(w, "### Cost by payload and live sessions (BenchmarkScale, memory store, medians)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Time per request, allocations, and in brackets the time relative to 1k sessions of the same payload.")
	fmt.Fprintln(w)
	head := "| payload | op"
	sep := "|---|---"
	for _, n := range counts {
		head += " | " + n + " sessions"
		sep += "|---"
	}
	fmt.Fprintln(w, head+" |")
	fmt.Fprintln(w, sep+"|")
	for _, p := range payloads {
		for _, op := range []string{"read", "modify"} {
			row := "| " + p + " | " + op
			base := 0.0
			for i, n := range counts {
				s, ok := samples[key(p, n, op)]
				if !ok || len(s.ns) == 0 {
					row += " | –"
					continue
				}
				m := median(s.ns)
				if i == 0 {
					base = m
				}
				cell := fmt.Sprintf("%s, %.0f allocs", us(m), median(s.allocs))
				if i > 0 && base > 0 {
					cell += fmt.Sprintf(" (%.2fx)", m/base)
				}
				row += " | " + cell
			}
			fmt.Fprintln(w, row+" |")
		}
	}
	fmt.Fprintln(w)
}

// loadOrder is load.sh's scenarios.
var loadOrder = []string{"read", "modify", "modify-spread", "new"}

// loadTables prints load.sh's figures.
func loadTables(w io.Writer, in []io.Reader) {
	type key struct{ server, scenario string }
	rps := map[key][]float64{}
	non2xx := map[key]float64{}
	p50 := map[key][]string{}
	var servers []string
	for _, r := range in {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 {
				continue
			}
			v, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				continue
			}
			k := key{f[0], f[1]}
			if !slices.Contains(servers, f[0]) {
				servers = append(servers, f[0])
			}
			rps[k] = append(rps[k], v)
			n, _ := strconv.ParseFloat(f[3], 64)
			non2xx[k] += n
			if len(f) > 4 {
				p50[k] = append(p50[k], f[4])
			}
		}
	}
	med := func(server, scenario string) float64 { return median(rps[key{server, scenario}]) }
	// share is the median over the rounds of a's requests per second over
	// b's, each taken within one round (the k-th figure of each is from
	// round k), so that a round slowed by the machine weighs on both alike.
	share := func(scenario, a, b string) float64 {
		x, y := rps[key{a, scenario}], rps[key{b, scenario}]
		var r []float64
		for k := 0; k < len(x) && k < len(y); k++ {
			if y[k] > 0 {
				r = append(r, x[k]/y[k])
			}
		}
		return median(r)
	}
	rounds := len(rps[key{"bare", "read"}])
	fmt.Fprintf(w, "### End to end under wrk (requests per second, medians of %d rounds)\n\n", rounds)
	fmt.Fprintln(w, "In brackets: the share of the bare server's requests per second, taken in each round, median over the rounds.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| server | read | modify (1 session) | modify (64 sessions) | new | non-2xx (r / m / m64 / n) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, s := range servers {
		row := "| " + s
		var bad []string
		for _, op := range loadOrder {
			v := med(s, op)
			cell := fmt.Sprintf("%.0f", v)
			if s != "bare" {
				cell += fmt.Sprintf(" (%.0f%%)", share(op, s, "bare")*100)
			}
			row += " | " + cell
			bad = append(bad, fmt.Sprintf("%.0f", non2xx[key{s, op}]))
		}
		fmt.Fprintln(w, row+" | "+strings.Join(bad, " / ")+" |")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "This library's requests per second over the peer's, taken in each round, median over the rounds:")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| this library | peer | read | modify (1 session) | modify (64 sessions) | new |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, p := range peers {
		if len(rps[key{p[0], "read"}]) == 0 || len(rps[key{p[1], "read"}]) == 0 {
			continue
		}
		row := "| " + p[0] + " | " + p[1]
		for _, op := range loadOrder {
			row += fmt.Sprintf(" | %.2fx", share(op, p[0], p[1]))
		}
		fmt.Fprintln(w, row+" |")
	}
	fmt.Fprintln(w)
}

// overheadRatio is the median over the passes of num's overhead over the
// bare handler divided by den's, on the figures that of picks out of each
// sample (times, or CPU times), each ratio taken within one pass (the k-th
// figure of each is from pass k), so that a pass slowed by the machine
// weighs on both sides alike.
func overheadRatio(get func(op, impl string) (*sample, bool), op, num, den string, of func(*sample) []float64) (float64, bool) {
	n, ok1 := get(op, num)
	d, ok2 := get(op, den)
	b, ok3 := get(op, "bare")
	if !ok1 || !ok2 || !ok3 {
		return 0, false
	}
	nv, dv, bv := of(n), of(d), of(b)
	var r []float64
	for k := 0; k < len(nv) && k < len(dv) && k < len(bv); k++ {
		if dd := dv[k] - bv[k]; dd > 0 {
			r = append(r, (nv[k]-bv[k])/dd)
		}
	}
	return median(r), len(r) > 0
}
