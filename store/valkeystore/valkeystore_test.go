package valkeystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/storetest"
	"github.com/typedsession/session/store/valkeystore"
)

// TestConformance runs the store contract suite against a standalone server
// and a cluster, with and without client-side caching, then checks that
// every key the runs left behind carries a TTL.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   string
		cache time.Duration
	}{
		{"Standalone", envAddr, 0},
		{"StandaloneCached", envAddr, time.Minute},
		{"Cluster", envClusterAddrs, 0},
		{"ClusterCached", envClusterAddrs, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, tc.env))
			prefix := uniquePrefix(t, client)
			storetest.Run(t, func(*testing.T) store.Store {
				return valkeystore.New(client, valkeystore.Options{Prefix: prefix, CacheTTL: tc.cache})
			}, storetest.Options{})
			if n := checkTTLs(t, client, prefix); n == 0 {
				t.Errorf("found no keys under %q after the suite; the TTL check checked nothing", prefix)
			}
		})
	}
}

// TestSaveWritesAbsoluteExpiry checks the layout on the server: the default
// prefix, the record as sent, and the expiry to the millisecond.
func TestSaveWritesAbsoluteExpiry(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	s := valkeystore.New(client, valkeystore.Options{})
	ctx := context.Background()
	key := strings.TrimPrefix(uniquePrefix(t, client), "vstest:") + "k"
	full := valkeystore.DefaultPrefix + key
	t.Cleanup(func() { client.Do(ctx, client.B().Unlink().Key(full).Build()) })

	exp := time.Now().Add(90 * time.Minute)
	rec := []byte("r\x00\xff")
	if err := s.Save(ctx, key, rec, exp); err != nil {
		t.Fatal(err)
	}
	got, err := client.Do(ctx, client.B().Get().Key(full).Build()).AsBytes()
	if err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("GET %s = %q, %v; want %q", full, got, err, rec)
	}
	at, err := client.Do(ctx, client.B().Pexpiretime().Key(full).Build()).AsInt64()
	if err != nil || at != exp.UnixMilli() {
		t.Fatalf("PEXPIRETIME %s = %d, %v; want %d", full, at, err, exp.UnixMilli())
	}
}

// TestExpiryAtOrBeforeNowDeletes checks that Save and Touch with an expiry
// that has passed delete the key and never issue a SET.
func TestExpiryAtOrBeforeNowDeletes(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := context.Background()

	for i, exp := range []time.Time{time.Now(), time.Now().Add(-time.Second), {}} {
		for _, op := range []string{"Save", "Touch"} {
			k := fmt.Sprintf("%s-%d", op, i)
			if err := s.Save(ctx, k, []byte("x"), later()); err != nil {
				t.Fatal(err)
			}
			before := commandCalls(t, client, "set")["set"]
			var err error
			if op == "Save" {
				err = s.Save(ctx, k, []byte("y"), exp)
			} else {
				err = s.Touch(ctx, k, exp)
			}
			if err != nil {
				t.Fatalf("%s with expiry %v: %v", op, exp, err)
			}
			if n, err := client.Do(ctx, client.B().Exists().Key(prefix+k).Build()).AsInt64(); err != nil || n != 0 {
				t.Errorf("%s with expiry %v: EXISTS = %d, %v; want the key deleted", op, exp, n, err)
			}
			if after := commandCalls(t, client, "set")["set"]; after != before {
				t.Errorf("%s with expiry %v ran SET %d times; want none", op, exp, after-before)
			}
		}
	}
}

