package valkeystore_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/sessiontest"
	"github.com/typedsession/session/store/valkeystore"
)

// envs are the servers every index test runs on.
var envs = []string{envAddr, envClusterAddrs}

func bind(t testing.TB, s *valkeystore.Store, owner, key string, exp time.Time, epoch string) string {
	t.Helper()
	got, err := s.Index().Bind(context.Background(), owner, key, exp, []byte(epoch))
	if err != nil {
		t.Fatalf("Bind(%s, %s): %v", owner, key, err)
	}
	return string(got)
}

func setEpoch(t testing.TB, s *valkeystore.Store, owner, epoch string, exp time.Time) {
	t.Helper()
	if err := s.Index().SetEpoch(context.Background(), owner, []byte(epoch), exp); err != nil {
		t.Fatalf("SetEpoch(%s): %v", owner, err)
	}
}

func epochOf(t testing.TB, s *valkeystore.Store, owner string) (epoch string, found bool) {
	t.Helper()
	got, err := s.Index().Epoch(context.Background(), owner)
	if err != nil {
		t.Fatalf("Epoch(%s): %v", owner, err)
	}
	return string(got), got != nil
}

func sessionKeys(t testing.TB, s *valkeystore.Store, owner string) []string {
	t.Helper()
	list, err := s.Index().Sessions(context.Background(), owner)
	if err != nil {
		t.Fatalf("Sessions(%s): %v", owner, err)
	}
	var keys []string
	for _, e := range list {
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	return keys
}

// raw runs commands on the keys themselves, for the tests that look at what
// the index leaves on the server.
type raw struct {
	t      *testing.T
	client valkey.Client
}

func (v raw) do(cmd valkey.Completed) valkey.ValkeyResult {
	return v.client.Do(context.Background(), cmd)
}

func (v raw) typeOf(k string) string {
	v.t.Helper()
	typ, err := v.do(v.client.B().Type().Key(k).Build()).ToString()
	if err != nil {
		v.t.Fatal(err)
	}
	return typ
}

func (v raw) expireTime(k string) int64 {
	v.t.Helper()
	at, err := v.do(v.client.B().Pexpiretime().Key(k).Build()).AsInt64()
	if err != nil {
		v.t.Fatal(err)
	}
	return at
}

func (v raw) hset(k string) {
	v.t.Helper()
	if err := v.do(v.client.B().Hset().Key(k).FieldValue().FieldValue("a", "b").Build()).Error(); err != nil {
		v.t.Fatal(err)
	}
}

// TestIndexLayout checks what the index keeps on the server: two keys per
// owner, named as the package documentation says, in one cluster slot,
// holding exactly the keys, expiries and epoch they were given and nothing
// else, each with the expiry it must have.
func TestIndexLayout(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, env))
			prefix := uniquePrefix(t, client)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
			v := raw{t, client}
			const owner = "3q2+7w=="
			set, ek := prefix+"owner:{"+owner+"}", prefix+"epoch:{"+owner+"}"
			now := time.Now()
			exp1, exp2 := now.Add(time.Hour), now.Add(2*time.Hour)

			if got := bind(t, s, owner, "k2", exp2, "epoch"); got != "epoch" {
				t.Fatalf("Bind = %q; want epoch", got)
			}
			bind(t, s, owner, "k1", exp1, "ignored")
			if keys := scanKeys(t, context.Background(), client, prefix); !sameSet(keys, []string{set, ek}) {
				t.Fatalf("keys under the prefix: %q; want %q and %q only", keys, set, ek)
			}
			members, err := v.do(client.B().Zrange().Key(set).Min("0").Max("-1").Withscores().Build()).AsZScores()
			if err != nil {
				t.Fatal(err)
			}
			want := []valkey.ZScore{{Member: "k1", Score: float64(exp1.UnixMilli())}, {Member: "k2", Score: float64(exp2.UnixMilli())}}
			if !slices.Equal(members, want) {
				t.Fatalf("ZRANGE %s WITHSCORES = %v; want %v (the keys, scored by their expiry)", set, members, want)
			}
			if got, err := v.do(client.B().Get().Key(ek).Build()).ToString(); err != nil || got != "epoch" {
				t.Fatalf("GET %s = %q, %v; want the epoch alone", ek, got, err)
			}
			if at := v.expireTime(set); at != exp2.UnixMilli() {
				t.Errorf("the set expires at %d; want %d, its highest score", at, exp2.UnixMilli())
			}
			if at := v.expireTime(ek); at != exp2.UnixMilli() {
				t.Errorf("the epoch expires at %d; want %d, the latest expiry bound", at, exp2.UnixMilli())
			}

			// A new epoch with an earlier expiry keeps the later one; one
			// with a later expiry moves it.
			setEpoch(t, s, owner, "second", exp1)
			if at := v.expireTime(ek); at != exp2.UnixMilli() {
				t.Errorf("after SetEpoch with an earlier expiry the epoch expires at %d; want %d", at, exp2.UnixMilli())
			}
			exp3 := now.Add(3 * time.Hour)
			setEpoch(t, s, owner, "third", exp3)
			if at := v.expireTime(ek); at != exp3.UnixMilli() {
				t.Errorf("after SetEpoch with a later expiry the epoch expires at %d; want %d", at, exp3.UnixMilli())
			}
			// A bind with an expiry later than the epoch's moves it too.
			exp4 := now.Add(4 * time.Hour)
			bind(t, s, owner, "k3", exp4, "x")
			if at := v.expireTime(ek); at != exp4.UnixMilli() {
				t.Errorf("after a Bind with a later expiry the epoch expires at %d; want %d", at, exp4.UnixMilli())
			}
			if at := v.expireTime(set); at != exp4.UnixMilli() {
				t.Errorf("after a Bind with a later expiry the set expires at %d; want %d", at, exp4.UnixMilli())
			}

			if env == envClusterAddrs {
				slot := func(k string) int64 {
					n, err := v.do(client.B().ClusterKeyslot().Key(k).Build()).AsInt64()
					if err != nil {
						t.Fatal(err)
					}
					return n
				}
				if slot(set) != slot(ek) {
					t.Errorf("an owner's keys are in slots %d and %d; want one", slot(set), slot(ek))
				}
			}

			// Unbinding every key leaves no set; SetEpoch with nothing
			// removes the epoch.
			for _, k := range []string{"k1", "k2", "k3"} {
				if err := s.Index().Unbind(context.Background(), owner, k); err != nil {
					t.Fatal(err)
				}
			}
			setEpoch(t, s, owner, "", exp1)
			if keys := scanKeys(t, context.Background(), client, prefix); len(keys) != 0 {
				t.Fatalf("keys left after every key was unbound and the epoch removed: %q", keys)
			}
		})
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestIndexTrims checks that the sorted set drops its expired members on
// Bind and on Sessions, and that the set and the epoch expire on their own.
func TestIndexTrims(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, env))
			prefix := uniquePrefix(t, client)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
			v := raw{t, client}
			set := prefix + "owner:{o}"
			card := func() int64 {
				t.Helper()
				n, err := v.do(client.B().Zcard().Key(set).Build()).AsInt64()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			// Trimming goes by the store's clock, which the test moves:
			// the server's own expiry of the keys is far off.
			clock := sessiontest.NewClock(time.Now())
			valkeystore.SetNow(s, clock.Now)
			short := clock.Now().Add(time.Minute)
			for i := range 5 {
				bind(t, s, "o", fmt.Sprint("short", i), short, "e")
			}
			bind(t, s, "o", "long", later(), "e")
			clock.Advance(2 * time.Minute)
			if n := card(); n != 6 {
				t.Fatalf("ZCARD before any trim = %d; want 6", n)
			}
			bind(t, s, "o", "long2", later(), "e")
			if n := card(); n != 2 {
				t.Errorf("ZCARD after a Bind = %d; want 2 (expired members trimmed)", n)
			}

			short = clock.Now().Add(time.Minute)
			bind(t, s, "o", "short", short, "e")
			clock.Advance(2 * time.Minute)
			if keys := sessionKeys(t, s, "o"); len(keys) != 0 { // no records: none listed
				t.Fatalf("Sessions = %q; want none (no key has a record)", keys)
			}
			if n := card(); n != 2 {
				t.Errorf("ZCARD after Sessions = %d; want 2 (expired members trimmed)", n)
			}

			// An owner whose sessions are all short-lived: both keys go when
			// the last expires, with no call to trim them.
			s = valkeystore.New(client, valkeystore.Options{Prefix: prefix}) // on the server's clock
			bind(t, s, "gone", "k", time.Now().Add(100*time.Millisecond), "e")
			poll(t, 5*time.Second, "the index keys of an owner whose sessions all expired are still there", func() bool {
				return len(scanKeys(t, context.Background(), client, prefix+"epoch:{gone}")) == 0 &&
					len(scanKeys(t, context.Background(), client, prefix+"owner:{gone}")) == 0
			})
		})
	}
}

