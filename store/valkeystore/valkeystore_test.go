package valkeystore_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
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

// TestWriteLayout checks the layout on the server: the default prefix, the
// record as sent, and the expiry to the millisecond, for a create and for a
// replace that moves the expiry.
func TestWriteLayout(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	s := valkeystore.New(client, valkeystore.Options{})
	ctx := context.Background()
	key := strings.TrimPrefix(uniquePrefix(t, client), "vstest:") + "k"
	full := valkeystore.DefaultPrefix + key
	t.Cleanup(func() { client.Do(ctx, client.B().Unlink().Key(full).Build()) })

	check := func(rec []byte, exp time.Time) {
		t.Helper()
		got, err := client.Do(ctx, client.B().Get().Key(full).Build()).AsBytes()
		if err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("GET %s = %q, %v; want %q", full, got, err, rec)
		}
		at, err := client.Do(ctx, client.B().Pexpiretime().Key(full).Build()).AsInt64()
		if err != nil || at != exp.UnixMilli() {
			t.Fatalf("PEXPIRETIME %s = %d, %v; want %d", full, at, err, exp.UnixMilli())
		}
	}
	exp := time.Now().Add(90 * time.Minute)
	create(t, s, key, []byte("r\x00\xff"), exp)
	check([]byte("r\x00\xff"), exp)
	exp = exp.Add(time.Hour)
	replace(t, s, key, []byte("r\x00\xff"), []byte("r2"), exp)
	check([]byte("r2"), exp)
}

// TestExpiryAtOrBeforeNowDeletes checks that a replace with an expiry that
// has passed deletes the key and never runs SET.
func TestExpiryAtOrBeforeNowDeletes(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := context.Background()

	for i, exp := range []time.Time{time.Now(), time.Now().Add(-time.Second), {}} {
		k := fmt.Sprint("k", i)
		create(t, s, k, []byte("x"), later())
		before := commandCalls(t, client, "set")["set"]
		replace(t, s, k, []byte("x"), []byte("y"), exp)
		if n, err := client.Do(ctx, client.B().Exists().Key(prefix+k).Build()).AsInt64(); err != nil || n != 0 {
			t.Errorf("replace with expiry %v: EXISTS = %d, %v; want the key deleted", exp, n, err)
		}
		if after := commandCalls(t, client, "set")["set"]; after != before {
			t.Errorf("replace with expiry %v ran SET %d times; want none", exp, after-before)
		}
	}
}

// TestScriptSHA checks that the name the store calls each script by is the
// one the server gives it.
func TestScriptSHA(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	for name, sc := range valkeystore.Scripts {
		sha, err := client.Do(context.Background(), client.B().ScriptLoad().Script(sc.Src).Build()).ToString()
		if err != nil {
			t.Fatalf("SCRIPT LOAD of the %s script: %v", name, err)
		}
		if sha != sc.SHA {
			t.Errorf("SCRIPT LOAD of the %s script = %s; the store calls it %s", name, sha, sc.SHA)
		}
	}
}

// TestWriteAfterScriptFlush checks the way a server that does not have the
// script (restarted, failed over, flushed) is handled: EVALSHA fails with
// NOSCRIPT, having done nothing, and the store sends the script with EVAL.
// Once per op, then the server has it again.
func TestWriteAfterScriptFlush(t *testing.T) {
	for _, env := range []string{envAddr, envClusterAddrs} {
		t.Run(env, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, env))
			s := valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client)})
			ctx := context.Background()
			flush := func() {
				t.Helper()
				for addr, node := range client.Nodes() {
					if err := node.Do(ctx, node.B().ScriptFlush().Build()).Error(); err != nil {
						t.Fatalf("SCRIPT FLUSH on %s: %v", addr, err)
					}
				}
			}
			evals := func() int64 {
				t.Helper()
				var n int64
				for _, node := range client.Nodes() {
					n += commandCalls(t, node, "eval")["eval"]
				}
				return n
			}

			flush()
			before := evals()
			create(t, s, "a", []byte("A"), later())
			if n := evals() - before; n != 1 {
				t.Errorf("a write after SCRIPT FLUSH ran EVAL %d times; want 1", n)
			}
			replace(t, s, "a", []byte("A"), []byte("A2"), later())
			if n := evals() - before; n != 1 {
				t.Errorf("a second write ran EVAL again (%d in all); want EVALSHA", n)
			}

			flush()
			before = evals()
			ops := []store.Op{
				{Key: "b", New: []byte("B"), Expiry: later()},
				{Key: "a", Old: []byte("wrong"), New: []byte("x"), Expiry: later()},
			}
			if err := s.Write(ctx, ops); err != nil {
				t.Fatal(err)
			}
			if !ops[0].Applied || ops[1].Applied || string(ops[1].Current) != "A2" {
				t.Fatalf("two ops after SCRIPT FLUSH = %+v; want the first applied, the second not with current A2", ops)
			}
			if n := evals() - before; n != 2 {
				t.Errorf("two ops after SCRIPT FLUSH ran EVAL %d times; want 2", n)
			}
			mustLoad(t, s, "a", "A2")
			mustLoad(t, s, "b", "B")
		})
	}
}

