package memstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

func create(t *testing.T, s *memstore.Store, key string, rec []byte, exp time.Time) {
	t.Helper()
	ops := []store.Op{{Key: key, New: rec, Expiry: exp}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied {
		t.Fatalf("create %s: %v, applied %v", key, err, ops[0].Applied)
	}
}

// A flood of creates, each with its own expiry, stays within MaxSessions;
// what survives is what expires last, and every eviction is reported.
func TestMaxSessionsFlood(t *testing.T) {
	const bound, flood = 1000, 20_000
	c := sessiontest.NewClock(time.Unix(1e9, 0))
	var evicted atomic.Int64
	s := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1, MaxSessions: bound,
		OnEvict: func(n int) { evicted.Add(int64(n)) }})
	rng := rand.New(rand.NewPCG(1, 2))
	exps := make([]time.Duration, flood)
	for i, p := range rng.Perm(flood) { // distinct expiries, in random order
		exps[i] = time.Hour + time.Duration(p)*time.Second
		create(t, s, fmt.Sprintf("k%06d", i), []byte("record"), c.Now().Add(exps[i]))
		if n := s.Len(); n > bound {
			t.Fatalf("after %d creates the store holds %d, bound %d", i+1, n, bound)
		}
	}
	if got := evicted.Load(); got != flood-bound {
		t.Errorf("OnEvict reported %d evictions, want %d", got, flood-bound)
	}
	if !s.CheckHeap() {
		t.Fatal("heap or index inconsistent")
	}
	// The survivors are the records that expire last.
	var cut time.Duration
	{
		sorted := append([]time.Duration(nil), exps...)
		slices.Sort(sorted)
		cut = sorted[flood-bound]
	}
	for i, e := range exps {
		_, found, _ := s.Load(context.Background(), fmt.Sprintf("k%06d", i))
		if want := e >= cut; found != want {
			t.Fatalf("record %d (expiry %v, cut %v): found %v, want %v", i, e, cut, found, want)
		}
	}
}

// Concurrent writers flooding a bounded store never push it past the bound.
func TestMaxSessionsConcurrentFlood(t *testing.T) {
	const bound, writers, each = 500, 8, 2000
	var evicted atomic.Int64
	s := memstore.New(memstore.Options{SweepInterval: -1, MaxSessions: bound,
		OnEvict: func(n int) { evicted.Add(int64(n)) }})
	exp := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				create(t, s, fmt.Sprintf("w%d-%d", w, i), []byte("x"), exp.Add(time.Duration(i)*time.Millisecond))
				if n := s.Len(); n > bound {
					t.Errorf("store holds %d, bound %d", n, bound)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.Len(); n != bound || evicted.Load() != writers*each-bound {
		t.Errorf("Len = %d, evicted %d; want %d, %d", n, evicted.Load(), bound, writers*each-bound)
	}
	if !s.CheckHeap() {
		t.Fatal("heap or index inconsistent")
	}
}

// Expired records make room before any live one is evicted, and are not
// reported as evictions.
func TestCapacityFreesExpiredFirst(t *testing.T) {
	c := sessiontest.NewClock(time.Unix(1e9, 0))
	var evicted []int
	s := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1, MaxSessions: 4,
		OnEvict: func(n int) { evicted = append(evicted, n) }})
	create(t, s, "short1", []byte("a"), c.Now().Add(time.Minute))
	create(t, s, "short2", []byte("b"), c.Now().Add(time.Minute))
	create(t, s, "long1", []byte("c"), c.Now().Add(time.Hour))
	create(t, s, "long2", []byte("d"), c.Now().Add(2*time.Hour))
	c.Advance(2 * time.Minute)
	create(t, s, "new1", []byte("e"), c.Now().Add(3*time.Hour))
	create(t, s, "new2", []byte("f"), c.Now().Add(3*time.Hour))
	if len(evicted) != 0 {
		t.Fatalf("OnEvict called with %v while expired records could make room", evicted)
	}
	// Full of live records now: the next create evicts long1, the soonest.
	create(t, s, "new3", []byte("g"), c.Now().Add(3*time.Hour))
	if len(evicted) != 1 || evicted[0] != 1 {
		t.Fatalf("OnEvict calls = %v, want [1]", evicted)
	}
	for k, want := range map[string]bool{"long1": false, "long2": true, "new1": true, "new2": true, "new3": true} {
		if _, found, _ := s.Load(context.Background(), k); found != want {
			t.Errorf("%s found = %v, want %v", k, found, want)
		}
	}
	// Replacing a record in a full store evicts nothing.
	ops := []store.Op{{Key: "new3", Old: []byte("g"), New: []byte("G"), Expiry: c.Now().Add(time.Minute)}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied || len(evicted) != 1 {
		t.Fatalf("replace in a full store: %v, applied %v, evictions %v", err, ops[0].Applied, evicted)
	}
	// A create that would expire before every record held is the one
	// evicted: applied, reported, not kept.
	ops = []store.Op{{Key: "brief", New: []byte("h"), Expiry: c.Now().Add(time.Second)}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied {
		t.Fatalf("create: %v, applied %v", err, ops[0].Applied)
	}
	if _, found, _ := s.Load(context.Background(), "brief"); found || len(evicted) != 2 || evicted[1] != 1 || s.Len() != 4 {
		t.Fatalf("a create expiring first in a full store: found %v, evictions %v, Len %d", found, evicted, s.Len())
	}
}

func TestMaxBytes(t *testing.T) {
	const bound = 10_000
	var evicted atomic.Int64
	s := memstore.New(memstore.Options{SweepInterval: -1, MaxBytes: bound,
		OnEvict: func(n int) { evicted.Add(int64(n)) }})
	exp := time.Now().Add(time.Hour)
	for i := range 1000 {
		rec := bytes.Repeat([]byte{'r'}, 50+i%200)
		create(t, s, fmt.Sprintf("key%05d", i), rec, exp.Add(time.Duration(i)*time.Millisecond))
		if h := s.Held(); h > bound {
			t.Fatalf("after %d creates the store holds %d bytes, bound %d", i+1, h, bound)
		}
	}
	if evicted.Load() == 0 || s.Len() == 0 {
		t.Fatalf("evicted %d, Len %d", evicted.Load(), s.Len())
	}
	// Growing a record that expires last evicts the others; it stays.
	k := "key00999"
	old, _, _ := s.Load(context.Background(), k)
	big := bytes.Repeat([]byte{'B'}, bound-len(k))
	ops := []store.Op{{Key: k, Old: old, New: big, Expiry: exp.Add(time.Hour)}}
	if err := s.Write(context.Background(), ops); err != nil || !ops[0].Applied {
		t.Fatalf("grow: %v, applied %v", err, ops[0].Applied)
	}
	if got, _, _ := s.Load(context.Background(), k); !bytes.Equal(got, big) || s.Len() != 1 || s.Held() != bound {
		t.Fatalf("after growing one record to the bound: Len %d, Held %d", s.Len(), s.Held())
	}
	// A record that could never fit fails the whole Write, applying nothing.
	ops = []store.Op{
		{Key: "fits", New: []byte("small"), Expiry: exp},
		{Key: "huge", New: make([]byte, bound), Expiry: exp},
	}
	if err := s.Write(context.Background(), ops); !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("Write of a record over MaxBytes = %v, want ErrTooLarge", err)
	}
	if _, found, _ := s.Load(context.Background(), "fits"); found {
		t.Fatal("a Write that failed applied an op")
	}
}