// TestIndexTTLs checks that every key the index leaves has a TTL, including
// keys it finds without one (written by hand or by another program) and
// takes over.
func TestIndexTTLs(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			client := newClient(t, serverAddrs(t, env))
			prefix := uniquePrefix(t, client)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
			v := raw{t, client}
			ctx := context.Background()

			bind(t, s, "a", "k1", later(), "e")
			bind(t, s, "a", "k2", time.Now().Add(2*time.Hour), "e")
			setEpoch(t, s, "a", "e2", time.Now().Add(time.Minute))
			setEpoch(t, s, "b", "e", later())
			// An epoch and a set with no TTL, then bound over.
			if err := v.do(client.B().Set().Key(prefix + "epoch:{c}").Value("old").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			if err := v.do(client.B().Zadd().Key(prefix+"owner:{c}").ScoreMember().ScoreMember(float64(later().UnixMilli()), "k").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			if got := bind(t, s, "c", "k2", later(), "new"); got != "old" {
				t.Fatalf("Bind over an epoch with no TTL = %q; want old", got)
			}
			// An epoch with no TTL, then set over with an earlier expiry.
			if err := v.do(client.B().Set().Key(prefix + "epoch:{d}").Value("old").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			setEpoch(t, s, "d", "new", later())
			if _, err := s.Index().Sessions(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if n := checkTTLs(t, client, prefix); n != 6 {
				t.Errorf("checked %d keys; want 6", n)
			}
		})
	}
}

// TestIndexWrongType: a key of another type where an owner's set or epoch
// belongs (left by a bug or a hand on the server; it has no TTL) must not
// fail that owner's every call forever. It counts as absent: Epoch finds no
// epoch, Sessions no entry (and removes it), Unbind nothing to remove, and
// Bind and SetEpoch replace it.
func TestIndexWrongType(t *testing.T) {
	for _, tc := range []struct {
		env   string
		cache time.Duration
	}{{envAddr, 0}, {envAddr, time.Minute}, {envClusterAddrs, 0}, {envClusterAddrs, time.Minute}} {
		t.Run(fmt.Sprintf("%s/cache=%v", tc.env, tc.cache), func(t *testing.T) {
			client := newClient(t, serverAddrs(t, tc.env))
			prefix := uniquePrefix(t, client)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, CacheTTL: tc.cache})
			v := raw{t, client}
			ctx := context.Background()
			set, ek := prefix+"owner:{o}", prefix+"epoch:{o}"
			create(t, s, "k", []byte("rec"), later())

			v.hset(set)
			v.hset(ek)
			for range 2 {
				if ep, found := epochOf(t, s, "o"); found {
					t.Fatalf("Epoch over a hash = %q; want none", ep)
				}
			}
			if err := s.Index().Unbind(ctx, "o", "k"); err != nil {
				t.Fatalf("Unbind over a hash: %v", err)
			}
			if keys := sessionKeys(t, s, "o"); len(keys) != 0 {
				t.Fatalf("Sessions over a hash = %q; want none", keys)
			}
			if typ := v.typeOf(set); typ != "none" {
				t.Fatalf("after Sessions the set's key is a %s; want it removed", typ)
			}

			v.hset(set)
			if got := bind(t, s, "o", "k", later(), "new"); got != "new" {
				t.Fatalf("Bind over hashes = %q; want the epoch given", got)
			}
			if a, b := v.typeOf(set), v.typeOf(ek); a != "zset" || b != "string" {
				t.Fatalf("after Bind over hashes the keys are a %s and a %s; want a zset and a string", a, b)
			}
			if keys := sessionKeys(t, s, "o"); !slices.Equal(keys, []string{"k"}) {
				t.Fatalf("Sessions after Bind over a hash = %q; want k", keys)
			}
			if ep, _ := epochOf(t, s, "o"); ep != "new" {
				t.Fatalf("Epoch after Bind over a hash = %q; want new", ep)
			}

			v.hset(prefix + "epoch:{p}")
			setEpoch(t, s, "p", "set", later())
			if ep, _ := epochOf(t, s, "p"); ep != "set" {
				t.Fatalf("Epoch after SetEpoch over a hash = %q; want set", ep)
			}
			v.hset(prefix + "epoch:{q}")
			setEpoch(t, s, "q", "", later())
			if typ := v.typeOf(prefix + "epoch:{q}"); typ != "none" {
				t.Fatalf("after SetEpoch of nothing over a hash the key is a %s; want it removed", typ)
			}
			checkTTLs(t, client, prefix)
		})
	}
}