// TestWrongType: a key of another type under the prefix (left by a bug or a
// hand on the server; it has no TTL) would fail every command on it. Load
// reports it as no record and removes it; a create replaces it; a replace or
// delete finds no record there.
func TestWrongType(t *testing.T) {
	for _, tc := range []struct {
		env   string
		cache time.Duration
	}{{envAddr, 0}, {envAddr, time.Minute}, {envClusterAddrs, 0}} {
		t.Run(fmt.Sprintf("%s/cache=%v", tc.env, tc.cache), func(t *testing.T) {
			client := newClient(t, serverAddrs(t, tc.env))
			prefix := uniquePrefix(t, client)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, CacheTTL: tc.cache})
			ctx := context.Background()
			hset := func(k string) {
				t.Helper()
				if err := client.Do(ctx, client.B().Hset().Key(prefix+k).FieldValue().FieldValue("a", "b").Build()).Error(); err != nil {
					t.Fatal(err)
				}
			}
			typeOf := func(k string) string {
				t.Helper()
				typ, err := client.Do(ctx, client.B().Type().Key(prefix+k).Build()).ToString()
				if err != nil {
					t.Fatal(err)
				}
				return typ
			}

			hset("k")
			for range 2 {
				if rec, found, err := s.Load(ctx, "k"); err != nil || found {
					t.Fatalf("Load of a hash = %q, %v, %v; want not found, no error", rec, found, err)
				}
			}
			if typ := typeOf("k"); typ != "none" {
				t.Fatalf("after Load the key is a %s; want it removed", typ)
			}

			hset("k")
			ops := []store.Op{
				{Key: "k", Old: []byte("x"), New: []byte("y"), Expiry: later()},
				{Key: "k", Old: []byte("x")},
			}
			for i := range ops {
				if err := s.Write(ctx, ops[i:i+1]); err != nil || ops[i].Applied || len(ops[i].Current) != 0 {
					t.Fatalf("op %d on a hash = %v, applied %v, current %q; want not applied, no record", i, err, ops[i].Applied, ops[i].Current)
				}
			}
			if typ := typeOf("k"); typ != "hash" {
				t.Fatalf("a replace or delete that did not apply changed the key to a %s", typ)
			}
			create(t, s, "k", []byte("rec"), later())
			if typ := typeOf("k"); typ != "string" {
				t.Fatalf("after a create over a hash the key is a %s; want a string", typ)
			}
			mustLoad(t, s, "k", "rec")
			checkTTLs(t, client, prefix)
		})
	}
}

// TestPipelinedWrite checks that the ops of one Write leave in one write to
// the connection, before any reply is awaited: a rotation costs one round
// trip (on a cluster, one to each shard involved, in parallel).
func TestPipelinedWrite(t *testing.T) {
	addrs := serverAddrs(t, envAddr)
	var writes counter
	client, err := valkey.NewClient(valkey.ClientOption{
		InitAddress: addrs,
		// No background PING, which would add writes of its own.
		Dialer: net.Dialer{KeepAlive: -1},
		DialCtxFn: func(ctx context.Context, addr string, d *net.Dialer, _ *tls.Config) (net.Conn, error) {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &countingConn{Conn: c, writes: &writes}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	s := valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client)})
	ctx := context.Background()
	create(t, s, "old", []byte("rec"), later()) // the server now has the script

	before := writes.get()
	ops := []store.Op{
		{Key: "new", New: []byte("rec"), Expiry: later()},
		{Key: "old", Old: []byte("rec"), New: []byte("marker"), Expiry: later()},
	}
	if err := s.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
		t.Fatalf("rotation = %v, %+v; want both applied", err, ops)
	}
	if n := writes.get() - before; n != 1 {
		t.Errorf("a Write of two ops took %d writes to the connection; want 1", n)
	}
	mustLoad(t, s, "new", "rec")
	mustLoad(t, s, "old", "marker")
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// countingConn counts the writes to the connection that carry a call of the
// script, so that a new connection's handshake does not count.
type countingConn struct {
	net.Conn
	writes *counter
}

func (c *countingConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, []byte("EVALSHA")) {
		c.writes.mu.Lock()
		c.writes.n++
		c.writes.mu.Unlock()
	}
	return c.Conn.Write(b)
}