// TestModel runs random operations against the store and a plain map, and
// compares them: keys short and long, records from one byte to past the
// large-record size, expiry, sweeps and the compare-and-set.
func TestModel(t *testing.T) {
	type entry struct {
		rec []byte
		exp time.Time
	}
	c := sessiontest.NewClock(time.Unix(1e9, 0))
	s := memstore.New(memstore.Options{Now: c.Now, SweepInterval: -1})
	model := map[string]entry{}
	rng := rand.New(rand.NewPCG(3, 4))
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("%d-%s", i, strings.Repeat("k", rng.IntN(80)))
	}
	pool := make([]byte, 3<<20)
	for i := 0; i < len(pool); i += 8 {
		binary.LittleEndian.PutUint64(pool[i:], rng.Uint64())
	}
	record := func() []byte {
		var n int
		switch r := rng.IntN(1000); {
		case r < 3:
			n = 1<<20 + rng.IntN(1<<20) // its own slab
		case r < 100:
			n = rng.IntN(20_000)
		default:
			n = 1 + rng.IntN(400)
		}
		off := rng.IntN(len(pool) - n)
		return bytes.Clone(pool[off : off+n])
	}
	ctx := context.Background()
	iters := 10_000
	if testing.Short() {
		iters = 2000
	}
	for it := range iters {
		k := keys[rng.IntN(len(keys))]
		cur, live := model[k]
		if live && !cur.exp.After(c.Now()) {
			live = false
		}
		switch r := rng.IntN(100); {
		case r < 2:
			c.Advance(time.Duration(rng.IntN(60)) * time.Second)
		case r < 3:
			s.Sweep()
		case r < 30:
			got, found, err := s.Load(ctx, k)
			if err != nil || found != live || live && !bytes.Equal(got, cur.rec) {
				t.Fatalf("iteration %d: Load(%s) = %d bytes, %v, %v; model has live=%v, %d bytes", it, k, len(got), found, err, live, len(cur.rec))
			}
		default:
			op := store.Op{Key: k, Expiry: c.Now().Add(time.Duration(rng.IntN(300)-10) * time.Second)}
			if rng.IntN(10) > 0 {
				op.New = record()
			}
			switch {
			case live && rng.IntN(4) > 0:
				op.Old = cur.rec
			case rng.IntN(3) == 0:
				op.Old = []byte("stale")
			}
			var want []byte
			if live {
				want = cur.rec
			}
			ops := []store.Op{op}
			if err := s.Write(ctx, ops); err != nil {
				t.Fatalf("iteration %d: Write: %v", it, err)
			}
			applies := bytes.Equal(op.Old, want)
			if ops[0].Applied != applies || !applies && !bytes.Equal(ops[0].Current, want) {
				t.Fatalf("iteration %d: Write applied %v (current %d bytes); model: %v (%d bytes)", it, ops[0].Applied, len(ops[0].Current), applies, len(want))
			}
			if applies {
				if len(op.New) > 0 && op.Expiry.After(c.Now()) {
					model[k] = entry{op.New, op.Expiry}
				} else {
					delete(model, k)
				}
			}
		}
		if it%1000 == 0 && !s.CheckHeap() {
			t.Fatalf("iteration %d: heap or index inconsistent", it)
		}
	}
	if !s.CheckHeap() {
		t.Fatal("heap or index inconsistent")
	}
	c.Advance(time.Hour)
	s.Sweep()
	if s.Len() != 0 || s.Held() != 0 {
		t.Fatalf("after every record expired and a sweep: Len %d, Held %d", s.Len(), s.Held())
	}
}
