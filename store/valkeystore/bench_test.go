package valkeystore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

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

// BenchmarkLoad reads a record from the server with GET; the Timeout case
// adds the per-command context bound.
// requestContext is like an incoming request's context: cancellable, with no
// deadline.
func requestContext(b *testing.B) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	return ctx
}

func BenchmarkLoad(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run("Timeout="+timeout.String(), func(b *testing.B) {
			client, prefix := benchSetup(b)
			s := valkeystore.New(client, valkeystore.Options{Prefix: prefix, Timeout: timeout})
			ctx := requestContext(b)
			if err := s.Save(ctx, "k", benchRecord, later()); err != nil {
				b.Fatal(err)
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

// BenchmarkLoadCacheHit reads a record that is already in the client-side
// cache.
func BenchmarkLoadCacheHit(b *testing.B) {
	for _, timeout := range []time.Duration{0, time.Second} {
		b.Run("Timeout="+timeout.String(), func(b *testing.B) {
			client, prefix := benchSetup(b)
			ctx := requestContext(b)
			// Written through another store, so that the cached one has not
			// written the key itself and serves it from the cache at once.
			if err := valkeystore.New(client, valkeystore.Options{Prefix: prefix}).Save(ctx, "k", benchRecord, later()); err != nil {
				b.Fatal(err)
			}
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

func BenchmarkSave(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := requestContext(b)
	exp := later()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Save(ctx, "k", benchRecord, exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTouch(b *testing.B) {
	client, prefix := benchSetup(b)
	s := valkeystore.New(client, valkeystore.Options{Prefix: prefix})
	ctx := requestContext(b)
	if err := s.Save(ctx, "k", benchRecord, later()); err != nil {
		b.Fatal(err)
	}
	exp := later()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Touch(ctx, "k", exp); err != nil {
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