// TestTimeoutOption checks that Options.Timeout bounds a call whose context
// has no deadline, and leaves an earlier caller deadline alone.
func TestTimeoutOption(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: time.Second})
	ctx := context.Background()
	create(t, s, "k", []byte("v"), later())
	mustLoad(t, s, "k", "v")
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Millisecond))
	defer cancel()
	if _, _, err := s.Load(expired, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Load with an expired context: %v; want context.DeadlineExceeded", err)
	}
	ops := []store.Op{{Key: "k", Old: []byte("v"), New: []byte("w"), Expiry: later()}}
	if err := s.Write(expired, ops); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write with an expired context: %v; want context.DeadlineExceeded", err)
	}
	mustLoad(t, s, "k", "v")
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
			create(t, b, "k", []byte("v1"), later())
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

			replace(t, b, "k", []byte("v1"), []byte("v2"), later())
			poll(t, 2*time.Second, "cached Load never saw another client's write", func() bool {
				rec, _, _ := loadHit(t, a, "k")
				return rec == "v2"
			})
			poll(t, 2*time.Second, "the new value was never served from the cache", func() bool {
				rec, _, hit := loadHit(t, a, "k")
				return rec == "v2" && hit
			})

			remove(t, b, "k", []byte("v2"))
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
			create(t, b, "new", []byte("n"), later())
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
// recently-written window has passed. With compare-and-set writes a stale
// read would not corrupt a session, but a read-only request that follows a
// write must still see it.
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
				create(t, b, key, []byte("old"), later())
				poll(t, 2*time.Second, "never cached", func() bool {
					rec, _, hit := loadHit(t, a, key)
					return rec == "old" && hit
				})
				want := fmt.Sprint("new", i)
				replace(t, a, key, []byte("old"), []byte(want), later())
				if rec, found, _ := loadHit(t, a, key); rec != want || !found {
					t.Fatalf("round %d: Load right after a replace = %q, %v; want %q", i, rec, found, want)
				}
				if i%10 == 0 {
					remove(t, a, key, []byte(want))
					if rec, found, _ := loadHit(t, a, key); found {
						t.Fatalf("round %d: Load right after a delete = %q; want not found", i, rec)
					}
				}
				if i%10 == 5 {
					// Several ops in one Write are remembered too.
					other := key + "-other"
					create(t, b, other, []byte("old"), later())
					poll(t, 2*time.Second, "never cached", func() bool {
						rec, _, hit := loadHit(t, a, other)
						return rec == "old" && hit
					})
					ops := []store.Op{
						{Key: key, Old: []byte(want), New: []byte("both"), Expiry: later()},
						{Key: other, Old: []byte("old")},
					}
					if err := a.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
						t.Fatalf("round %d: Write = %v, %+v; want both applied", i, err, ops)
					}
					if rec, _, _ := loadHit(t, a, key); rec != "both" {
						t.Fatalf("round %d: Load right after a two-op Write = %q; want %q", i, rec, "both")
					}
					if rec, found, _ := loadHit(t, a, other); found {
						t.Fatalf("round %d: Load right after a two-op Write = %q; want not found", i, rec)
					}
				}
			}
			create(t, a, "last", []byte("v"), later())
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
	exp := time.Now().Add(300 * time.Millisecond)
	create(t, b, "k", []byte("v"), exp)
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
	create(t, b, "k", []byte("original"), later())
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
	var old []byte
	for i := range 3 {
		want := fmt.Appendf(nil, "version %d", i)
		if old == nil {
			create(t, s, "k", want, later())
		} else {
			replace(t, s, "k", old, want, later())
		}
		old = want
		poll(t, 2*time.Second, "reads after an own write never came from the cache", func() bool {
			rec, found, hit, err := s.LoadHit(ctx, "k")
			if err != nil || !found || !bytes.Equal(rec, want) {
				t.Fatalf("LoadHit = %q, %v, %v; want %q", rec, found, err, want)
			}
			return hit
		})
	}
	remove(t, s, "k", old)
	if _, found, _, err := s.LoadHit(ctx, "k"); err != nil || found {
		t.Fatalf("after a delete: found=%v, err=%v", found, err)
	}
}

// create, replace and remove run one op through s and fail the test unless
// it applied.
func create(t testing.TB, s *valkeystore.Store, key string, rec []byte, exp time.Time) {
	t.Helper()
	mustApply(t, s, store.Op{Key: key, New: rec, Expiry: exp})
}

func replace(t testing.TB, s *valkeystore.Store, key string, old, rec []byte, exp time.Time) {
	t.Helper()
	mustApply(t, s, store.Op{Key: key, Old: old, New: rec, Expiry: exp})
}

func remove(t testing.TB, s *valkeystore.Store, key string, old []byte) {
	t.Helper()
	mustApply(t, s, store.Op{Key: key, Old: old})
}

func mustApply(t testing.TB, s *valkeystore.Store, op store.Op) {
	t.Helper()
	ops := []store.Op{op}
	if err := s.Write(context.Background(), ops); err != nil {
		t.Fatalf("Write(%s): %v", op.Key, err)
	}
	if !ops[0].Applied {
		t.Fatalf("Write(%s): not applied, current %.40q", op.Key, ops[0].Current)
	}
}

func mustLoad(t testing.TB, s *valkeystore.Store, key, want string) {
	t.Helper()
	rec, found, err := s.Load(context.Background(), key)
	if err != nil || !found || string(rec) != want {
		t.Fatalf("Load(%s) = %q, %v, %v; want %q", key, rec, found, err, want)
	}
}
