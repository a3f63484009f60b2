package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/typedsession/session/store"
)

// Rounds of the concurrent Bind subtest; each has raceWriters logins.
const bindRounds = 10

// clock is how the index subtests make time pass: by moving the store's
// clock when they can, or else by waiting, in short polls, on the real one.
type clock struct {
	now     func() time.Time
	advance func(time.Duration) // nil: real time
}

// soon returns an expiry that the subtest will let pass: a minute ahead when
// the clock can be moved, a fraction of a second otherwise.
func (c clock) soon() time.Time {
	if c.advance != nil {
		return c.now().Add(time.Minute)
	}
	return c.now().Add(200 * time.Millisecond)
}

// pass lets time run until exp has passed: exactly to exp when the clock can
// be moved (an expiry at the present has passed), a little beyond it on the
// real clock.
func (c clock) pass(exp time.Time) {
	if c.advance != nil {
		if d := exp.Sub(c.now()); d > 0 {
			c.advance(d)
		}
		return
	}
	time.Sleep(time.Until(exp.Add(50 * time.Millisecond)))
}

// eventually checks cond once after time was moved, or polls it for a while
// on the real clock, where a remote store's expiry may lag a little.
func (c clock) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if c.advance != nil || time.Now().After(deadline) {
			t.Fatalf("%s: not after its expiry", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runIndex runs the subtests of the per-owner index, each on a new store.
func runIndex(t *testing.T, newStore func(t *testing.T) store.Store, opts Options, now func() time.Time) {
	ctx := context.Background()
	c := clock{now: now, advance: opts.Advance}
	// Owners and keys are named after the subtest, under opts.Prefix, so
	// that runs against a shared server do not collide.
	name := func(t *testing.T, n string) string {
		return fmt.Sprintf("%s%s:%s", opts.Prefix, t.Name(), n)
	}
	later := func() time.Time { return now().Add(time.Hour) }
	index := func(t *testing.T) (store.Store, store.Index) {
		s := newStore(t)
		x := s.Index()
		if x == nil {
			t.Fatal("Index() returned nil on a store that returned an index before")
		}
		return s, x
	}
	// record creates a live record under k, as a login does before it binds
	// the session.
	record := func(t *testing.T, s store.Store, k string, exp time.Time) []byte {
		t.Helper()
		rec := []byte("record of " + k)
		mustApply(t, s, store.Op{Key: k, New: rec, Expiry: exp})
		return rec
	}

	t.Run("BindReturnsEpoch", func(t *testing.T) {
		s, x := index(t)
		o := name(t, "owner")
		wantEpoch(t, x, o, nil)
		k1, k2 := name(t, "k1"), name(t, "k2")
		record(t, s, k1, later())
		record(t, s, k2, later())
		// A new owner takes the epoch given; later binds get that one.
		mustBind(t, x, o, k1, later(), []byte("epoch 1"), []byte("epoch 1"))
		wantEpoch(t, x, o, []byte("epoch 1"))
		mustBind(t, x, o, k2, later(), []byte("epoch 2"), []byte("epoch 1"))
		wantEpoch(t, x, o, []byte("epoch 1"))
		// Binding a key again keeps one entry and the epoch.
		mustBind(t, x, o, k1, later(), []byte("epoch 3"), []byte("epoch 1"))
		wantSessions(t, x, o, entries(k1, "record of "+k1, k2, "record of "+k2))
	})

	t.Run("BindExpired", func(t *testing.T) {
		// A Bind whose expiry has passed keeps nothing: no entry, and no
		// epoch for an owner that had none (it returns the one given).
		s, x := index(t)
		o := name(t, "owner")
		k1, k2 := name(t, "k1"), name(t, "k2")
		record(t, s, k1, later())
		record(t, s, k2, later())
		for _, exp := range []time.Time{now(), now().Add(-time.Second)} {
			mustBind(t, x, o, k1, exp, []byte("e1"), []byte("e1"))
			wantEpoch(t, x, o, nil)
			wantSessions(t, x, o, nil)
		}
		// An owner's epoch stays what it is.
		mustBind(t, x, o, k2, later(), []byte("e2"), []byte("e2"))
		mustBind(t, x, o, k1, now(), []byte("e3"), []byte("e2"))
		wantEpoch(t, x, o, []byte("e2"))
		wantSessions(t, x, o, entries(k2, "record of "+k2))
	})

	t.Run("BindExtendsEpoch", func(t *testing.T) {
		s, x := index(t)
		k1, k2 := name(t, "k1"), name(t, "k2")
		record(t, s, k1, later())
		record(t, s, k2, later())

		// A short bind, then a long one: the epoch outlives the first.
		a := name(t, "short-first")
		short := c.soon()
		mustBind(t, x, a, k1, short, []byte("a"), []byte("a"))
		mustBind(t, x, a, k2, later(), []byte("x"), []byte("a"))
		// A long bind, then a short one, which must not shorten it.
		b := name(t, "long-first")
		mustBind(t, x, b, k1, later(), []byte("b"), []byte("b"))
		mustBind(t, x, b, k2, c.soon(), []byte("x"), []byte("b"))
		// An epoch whose only session is short-lived expires with it.
		d := name(t, "short-only")
		mustBind(t, x, d, k1, short, []byte("d"), []byte("d"))

		c.pass(short.Add(time.Millisecond))
		wantEpoch(t, x, a, []byte("a"))
		wantEpoch(t, x, b, []byte("b"))
		c.eventually(t, "Sessions listing an expired entry", func() bool {
			return sameEntries(mustSessions(t, x, a), entries(k2, "record of "+k2))
		})
		c.eventually(t, "Epoch of an owner whose sessions all expired", func() bool {
			return mustEpoch(t, x, d) == nil
		})
		// The owner then takes a new epoch.
		mustBind(t, x, d, k2, later(), []byte("d2"), []byte("d2"))
	})

	t.Run("Sessions", func(t *testing.T) {
		s, x := index(t)
		o := name(t, "owner")
		wantSessions(t, x, o, nil)
		k1, k2, k3, gone := name(t, "k1"), name(t, "k2"), name(t, "k3"), name(t, "gone")
		r1 := record(t, s, k1, later())
		r2 := record(t, s, k2, later())
		record(t, s, k3, later())
		for _, k := range []string{k1, k2, k3, gone} { // gone never had a record
			mustBind(t, x, o, k, later(), []byte("e"), []byte("e"))
		}
		wantSessions(t, x, o, entries(k1, string(r1), k2, string(r2), k3, "record of "+k3))

		// Each entry carries the record the key holds now; a key whose
		// record is gone is left out.
		mustApply(t, s, store.Op{Key: k1, Old: r1, New: []byte("changed"), Expiry: later()})
		mustApply(t, s, store.Op{Key: k2, Old: r2})
		wantSessions(t, x, o, entries(k1, "changed", k3, "record of "+k3))
		// A record that comes back (a key created again) is listed again:
		// the index must not have lost the entry.
		mustApply(t, s, store.Op{Key: k2, New: []byte("again"), Expiry: later()})
		wantSessions(t, x, o, entries(k1, "changed", k2, "again", k3, "record of "+k3))
	})

	t.Run("SessionsExpiry", func(t *testing.T) {
		// Entries past the expiry they were bound with are left out although
		// their record lives, and never come back; records that expire are
		// left out although their entry lives.
		s, x := index(t)
		o := name(t, "owner")
		short, long, recShort := name(t, "short"), name(t, "long"), name(t, "record-short")
		exp := c.soon()
		record(t, s, short, later())
		record(t, s, long, later())
		record(t, s, recShort, exp)
		mustBind(t, x, o, short, exp, []byte("e"), []byte("e"))
		mustBind(t, x, o, long, later(), []byte("e"), []byte("e"))
		mustBind(t, x, o, recShort, later(), []byte("e"), []byte("e"))
		want := entries(long, "record of "+long)
		if c.advance != nil {
			c.advance(exp.Sub(now()) - time.Millisecond)
			wantSessions(t, x, o, entries(short, "record of "+short, long, "record of "+long, recShort, "record of "+recShort))
		}
		c.pass(exp)
		c.eventually(t, "Sessions listing an expired entry or record", func() bool {
			return sameEntries(mustSessions(t, x, o), want)
		})
		// A later bind of another key does not bring the expired entry back.
		other := name(t, "other")
		record(t, s, other, later())
		mustBind(t, x, o, other, later(), []byte("e2"), []byte("e"))
		want[other] = "record of " + other
		wantSessions(t, x, o, want)
		// The expired key bound again (with a new expiry) is listed again.
		mustBind(t, x, o, short, later(), []byte("e2"), []byte("e"))
		want[short] = "record of " + short
		wantSessions(t, x, o, want)
	})

	t.Run("Unbind", func(t *testing.T) {
		s, x := index(t)
		o := name(t, "owner")
		k1, k2 := name(t, "k1"), name(t, "k2")
		record(t, s, k1, later())
		record(t, s, k2, later())
		mustBind(t, x, o, k1, later(), []byte("e"), []byte("e"))
		mustBind(t, x, o, k2, later(), []byte("e"), []byte("e"))
		mustUnbind(t, x, o, k1)
		wantSessions(t, x, o, entries(k2, "record of "+k2))
		// Removing what is not there is not an error.
		mustUnbind(t, x, o, k1)
		mustUnbind(t, x, name(t, "nobody"), k2)
		wantSessions(t, x, o, entries(k2, "record of "+k2))
		mustUnbind(t, x, o, k2)
		wantSessions(t, x, o, nil)
		// The epoch is not the entries': it stays, and the next bind gets it.
		wantEpoch(t, x, o, []byte("e"))
		mustBind(t, x, o, k1, later(), []byte("other"), []byte("e"))
		wantSessions(t, x, o, entries(k1, "record of "+k1))
	})

	t.Run("SetEpoch", func(t *testing.T) {
		s, x := index(t)
		o := name(t, "owner")
		k1, k2 := name(t, "k1"), name(t, "k2")
		record(t, s, k1, later())
		record(t, s, k2, later())
		// On an owner without one, SetEpoch gives it one.
		mustSetEpoch(t, x, o, []byte("e1"), later())
		wantEpoch(t, x, o, []byte("e1"))
		mustBind(t, x, o, k1, later(), []byte("new"), []byte("e1"))
		// It replaces the epoch; binds get the new one.
		mustSetEpoch(t, x, o, []byte("e2"), later())
		wantEpoch(t, x, o, []byte("e2"))
		mustBind(t, x, o, k2, later(), []byte("new"), []byte("e2"))
		// Empty removes it (revocation of every session), and the next bind
		// starts a new one; so does nil.
		for _, empty := range [][]byte{nil, {}} {
			mustSetEpoch(t, x, o, empty, later())
			wantEpoch(t, x, o, nil)
			mustBind(t, x, o, k1, later(), []byte("e3"), []byte("e3"))
			wantEpoch(t, x, o, []byte("e3"))
		}
		// Removing a missing epoch is not an error.
		mustSetEpoch(t, x, name(t, "nobody"), nil, later())
		wantEpoch(t, x, name(t, "nobody"), nil)
		// The entries are not the epoch's: they stay.
		wantSessions(t, x, o, entries(k1, "record of "+k1, k2, "record of "+k2))
	})

	t.Run("SetEpochKeepsExpiry", func(t *testing.T) {
		s, x := index(t)
		k := name(t, "k")
		record(t, s, k, later())

		// SetEpoch never shortens the expiry of the epoch it replaces,
		// whatever expiry it is given, even one that has passed.
		a := name(t, "bound")
		mustBind(t, x, a, k, later(), []byte("a1"), []byte("a1"))
		short := c.soon()
		mustSetEpoch(t, x, a, []byte("a2"), short)
		wantEpoch(t, x, a, []byte("a2"))
		mustSetEpoch(t, x, a, []byte("a3"), now())
		wantEpoch(t, x, a, []byte("a3"))
		// A later expiry extends it.
		b := name(t, "extended")
		mustSetEpoch(t, x, b, []byte("b1"), short)
		mustSetEpoch(t, x, b, []byte("b2"), later())
		// An epoch set on its own expires at its expiry.
		d := name(t, "alone")
		mustSetEpoch(t, x, d, []byte("d1"), short)
		// One set with an expiry that has passed, on an owner without an
		// epoch, is not kept.
		e := name(t, "passed")
		mustSetEpoch(t, x, e, []byte("e1"), now())
		wantEpoch(t, x, e, nil)

		c.pass(short.Add(time.Millisecond))
		wantEpoch(t, x, a, []byte("a3"))
		wantEpoch(t, x, b, []byte("b2"))
		c.eventually(t, "Epoch set with a short expiry", func() bool {
			return mustEpoch(t, x, d) == nil
		})
	})

	t.Run("OwnersApart", func(t *testing.T) {
		s, x := index(t)
		// Names where one is a prefix of another.
		a, ab, b := name(t, "a"), name(t, "ab"), name(t, "b")
		ka, kab, kb := name(t, "ka"), name(t, "kab"), name(t, "kb")
		for _, k := range []string{ka, kab, kb} {
			record(t, s, k, later())
		}
		mustBind(t, x, a, ka, later(), []byte("ea"), []byte("ea"))
		mustBind(t, x, ab, kab, later(), []byte("eab"), []byte("eab"))
		mustBind(t, x, b, kb, later(), []byte("eb"), []byte("eb"))
		wantSessions(t, x, a, entries(ka, "record of "+ka))
		wantSessions(t, x, ab, entries(kab, "record of "+kab))
		wantSessions(t, x, b, entries(kb, "record of "+kb))

		mustSetEpoch(t, x, a, []byte("ea2"), later())
		wantEpoch(t, x, a, []byte("ea2"))
		wantEpoch(t, x, ab, []byte("eab"))
		wantEpoch(t, x, b, []byte("eb"))
		mustSetEpoch(t, x, ab, nil, later())
		wantEpoch(t, x, a, []byte("ea2"))
		wantEpoch(t, x, ab, nil)
		wantEpoch(t, x, b, []byte("eb"))

		// Unbinding a key from an owner it is not bound to leaves its owner's
		// entry alone.
		mustUnbind(t, x, a, kb)
		wantSessions(t, x, b, entries(kb, "record of "+kb))
		mustUnbind(t, x, b, kb)
		wantSessions(t, x, b, nil)
		wantSessions(t, x, a, entries(ka, "record of "+ka))
		wantSessions(t, x, ab, entries(kab, "record of "+kab))
	})

	t.Run("ConcurrentBind", func(t *testing.T) {
		// Logins of one owner at the same moment, each with a fresh random
		// epoch: they all get the same one, and every session is listed.
		s, x := index(t)
		for round := range bindRounds {
			o := name(t, fmt.Sprint("owner", round))
			keys := make([]string, raceWriters)
			given := make([][]byte, raceWriters)
			got := make([][]byte, raceWriters)
			errs := make([]error, raceWriters)
			want := make(map[string]string, raceWriters)
			for w := range raceWriters {
				keys[w] = name(t, fmt.Sprintf("r%d-w%d", round, w))
				want[keys[w]] = string(record(t, s, keys[w], later()))
				given[w] = make([]byte, 16)
				rand.Read(given[w])
			}
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range raceWriters {
				wg.Go(func() {
					<-start
					got[w], errs[w] = x.Bind(ctx, o, keys[w], later(), given[w])
				})
			}
			close(start)
			wg.Wait()
			for w, err := range errs {
				if err != nil {
					t.Fatalf("round %d: Bind %d: %v", round, w, err)
				}
			}
			for w := range got {
				if !bytes.Equal(got[w], got[0]) {
					t.Fatalf("round %d: Bind %d returned epoch %x, Bind 0 %x; want one epoch", round, w, got[w], got[0])
				}
			}
			if !slices.ContainsFunc(given, func(e []byte) bool { return bytes.Equal(e, got[0]) }) {
				t.Fatalf("round %d: the epoch returned, %x, is none of those given", round, got[0])
			}
			wantEpoch(t, x, o, got[0])
			wantSessions(t, x, o, want)
		}
	})

	t.Run("ExactBytes", func(t *testing.T) {
		// The index keeps exactly what it is given: binary epochs and keys
		// come back byte for byte, it retains none of the caller's slices,
		// and what it returns the caller may modify.
		s, x := index(t)
		o := name(t, "owner\x00\xff")
		k := name(t, "k\x00\xff")
		rec := record(t, s, k, later())
		ep := []byte("\x00epoch\xff\x00")
		want := bytes.Clone(ep)
		got := mustBind(t, x, o, k, later(), ep, want)
		copy(ep, "mutated!")
		copy(got, "mutated!")
		wantEpoch(t, x, o, want)
		copy(mustEpoch(t, x, o), "mutated!")
		wantEpoch(t, x, o, want)

		list := mustSessions(t, x, o)
		if !sameEntries(list, entries(k, string(rec))) {
			t.Fatalf("Sessions(%q) = %q; want %s only", o, list, k)
		}
		copy(list[0].Record, "mutated!")
		mustLoad(t, s, k, rec)
		wantSessions(t, x, o, entries(k, string(rec)))

		ep = []byte("\xff\x00new")
		mustSetEpoch(t, x, o, ep, later())
		copy(ep, "mutated")
		wantEpoch(t, x, o, []byte("\xff\x00new"))
	})
}

// entries builds the expected listing from key, record pairs.
func entries(kv ...string) map[string]string {
	m := make(map[string]string, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// sameEntries reports whether list holds exactly the keys and records of
// want, each once, in any order.
func sameEntries(list []store.Entry, want map[string]string) bool {
	if len(list) != len(want) {
		return false
	}
	seen := make(map[string]bool, len(list))
	for _, e := range list {
		rec, ok := want[e.Key]
		if !ok || seen[e.Key] || string(e.Record) != rec {
			return false
		}
		seen[e.Key] = true
	}
	return true
}

func mustBind(t *testing.T, x store.Index, owner, key string, exp time.Time, epoch, want []byte) []byte {
	t.Helper()
	got, err := x.Bind(context.Background(), owner, key, exp, epoch)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Bind(%q, %q, epoch %q) = %q, %v; want %q", owner, key, epoch, got, err, want)
	}
	return got
}

func mustUnbind(t *testing.T, x store.Index, owner, key string) {
	t.Helper()
	if err := x.Unbind(context.Background(), owner, key); err != nil {
		t.Fatalf("Unbind(%q, %q): %v", owner, key, err)
	}
}

func mustSetEpoch(t *testing.T, x store.Index, owner string, epoch []byte, exp time.Time) {
	t.Helper()
	if err := x.SetEpoch(context.Background(), owner, epoch, exp); err != nil {
		t.Fatalf("SetEpoch(%q, %q): %v", owner, epoch, err)
	}
}

func mustEpoch(t *testing.T, x store.Index, owner string) []byte {
	t.Helper()
	got, err := x.Epoch(context.Background(), owner)
	if err != nil {
		t.Fatalf("Epoch(%q): %v", owner, err)
	}
	return got
}

// wantEpoch fails the test unless owner's epoch is want (nil: none).
func wantEpoch(t *testing.T, x store.Index, owner string, want []byte) {
	t.Helper()
	got := mustEpoch(t, x, owner)
	if want == nil && got != nil {
		t.Fatalf("Epoch(%q) = %q; want nil (no epoch)", owner, got)
	}
	if want != nil && !bytes.Equal(got, want) {
		t.Fatalf("Epoch(%q) = %q; want %q", owner, got, want)
	}
}

func mustSessions(t *testing.T, x store.Index, owner string) []store.Entry {
	t.Helper()
	list, err := x.Sessions(context.Background(), owner)
	if err != nil {
		t.Fatalf("Sessions(%q): %v", owner, err)
	}
	return list
}

// wantSessions fails the test unless owner's listing is exactly want (key to
// record), in any order.
func wantSessions(t *testing.T, x store.Index, owner string, want map[string]string) {
	t.Helper()
	list := mustSessions(t, x, owner)
	if !sameEntries(list, want) {
		got := make(map[string]string, len(list))
		for _, e := range list {
			got[e.Key] = string(e.Record)
		}
		t.Fatalf("Sessions(%q) = %d entries %q; want %q (keys %q)", owner, len(list), got, want, slices.Sorted(maps.Keys(want)))
	}
}
