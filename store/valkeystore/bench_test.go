package valkeystore_test

import (
	"bytes"
	"context"
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
