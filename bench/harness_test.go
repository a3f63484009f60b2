package bench

import (
	"math"
	"net/http"
	"testing"
)

// BenchmarkHTTP measures one request through each implementation's
// middleware, for each operation. Compare with
//
//	benchstat -col /op -row /impl FILE
//
// or with cmd/ratios, which also gives the overhead over the bare handler
// and the ratios to the floor and the peers. Each also reports the CPU
// time the process used per request (cpu-ns/op: time spent waiting for a
// server or for a core of a busy machine is not in it, the work of a
// server in another process neither), and the SQL stores their round trips
// to the database (trips/op).
func BenchmarkHTTP(b *testing.B) {
	for _, op := range ops {
		for _, im := range available(b) {
			b.Run("op="+op.name+"/impl="+im.name, func(b *testing.B) {
				var seen int64
				l := im.build(b)
				h := op.handler(l, &seen)
				cookie := ""
				if op.seeded && im.name != "bare" {
					cookie = seed(b, h)
				}
				base := newRequest(cookie)
				w := &sinkWriter{h: make(http.Header)}
				var trips0 int64
				if l.trips != nil {
					trips0 = l.trips.Load()
				}
				n := 0
				cpu0, cpuOK := cpuTime()
				b.ReportAllocs()
				for b.Loop() {
					serve(h, w, base)
					n++
				}
				cpu1, _ := cpuTime()
				if seen == 0 {
					b.Fatal("the handler saw no session")
				}
				if l.trips != nil {
					b.ReportMetric(float64(l.trips.Load()-trips0)/float64(n), "trips/op")
				}
				if cpuOK {
					b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/op")
				}
			})
		}
	}
}

// seed runs one request that creates a session and returns its cookie.
func seed(tb testing.TB, h http.Handler) string {
	tb.Helper()
	w := &sinkWriter{h: make(http.Header)}
	serve(h, w, newRequest(""))
	c := cookieOf(w.h)
	if c == "" {
		tb.Fatalf("the seeding request set no cookie: %v", w.h)
	}
	return c
}

// TestEquivalent checks that every implementation does the work the
// benchmarks claim it does: a read finds the seeded session and sets no
// cookie, a modify is kept, a first visit sets a cookie.
func TestEquivalent(t *testing.T) {
	for _, im := range available(t) {
		t.Run(im.name, func(t *testing.T) {
			l := im.build(t)
			var seen int64
			read := ops[0].handler(l, &seen)
			modify := ops[1].handler(l, &seen)
			create := ops[2].handler(l, &seen)
			w := &sinkWriter{h: make(http.Header)}
			full := Full()
			if im.name == "bare" {
				serve(read, w, newRequest(""))
				serve(read, w, newRequest(""))
				if seen != full.UserID+full.LastSeen {
					t.Fatalf("bare read saw %d", seen)
				}
				return
			}
			cookie := seed(t, read)
			serve(read, w, newRequest(cookie))
			if seen != full.UserID+full.LastSeen {
				t.Fatalf("read saw %d, want %d", seen, full.UserID+full.LastSeen)
			}
			if c := w.h.Get("Set-Cookie"); c != "" {
				t.Fatalf("a read set a cookie: %q", c)
			}
			serve(modify, w, newRequest(cookie))
			if c := cookieOf(w.h); c != "" {
				cookie = c // a cookie store carries the change in the cookie
			}
			serve(read, w, newRequest(cookie))
			if seen != full.UserID+full.LastSeen+1 {
				t.Fatalf("after a modify, read saw %d, want %d", seen, full.UserID+full.LastSeen+1)
			}
			serve(create, w, newRequest(""))
			if cookieOf(w.h) == "" {
				t.Fatal("a first visit that writes set no cookie")
			}
		})
	}
}

// TestRoundTrips counts the round trips of each SQL implementation's
// requests once the first has warmed the connection (a statement prepared
// on first use costs one more, once): a read of this library's SQL store
// is one, a modify two (the load, then the conditional UPDATE), a first
// visit one (the INSERT). scs's are logged, for comparison.
func TestRoundTrips(t *testing.T) {
	want := map[string][3]int64{ // read, modify, new
		"typedsession-postgres": {1, 2, 1},
		"typedsession-sqlite":   {1, 2, 1},
	}
	counted := false
	for _, im := range available(t) {
		l := im.build(t)
		if l.trips == nil {
			continue
		}
		counted = true
		t.Run(im.name, func(t *testing.T) {
			var got [3]int64
			for i, op := range ops {
				var seen int64
				h := op.handler(l, &seen)
				cookie := ""
				if op.seeded {
					cookie = seed(t, h)
				}
				w := &sinkWriter{h: make(http.Header)}
				serve(h, w, newRequest(cookie))
				// The fewest of a few requests: pgx pings a connection
				// that was idle for a second before handing it out, which
				// a stall of a busy machine can cause once.
				got[i] = math.MaxInt64
				for range 3 {
					n := l.trips.Load()
					serve(h, w, newRequest(cookie))
					got[i] = min(got[i], l.trips.Load()-n)
				}
			}
			t.Logf("round trips: read %d, modify %d, new %d", got[0], got[1], got[2])
			if w, ok := want[im.name]; ok && got != w {
				t.Errorf("round trips (read, modify, new) = %v, want %v", got, w)
			}
		})
	}
	if !counted {
		t.Fatal("no implementation counts its round trips")
	}
}
