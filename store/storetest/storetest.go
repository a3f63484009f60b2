// Package storetest checks that a [store.Store] keeps the contract the session
// manager relies on. Modelled on testing/slogtest: a store's own tests call
// [Run] with a constructor, and every rule of the contract becomes a subtest.
//
// The subtests under "Index" check the per-owner index ([store.Index]): bind,
// list, expiry, unbind, epochs, many owners and concurrent logins of one
// owner. They run when the store's Index returns one, and are skipped, saying
// so, when it returns nil.
//
// The suite is deterministic except where a store's clock cannot be moved
// (a remote server): there it waits, in short polls, for a record or an
// index entry written with a short expiry to disappear.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Options tunes the suite to a store.
type Options struct {
	// Advance, when set, moves the store's clock forward by d, so that expiry
	// can be tested without sleeping. Stores whose clock cannot be injected
	// (a remote server) leave it nil and the suite instead waits, in short
	// polls, for a record written with a short expiry to disappear.
	Advance func(d time.Duration)

	// Now returns the store's present time; nil means time.Now.
	Now func() time.Time

	// Prefix is put in front of every key and owner the suite uses, so that
	// runs against a shared server do not collide.
	Prefix string
}

// Rounds and writers of the concurrent compare-and-set subtests.
const (
	raceRounds  = 50
	raceWriters = 16
)