// TestEpochCache checks the cached Epoch across two clients: a warm read is
// served from memory (no GET reaches the server), and another client's
// SetEpoch, removal or Bind becomes visible once the server's invalidation
// arrives, so that a revocation reaches every instance.
func TestEpochCache(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			a, b, clientA := twoStores(t, env, time.Minute)
			ctx := context.Background()
			epochHit := func() (string, bool, bool) {
				t.Helper()
				ep, hit, err := a.EpochHit(ctx, "o")
				if err != nil {
					t.Fatalf("Epoch: %v", err)
				}
				return string(ep), ep != nil, hit
			}
			setEpoch(t, b, "o", "e1", later())
			if ep, _, hit := epochHit(); ep != "e1" || hit {
				t.Fatalf("first cached Epoch = %q, hit %v; want e1 from the server", ep, hit)
			}
			if ep, _, hit := epochHit(); ep != "e1" || !hit {
				t.Fatalf("second cached Epoch = %q, hit %v; want e1 from the cache", ep, hit)
			}
			if env == envAddr {
				gets := commandCalls(t, clientA, "get")["get"]
				for range 100 {
					epochHit()
				}
				if n := commandCalls(t, clientA, "get")["get"] - gets; n != 0 {
					t.Errorf("100 warm cached Epochs ran GET %d times on the server; want 0", n)
				}
			}

			setEpoch(t, b, "o", "e2", later())
			poll(t, 2*time.Second, "cached Epoch never saw another client's SetEpoch", func() bool {
				ep, _, _ := epochHit()
				return ep == "e2"
			})
			poll(t, 2*time.Second, "the new epoch was never served from the cache", func() bool {
				ep, _, hit := epochHit()
				return ep == "e2" && hit
			})

			setEpoch(t, b, "o", "", later())
			poll(t, 2*time.Second, "cached Epoch never saw another client remove the epoch", func() bool {
				_, found, _ := epochHit()
				return !found
			})
			// A miss is cached too, and another client's Bind still becomes
			// visible.
			if _, found, hit := epochHit(); found || !hit {
				t.Fatalf("Epoch after the removal: found %v, hit %v; want a cached miss", found, hit)
			}
			bind(t, b, "o", "k", later(), "e3")
			poll(t, 2*time.Second, "a cached miss hid another client's Bind", func() bool {
				ep, _, _ := epochHit()
				return ep == "e3"
			})
		})
	}
}

