package valkeystore_test

import (
	"bytes"
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/valkeystore"
)

// benchRecord is about the size of a sealed session record.
var benchRecord = bytes.Repeat([]byte{0xa5}, 512)

// benchSetup skips the benchmark when VALKEY_ADDR is unset, even under CI.
func benchSetup(b *testing.B) (valkey.Client, string) {
	b.Helper()
	if _, ok := lookupAddr(); !ok {
		b.Skip(skipMessage)
	}
	client := newClient(b, serverAddrs(b, envAddr))
	return client, uniquePrefix(b, client)
}

// requestContext is like an incoming request's context: cancellable, with no
// deadline.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

// BenchmarkLoad reads a record from the server with GET; the Timeout case
// adds the per-call context bound.
func BenchmarkLoad(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run("Timeout="+timeout.String(), func(b *testing.B) {
			client, prefix := benchSetup(b)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: timeout})
			ctx := requestContext(b)
			create(b, s, "k", benchRecord, later())
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := s.Load(ctx, "k"); err != nil || !found {
					b.Fatal(found, err)
				}
			}
		})
	}
}

// BenchmarkLoadCacheHit reads a record that is already in the client-side
// cache.
func BenchmarkLoadCacheHit(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run("Timeout="+timeout.String(), func(b *testing.B) {
			client, prefix := benchSetup(b)
			ctx := requestContext(b)
			// Written through another store, so that the cached one has not
			// written the key itself and serves it from the cache at once.
			create(b, valkeystore.New(client, valkeystore.Options{Prefix: prefix}), "k", benchRecord, later())
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, CacheTTL: time.Hour, Timeout: timeout})
			s.Load(ctx, "k")
			if _, _, hit, err := s.LoadHit(ctx, "k"); err != nil || !hit {
				b.Fatalf("warm-up Load: hit %v, %v", hit, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, found, err := s.Load(ctx, "k"); err != nil || !found {
					b.Fatal(found, err)
				}
			}
		})
	}
}

// BenchmarkWrite replaces a record by compare-and-set, as a commit of a
// changed session does.
func BenchmarkWrite(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := requestContext(b)
	exp := later()
	recs := [2][]byte{benchRecord, bytes.Repeat([]byte{0x5a}, len(benchRecord))}
	create(b, s, "k", recs[0], exp)
	ops := make([]store.Op, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		ops[0] = store.Op{Key: "k", Old: recs[i%2], New: recs[(i+1)%2], Expiry: exp}
		if err := s.Write(ctx, ops); err != nil || !ops[0].Applied {
			b.Fatal(ops[0].Applied, err)
		}
		i++
	}
}

// BenchmarkWritePipelined writes two ops in one Write, as a rotation does:
// a record created under one key and retired under another.
func BenchmarkWritePipelined(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := requestContext(b)
	exp := later()
	keys := [2]string{"a", "b"}
	create(b, s, keys[0], benchRecord, exp)
	ops := make([]store.Op, 2)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, to := keys[i%2], keys[(i+1)%2]
		ops[0] = store.Op{Key: to, New: benchRecord, Expiry: exp}
		ops[1] = store.Op{Key: from, Old: benchRecord}
		if err := s.Write(ctx, ops); err != nil || !ops[0].Applied || !ops[1].Applied {
			b.Fatal(ops, err)
		}
		i++
	}
}

// BenchmarkClientSet is the baseline for BenchmarkWrite: valkey-go's
// unconditional SET ... PXAT alone.
func BenchmarkClientSet(b *testing.B) {
	client, prefix := benchSetup(b)
	ctx := requestContext(b)
	k := prefix + "k"
	at := later().UnixMilli()
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Do(ctx, client.B().Set().Key(k).Value(string(benchRecord)).PxatMillisecondsTimestamp(at).Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientGet is the baseline for BenchmarkLoad: valkey-go's GET alone.
func BenchmarkClientGet(b *testing.B) {
	client, prefix := benchSetup(b)
	ctx := requestContext(b)
	k := prefix + "k"
	if err := client.Do(ctx, client.B().Set().Key(k).Value(string(benchRecord)).Px(time.Hour).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Do(ctx, client.B().Get().Key(k).Build()).AsBytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientDoCacheHit is the baseline for BenchmarkLoadCacheHit:
// valkey-go's cached GET alone.
func BenchmarkClientDoCacheHit(b *testing.B) {
	client, prefix := benchSetup(b)
	ctx := requestContext(b)
	k := prefix + "k"
	if err := client.Do(ctx, client.B().Set().Key(k).Value(string(benchRecord)).Px(time.Hour).Build()).Error(); err != nil {
		b.Fatal(err)
	}
	client.DoCache(ctx, client.B().Get().Key(k).Cache(), time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.DoCache(ctx, client.B().Get().Key(k).Cache(), time.Hour).AsBytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBind binds a session to its owner, as a login does: one script
// over the owner's sorted set and epoch.
func BenchmarkBind(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	x := s.Index()
	ctx := requestContext(b)
	exp := later()
	epoch := bytes.Repeat([]byte{0x3c}, 16)
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := x.Bind(ctx, "owner", keys[i%len(keys)], exp, epoch); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkEpoch reads an owner's epoch, as every request of a bound session
// does: with GET, or from the client-side cache.
func BenchmarkEpoch(b *testing.B) {
	for _, cache := range []time.Duration{0, time.Hour} {
		b.Run("CacheTTL="+cache.String(), func(b *testing.B) {
			client, prefix := benchSetup(b)
			ctx := requestContext(b)
			// Set through another store, so that a cached one has not
			// written the key itself and serves it from the cache at once.
			other := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
			if err := other.Index().SetEpoch(ctx, "owner", bytes.Repeat([]byte{0x3c}, 16), later()); err != nil {
				b.Fatal(err)
			}
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, CacheTTL: cache})
			s.Index().Epoch(ctx, "owner")
			if _, hit, err := s.EpochHit(ctx, "owner"); err != nil || hit != (cache > 0) {
				b.Fatalf("warm-up Epoch: hit %v, %v", hit, err)
			}
			x := s.Index()
			b.ReportAllocs()
			for b.Loop() {
				if ep, err := x.Epoch(ctx, "owner"); err != nil || ep == nil {
					b.Fatal(ep, err)
				}
			}
		})
	}
}

// BenchmarkSetEpoch replaces an owner's epoch, as "sign out everywhere" does.
func BenchmarkSetEpoch(b *testing.B) {
	client, prefix := benchSetup(b)
	x := valkeystore.New(client, valkeystore.Options{Prefix: prefix}).Index()
	ctx := requestContext(b)
	exp := later()
	epochs := [2][]byte{bytes.Repeat([]byte{0x3c}, 16), bytes.Repeat([]byte{0xc3}, 16)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := x.SetEpoch(ctx, "owner", epochs[i%2], exp); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSessions10 lists an owner's ten sessions with their records, as a
// "your devices" page does: the script, then ten GETs in one pipelined batch.
func BenchmarkSessions10(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	x := s.Index()
	ctx := requestContext(b)
	for i := range 10 {
		k := "k" + strconv.Itoa(i)
		create(b, s, k, benchRecord, later())
		if _, err := x.Bind(ctx, "owner", k, later(), []byte("epoch")); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if list, err := x.Sessions(ctx, "owner"); err != nil || len(list) != 10 {
			b.Fatal(len(list), err)
		}
	}
}