// TestTouch checks that Touch moves the expiry with PEXPIREAT, leaves the
// record as it was without rewriting it, and creates nothing for a missing
// key.
func TestTouch(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := context.Background()

	if err := s.Save(ctx, "k", []byte("rec"), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := commandCalls(t, client, "set", "pexpireat")
	exp := time.Now().Add(3 * time.Hour)
	if err := s.Touch(ctx, "k", exp); err != nil {
		t.Fatal(err)
	}
	after := commandCalls(t, client, "set", "pexpireat")
	if after["set"] != before["set"] || after["pexpireat"] != before["pexpireat"]+1 {
		t.Errorf("Touch ran SET %d and PEXPIREAT %d times; want 0 and 1",
			after["set"]-before["set"], after["pexpireat"]-before["pexpireat"])
	}
	at, err := client.Do(ctx, client.B().Pexpiretime().Key(prefix+"k").Build()).AsInt64()
	if err != nil || at != exp.UnixMilli() {
		t.Fatalf("PEXPIRETIME after Touch = %d, %v; want %d", at, err, exp.UnixMilli())
	}
	if rec, found, err := s.Load(ctx, "k"); err != nil || !found || string(rec) != "rec" {
		t.Fatalf("Load after Touch = %q, %v, %v; want rec", rec, found, err)
	}

	if err := s.Touch(ctx, "missing", exp); err != nil {
		t.Fatalf("Touch(missing): %v", err)
	}
	if n, err := client.Do(ctx, client.B().Exists().Key(prefix+"missing").Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("Touch(missing) created a key: EXISTS = %d, %v", n, err)
	}
}

// TestReplace checks that Replace writes only over a live record, with the
// new absolute expiry, and never creates a key.
func TestReplace(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := context.Background()
	exists := func() int64 {
		t.Helper()
		n, err := client.Do(ctx, client.B().Exists().Key(prefix+"k").Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if ok, err := s.Replace(ctx, "k", []byte("x"), later()); err != nil || ok {
		t.Fatalf("Replace(missing) = %v, %v; want false, nil", ok, err)
	}
	if exists() != 0 {
		t.Fatal("Replace(missing) created the key")
	}
	if err := s.Save(ctx, "k", []byte("old"), later()); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(2 * time.Hour)
	if ok, err := s.Replace(ctx, "k", []byte("new"), exp); err != nil || !ok {
		t.Fatalf("Replace(live) = %v, %v; want true, nil", ok, err)
	}
	if rec, found, err := s.Load(ctx, "k"); err != nil || !found || string(rec) != "new" {
		t.Fatalf("Load after Replace = %q, %v, %v; want new", rec, found, err)
	}
	at, err := client.Do(ctx, client.B().Pexpiretime().Key(prefix+"k").Build()).AsInt64()
	if err != nil || at != exp.UnixMilli() {
		t.Fatalf("PEXPIRETIME after Replace = %d, %v; want %d", at, err, exp.UnixMilli())
	}
	if ok, err := s.Replace(ctx, "k", []byte("y"), time.Now().Add(-time.Second)); err != nil || !ok {
		t.Fatalf("Replace(live) into the past = %v, %v; want true (it was there), nil", ok, err)
	}
	if exists() != 0 {
		t.Fatal("Replace into the past left the key")
	}
	if ok, err := s.Replace(ctx, "k", []byte("y"), time.Time{}); err != nil || ok {
		t.Fatalf("Replace(missing) with zero expiry = %v, %v; want false, nil", ok, err)
	}
}

// TestTimeoutOption checks that Options.Timeout bounds a call whose context
// has no deadline, and leaves an earlier caller deadline alone.
func TestTimeoutOption(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: time.Second})
	ctx := context.Background()
	if err := s.Save(ctx, "k", []byte("v"), later()); err != nil {
		t.Fatal(err)
	}
	if rec, found, err := s.Load(ctx, "k"); err != nil || !found || string(rec) != "v" {
		t.Fatalf("Load = %q, %v, %v", rec, found, err)
	}
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Millisecond))
	defer cancel()
	_, _, err := s.Load(expired, "k")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load with an expired context: %v; want context.DeadlineExceeded", err)
	}
	if err := s.Save(expired, "k", []byte("w"), later()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Save with an expired context: %v; want context.DeadlineExceeded", err)
	}
}

// TestNewPanicsOnNilClient documents the one programming error New rejects.
func TestNewPanicsOnNilClient(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(nil, ...) did not panic")
		}
	}()
	valkeystore.New(nil, valkeystore.Options{})
}

