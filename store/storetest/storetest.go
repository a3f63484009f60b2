// Package storetest checks that a [store.Store] keeps the contract the session
// manager relies on. Modelled on testing/slogtest: a store's own tests call
// [Run] with a constructor, and every rule of the contract becomes a subtest.
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
	// polls, for a record saved with a short expiry to disappear.
	Advance func(d time.Duration)

	// Now returns the store's present time; nil means time.Now.
	Now func() time.Time

	// Prefix is put in front of every key the suite uses, so that runs
	// against a shared server do not collide.
	Prefix string
}

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

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		rec, found, err := s.Load(ctx, key(t, "missing"))
		if err != nil || found || rec != nil {
			t.Fatalf("Load(missing) = %q, %v, %v; want nil, false, nil", rec, found, err)
		}
	})

	t.Run("SaveLoad", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		want := []byte("record \x00\xff with binary")
		mustSave(t, s, k, want, later())
		mustLoad(t, s, k, want)
	})

	t.Run("Overwrite", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustSave(t, s, k, []byte("first, longer record"), later())
		mustSave(t, s, k, []byte("second"), later())
		mustLoad(t, s, k, []byte("second"))
	})

	t.Run("EmptyRecord", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustSave(t, s, k, []byte{}, later())
		rec, found, err := s.Load(ctx, k)
		if err != nil || !found || len(rec) != 0 {
			t.Fatalf("Load = %q, %v, %v; want empty, true, nil", rec, found, err)
		}
	})

	t.Run("LargeRecord", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		want := bytes.Repeat([]byte{0, 1, 2, 3, 254, 255}, 50_000)
		mustSave(t, s, k, want, later())
		mustLoad(t, s, k, want)
	})

	t.Run("KeysAreDistinct", func(t *testing.T) {
		s := newStore(t)
		a, b := key(t, "a"), key(t, "b")
		mustSave(t, s, a, []byte("A"), later())
		mustSave(t, s, b, []byte("B"), later())
		mustLoad(t, s, a, []byte("A"))
		mustLoad(t, s, b, []byte("B"))
		if err := s.Delete(ctx, a); err != nil {
			t.Fatal(err)
		}
		mustLoad(t, s, b, []byte("B"))
	})

	t.Run("Delete", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustSave(t, s, k, []byte("x"), later())
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		mustMiss(t, s, k)
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("Delete of a missing key: %v", err)
		}
	})

	t.Run("SaveDoesNotRetain", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		rec := []byte("original")
		mustSave(t, s, k, rec, later())
		copy(rec, "mutated!")
		mustLoad(t, s, k, []byte("original"))
	})

	t.Run("LoadReturnsCopy", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustSave(t, s, k, []byte("original"), later())
		got, _, err := s.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		copy(got, "mutated!")
		mustLoad(t, s, k, []byte("original"))
	})

	t.Run("ExpiryInPastDeletes", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		mustSave(t, s, k, []byte("x"), later())
		for _, exp := range []time.Time{now().Add(-time.Second), {}} {
			if err := s.Save(ctx, k, []byte("y"), exp); err != nil {
				t.Fatalf("Save with expiry %v: %v", exp, err)
			}
			mustMiss(t, s, k)
		}
	})

	t.Run("Expires", func(t *testing.T) {
		s := newStore(t)
		k := key(t, "a")
		if opts.Advance != nil {
			mustSave(t, s, k, []byte("x"), now().Add(time.Minute))
			opts.Advance(59 * time.Second)
			mustLoad(t, s, k, []byte("x"))
			opts.Advance(time.Second)
			mustMiss(t, s, k)
			return
		}
		mustSave(t, s, k, []byte("x"), now().Add(200*time.Millisecond))
		mustLoad(t, s, k, []byte("x"))
		waitMiss(t, s, k, 5*time.Second)
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := key(t, fmt.Sprint(i))
				for j := range 50 {
					want := fmt.Appendf(nil, "%d-%d", i, j)
					if err := s.Save(ctx, k, want, later()); err != nil {
						errs <- err
						return
					}
					got, found, err := s.Load(ctx, k)
					if err != nil || !found || !bytes.Equal(got, want) {
						errs <- fmt.Errorf("Load(%s) = %q, %v, %v; want %q", k, got, found, err, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})

	t.Run("Touch", func(t *testing.T) {
		s := newStore(t)
		tc, ok := s.(store.Toucher)
		if !ok {
			t.Skip("store does not implement store.Toucher")
		}
		k := key(t, "a")
		if err := tc.Touch(ctx, k, later()); err != nil {
			t.Fatalf("Touch of a missing key: %v", err)
		}
		mustMiss(t, s, k)

		mustSave(t, s, k, []byte("x"), now().Add(time.Hour))
		if err := tc.Touch(ctx, k, now().Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		mustLoad(t, s, k, []byte("x"))
		if opts.Advance != nil {
			opts.Advance(90 * time.Minute)
			mustLoad(t, s, k, []byte("x"))
			opts.Advance(31 * time.Minute)
			mustMiss(t, s, k)
			mustSave(t, s, k, []byte("x"), now().Add(time.Hour))
		}
		if err := tc.Touch(ctx, k, now().Add(-time.Second)); err != nil {
			t.Fatalf("Touch into the past: %v", err)
		}
		mustMiss(t, s, k)
	})

	t.Run("Replace", func(t *testing.T) {
		s := newStore(t)
		rp, ok := s.(store.Replacer)
		if !ok {
			t.Skip("store does not implement store.Replacer")
		}
		k := key(t, "a")
		replaced, err := rp.Replace(ctx, k, []byte("x"), later())
		if err != nil || replaced {
			t.Fatalf("Replace of a missing key = %v, %v; want false, nil", replaced, err)
		}
		mustMiss(t, s, k)
		mustSave(t, s, k, []byte("old"), later())
		replaced, err = rp.Replace(ctx, k, []byte("new"), later())
		if err != nil || !replaced {
			t.Fatalf("Replace of a live key = %v, %v; want true, nil", replaced, err)
		}
		mustLoad(t, s, k, []byte("new"))
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if replaced, err := rp.Replace(ctx, k, []byte("resurrected"), later()); err != nil || replaced {
			t.Fatalf("Replace after Delete = %v, %v; want false, nil", replaced, err)
		}
		mustMiss(t, s, k)
		mustSave(t, s, k, []byte("x"), later())
		if _, err := rp.Replace(ctx, k, []byte("y"), now().Add(-time.Second)); err != nil {
			t.Fatalf("Replace into the past: %v", err)
		}
		mustMiss(t, s, k)
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		k := key(t, "a")
		// A store may finish work that needs no waiting, but it must never
		// report success for a load it did not perform: either the call
		// fails with the context's error or it behaves as usual.
		if _, found, err := s.Load(cctx, k); err == nil && found {
			t.Fatalf("Load with cancelled context found a record that was never saved")
		} else if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("Load with cancelled context: %v (not wrapping context.Canceled)", err)
		}
	})
}

func mustSave(t *testing.T, s store.Store, key string, rec []byte, exp time.Time) {
	t.Helper()
	if err := s.Save(context.Background(), key, rec, exp); err != nil {
		t.Fatalf("Save(%s): %v", key, err)
	}
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