// Run runs the conformance suite. newStore is called once per subtest and
// must return an empty store (or one whose keys cannot collide with others
// under opts.Prefix).
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts Options) {
	t.Helper()
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	ctx := context.Background()
	key := func(t *testing.T, name string) string {
		return fmt.Sprintf("%s%s:%s", opts.Prefix, t.Name(), name)
	}
	later := func() time.Time { return now().Add(time.Hour) }
	create := func(k string, rec []byte) store.Op {
		return store.Op{Key: k, New: rec, Expiry: later()}
	}
	replace := func(k string, old, rec []byte) store.Op {
		return store.Op{Key: k, Old: old, New: rec, Expiry: later()}
	}
	del := func(k string, old []byte) store.Op {
		return store.Op{Key: k, Old: old}
	}

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		rec, found, err := s.Load(ctx, key(t, "missing"))
		if err != nil || found || len(rec) != 0 {
			t.Fatalf("Load(missing) = %q, %v, %v; want empty, false, nil", rec, found, err)
		}
	})

	t.Run("WriteNothing", func(t *testing.T) {
		s := newStore(t)
		if err := s.Write(ctx, nil); err != nil {
			t.Fatalf("Write(no ops): %v", err)
		}
	})

	t.Run("CreateLoad", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("record")))
		mustLoad(t, s, k, []byte("record"))
	})

	t.Run("CreateOverLive", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("first")))
		mustNotApply(t, s, create(k, []byte("second, longer")), []byte("first"))
		mustLoad(t, s, k, []byte("first"))
	})

	t.Run("Replace", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("v1, the longest")))
		mustApply(t, s, replace(k, []byte("v1, the longest"), []byte("v2")))
		mustLoad(t, s, k, []byte("v2"))
		// Old differs from the live record: by a byte, by length, or is the
		// record the key held before.
		for _, old := range []string{"v3", "v", "v2 ", "v1, the longest"} {
			mustNotApply(t, s, replace(k, []byte(old), []byte("lost")), []byte("v2"))
		}
		mustLoad(t, s, k, []byte("v2"))
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("x")))
		mustNotApply(t, s, del(k, []byte("y")), []byte("x"))
		mustLoad(t, s, k, []byte("x"))
		mustApply(t, s, del(k, []byte("x")))
		mustMiss(t, s, k)
		// Once deleted, the key can be created again.
		mustApply(t, s, create(k, []byte("z")))
		mustLoad(t, s, k, []byte("z"))
	})

	t.Run("ReplaceOrDeleteMissing", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustNotApply(t, s, replace(k, []byte("x"), []byte("y")), nil)
		mustMiss(t, s, k)
		mustNotApply(t, s, del(k, []byte("x")), nil)
		mustMiss(t, s, k)
		// A replace must not bring back a record deleted meanwhile.
		mustApply(t, s, create(k, []byte("x")))
		mustApply(t, s, del(k, []byte("x")))
		mustNotApply(t, s, replace(k, []byte("x"), []byte("resurrected")), nil)
		mustMiss(t, s, k)
	})

	t.Run("ExpiryAtOrBeforeNowDeletes", func(t *testing.T) {
		s := newStore(t)
		past := []time.Time{now(), now().Add(-time.Second), {}}
		for i, exp := range past {
			k := key(t, fmt.Sprint("create-", i))
			// A create that expires at once keeps nothing; its condition
			// (no record there) held.
			mustApply(t, s, store.Op{Key: k, New: []byte("x"), Expiry: exp})
			mustMiss(t, s, k)

			k = key(t, fmt.Sprint("replace-", i))
			mustApply(t, s, create(k, []byte("x")))
			// With the wrong Old nothing happens...
			mustNotApply(t, s, store.Op{Key: k, Old: []byte("w"), New: []byte("y"), Expiry: exp}, []byte("x"))
			mustLoad(t, s, k, []byte("x"))
			// ...with the right one the record is deleted, not kept.
			mustApply(t, s, store.Op{Key: k, Old: []byte("x"), New: []byte("y"), Expiry: exp})
			mustMiss(t, s, k)
		}
	})

	t.Run("BinaryRecords", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		first := []byte("\x00record\xff\x00")
		second := []byte{0xff, 0x00, 0x00, 0xff}
		mustApply(t, s, create(k, first))
		mustLoad(t, s, k, first)
		// Records that differ only after a NUL byte are different.
		mustNotApply(t, s, replace(k, []byte("\x00record\xff\x01"), second), first)
		mustNotApply(t, s, replace(k, []byte("\x00"), second), first)
		mustApply(t, s, replace(k, first, second))
		mustLoad(t, s, k, second)
	})

	t.Run("LargeRecord", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		big := bytes.Repeat([]byte{0, 1, 2, 3, 254, 255}, 50_000) // 300 kB
		mustApply(t, s, create(k, big))
		mustLoad(t, s, k, big)
		// The comparison covers the whole record: a change in its last byte
		// is a mismatch, and Current is the whole live record.
		other := bytes.Clone(big)
		other[len(other)-1] ^= 1
		mustNotApply(t, s, replace(k, other, []byte("small")), big)
		mustApply(t, s, replace(k, big, other))
		mustLoad(t, s, k, other)
	})

	t.Run("KeysAreDistinct", func(t *testing.T) {
		s := newStore(t)
		a, ab, b := key(t, "a"), key(t, "ab"), key(t, "b")
		mustApply(t, s, create(a, []byte("A")))
		mustApply(t, s, create(ab, []byte("AB")))
		mustApply(t, s, create(b, []byte("B")))
		mustLoad(t, s, a, []byte("A"))
		mustLoad(t, s, ab, []byte("AB"))
		mustLoad(t, s, b, []byte("B"))
		mustApply(t, s, del(a, []byte("A")))
		mustLoad(t, s, ab, []byte("AB"))
		mustLoad(t, s, b, []byte("B"))
	})

	t.Run("WriteDoesNotRetain", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		op := create(k, []byte("original"))
		mustApply(t, s, op)
		copy(op.New, "mutated!")
		mustLoad(t, s, k, []byte("original"))

		op = replace(k, []byte("original"), []byte("second"))
		mustApply(t, s, op)
		copy(op.Old, "mutated!")
		copy(op.New, "mutated")
		mustLoad(t, s, k, []byte("second"))
	})

	t.Run("ResultsAreCopies", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("original")))
		got, _, err := s.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "mutated!")
		mustLoad(t, s, k, []byte("original"))

		ops := []store.Op{create(k, []byte("other"))}
		if err := s.Write(ctx, ops); err != nil {
			t.Fatal(err)
		}
		copy(ops[0].Current, "mutated!")
		mustLoad(t, s, k, []byte("original"))
	})

	t.Run("WriteSetsResults", func(t *testing.T) {
		// Write sets Applied and Current of every op, whatever the caller
		// left in them (an Op reused from an earlier Write).
		s := newStore(t)
		k := key(t, "a")
		mustApply(t, s, create(k, []byte("live")))
		ops := []store.Op{
			{Key: k, New: []byte("x"), Expiry: later(), Applied: true, Current: []byte("stale")},
			{Key: key(t, "b"), New: []byte("b"), Expiry: later(), Applied: false},
		}
		if err := s.Write(ctx, ops); err != nil {
			t.Fatal(err)
		}
		if ops[0].Applied || string(ops[0].Current) != "live" {
			t.Errorf("create over a live record = applied %v, current %q; want false, %q", ops[0].Applied, ops[0].Current, "live")
		}
		if !ops[1].Applied {
			t.Errorf("create of a missing key: not applied (current %q)", ops[1].Current)
		}
	})

	t.Run("SeveralOps", func(t *testing.T) {
		s := newStore(t)
		ka, kb, kc, kd, ke := key(t, "a"), key(t, "b"), key(t, "c"), key(t, "d"), key(t, "e")
		mustApply(t, s, create(kb, []byte("B")))
		mustApply(t, s, create(kc, []byte("C")))
		mustApply(t, s, create(kd, []byte("D")))
		ops := []store.Op{
			create(ka, []byte("A")),                // applies
			create(kb, []byte("B2")),               // live record: fails
			replace(kc, []byte("X"), []byte("C2")), // wrong Old: fails
			del(kd, []byte("D")),                   // applies
			replace(ke, []byte("E"), []byte("E2")), // missing: fails
		}
		if err := s.Write(ctx, ops); err != nil {
			t.Fatal(err)
		}
		want := []struct {
			applied bool
			current string
		}{{true, ""}, {false, "B"}, {false, "C"}, {true, ""}, {false, ""}}
		for i, w := range want {
			op := ops[i]
			if op.Applied != w.applied || (!w.applied && string(op.Current) != w.current) {
				t.Errorf("op %d (%s) = applied %v, current %q; want %v, %q", i, op.Key, op.Applied, op.Current, w.applied, w.current)
			}
		}
		mustLoad(t, s, ka, []byte("A"))
		mustLoad(t, s, kb, []byte("B"))
		mustLoad(t, s, kc, []byte("C"))
		mustMiss(t, s, kd)
		mustMiss(t, s, ke)

		// A rotation: create the successor and retire the old record in one
		// Write.
		kf := key(t, "f")
		ops = []store.Op{create(kf, []byte("A")), del(ka, []byte("A"))}
		if err := s.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
			t.Fatalf("rotation = %v, %+v; want both applied", err, ops)
		}
		mustLoad(t, s, kf, []byte("A"))
		mustMiss(t, s, ka)
	})

	t.Run("Expires", func(t *testing.T) {
		s := newStore(t)
		k, other := key(t, "a"), key(t, "b")
		if opts.Advance != nil {
			mustApply(t, s, store.Op{Key: k, New: []byte("x"), Expiry: now().Add(time.Minute)})
			mustApply(t, s, store.Op{Key: other, New: []byte("y"), Expiry: now().Add(time.Minute)})
			opts.Advance(time.Minute - time.Millisecond)
			mustLoad(t, s, k, []byte("x"))
			opts.Advance(time.Millisecond)
			mustMiss(t, s, k)
		} else {
			exp := now().Add(200 * time.Millisecond)
			mustApply(t, s, store.Op{Key: k, New: []byte("x"), Expiry: exp})
			mustApply(t, s, store.Op{Key: other, New: []byte("y"), Expiry: exp})
			mustLoad(t, s, k, []byte("x"))
			waitMiss(t, s, k, 5*time.Second)
			waitMiss(t, s, other, 5*time.Second)
		}
		// An expired record counts as absent for a write too: it cannot be
		// replaced or deleted, and a create takes its place.
		mustNotApply(t, s, replace(k, []byte("x"), []byte("revived")), nil)
		mustNotApply(t, s, del(other, []byte("y")), nil)
		mustMiss(t, s, k)
		mustApply(t, s, create(k, []byte("new")))
		mustLoad(t, s, k, []byte("new"))
		mustApply(t, s, create(other, []byte("new")))
		mustLoad(t, s, other, []byte("new"))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		// A store may finish work that needs no waiting, but it must never
		// report success for something it did not do: either the call
		// fails (wrapping the context's error) or it behaves as usual.
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		k := key(t, "a")
		if rec, found, err := s.Load(cctx, k); err == nil && found {
			t.Errorf("Load with a cancelled context found %q, which was never written", rec)
		} else if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("Load with a cancelled context: %v (not wrapping context.Canceled)", err)
		}

		ops := []store.Op{create(k, []byte("x"))}
		switch err := s.Write(cctx, ops); {
		case err == nil && !ops[0].Applied:
			t.Errorf("create of a missing key with a cancelled context: no error, not applied (current %q)", ops[0].Current)
		case err == nil:
			mustLoad(t, s, k, []byte("x")) // it says it did: it must have
			mustApply(t, s, del(k, []byte("x")))
		case !errors.Is(err, context.Canceled):
			t.Logf("Write with a cancelled context: %v (not wrapping context.Canceled)", err)
		}

		// A write whose condition fails must not report success either.
		// (Another key: after an error the create above may still land.)
		k = key(t, "b")
		mustApply(t, s, create(k, []byte("live")))
		ops = []store.Op{replace(k, []byte("wrong"), []byte("y"))}
		if err := s.Write(cctx, ops); err == nil && (ops[0].Applied || string(ops[0].Current) != "live") {
			t.Errorf("replace with the wrong Old and a cancelled context = applied %v, current %q; want false, %q",
				ops[0].Applied, ops[0].Current, "live")
		}
		mustLoad(t, s, k, []byte("live"))
	})

	t.Run("ConcurrentReplace", func(t *testing.T) {
		// Rounds of writers racing to replace one record from the same Old:
		// exactly one wins each round, and every loser learns the winner's
		// record as Current.
		s := newStore(t)
		k := key(t, "a")
		old := []byte("round 0 base")
		mustApply(t, s, create(k, old))
		for round := range raceRounds {
			ops := race(t, s, func(w int) store.Op {
				return replace(k, old, fmt.Appendf(nil, "round %d writer %d", round, w))
			})
			winner := checkOneWinner(t, round, ops)
			mustLoad(t, s, k, winner)
			old = winner
		}
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		s := newStore(t)
		for round := range raceRounds {
			k := key(t, fmt.Sprint(round))
			ops := race(t, s, func(w int) store.Op {
				return create(k, fmt.Appendf(nil, "writer %d", w))
			})
			winner := checkOneWinner(t, round, ops)
			mustLoad(t, s, k, winner)
		}
	})

	t.Run("Index", func(t *testing.T) {
		if newStore(t).Index() == nil {
			t.Skip("the store keeps no per-owner index (Index returns nil), so the index subtests do not apply")
		}
		runIndex(t, newStore, opts, now)
	})
}

