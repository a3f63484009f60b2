package memstore_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

// fill saves n records of the demo's size (about 200 bytes).
func fill(b *testing.B, n int) (*memstore.Store, []string) {
	b.Helper()
	s := memstore.New(memstore.Options{SweepInterval: -1})
	ctx := context.Background()
	rec := make([]byte, 200)
	exp := time.Now().Add(time.Hour)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%043d", i)
		if err := s.Write(ctx, []store.Op{{Key: keys[i], New: rec, Expiry: exp}}); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

func BenchmarkLoad(b *testing.B) {
	s, keys := fill(b, 10_000)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Load(ctx, keys[i%len(keys)])
		i++
	}
}

// BenchmarkWrite replaces records with a compare-and-set, as every commit
// of a changed session does.
func BenchmarkWrite(b *testing.B) {
	s, keys := fill(b, 10_000)
	ctx := context.Background()
	rec := make([]byte, 200)
	exp := time.Now().Add(time.Hour)
	ops := make([]store.Op, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ops[0] = store.Op{Key: keys[i%len(keys)], Old: rec, New: rec, Expiry: exp}
		if err := s.Write(ctx, ops); err != nil || !ops[0].Applied {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkGCMillion reports how long a full garbage collection takes with a
// million sessions held, and the heap they take (B/session: the live heap
// after a collection, less what it was before the fill, per record).
func BenchmarkGCMillion(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a million records")
	}
	benchGC(b, 1_000_000)
}

// BenchmarkGCThousand is BenchmarkGCMillion with a thousand sessions: the
// cost of a collection that the store adds next to nothing to.
func BenchmarkGCThousand(b *testing.B) { benchGC(b, 1000) }

func benchGC(b *testing.B, n int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, _ := fill(b, n) // the keys fill returns are garbage: not the store's cost
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportAllocs()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(s)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/session")
}

// BenchmarkSweepMillion sweeps a million live records (none expired): the
// read-locked scan a sweeper does every minute.
func BenchmarkSweepMillion(b *testing.B) {
	if testing.Short() {
		b.Skip("fills a million records")
	}
	s, _ := fill(b, 1_000_000)
	for b.Loop() {
		s.Sweep()
	}
}