// TestEpochCacheReadsOwnWrites checks that a caching store sees its own
// SetEpoch and Bind at once, although the server's invalidation of its
// cached copy may still be on the way: a revocation on this instance takes
// effect on its very next request.
func TestEpochCacheReadsOwnWrites(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			a, b, _ := twoStores(t, env, 100*time.Millisecond)
			ctx := context.Background()
			warm := func(owner, want string) {
				t.Helper()
				poll(t, 2*time.Second, "never cached", func() bool {
					ep, hit, err := a.EpochHit(ctx, owner)
					if err != nil {
						t.Fatal(err)
					}
					return string(ep) == want && hit
				})
			}
			for i := range 100 {
				owner := fmt.Sprint("o", i)
				setEpoch(t, b, owner, "old", later())
				warm(owner, "old")
				want := fmt.Sprint("new", i)
				setEpoch(t, a, owner, want, later())
				if ep, _ := epochOf(t, a, owner); ep != want {
					t.Fatalf("round %d: Epoch right after SetEpoch = %q; want %q", i, ep, want)
				}
				setEpoch(t, a, owner, "", later())
				if ep, found := epochOf(t, a, owner); found {
					t.Fatalf("round %d: Epoch right after its removal = %q; want none", i, ep)
				}
				warm(owner, "")
				if got := bind(t, a, owner, "k", later(), "bound"); got != "bound" {
					t.Fatalf("round %d: Bind = %q; want bound", i, got)
				}
				if ep, _ := epochOf(t, a, owner); ep != "bound" {
					t.Fatalf("round %d: Epoch right after a Bind that started one = %q; want bound", i, ep)
				}
			}
		})
	}
}