// race runs one Write per writer at the same moment, each with the op
// op(writer), and returns the ops as Write left them.
func race(t *testing.T, s store.Store, op func(writer int) store.Op) []store.Op {
	t.Helper()
	ops := make([]store.Op, raceWriters)
	errs := make([]error, raceWriters)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range raceWriters {
		ops[w] = op(w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[w] = s.Write(context.Background(), ops[w:w+1])
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Write: %v", err)
	}
	return ops
}

// checkOneWinner checks that exactly one of ops applied and that every other
// saw its record as Current, and returns that record.
func checkOneWinner(t *testing.T, round int, ops []store.Op) []byte {
	t.Helper()
	var winner []byte
	n := 0
	for _, op := range ops {
		if op.Applied {
			winner = op.New
			n++
		}
	}
	if n != 1 {
		t.Fatalf("round %d: %d of %d writes from the same Old applied; want exactly 1", round, n, len(ops))
	}
	for i, op := range ops {
		if !op.Applied && !bytes.Equal(op.Current, winner) {
			t.Fatalf("round %d: loser %d saw Current %q; want the winner's %q", round, i, op.Current, winner)
		}
	}
	return winner
}

// mustApply runs op alone and fails the test unless it applied.
func mustApply(t *testing.T, s store.Store, op store.Op) {
	t.Helper()
	ops := []store.Op{op}
	if err := s.Write(context.Background(), ops); err != nil {
		t.Fatalf("Write(%s): %v", opString(op), err)
	}
	if !ops[0].Applied {
		t.Fatalf("Write(%s): not applied (current %.40q); want applied", opString(op), ops[0].Current)
	}
}

// mustNotApply runs op alone and fails the test unless it did not apply and
// reported current (empty: none) as the live record.
func mustNotApply(t *testing.T, s store.Store, op store.Op, current []byte) {
	t.Helper()
	ops := []store.Op{op}
	if err := s.Write(context.Background(), ops); err != nil {
		t.Fatalf("Write(%s): %v", opString(op), err)
	}
	if ops[0].Applied {
		t.Fatalf("Write(%s): applied; want not applied", opString(op))
	}
	if !bytes.Equal(ops[0].Current, current) {
		t.Fatalf("Write(%s): not applied with current %.40q; want %.40q", opString(op), ops[0].Current, current)
	}
}

// opString describes op for a failure message.
func opString(op store.Op) string {
	var kind string
	switch {
	case len(op.Old) == 0 && len(op.New) > 0:
		kind = "create"
	case len(op.New) > 0:
		kind = "replace"
	default:
		kind = "delete"
	}
	return fmt.Sprintf("%s %s old=%.20q new=%.20q", kind, op.Key, op.Old, op.New)
}

func mustLoad(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, found, err := s.Load(context.Background(), key)
	if err != nil || !found || !bytes.Equal(got, want) {
		t.Fatalf("Load(%s) = %.40q, %v, %v; want %.40q, true, nil", key, got, found, err, want)
	}
}

func mustMiss(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, found, err := s.Load(context.Background(), key)
	if err != nil || found {
		t.Fatalf("Load(%s) = %.40q, %v, %v; want not found", key, got, found, err)
	}
}

// waitMiss polls for a record to expire on a store whose clock the test
// cannot move (a real server).
func waitMiss(t *testing.T, s store.Store, key string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, found, err := s.Load(context.Background(), key)
		if err != nil {
			t.Fatalf("Load(%s): %v", key, err)
		}
		if !found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Load(%s): record still there %v after its expiry", key, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