// twoStores returns a store with client-side caching and a plain one on a
// second client (so on other connections), sharing a prefix.
func twoStores(t *testing.T, env string, cacheTTL time.Duration) (cached, other *valkeystore.Store, clientA valkey.Client) {
	t.Helper()
	addrs := serverAddrs(t, env)
	clientA, clientB := newClient(t, addrs), newClient(t, addrs)
	prefix := uniquePrefix(t, clientB)
	cached = valkeystore.New(clientA, valkeystore.Options{Prefix: prefix, CacheTTL: cacheTTL})
	other = valkeystore.New(clientB, valkeystore.Options{Prefix: prefix})
	return cached, other, clientA
}

func loadHit(t *testing.T, s *valkeystore.Store, key string) (rec string, found, hit bool) {
	t.Helper()
	b, found, hit, err := s.LoadHit(context.Background(), key)
	if err != nil {
		t.Fatalf("Load(%s): %v", key, err)
	}
	return string(b), found, hit
}

// TestCacheSeesOtherClientsWrites checks the client-side cache: a warm read
// is served from memory (no GET reaches the server), and a write through
// another client invalidates it.
func TestCacheSeesOtherClientsWrites(t *testing.T) {
	for _, env := range []string{envAddr, envClusterAddrs} {
		t.Run(env, func(t *testing.T) {
			a, b, clientA := twoStores(t, env, time.Minute)
			ctx := context.Background()
			if err := b.Save(ctx, "k", []byte("v1"), later()); err != nil {
				t.Fatal(err)
			}
			if rec, found, hit := loadHit(t, a, "k"); rec != "v1" || !found || hit {
				t.Fatalf("first cached Load = %q, %v, hit %v; want v1 from the server", rec, found, hit)
			}
			if rec, found, hit := loadHit(t, a, "k"); rec != "v1" || !found || !hit {
				t.Fatalf("second cached Load = %q, %v, hit %v; want v1 from the cache", rec, found, hit)
			}
			if env == envAddr {
				gets := commandCalls(t, clientA, "get")["get"]
				for range 100 {
					loadHit(t, a, "k")
				}
				if n := commandCalls(t, clientA, "get")["get"] - gets; n != 0 {
					t.Errorf("100 warm cached loads ran GET %d times on the server; want 0", n)
				}
			}

			if err := b.Save(ctx, "k", []byte("v2"), later()); err != nil {
				t.Fatal(err)
			}
			poll(t, 2*time.Second, "cached Load never saw another client's write", func() bool {
				rec, _, _ := loadHit(t, a, "k")
				return rec == "v2"
			})
			poll(t, 2*time.Second, "the new value was never served from the cache", func() bool {
				rec, _, hit := loadHit(t, a, "k")
				return rec == "v2" && hit
			})

			if err := b.Delete(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			poll(t, 2*time.Second, "cached Load never saw another client's delete", func() bool {
				_, found, _ := loadHit(t, a, "k")
				return !found
			})

			// A miss is cached too, and a later write by another client
			// still becomes visible.
			loadHit(t, a, "new")
			if _, found, hit := loadHit(t, a, "new"); found || !hit {
				t.Fatalf("second Load of a missing key: found %v, hit %v; want a cached miss", found, hit)
			}
			if err := b.Save(ctx, "new", []byte("n"), later()); err != nil {
				t.Fatal(err)
			}
			poll(t, 2*time.Second, "a cached miss hid another client's write", func() bool {
				rec, _, _ := loadHit(t, a, "new")
				return rec == "n"
			})
		})
	}
}

// TestCacheReadsOwnWrites checks that a caching store never serves its own
// stale copy after it writes, although the server's invalidation message may
// still be on its way, and that reads are cached again once the
// recently-written window has passed.
func TestCacheReadsOwnWrites(t *testing.T) {
	for _, env := range []string{envAddr, envClusterAddrs} {
		t.Run(env, func(t *testing.T) {
			const window = 100 * time.Millisecond
			a, b, _ := twoStores(t, env, window)
			ctx := context.Background()
			for i := range 200 {
				key := fmt.Sprint("k", i)
				// Warm the cache (through another store, so that a's
				// bookkeeping of its own writes is not involved).
				if err := b.Save(ctx, key, []byte("old"), later()); err != nil {
					t.Fatal(err)
				}
				poll(t, 2*time.Second, "never cached", func() bool {
					rec, _, hit := loadHit(t, a, key)
					return rec == "old" && hit
				})
				want := fmt.Sprint("new", i)
				if err := a.Save(ctx, key, []byte(want), later()); err != nil {
					t.Fatal(err)
				}
				if rec, found, _ := loadHit(t, a, key); rec != want || !found {
					t.Fatalf("round %d: Load right after Save = %q, %v; want %q", i, rec, found, want)
				}
				if i%10 == 0 {
					if err := a.Delete(ctx, key); err != nil {
						t.Fatal(err)
					}
					if rec, found, _ := loadHit(t, a, key); found {
						t.Fatalf("round %d: Load right after Delete = %q; want not found", i, rec)
					}
				}
			}
			if err := a.Save(ctx, "last", []byte("v"), later()); err != nil {
				t.Fatal(err)
			}
			poll(t, 20*window, "reads of a written key never went back to the cache", func() bool {
				rec, _, hit := loadHit(t, a, "last")
				return rec == "v" && hit
			})
		})
	}
}

// TestCacheHonoursExpiry checks that a cached record is not served after it
// expired on the server. valkey-go caps a cached copy's life at the key's PTTL
// as read with it, counted from when the answer arrived, so the copy may
// outlive the key by the round trip and the millisecond rounding: slack
// allows for that.
func TestCacheHonoursExpiry(t *testing.T) {
	const slack = 10 * time.Millisecond
	a, b, _ := twoStores(t, envAddr, time.Minute)
	ctx := context.Background()
	exp := time.Now().Add(300 * time.Millisecond)
	if err := b.Save(ctx, "k", []byte("v"), exp); err != nil {
		t.Fatal(err)
	}
	loadHit(t, a, "k")
	if rec, _, hit := loadHit(t, a, "k"); rec != "v" || !hit {
		t.Fatalf("Load = %q, hit %v; want a cache hit", rec, hit)
	}
	for {
		// Timed before the call, so that a slow scheduler cannot make a
		// load that ran in time look late.
		start := time.Now()
		rec, found, hit := loadHit(t, a, "k")
		if !found {
			break
		}
		if start.After(exp.Add(slack)) {
			t.Fatalf("Load started %v after expiry = %q (hit %v); want not found", start.Sub(exp), rec, hit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLoadReturnsPrivateCopy checks that changing a cached record's bytes
// does not change what the next Load returns.
func TestLoadReturnsPrivateCopy(t *testing.T) {
	a, b, _ := twoStores(t, envAddr, time.Minute)
	ctx := context.Background()
	if err := b.Save(ctx, "k", []byte("original"), later()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec, _, _, _ := a.LoadHit(ctx, "k")
		if string(rec) != "original" {
			t.Fatalf("Load = %q; want original", rec)
		}
		copy(rec, "mutated!")
	}
}

// TestCacheServesOwnWriteSoon: after this Store writes a session, its next
// reads come from the client-side cache again as soon as the cache holds the
// written value, not only once CacheTTL has passed since the write.
func TestCacheServesOwnWriteSoon(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	s := valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client), CacheTTL: time.Minute})
	ctx := context.Background()
	for i := range 3 {
		want := fmt.Appendf(nil, "version %d", i)
		if err := s.Save(ctx, "k", want, later()); err != nil {
			t.Fatal(err)
		}
		poll(t, 2*time.Second, "reads after an own write never came from the cache", func() bool {
			rec, found, hit, err := s.LoadHit(ctx, "k")
			if err != nil || !found || !bytes.Equal(rec, want) {
				t.Fatalf("LoadHit = %q, %v, %v; want %q", rec, found, err, want)
			}
			return hit
		})
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, found, _, err := s.LoadHit(ctx, "k"); err != nil || found {
		t.Fatalf("after Delete: found=%v, err=%v", found, err)
	}
}