// TestIndexErrors checks the errors the index gives: each says which call
// failed and wraps the cause, and none names an owner, a key or an epoch.
func TestIndexErrors(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	prefix := uniquePrefix(t, client)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	const owner, key, epoch = "owner-51c2", "key-9e0b", "epoch-77aa"
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	x := s.Index()
	calls := []struct {
		name string
		do   func(context.Context, string) error
	}{
		{"bind", func(ctx context.Context, o string) error {
			_, err := x.Bind(ctx, o, key, later(), []byte(epoch))
			return err
		}},
		{"unbind", func(ctx context.Context, o string) error { return x.Unbind(ctx, o, key) }},
		{"sessions", func(ctx context.Context, o string) error { _, err := x.Sessions(ctx, o); return err }},
		{"epoch", func(ctx context.Context, o string) error { _, err := x.Epoch(ctx, o); return err }},
		{"set epoch", func(ctx context.Context, o string) error { return x.SetEpoch(ctx, o, []byte(epoch), later()) }},
	}
	check := func(what, name string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s %s: no error", name, what)
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "valkeystore: "+name+": ") {
			t.Errorf("%s %s: %q; want it to begin with %q", name, what, msg, "valkeystore: "+name+": ")
		}
		for _, secret := range []string{owner, key, epoch, prefix} {
			if strings.Contains(msg, secret) {
				t.Errorf("%s %s: %q names %q", name, what, msg, secret)
			}
		}
	}
	for _, c := range calls {
		err := c.do(cancelled, owner)
		check("with a cancelled context", c.name, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v; want it to wrap context.Canceled", c.name, err)
		}
		check("with an empty owner", c.name, c.do(context.Background(), ""))
	}
	// A prefix whose "{" opens no hash tag would split an owner's keys
	// across cluster slots: the index refuses it everywhere, so that moving
	// to a cluster brings no surprise.
	for _, p := range []string{"a{b:", "a{}b:"} {
		bad := valkeystore.New(client, valkeystore.Options{Prefix: prefix + p})
		if _, err := bad.Index().Bind(context.Background(), owner, key, later(), []byte(epoch)); err == nil {
			t.Errorf("Bind under the prefix %q: no error", p)
		} else {
			check("under a prefix "+p, "bind", err)
		}
	}
	// A prefix with a whole hash tag pins every key to one slot, so the
	// index works under it.
	good := valkeystore.New(client, valkeystore.Options{Prefix: prefix + "{app}:"})
	if got := bind(t, good, owner, key, later(), epoch); got != epoch {
		t.Fatalf("Bind under a prefix with a hash tag = %q; want %q", got, epoch)
	}
}

// TestIndexAfterScriptFlush: a server that lost the index's scripts
// (restarted, failed over, flushed) answers NOSCRIPT, and each call sends
// its script once with EVAL.
func TestIndexAfterScriptFlush(t *testing.T) {
	client := newClient(t, serverAddrs(t, envAddr))
	s := valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client)})
	ctx := context.Background()
	if err := client.Do(ctx, client.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	before := commandCalls(t, client, "eval")["eval"]
	want := "e"
	for range 2 {
		if got := bind(t, s, "o", "k", later(), "e"); got != want {
			t.Fatalf("Bind after SCRIPT FLUSH = %q; want %q", got, want)
		}
		setEpoch(t, s, "o", "e2", later())
		sessionKeys(t, s, "o")
		want = "e2"
	}
	if n := commandCalls(t, client, "eval")["eval"] - before; n != 3 {
		t.Errorf("Bind, SetEpoch and Sessions twice after SCRIPT FLUSH ran EVAL %d times; want 3", n)
	}
	if ep, _ := epochOf(t, s, "o"); ep != "e2" {
		t.Fatalf("Epoch = %q; want e2", ep)
	}
}

// TestIndexRoundTrips counts the writes to the connection each call of the
// index makes, after the server has its scripts: Bind, Epoch and SetEpoch
// one, Sessions of ten sessions two (the script, then the ten GETs in one
// pipelined batch).
func TestIndexRoundTrips(t *testing.T) {
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
			return &allWritesConn{Conn: c, writes: &writes}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	s := valkeystore.New(client, valkeystore.Options{Prefix: uniquePrefix(t, client)})
	ctx := context.Background()
	for i := range 10 {
		k := "k" + strconv.Itoa(i)
		create(t, s, k, []byte("rec"), later())
		bind(t, s, "o", k, later(), "e")
	}
	setEpoch(t, s, "o", "e2", later())
	sessionKeys(t, s, "o") // the server now has every script

	for _, c := range []struct {
		name string
		want int
		do   func() error
	}{
		{"Bind", 1, func() error { _, err := s.Index().Bind(ctx, "o", "k0", later(), []byte("e")); return err }},
		{"Epoch", 1, func() error { _, err := s.Index().Epoch(ctx, "o"); return err }},
		{"SetEpoch", 1, func() error { return s.Index().SetEpoch(ctx, "o", []byte("e3"), later()) }},
		{"Unbind", 1, func() error { return s.Index().Unbind(ctx, "o", "none") }},
		{"Sessions of 10", 2, func() error {
			list, err := s.Index().Sessions(ctx, "o")
			if err == nil && len(list) != 10 {
				err = fmt.Errorf("%d sessions listed; want 10", len(list))
			}
			return err
		}},
	} {
		before := writes.get()
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n := writes.get() - before; n != c.want {
			t.Errorf("%s took %d writes to the connection; want %d", c.name, n, c.want)
		}
	}
}

// allWritesConn counts every write to the connection.
type allWritesConn struct {
	net.Conn
	writes *counter
}

func (c *allWritesConn) Write(b []byte) (int, error) {
	c.writes.mu.Lock()
	c.writes.n++
	c.writes.mu.Unlock()
	return c.Conn.Write(b)
}
